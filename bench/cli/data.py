"""The ``bench data`` commands: import corpora into bench's layout, export, and check a split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape

from bench.cli.common import Typer
from bench.corpora import DISJOINT, EXPORTERS, IMPORTERS, SESSION_PATTERN

app = Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(soft_wrap=True)
# the choices, from the registries (typer reads a Literal as a choice)
ImportFormat = Literal[tuple(IMPORTERS)]  # type: ignore[valid-type]
ExportFormat = Literal[tuple(EXPORTERS)]  # type: ignore[valid-type]
Disjoint = Literal[DISJOINT]  # type: ignore[valid-type]


@app.command()
def check(
    data: Annotated[Path, typer.Argument(help="Dataset folder or database.yml.")],
    protocol: Annotated[
        str | None, typer.Option(help="pyannote.database protocol name (with a database.yml).")
    ] = None,
) -> None:
    """Describe each subset (files, hours, speakers, speech and overlap, turns) and report
    errors and warnings with file and line; exit 1 on errors."""
    from bench.data.check import check_command

    raise typer.Exit(check_command(data, protocol, console))


def _fail(error: Exception) -> typer.Exit:
    """Print ``error`` on one line; the exit to raise."""
    console.print(f"[red]error:[/] {escape(' '.join(str(error).splitlines()))}", highlight=False)
    return typer.Exit(1)


@app.command("import")
def import_(
    fmt: Annotated[ImportFormat, typer.Argument(metavar="FORMAT", help="Corpus format.")],
    src: Annotated[Path, typer.Argument(help="The corpus: a folder, or a NeMo manifest file.")],
    out: Annotated[Path, typer.Option(help="Dataset folder to write (bench's layout).")],
    split: Annotated[
        str | None,
        typer.Option(
            help="train/dev/test shares, e.g. 80/10/10, by a seeded hash of each URI (or group). "
            "Default: the source's own split, else 80/10/10."
        ),
    ] = None,
    split_seed: Annotated[int, typer.Option(help="Seed of the hash split.")] = 0,
    disjoint: Annotated[
        Disjoint | None,
        typer.Option(
            help="Keep each speaker (recordings linked by shared speakers) or each session "
            "(URIs sharing --session-pattern's match) within one subset.",
        ),
    ] = None,
    session_pattern: Annotated[
        str, typer.Option(help="Regex whose first match in a URI (group 1 if any) is its session.")
    ] = SESSION_PATTERN,
    channel: Annotated[
        int | None,
        typer.Option(min=0, help="Audio channel to keep (textgrid: 0 by default; others: all)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out.")] = False,
) -> None:
    """Convert a corpus into bench's dataset layout, split and validated; provenance goes to
    OUT/bench-import.json. Nothing is left in --out when it fails."""
    from bench.corpora.convert import ImportOptions, import_corpus
    from bench.data import DataError

    options = ImportOptions(split, split_seed, disjoint, session_pattern, channel, force)
    try:
        written = import_corpus(fmt, src, out, options)
    except (DataError, OSError) as error:  # bad input, or a disk that refuses the output
        raise _fail(error) from None
    parts = [
        f"{subset} {int(row['files'])} files, {row['hours']} h, {int(row['speakers'])} speakers"
        for subset, row in written.summary.items()
    ]
    console.print(f"wrote {written.out}: {'; '.join(parts)}; fingerprint {written.fingerprint}")


@app.command("export")
def export(
    fmt: Annotated[ExportFormat, typer.Argument(metavar="FORMAT", help="Format to write.")],
    data: Annotated[Path, typer.Argument(help="bench dataset folder.")],
    out: Annotated[Path, typer.Option(help="Folder to write.")],
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out.")] = False,
) -> None:
    """Write a bench dataset in another format (nemo: one manifest per subset, for MSDD)."""
    from bench.corpora.convert import export_corpus
    from bench.data import DataError

    try:
        paths = export_corpus(fmt, data, out, force)
    except (DataError, OSError) as error:  # bad input, or a disk that refuses the output
        raise _fail(error) from None
    console.print("wrote " + ", ".join(map(str, paths)))
