"""``bench diarize``: a pipeline (exported folder, result, or hub id) applied to audio files,
one RTTM per file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bench.cli.common import console


def diarize(
    pipeline: Annotated[
        str, typer.Argument(help="An exported pipeline folder, a result file, or a hub id.")
    ],
    audio: Annotated[list[Path], typer.Argument(help="Audio files (wav, flac, ogg...).")],
    out: Annotated[Path, typer.Option(help="Folder for the RTTM files (one per audio file).")],
    num_speakers: Annotated[
        int | None, typer.Option(min=1, help="The number of speakers, when known.")
    ] = None,
    min_speakers: Annotated[int | None, typer.Option(min=1, help="At least this many.")] = None,
    max_speakers: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
    revision: Annotated[str | None, typer.Option(help="Hub id: the revision.")] = None,
    trust: Annotated[
        bool,
        typer.Option(
            "--trust", help="Load a pipeline whose config.yaml names code outside pyannote/bench."
        ),
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Diarize audio files with a pipeline and write one RTTM per file into --out."""
    from bench.deploy.diarize import DeployError, check_audio, diarize_files

    try:
        uris = check_audio(audio)
        written = diarize_files(
            pipeline, audio, uris, out,
            speakers={"num_speakers": num_speakers, "min_speakers": min_speakers,
                      "max_speakers": max_speakers},
            revision=revision, trust=trust, device=device, progress=progress,
        )  # fmt: skip
    except DeployError as error:
        console.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(2) from None
    for path in written:
        console.print(f"wrote {escape(str(path))}", highlight=False)
