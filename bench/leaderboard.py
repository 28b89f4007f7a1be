"""The leaderboard: every recorded result rendered into a static site and a markdown page.

Results are grouped by dataset fingerprint (only runs on the same split are ranked together),
deduplicated (newest ``finished`` wins for the same recipe hash, split, seed and epochs) and ranked
by the primary test metric (:func:`primary_metric`). Each ranked run gets a 95% bootstrap interval
over test files, and a paired bootstrap against the leader says whether it is tied with it
(:mod:`bench.stats`). Failed and diverged runs are listed with their reason, never ranked.

Rendering uses jinja2 with autoescape on; the output is written into a temporary folder that then
replaces ``out`` in one rename, so a failed render never leaves half a site.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import statistics
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from bench import __version__, stats
from bench.results import read_result

DER_KEY = "DiarizationErrorRate"
# the seed's per-epoch columns (bench.training.EPOCH_COLUMNS; not imported: it pulls in torch)
SEED_COLUMNS = (
    "loss/val/segmentation",
    "loss/val/vad",
    "loss/val",
    DER_KEY,
    f"{DER_KEY}/Confusion",
    f"{DER_KEY}/FalseAlarm",
    f"{DER_KEY}/Miss",
    f"{DER_KEY}/Threshold",
    "loss/train/segmentation",
    "loss/train/vad",
    "loss/train",
)
METRIC_LABELS = {"pipeline": "full-pipeline DER", "chunk": "chunk-level DER"}
COMPONENTS = ("Confusion", "FalseAlarm", "Miss")
MARKER = ".bench-leaderboard"  # written into the output; only such folders are replaced
TEMPLATES = Path(__file__).parent / "templates"


# ---------------------------------------------------------------------------------------------
# Loading and selecting results


@dataclass
class Run:
    """One result file."""

    data: dict[str, Any]
    source: Path
    slug: str = ""

    @property
    def status(self) -> str:
        return str(self.data.get("status") or "unknown")

    @property
    def recipe(self) -> dict[str, Any]:
        return self.data.get("recipe") or {}

    @property
    def dataset(self) -> dict[str, Any]:
        return self.data.get("dataset") or {}

    @property
    def fingerprint(self) -> str | None:
        return self.dataset.get("fingerprint")

    @property
    def name(self) -> str:
        name = self.recipe.get("name")
        if name:
            return str(name)
        recipe_file = self.data.get("recipe_file")
        return Path(recipe_file).stem if recipe_file else self.source.stem

    @property
    def seed(self) -> Any:
        return self.data.get("seed", self.recipe.get("seed"))

    @property
    def finished(self) -> str:
        return str(self.data.get("finished") or self.data.get("started") or "")

    @property
    def key(self) -> tuple[Any, ...]:
        """Runs with the same key measure the same thing: only the newest is kept."""
        recipe = self.data.get("recipe_hash") or self.data.get("recipe_file") or self.source.stem
        return (recipe, self.fingerprint, self.seed, self.recipe.get("epochs"))


def load_runs(folder: Path) -> tuple[list[Run], list[tuple[str, str]]]:
    """Every ``*.json`` result directly in ``folder``, and the files that could not be read."""
    runs, skipped = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            runs.append(Run(read_result(path), path))
        except (OSError, ValueError, AttributeError) as error:  # not JSON, or not a result
            skipped.append((path.name, str(error)))
    return runs, skipped


def _instant(text: str) -> float:
    """Seconds since the epoch of an ISO time (naive times are UTC); -inf when unreadable."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return -math.inf
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def newest(runs: Iterable[Run]) -> tuple[list[Run], int]:
    """The newest run (by ``finished``) of each :attr:`Run.key`, and how many were superseded."""
    kept: dict[tuple[Any, ...], Run] = {}
    count = 0
    for run in runs:
        count += 1
        current = kept.get(run.key)
        if current is None or _instant(run.finished) > _instant(current.finished):
            kept[run.key] = run
    return list(kept.values()), count - len(kept)


def assign_slugs(runs: Sequence[Run]) -> None:
    """A unique, file-name-safe page name per run (its result file's stem)."""
    seen: set[str] = set()
    for run in runs:
        base = re.sub(r"[^A-Za-z0-9_.+-]", "_", run.source.stem) or "run"
        slug, n = base, 1
        while slug.lower() in seen:
            n += 1
            slug = f"{base}-{n}"
        seen.add(slug.lower())
        run.slug = slug


