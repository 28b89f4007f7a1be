"""``bench run``: train each recipe on the split, evaluate it, write one result per run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from bench.cli.common import CacheOption, DataOption, ProtocolOption, ResultsOption, console
from bench.recipe import PRECISIONS


def run(
    paths: Annotated[list[Path], typer.Argument(help="Recipe files or folders of recipes.")],
    data: DataOption = None,
    protocol: ProtocolOption = None,
    results: ResultsOption = Path("results"),
    epochs: Annotated[int | None, typer.Option(min=1, help="Override the recipe's epochs.")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Override the recipe's seed.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    wandb: Annotated[bool, typer.Option("--wandb/--no-wandb", help="Log to W&B.")] = True,
    cache: CacheOption = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    max_batches: Annotated[
        int | None,
        typer.Option(min=1, help="Train/validate on at most N batches per epoch (smoke runs)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the resolved setup; do not train.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Re-run recipes whose result exists; never resume.")
    ] = False,
    seeds: Annotated[
        str | None, typer.Option(help="Run each recipe with N seeds (0..N-1) or a list: 0,7,42.")
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Parallel runs (processes).")] = 1,
    devices: Annotated[
        int, typer.Option(min=1, help="Devices (GPUs, or CPU processes) to train one run on.")
    ] = 1,
    strategy: Annotated[
        str, typer.Option(help="Lightning strategy for several devices: auto, ddp, ...")
    ] = "auto",
    executor: Annotated[
        str, typer.Option(help="local, or ray: one Ray task a run (cluster from RAY_ADDRESS).")
    ] = "local",
    pipeline: Annotated[
        bool,
        typer.Option("--pipeline/--no-pipeline", help="Full-file pipeline DER after training."),
    ] = True,
    embedding: Annotated[
        str | None, typer.Option(help="Pipeline speaker embedding: campplus, a hub id or a path.")
    ] = None,
    tune_trials: Annotated[
        str | None, typer.Option(help="Pipeline tuning trials per stage on dev, e.g. 10,10.")
    ] = None,
    also_test: Annotated[
        list[str] | None,
        typer.Option(
            help="Also score the tuned pipeline on this split's test files (a dataset folder, "
            "or demo-ood); repeatable."
        ),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(help="Override the recipes' precision: auto, 32, 16-mixed or bf16-mixed."),
    ] = None,
) -> None:
    """Train each recipe on the fixed split, evaluate on test, write one result per run."""
    from bench.data import DataError
    from bench.recipe import RecipeError, discover
    from bench.runner import RunOptions, check_writable, extra_splits, resolve_split

    try:
        trials = None if tune_trials is None else tuple(int(t) for t in tune_trials.split(","))
        if trials is not None and (len(trials) != 2 or min(trials) < 1):
            raise ValueError
    except ValueError:
        console.print(
            f"[red]error:[/] --tune-trials {tune_trials!r}: expected two counts, e.g. 10,10"
        )
        raise typer.Exit(2) from None
    if precision is not None and precision not in PRECISIONS:
        console.print(f"[red]error:[/] --precision {precision!r}: expected one of {PRECISIONS}")
        raise typer.Exit(2)
    options = RunOptions(
        data=data,
        protocol=protocol,
        results=results,
        epochs=epochs,
        seed=seed,
        device=device,
        wandb=wandb,
        cache_dir=cache,
        progress=progress,
        max_batches=max_batches,
        force=force,
        pipeline=pipeline,
        embedding=embedding,
        tune_trials=trials,
        devices=devices,
        strategy=strategy,
        also_test=tuple(also_test or ()),
        precision=precision,
    )
    from bench.runner.matrix import parse_seeds, plan, run_jobs, summary

    try:
        seed_list = parse_seeds(seeds)  # before the split is prepared (the demo takes minutes)
    except ValueError as error:
        console.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(2) from None
    recipes = discover(paths)
    missing = [p for p in recipes if not p.is_file()]
    if not recipes or missing:
        console.print(
            "[red]error:[/] no recipe file at " + escape(", ".join(map(str, missing or paths)))
        )
        raise typer.Exit(2)
    try:
        if not dry_run:
            check_writable(results)
        split = resolve_split(options)  # prepared once, shared by every recipe
        extra_splits(options, split[0])  # bad --also-test splits fail before anything trains
    except (DataError, ValueError) as error:
        console.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(2) from None
    if not split[1]:  # the checks of `bench data check` (the demo's are known and expected)
        from bench.data.check import split_warnings

        found = split_warnings(split[0], folder=protocol is None)
        if found:
            console.print(
                f"[yellow]data check:[/] {len(found)} warning(s), e.g. {escape(found[0])}; "
                f"`bench data check {escape(str(data))}"
                + (f" --protocol {escape(protocol)}" if protocol else "")
                + "` lists them",
                highlight=False,
            )
    if dry_run:
        from bench.runner.dryrun import describe

        failed = 0
        for path in recipes:
            try:
                console.print(describe(path, options, split), highlight=False, markup=False)
            except (RecipeError, ValueError) as error:
                console.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
                failed += 1
        raise typer.Exit(1 if failed else 0)
    todo = plan(recipes, seed_list)
    try:
        paths_done = run_jobs(todo, options, split, console, jobs, executor)
    except ValueError as error:
        console.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(2) from None
    table, failed = summary(paths_done)
    Console(width=max(console.width, 140)).print(table)
    if failed:
        console.print(f"[red]{failed} of {len(todo)} run(s) failed[/]")
        raise typer.Exit(1)
    console.print(
        f"result: {paths_done[-1]}" if len(paths_done) == 1 else f"results: {results}",
        highlight=False,
        markup=False,
    )
