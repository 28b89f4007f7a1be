"""Text formatting of numbers, recipes and runs for the pages."""

from __future__ import annotations

import json
import math
from typing import Any

from bench import stats
from bench.io import is_number
from bench.leaderboard.select import DER_KEY, ResultFile


def pct(value: Any, digits: int = 1) -> str:
    """A DER fraction as a percentage (``0.2171 -> '21.7'``); empty for None, 'nan' for NaN."""
    if value is None:
        return ""
    if not is_number(value):
        return "nan"
    return f"{100.0 * value:.{digits}f}"


def _signed(value: float, digits: int) -> str:
    return f"{100.0 * value:+.{digits}f}".replace("-", "\u2212")  # a typographic minus


def ci_parts(interval: stats.Interval, digits: int = 1) -> tuple[str, str]:
    """``('21.7', '[20.1, 23.4]')`` in %; the bracket is empty when there is no interval."""
    value = pct(interval.estimate, digits)
    if not interval.defined:
        return value, ""
    return value, f"[{pct(interval.low, digits)}, {pct(interval.high, digits)}]"


def ci_text(interval: stats.Interval, digits: int = 1) -> str:
    """``'21.7 [20.1, 23.4]'`` in %, or just the estimate when no interval can be computed."""
    return " ".join(p for p in ci_parts(interval, digits) if p)


def delta_parts(versus: stats.Comparison | None, digits: int = 2) -> tuple[str, str]:
    """The difference to the leader in DER points, and its interval."""
    if versus is None:
        return "", ""
    d = versus.difference
    bracket = f"[{_signed(d.low, digits)}, {_signed(d.high, digits)}]" if d.defined else ""
    return _signed(d.estimate, digits), bracket


def delta_text(versus: stats.Comparison | None, digits: int = 2) -> str:
    """``'+0.42 [−0.31, +1.10]'``: the difference to the leader in points, with its interval."""
    return " ".join(p for p in delta_parts(versus, digits) if p)


def points(versus: stats.Comparison | None, digits: int = 1) -> str:
    """``'+3.1 pts'``: a change in DER points (positive: worse); empty without one."""
    return "" if versus is None else f"{_signed(versus.difference.estimate, digits)} pts"


def significance(change: stats.Comparison | None) -> str:
    """``'worse'`` / ``'better'`` when the paired-bootstrap interval of a change lies above /
    below 0, else ``''``: a change within the noise of a few files is not forgetting."""
    if change is None or not change.difference.defined:
        return ""
    if change.difference.low > 0:
        return "worse"
    return "better" if change.difference.high < 0 else ""


def fixed(value: Any, digits: int = 2) -> str:
    """``0.1667 -> '0.17'``; empty for None."""
    return f"{value:.{digits}f}" if is_number(value) else ""


def number(value: Any) -> str:
    """A loss in the reference write-up's style: 5 significant digits, no trailing zeros."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if math.isnan(value):
        return "nan"
    return f"{value:.5g}"


def reference_value(column: str, value: Any) -> str:
    """A per-epoch cell as the reference write-up writes it: DER columns to 4 decimals, losses
    to 5 digits."""
    if value is None:
        return ""
    if column.startswith(DER_KEY) and is_number(value):
        return f"{value:.4f}"
    return number(value)


def short_column(column: str) -> str:
    """The reference write-up's short names for the DiarizationErrorRate/* columns."""
    prefix = f"{DER_KEY}/"
    return column.removeprefix(prefix) if column.startswith(prefix) else column


def duration(seconds: Any) -> str:
    """``'3 m 12 s'``-style wall time."""
    if not is_number(seconds):
        return ""
    seconds = round(float(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} m"
    if minutes:
        return f"{minutes} m {secs:02d} s"
    return f"{secs} s"


def wall_seconds(run: ResultFile) -> float | None:
    """The run's recorded wall time in seconds, over its stages (None if none)."""
    values = [v for v in run.record.wall_time.values() if is_number(v)]
    return float(sum(values)) if values else None


def epochs_text(run: ResultFile) -> str:
    """Epochs run, as ``'12'``, or ``'8/12'`` when a run stopped before its planned epochs."""
    ran = len(run.record.epochs)
    planned = run.recipe.get("epochs")
    if planned is not None and ran != planned:
        return f"{ran}/{planned}"
    return str(ran)


def best_validation(run: ResultFile) -> tuple[float | None, Any]:
    """The best epoch's dev DER and its epoch number."""
    best = run.record.best_validation or {}
    return best.get(DER_KEY), run.record.best_epoch


def error_text(run: ResultFile) -> str:
    """A failed run's reason in one line: the error's type and first line."""
    error = run.record.error or {}
    kind, message = error.get("type") or "", (error.get("message") or "").strip()
    first = message.splitlines()[0] if message else ""
    return f"{kind}: {first}" if kind and first else kind or first or run.status


def flatten(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """``[('optimizer.lr', '0.0001'), ...]`` for a nested recipe."""
    if isinstance(data, dict):
        rows: list[tuple[str, str]] = []
        for key, value in data.items():
            rows.extend(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return rows or [(prefix, "{}")]
    if isinstance(data, list | tuple):
        return [(prefix, ", ".join(json.dumps(v) for v in data))]
    return [(prefix, data if isinstance(data, str) else json.dumps(data))]