# ---------------------------------------------------------------------------------------------
# The primary metric, ranking and statistics


def _test(run: Run, kind: str) -> dict[str, Any] | None:
    test = (run.data.get("test") or {}).get(kind)
    return test if isinstance(test, dict) and test.get("DER") is not None else None


def primary_metric(runs: Sequence[Run]) -> str:
    """The test metric a group of runs is ranked by: ``test.pipeline`` (full-pipeline DER) when
    every run has it, else ``test.chunk`` (chunk-level DER). Mixing the two would rank unlike
    numbers against each other."""
    if runs and all(_test(run, "pipeline") for run in runs):
        return "pipeline"
    return "chunk"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


@dataclass
class Ranked:
    """A ranked run with its test statistics."""

    run: Run
    rank: int
    test: dict[str, Any]
    interval: stats.Interval
    versus: stats.Comparison | None  # paired against the leader (None for the leader)
    label: str = ""

    @property
    def standing(self) -> str:
        if self.versus is None:
            return "leader"
        return "tied" if self.versus.tied else "worse"


@dataclass(frozen=True)
class AcrossSeeds:
    """One recipe run with several seeds on a split: the spread of its test DER."""

    name: str
    epochs: Any
    seeds: list[Any]
    mean: float
    sd: float
    low: float
    high: float


def across_seeds(ranked: Sequence[Ranked]) -> list[AcrossSeeds]:
    """Mean and standard deviation of test DER for every recipe with more than one seed."""
    runs: dict[tuple[str, Any], list[Ranked]] = {}
    for r in ranked:
        runs.setdefault((r.run.name, r.run.recipe.get("epochs")), []).append(r)
    summaries = []
    for (name, epochs), group in runs.items():
        values = [float(r.test["DER"]) for r in group if _finite(r.test["DER"])]
        if len({r.run.seed for r in group}) < 2 or len(values) < 2:
            continue
        summaries.append(
            AcrossSeeds(
                name,
                epochs,
                sorted(r.run.seed for r in group),
                statistics.mean(values),
                statistics.stdev(values),
                min(values),
                max(values),
            )
        )
    return sorted(summaries, key=lambda s: (s.mean, s.name))


@dataclass
class Group:
    """The ranked runs on one split."""

    fingerprint: str | None
    dataset: dict[str, Any]
    metric: str
    ranked: list[Ranked] = field(default_factory=list)
    unscored: list[Run] = field(default_factory=list)  # ok runs without the primary metric

    @property
    def seeds(self) -> list[AcrossSeeds]:
        return across_seeds(self.ranked)

    @property
    def metric_label(self) -> str:
        return METRIC_LABELS.get(self.metric, f"{self.metric} DER")

    @property
    def anchor(self) -> str:
        return f"split-{self.fingerprint or 'unknown'}"


def _files(test: dict[str, Any]) -> dict[str, tuple[float, float]]:
    try:
        return stats.file_components(test.get("files") or {})
    except (KeyError, TypeError):
        return {}


def _interval(test: dict[str, Any]) -> stats.Interval:
    files = _files(test)
    if not files:
        return stats.Interval(float(test["DER"]), math.nan, math.nan, 0)
    found = stats.interval_of_files(files)
    # the recorded DER is the reference point; the bootstrap only supplies the interval
    return stats.Interval(float(test["DER"]), found.low, found.high, found.n_files)


def _versus(leader: dict[str, Any], other: dict[str, Any]) -> stats.Comparison:
    a, b = _files(leader), _files(other)
    if not set(a) & set(b):
        nan = math.nan
        return stats.Comparison(stats.Interval(other["DER"] - leader["DER"], nan, nan, 0))
    return stats.compare_files(a, b)


def rank_group(runs: Sequence[Run]) -> Group:
    """Rank the ``ok`` runs of one split by the primary metric, lowest DER first."""
    metric = primary_metric(runs)
    scored = [(run, _test(run, metric)) for run in runs]
    unscored = [run for run, test in scored if test is None]
    valid = [(run, test) for run, test in scored if test is not None]
    valid.sort(
        key=lambda item: (
            not _finite(item[1]["DER"]),
            item[1]["DER"] if _finite(item[1]["DER"]) else 0.0,
            item[0].name,
            item[0].slug,
        )
    )
    first = runs[0].dataset if runs else {}
    group = Group(runs[0].fingerprint if runs else None, first, metric, unscored=unscored)
    for i, (run, test) in enumerate(valid):
        versus = None if i == 0 else _versus(valid[0][1], test)
        group.ranked.append(Ranked(run, i + 1, test, _interval(test), versus))
    _label(group.ranked)
    return group


