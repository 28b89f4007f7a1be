"""The ``bench data`` commands: import corpora into bench's layout, export, and check a split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(soft_wrap=True)


@app.command()
def check(
    data: Annotated[Path, typer.Argument(help="Dataset folder or database.yml.")],
    protocol: Annotated[
        str | None, typer.Option(help="pyannote.database protocol name (with a database.yml).")
    ] = None,
) -> None:
    """Describe each subset (files, hours, speakers, speech and overlap, turns) and report
    errors and warnings with file and line; exit 1 on errors."""
    from bench.datacheck import check_command

    raise typer.Exit(check_command(data, protocol, console))
