"""Options and the console shared by the ``bench`` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(soft_wrap=True)

# options shared by the commands that read a split and write results
DataOption = Annotated[
    Path | None,
    typer.Option(help="Dataset folder (train/dev/test lists) or database.yml; default: demo."),
]
ProtocolOption = Annotated[
    str | None, typer.Option(help="pyannote.database protocol name (with a database.yml).")
]
ResultsOption = Annotated[Path, typer.Option(help="Folder for result JSON files.")]
CacheOption = Annotated[
    Path | None, typer.Option(help="Cache folder (demo data, decoded audio); $BENCH_CACHE.")
]