def _label(ranked: Sequence[Ranked]) -> None:
    """Recipe names, with seed and epochs added where a name appears more than once."""
    names = [r.run.name for r in ranked]
    for r in ranked:
        if names.count(r.run.name) > 1:
            r.label = f"{r.run.name} (s{r.run.seed}, e{r.run.recipe.get('epochs')})"
        else:
            r.label = r.run.name


@dataclass
class Board:
    """Everything the pages show."""

    groups: list[Group]
    failed: list[Run]
    skipped: list[tuple[str, str]]
    superseded: int
    total: int

    @property
    def newest(self) -> str:
        runs = [r.run for g in self.groups for r in g.ranked] + self.failed
        return max((run.finished for run in runs), default="")


def build_board(runs: Sequence[Run], skipped: Sequence[tuple[str, str]] = ()) -> Board:
    """Select, group and rank ``runs``."""
    kept, superseded = newest(runs)
    kept.sort(key=lambda run: (run.name, run.source.name))
    assign_slugs(kept)
    ok = [run for run in kept if run.status == "ok"]
    failed = sorted(
        (run for run in kept if run.status != "ok"),
        key=lambda r: _instant(r.finished),
        reverse=True,
    )
    by_split: dict[str | None, list[Run]] = {}
    for run in ok:
        by_split.setdefault(run.fingerprint, []).append(run)
    groups = [rank_group(group) for group in by_split.values()]
    groups.sort(key=lambda g: (-len(g.ranked), -_newest_instant(g), g.fingerprint or ""))
    return Board(groups, failed, list(skipped), superseded, len(runs))


def _newest_instant(group: Group) -> float:
    return max((_instant(r.run.finished) for r in group.ranked), default=-math.inf)


# ---------------------------------------------------------------------------------------------
# Formatting


def pct(value: Any, digits: int = 1) -> str:
    """A DER fraction as a percentage (``0.2171 -> '21.7'``); empty for None, 'nan' for NaN."""
    if value is None:
        return ""
    if not _finite(value):
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


def number(value: Any) -> str:
    """A loss in the seed's style: 5 significant digits, no trailing zeros."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if math.isnan(value):
        return "nan"
    return f"{value:.5g}"


def seed_value(column: str, value: Any) -> str:
    """A per-epoch cell as the seed writes it: DER columns to 4 decimals, losses to 5 digits."""
    if value is None:
        return ""
    if column.startswith(DER_KEY) and _finite(value):
        return f"{value:.4f}"
    return number(value)


def short_column(column: str) -> str:
    """The seed's short names for the DiarizationErrorRate/* columns."""
    prefix = f"{DER_KEY}/"
    return column.removeprefix(prefix) if column.startswith(prefix) else column


