"""``bench export``: a run's tuned pipeline as a folder pyannote.audio loads, with its model card
(and, with ``--push-to-hub``, on the Hugging Face hub)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bench.cli.common import ResultsOption, console


def export(
    result: Annotated[
        str | None, typer.Argument(help="A result file, or a run stem in --results.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder to write (default: exports/RUN_STEM).")
    ] = None,
    results: ResultsOption = Path("results"),
    best: Annotated[
        bool, typer.Option("--best", help="Export the leaderboard's best run in --results.")
    ] = False,
    split: Annotated[
        str | None, typer.Option(help="With --best: the split (name or fingerprint).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out.")] = False,
    push_to_hub: Annotated[
        str | None,
        typer.Option(help="Also upload the folder to this hub repository (token: $HF_TOKEN)."),
    ] = None,
    private: Annotated[
        bool, typer.Option("--private", help="With --push-to-hub: create a private repository.")
    ] = False,
) -> None:
    """Write a run's tuned pipeline as a folder that pyannote.audio's
    Pipeline.from_pretrained(DIR) loads offline: config.yaml, the stripped checkpoint, the
    embedding and a model card."""
    from bench.deploy.export import DeployError, best_result, export, find_result

    try:
        if (result is None) == (not best):
            raise DeployError("give one RESULT (a result file or a run stem), or --best")
        if push_to_hub:
            from bench.deploy.publish import require_token

            require_token(push_to_hub)  # before anything is written
        path = best_result(results, split) if best else find_result(str(result), results)
        target = out or Path("exports") / path.stem
        export(path, target, force=force, card_source=push_to_hub)
        console.print(f"exported {escape(str(path))} -> {escape(str(target))}", highlight=False)
        if push_to_hub:
            from bench.deploy.publish import push

            url = push(target, push_to_hub, private=private)
            console.print(f"pushed to {escape(url)}", highlight=False)
    except DeployError as error:
        console.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(2) from None
