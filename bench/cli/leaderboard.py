"""``bench leaderboard``: every result rendered into a static site and a markdown page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bench.cli.common import console


def leaderboard(
    results: Annotated[Path, typer.Option(help="Folder of result JSON files.")] = Path("results"),
    out: Annotated[
        Path, typer.Option(help="Output folder (replaced): index.html, runs/, LEADERBOARD.md.")
    ] = Path("site"),
) -> None:
    """Render every result into a static site and a markdown page."""
    from bench.leaderboard import write_leaderboard

    if not results.is_dir():
        console.print(
            f"[yellow]warning:[/] {escape(str(results))}: no such folder; the leaderboard is empty"
        )
    try:
        board = write_leaderboard(results, out)
    except FileExistsError as error:
        console.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(1) from None
    for name, reason in board.skipped:
        console.print(f"[yellow]skipped[/] {escape(name)}: {escape(reason)}", highlight=False)
    ranked = sum(len(g.ranked) for g in board.groups)
    console.print(
        f"{board.total} results: {ranked} ranked on {len(board.groups)} split(s), "
        f"{len(board.failed)} failed, {board.superseded} superseded"
    )
    console.print(f"site: {out / 'index.html'}", markup=False)
    console.print(f"markdown: {out / 'LEADERBOARD.md'}", markup=False)
