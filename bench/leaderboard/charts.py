"""SVG charts: geometry in python, SVG drawn by a template macro."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.leaderboard.rank import Group, _finite
from bench.leaderboard.select import COMPONENTS, DER_KEY, REFERENCE_COLUMNS, Run
from bench.leaderboard.text import short_column


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
    loss_columns = [c for c in REFERENCE_COLUMNS if c.startswith("loss/")]
    loss_lines = [(c, _epoch_values(run, c), None) for c in loss_columns]
    loss_styles = [0, 1, 2, 8, 9, 10]  # val solid, train dashed; same colour per component
    charts = [
        line_chart("Validation DER", "%", der_lines, 100.0),
        line_chart("Losses", "loss", loss_lines, 1.0, loss_styles),
    ]
    return [c for c in charts if c is not None]
