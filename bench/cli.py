"""The ``bench`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(soft_wrap=True)


@app.callback()
def main() -> None:
    """Benchmark fine-tuning recipes for pyannote.audio speaker diarization."""


@app.command()
def run(
    paths: Annotated[list[Path], typer.Argument(help="Recipe files or folders of recipes.")],
    data: Annotated[
        Path | None,
        typer.Option(help="Dataset folder (train/dev/test lists) or database.yml; default: demo."),
    ] = None,
    protocol: Annotated[
        str | None, typer.Option(help="pyannote.database protocol name (with a database.yml).")
    ] = None,
    results: Annotated[Path, typer.Option(help="Folder for result JSON files.")] = Path("results"),
    epochs: Annotated[int | None, typer.Option(min=1, help="Override the recipe's epochs.")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Override the recipe's seed.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    wandb: Annotated[bool, typer.Option("--wandb/--no-wandb", help="Log to W&B.")] = True,
    cache: Annotated[
        Path | None, typer.Option(help="Cache folder (demo data, decoded audio); $BENCH_CACHE.")
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Train each recipe on the fixed split, evaluate on test, write one result per run."""
    from bench.data import DataError
    from bench.recipe import discover
    from bench.runner import RunFailed, RunOptions, resolve_split, run_recipe

    options = RunOptions(data, protocol, results, epochs, seed, device, wandb, cache, progress)
    recipes = discover(paths)
    missing = [p for p in recipes if not p.is_file()]
    if not recipes or missing:
        console.print(f"[red]error:[/] no recipe file at {', '.join(map(str, missing or paths))}")
        raise typer.Exit(2)
    try:
        split = resolve_split(options)  # prepared once, shared by every recipe
    except (DataError, ValueError) as error:
        console.print(f"[red]error:[/] {error}", highlight=False)
        raise typer.Exit(2) from None
    failed = []
    for path in recipes:
        try:
            run_recipe(path, options, console, split)
        except RunFailed:
            failed.append(path)
    if failed:
        console.print(f"[red]{len(failed)} of {len(recipes)} recipe(s) failed[/]")
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