def duration(seconds: Any) -> str:
    """``'3 m 12 s'``-style wall time."""
    if not _finite(seconds):
        return ""
    seconds = round(float(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} m"
    if minutes:
        return f"{minutes} m {secs:02d} s"
    return f"{secs} s"


def wall_seconds(run: Run) -> float | None:
    wall = run.data.get("wall_time") or {}
    values = [v for v in wall.values() if _finite(v)]
    return float(sum(values)) if values else None


def rate(value: Any) -> str:
    """A learning rate as the seed writes it: ``1e-4``, ``3e-3``, ``0.05``."""
    if not _finite(value):
        return str(value)
    if value == 0 or 1e-2 <= abs(value) < 1e3:
        return f"{value:g}"
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def optimizer_text(recipe: dict[str, Any]) -> str:
    """``'nadam 1e-4'``, ``'adamw 1e-4, wd 0.01'``, ``'sgd 0.05, m 0.9'``."""
    opt = recipe.get("optimizer") or {}
    if not opt:
        return ""
    text = f"{opt.get('name')} {rate(opt.get('lr'))}"
    if opt.get("weight_decay"):
        text += f", wd {rate(opt['weight_decay'])}"
    if opt.get("momentum"):
        text += f", m {opt['momentum']:g}"
    return text


def scheduler_text(recipe: dict[str, Any]) -> str:
    """``'cosine (T 50)'``, ``'step (×0.1 / 10)'``, ``'plateau (×0.5, p 2)'`` or ``'none'``."""
    sched = recipe.get("scheduler")
    if not sched:
        return "none" if recipe else ""
    kind = str(sched.get("kind", "?"))
    if kind == "cosine":
        parts = [f"T {sched['t_max']}"] if sched.get("t_max") is not None else []
        if sched.get("warmup"):
            parts.append(f"warm-up {sched['warmup']}")
    elif kind == "step":
        parts = [f"×{sched.get('gamma', 0.1):g} / {sched.get('step_size')}"]
    elif kind == "plateau":
        parts = [f"×{sched.get('factor', 0.5):g}, p {sched.get('patience')}"]
    else:
        parts = []
    if sched.get("interval") == "step":
        parts.append("per step")
    return f"{kind} ({', '.join(parts)})" if parts else kind


def loss_text(recipe: dict[str, Any]) -> str:
    """``'bce+tversky (α 0.3, β 0.7) + vad'``."""
    loss = recipe.get("loss") or {}
    if not loss:
        return ""
    kind = str(loss.get("kind"))
    parts = []
    if kind.endswith("+tversky"):
        parts.append(f"α {loss.get('alpha'):g}, β {loss.get('beta'):g}")
    if kind.endswith(("+dice", "+tversky")) and loss.get("weight", 1.0) != 1.0:
        parts.append(f"×{loss['weight']:g}")
    if kind == "focal" and loss.get("gamma") is not None:
        parts.append(f"γ {loss['gamma']:g}")
    text = f"{kind} ({', '.join(parts)})" if parts else kind
    vad = recipe.get("vad_loss")
    if vad:
        weight = vad.get("weight", 1.0) if isinstance(vad, dict) else 1.0
        text += " + vad" + (f" ×{weight:g}" if weight != 1.0 else "")
    return text


AUGMENTATIONS = {"impulse_response": "IR", "noise": "noise", "gain": "gain"}


def augmentation_text(recipe: dict[str, Any]) -> str:
    """``'none'``, or the augmentations applied (``'IR+noise'``)."""
    if not recipe:
        return ""
    aug = recipe.get("augmentation")
    if not aug:
        return "none"
    if isinstance(aug, dict):
        return "+".join(AUGMENTATIONS.get(k, k) for k, v in aug.items() if v) or "none"
    return str(aug)


def epochs_text(run: Run) -> str:
    ran = len(run.data.get("epochs") or [])
    planned = run.recipe.get("epochs")
    if planned is not None and ran != planned:
        return f"{ran}/{planned}"
    return str(ran)


def best_validation(run: Run) -> tuple[float | None, Any]:
    best = run.data.get("best_validation") or {}
    return best.get(DER_KEY), run.data.get("best_epoch")


def error_text(run: Run) -> str:
    error = run.data.get("error") or {}
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


# ---------------------------------------------------------------------------------------------
# Charts: geometry in python, SVG drawn by a template macro


@dataclass
class Series:
    label: str
    segments: list[str]  # "x,y x,y ..." polylines (split where values are missing)
    dots: list[tuple[float, float, str]]  # x, y, tooltip
    style: int = 0
    dashed: bool = False
    href: str | None = None


@dataclass
class Chart:
    title: str
    y_label: str
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    series: list[Series]
    width: int = 560
    height: int = 260
    left: int = 52
    right: int = 12
    top: int = 12
    bottom: int = 40

    @property
    def x0(self) -> int:
        return self.left

    @property
    def x1(self) -> int:
        return self.width - self.right

    @property
    def y0(self) -> int:
        return self.height - self.bottom

    @property
    def y1(self) -> int:
        return self.top


def nice_ticks(low: float, high: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k steps) from below ``low`` to above ``high``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        pad = 1.0 if integer else abs(low) * 0.05 or 1.0
        low, high = (low, low + pad) if integer and low == 0 else (low - pad, high + pad)
    raw = (high - low) / max(count - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    if integer:
        step = max(1.0, float(math.ceil(step)))
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(i * step, 10) for i in range(first, last + 1)]


def _tick_label(value: float, step: float) -> str:
    """A tick value with as many decimals as the step needs."""
    decimals = 0
    while decimals < 6 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6:
        decimals += 1
    return f"{value:.{decimals}f}"


def line_chart(
    title: str,
    y_label: str,
    lines: Sequence[tuple[str, Sequence[tuple[float, float | None]], str | None]],
    scale: float = 1.0,
    styles: Sequence[int] | None = None,
) -> Chart | None:
    """A chart of ``(label, [(epoch, value)], href)`` lines; None when there is nothing to draw."""
    points = [
        (x, y * scale) for _, values, _ in lines for x, y in values if _finite(y) and _finite(x)
    ]
    if not points:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if min(xs) == max(xs):  # one epoch: centre it
        x_ticks = [min(xs)]
        x_lo, x_hi = min(xs) - 0.5, min(xs) + 0.5
    else:
        x_ticks = nice_ticks(min(xs), max(xs), 6, integer=True)
        x_lo, x_hi = x_ticks[0], x_ticks[-1]
    y_ticks = nice_ticks(min(ys), max(ys), 5)
    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    chart = Chart(title, y_label, [], [], [])

    def px(x: float) -> float:
        return round(chart.x0 + (x - x_lo) / ((x_hi - x_lo) or 1.0) * (chart.x1 - chart.x0), 1)

    def py(y: float) -> float:
        return round(chart.y0 - (y - y_lo) / ((y_hi - y_lo) or 1.0) * (chart.y0 - chart.y1), 1)

    chart.x_ticks = [(px(t), f"{t:g}") for t in x_ticks]
    step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
    chart.y_ticks = [(py(t), _tick_label(t, step)) for t in y_ticks]
    for i, (label, values, href) in enumerate(lines):
        style = styles[i] if styles is not None else i
        segments, current, dots = [], [], []
        for x, y in values:
            if _finite(y) and _finite(x):
                point = (px(x), py(y * scale))
                current.append(f"{point[0]},{point[1]}")
                dots.append((*point, f"{label}: epoch {x:g}, {y * scale:.4g}"))
            elif current:
                segments.append(" ".join(current))
                current = []
        if current:
            segments.append(" ".join(current))
        chart.series.append(Series(label, segments, dots, style % 8, style >= 8 or style < 0, href))
    return chart


def _epoch_values(run: Run, column: str) -> list[tuple[float, float | None]]:
    rows = run.data.get("epochs") or []
    return [(row.get("epoch", i), row.get(column)) for i, row in enumerate(rows)]


def group_charts(group: Group, href: Callable[[Run], str]) -> list[Chart]:
    """Validation DER, validation loss and training loss per epoch, every ranked run."""
    specs = (
        ("Validation DER", "DER (%)", DER_KEY, 100.0),
        ("Validation loss", "loss/val", "loss/val", 1.0),
        ("Training loss", "loss/train", "loss/train", 1.0),
    )
    charts = []
    for title, y_label, column, scale in specs:
        lines = [(r.label, _epoch_values(r.run, column), href(r.run)) for r in group.ranked]
        chart = line_chart(title, y_label, lines, scale)
        if chart is not None:
            charts.append(chart)
    return charts


def run_charts(run: Run) -> list[Chart]:
    """Validation DER with its components, and the losses, per epoch, for one run."""
    der_lines = [
        (short_column(c), _epoch_values(run, c), None)
        for c in (DER_KEY, *(f"{DER_KEY}/{n}" for n in COMPONENTS))
    ]
    loss_columns = [c for c in SEED_COLUMNS if c.startswith("loss/")]
    loss_lines = [(c, _epoch_values(run, c), None) for c in loss_columns]
    loss_styles = [0, 1, 2, 8, 9, 10]  # val solid, train dashed; same colour per component
    charts = [
        line_chart("Validation DER", "%", der_lines, 100.0),
        line_chart("Losses", "loss", loss_lines, 1.0, loss_styles),
    ]
    return [c for c in charts if c is not None]


# ---------------------------------------------------------------------------------------------
# Rendering


def md_escape(value: Any) -> str:
    """Escape result text for a markdown table cell (and for HTML, which markdown allows)."""
    if value is None:
        return ""
    if isinstance(value, MarkdownSafe):
        return str(value)
    text = re.sub(r"[ \t]*[\r\n]+[ \t]*", " ", str(value))
    for char, repl in (("\\", "\\\\"), ("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        text = text.replace(char, repl)
    for char in "|`":
        text = text.replace(char, "\\" + char)
    return text


class MarkdownSafe(str):
    """Markdown built by the template itself (a link), not escaped again."""


def http_url(url: Any) -> bool:
    """Only plain http(s) URLs from results become links."""
    return isinstance(url, str) and re.match(r"^https?://[^\s()<>\"']+$", url) is not None


def md_link(text: Any, url: str | None) -> str:
    """``[text](url)`` for http(s) URLs only, text escaped; plain text otherwise."""
    if http_url(url):
        return MarkdownSafe(f"[{md_escape(text)}]({url})")
    return md_escape(text)


def environment(markdown: bool = False) -> jinja2.Environment:
    """The jinja2 environment: HTML autoescaped; markdown escaped by :func:`md_escape`."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=not markdown,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=md_escape if markdown else None,
    )
    env.filters.update(
        pct=pct,
        ci=ci_text,
        ci_parts=ci_parts,
        delta=delta_text,
        delta_parts=delta_parts,
        number=number,
        rate=rate,
        seed_value=seed_value,
        short_column=short_column,
        duration=duration,
        md_link=md_link,
    )
    env.tests["http_url"] = http_url
    env.globals.update(
        optimizer_text=optimizer_text,
        scheduler_text=scheduler_text,
        loss_text=loss_text,
        augmentation_text=augmentation_text,
        epochs_text=epochs_text,
        best_validation=best_validation,
        wall_seconds=wall_seconds,
        error_text=error_text,
        flatten=flatten,
        seed_columns=SEED_COLUMNS,
        version=__version__,
        components=COMPONENTS,
        der_key=DER_KEY,
    )
    return env


def epoch_excerpt(rows: Sequence[dict[str, Any]], head: int = 3, tail: int = 5) -> list[Any]:
    """The seed's excerpt: the first ``head`` rows, ``None`` (a ``...`` row), the last ``tail``."""
    rows = list(rows)
    if len(rows) <= head + tail:
        return rows
    return [*rows[:head], None, *rows[-tail:]]


def columns_of(run: Run) -> list[str]:
    return list(run.data.get("columns") or SEED_COLUMNS)


def render_site(board: Board, out: Path) -> None:
    """``index.html``, ``runs/<slug>.html`` and ``runs/<slug>.json`` into ``out``."""
    env = environment()
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    charts = {g.anchor: group_charts(g, lambda run: f"runs/{run.slug}.html") for g in board.groups}
    index = env.get_template("index.html").render(board=board, charts=charts, root="")
    (out / "index.html").write_text(index, encoding="utf-8")
    run_page = env.get_template("run.html")
    entries = [(r.run, r, g) for g in board.groups for r in g.ranked]
    entries += [(run, None, g) for g in board.groups for run in g.unscored]
    entries += [(run, None, None) for run in board.failed]
    for run, ranked, group in entries:
        html = run_page.render(
            run=run,
            ranked=ranked,
            group=group,
            leader=group.ranked[0] if group and group.ranked else None,
            charts=run_charts(run),
            columns=columns_of(run),
            root="../",
        )
        (runs_dir / f"{run.slug}.html").write_text(html, encoding="utf-8")
        shutil.copyfile(run.source, runs_dir / f"{run.slug}.json")


def render_markdown(board: Board) -> str:
    """``LEADERBOARD.md``: the ranking, then each run's per-epoch excerpt in the seed's style."""
    env = environment(markdown=True)
    return env.get_template("LEADERBOARD.md.j2").render(
        board=board, excerpt=epoch_excerpt, columns_of=columns_of
    )


def _replace_dir(staging: Path, out: Path) -> None:
    """Swap ``staging`` in for ``out``; only an empty folder or an earlier leaderboard is
    replaced."""
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"{out}: exists and is not a folder")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise FileExistsError(
                f"{out}: not empty and not an earlier `bench leaderboard` output; "
                "refusing to replace it"
            )
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / out.name)
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out)


def write_leaderboard(results: Path, out: Path) -> Board:
    """Render every result in ``results`` into ``out`` (index.html, runs/, LEADERBOARD.md)."""
    runs, skipped = load_runs(results)
    board = build_board(runs, skipped)
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        render_site(board, staging)
        (staging / "LEADERBOARD.md").write_text(render_markdown(board), encoding="utf-8")
        (staging / MARKER).write_text("written by `bench leaderboard`; replaced on every run\n")
        (staging / ".nojekyll").write_text("")
        os.chmod(staging, 0o755)
        _replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return board
