"""Rendering the board into the static site and LEADERBOARD.md, replacing the output at once."""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from bench import __version__
from bench.io import staging_dir
from bench.leaderboard.card import card_html, export_refusal, model_card
from bench.leaderboard.charts import group_charts, heat_map, run_charts
from bench.leaderboard.metrics import detailed, file_rows
from bench.leaderboard.outputs import copy_outputs
from bench.leaderboard.rank import Board, build_board
from bench.leaderboard.select import COMPONENTS, DER_KEY, REFERENCE_COLUMNS, ResultFile, load_runs
from bench.leaderboard.text import (
    best_validation,
    ci_parts,
    ci_text,
    delta_parts,
    delta_text,
    duration,
    epochs_text,
    error_text,
    fixed,
    flatten,
    number,
    pct,
    points,
    reference_value,
    short_column,
    significance,
    wall_seconds,
)
from bench.recipe.text import (
    augmentation_text,
    loss_text,
    optimizer_text,
    rate,
    scheduler_text,
)
from bench.results import carryover

MARKER = ".bench-leaderboard"  # written into the output; only such folders are replaced
TEMPLATES = Path(__file__).parent.parent / "templates"


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
    return MarkdownSafe(md_escape(text))  # escaped once: not again by the template


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
        reference_value=reference_value,
        short_column=short_column,
        duration=duration,
        md_link=md_link,
        fixed=fixed,
        points=points,
        significance=significance,
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
        file_rows=file_rows,
        detailed=detailed,
        reference_columns=REFERENCE_COLUMNS,
        version=__version__,
        components=COMPONENTS,
        der_key=DER_KEY,
    )
    return env


def epoch_excerpt(rows: Sequence[dict[str, Any]], head: int = 3, tail: int = 5) -> list[Any]:
    """The reference write-up's excerpt: the first ``head`` rows, ``None`` (a ``...`` row),
    the last ``tail``."""
    rows = list(rows)
    if len(rows) <= head + tail:
        return rows
    return [*rows[:head], None, *rows[-tail:]]


def columns_of(run: ResultFile) -> list[str]:
    """The per-epoch columns a run recorded (the reference write-up's by default)."""
    return list(run.record.columns or REFERENCE_COLUMNS)


def _page(run: ResultFile) -> str:
    return f"runs/{run.slug}.html"


def render_site(board: Board, out: Path) -> None:
    """``index.html``, ``runs/<slug>.html``, ``runs/<slug>.json`` and the run's hypotheses,
    ``runs/<slug>/rttm/...``, into ``out``."""
    env = environment()
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    charts = {g.anchor: group_charts(g, _page) for g in board.groups}
    heat = {g.anchor: heat_map(g, _page) for g in board.groups}
    index = env.get_template("index.html").render(board=board, charts=charts, heat=heat, root="")
    (out / "index.html").write_text(index, encoding="utf-8")
    run_page = env.get_template("run.html")
    entries = [(r.run, r, g) for g in board.groups for r in g.ranked]
    entries += [(run, None, g) for g in board.groups for run in g.unscored]
    entries += [(run, None, None) for run in board.failed]
    for run, ranked, group in entries:
        card = None if export_refusal(run.record) else model_card(run.record)
        if card is not None:
            (runs_dir / f"{run.slug}.card.md").write_text(card, encoding="utf-8")
        html = run_page.render(
            card=card_html(card) if card is not None else None,
            carried=carryover(run.record.test, (run.record.pipeline or {}).get("tuning")),
            run=run,
            ranked=ranked,
            group=group,
            leader=group.ranked[0] if group and group.ranked else None,
            charts=run_charts(run),
            columns=columns_of(run),
            hypotheses=copy_outputs(run, runs_dir),
            root="../",
        )
        (runs_dir / f"{run.slug}.html").write_text(html, encoding="utf-8")
        shutil.copyfile(run.source, runs_dir / f"{run.slug}.json")


def render_markdown(board: Board) -> str:
    """``LEADERBOARD.md``: the ranking, then each run's per-epoch excerpt in the style of the
    reference write-up."""
    env = environment(markdown=True)
    return env.get_template("LEADERBOARD.md.j2").render(
        board=board, excerpt=epoch_excerpt, columns_of=columns_of
    )


def _check_out(out: Path) -> None:
    """Only an empty folder or an earlier leaderboard is replaced."""
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"{out}: exists and is not a folder")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise FileExistsError(
                f"{out}: not empty and not an earlier `bench leaderboard` output; "
                "refusing to replace it"
            )


def write_leaderboard(results: Path, out: Path) -> Board:
    """Render every result in ``results`` into ``out`` (index.html, runs/, LEADERBOARD.md)."""
    runs, skipped = load_runs(results)
    board = build_board(runs, skipped)
    out = out.resolve()
    _check_out(out)
    with staging_dir(out) as staging:
        render_site(board, staging)
        (staging / "LEADERBOARD.md").write_text(render_markdown(board), encoding="utf-8")
        (staging / MARKER).write_text("written by `bench leaderboard`; replaced on every run\n")
        (staging / ".nojekyll").write_text("")
    return board
