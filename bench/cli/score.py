"""``bench score``: another system's RTTMs scored on the split's test set and recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bench.cli.common import CacheOption, DataOption, ProtocolOption, ResultsOption, console


def score(
    hyp: Annotated[
        Path, typer.Option(help="The system's RTTM: one file (any URIs) or a folder of .rttm.")
    ],
    name: Annotated[str, typer.Option(help="The system's name on the leaderboard.")],
    data: DataOption = None,
    protocol: ProtocolOption = None,
    results: ResultsOption = Path("results"),
    about: Annotated[str | None, typer.Option(help="What the system is: a text or a URL.")] = None,
    missing_as_empty: Annotated[
        bool,
        typer.Option("--missing-as-empty", help="Score test files without hypothesis as empty."),
    ] = False,
    cache: CacheOption = None,
) -> None:
    """Score another system's diarization on the split's test set, with the metrics and collars
    of a bench run, and record it (kind "external") for the leaderboard."""
    import re

    from bench.data import DataError
    from bench.runner import Reporter, RunOptions, check_writable, resolve_split

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
        console.print(f"[red]error:[/] --name {escape(name)!r}: use letters, digits and _.+-")
        raise typer.Exit(2)
    try:
        check_writable(results)
        split, _ = resolve_split(RunOptions(data=data, protocol=protocol, cache_dir=cache))
        from bench.evaluation.external import score_system, write_outputs
        from bench.results import write_record

        record, texts = score_system(split, hyp, name, about, missing_as_empty)
    except (DataError, ValueError) as error:
        console.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(2) from None
    write_outputs(results, record, texts)
    path = write_record(results, record)
    Reporter(console).scores(f"{name} on {split.name} test", record.test.pipeline)
    if record.outputs["missing_as_empty"]:
        console.print(
            f"[yellow]scored as empty:[/] {len(record.outputs['missing_as_empty'])} file(s)"
        )
    console.print(f"result: {path}", markup=False, highlight=False)
