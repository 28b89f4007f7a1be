"""SVG charts: geometry in python, SVG drawn by a template macro."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.io import is_number
from bench.leaderboard.rank import Group
from bench.leaderboard.select import COMPONENTS, DER_KEY, REFERENCE_COLUMNS, ResultFile
from bench.leaderboard.text import short_column
from bench.results import FileScores


@dataclass
class Series:
    """One run's line in a chart: polylines, dots, a style and the page it links to."""

    label: str
    segments: list[str]  # "x,y x,y ..." polylines (split where values are missing)
    dots: list[tuple[float, float, str]]  # x, y, tooltip
    style: int = 0
    dashed: bool = False
    href: str | None = None


@dataclass
class Chart:
    """A per-epoch SVG line chart: axes, ticks and one series per run."""

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
        (x, y * scale) for _, values, _ in lines for x, y in values if is_number(y) and is_number(x)
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
            if is_number(y) and is_number(x):
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


def _epoch_values(run: ResultFile, column: str) -> list[tuple[float, float | None]]:
    rows = run.record.epochs
    return [(row.get("epoch", i), row.get(column)) for i, row in enumerate(rows)]


def group_charts(group: Group, href: Callable[[ResultFile], str]) -> list[Chart]:
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


def run_charts(run: ResultFile) -> list[Chart]:
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


# a sequential ramp (light yellow to dark red): lightness falls with DER, readable without hue
HEAT_STOPS = ("#ffffcc", "#fed976", "#fd8d3c", "#e31a1c", "#800026")
HEAT_TOPS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)  # the scale ends at the first above the max
HEAT_MAX_FILES = 200  # more files: those with the widest spread across runs are shown


def heat_colour(fraction: float) -> str:
    """The ramp's colour at ``fraction`` (0..1, clipped), interpolated in sRGB."""
    t = min(max(fraction, 0.0), 1.0) * (len(HEAT_STOPS) - 1)
    i = min(int(t), len(HEAT_STOPS) - 2)
    a, b = (tuple(int(s[k : k + 2], 16) for k in (1, 3, 5)) for s in HEAT_STOPS[i : i + 2])
    mix = [round(x + (y - x) * (t - i)) for x, y in zip(a, b, strict=True)]
    return "#" + "".join(f"{c:02x}" for c in mix)


def _ink(fill: str) -> str:
    """``'dark'`` or ``'light'`` text, whichever reads better on ``fill``."""
    r, g, b = (int(fill[k : k + 2], 16) for k in (1, 3, 5))
    return "dark" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "light"


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


@dataclass
class HeatCell:
    """One cell of the files x runs heat map: a file's DER for a run, and its colour."""

    x: float
    y: float
    fill: str | None  # None: no score for this file in this run
    ink: str  # the text's class: dark or light
    text: str
    title: str


@dataclass
class HeatMap:
    """Per-file test DER, files × ranked runs (leader first)."""

    label: str  # what the cells show, for the aria-label
    rows: list[tuple[float, str, str]]  # y of the row's middle, shown URI, full URI
    columns: list[tuple[float, str, str, str]]  # x of the middle, shown label, full, href
    cells: list[HeatCell]
    top: float  # the DER at the end of the colour scale
    swatches: list[tuple[float, str]]  # legend: x, colour
    ticks: list[tuple[float, str]]  # legend: x, DER %
    files: int  # test files in all
    cell_w: int = 34
    cell_h: int = 18
    left: int = 0
    head: int = 0

    @property
    def width(self) -> int:
        return self.left + self.cell_w * len(self.columns) + 4

    @property
    def height(self) -> int:
        return self.head + self.cell_h * len(self.rows) + 2

    @property
    def capped(self) -> bool:
        return len(self.rows) < self.files


def heat_map(group: Group, href: Callable[[ResultFile], str]) -> HeatMap | None:
    """The per-file primary-metric DER of every ranked run; None without per-file scores."""
    runs = [(r, r.test.files) for r in group.ranked]
    uris = sorted({uri for _, files in runs for uri in files})
    if not uris:
        return None

    def value(files: dict[str, FileScores], uri: str) -> float | None:
        found = files.get(uri)
        return float(found.DER) if found is not None and is_number(found.DER) else None

    if len(uris) > HEAT_MAX_FILES:

        def spread(uri: str) -> float:
            values = [v for _, files in runs if (v := value(files, uri)) is not None]
            return max(values) - min(values) if values else -1.0

        uris = sorted(sorted(uris, key=spread, reverse=True)[:HEAT_MAX_FILES])
    found = [v for _, files in runs for uri in uris if (v := value(files, uri)) is not None]
    top = next((t for t in HEAT_TOPS if t >= max(found, default=0.0)), HEAT_TOPS[-1])
    label = [f"{r.rank}. {r.label}" for r, _ in runs]
    chart = HeatMap(
        label=f"Per-file test {group.metric_label}, {len(uris)} files by {len(runs)} runs",
        rows=[],
        columns=[],
        cells=[],
        top=top,
        swatches=[],
        ticks=[],
        files=len({uri for _, files in runs for uri in files}),
    )
    chart.left = 12 + round(6.6 * max(len(_clip(u, 28)) for u in uris))
    chart.head = 12 + round(6.2 * max(len(_clip(t, 26)) for t in label))
    for j, (r, _) in enumerate(runs):
        x = chart.left + chart.cell_w * (j + 0.5)
        chart.columns.append((x, _clip(label[j], 26), label[j], href(r.run)))
    for i, uri in enumerate(uris):
        y = chart.head + chart.cell_h * i
        chart.rows.append((y + chart.cell_h / 2, _clip(uri, 28), uri))
        for j, (r, files) in enumerate(runs):
            v = value(files, uri)
            x = chart.left + chart.cell_w * j
            if v is None:
                chart.cells.append(HeatCell(x, y, None, "", "", f"{uri} · {r.label}: no score"))
                continue
            fill = heat_colour(v / top)
            text = f"{100 * v:.0f}" if v >= 0.995 else f"{100 * v:.1f}"
            title = f"{uri} · {r.label}: DER {100 * v:.1f} %"
            chart.cells.append(HeatCell(x, y, fill, _ink(fill), text, title))
    steps = 10
    chart.swatches = [(i * 16.0, heat_colour((i + 0.5) / steps)) for i in range(steps)]
    chart.ticks = [(i * 16.0 * steps / 2, f"{100 * top * i / 2:g}") for i in range(3)]
    if max(found, default=0.0) > top:  # DER above 100%: the scale's end stands for them too
        chart.ticks[-1] = (chart.ticks[-1][0], f"≥{chart.ticks[-1][1]}")
    return chart
