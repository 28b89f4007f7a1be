"""The ``bench`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from bench.cli.data import app as data_app

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
app.add_typer(data_app, name="data")
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


@app.callback()
def main() -> None:
    """Benchmark fine-tuning recipes for pyannote.audio speaker diarization."""


@app.command()
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
) -> None:
    """Train each recipe on the fixed split, evaluate on test, write one result per run."""
    from bench.data import DataError
    from bench.recipe import RecipeError, discover
    from bench.runner.stages import RunOptions, check_writable, extra_splits, resolve_split

    try:
        trials = None if tune_trials is None else tuple(int(t) for t in tune_trials.split(","))
        if trials is not None and (len(trials) != 2 or min(trials) < 1):
            raise ValueError
    except ValueError:
        console.print(
            f"[red]error:[/] --tune-trials {tune_trials!r}: expected two counts, e.g. 10,10"
        )
        raise typer.Exit(2) from None
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
    )
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
    from bench.runner.matrix import parse_seeds, plan, run_jobs, summary

    try:
        todo = plan(recipes, parse_seeds(seeds))
    except ValueError as error:
        console.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(2) from None
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


@app.command()
def recipes(
    paths: Annotated[list[Path] | None, typer.Argument(help="Recipe files or folders.")] = None,
) -> None:
    """List recipes with their main settings."""
    from rich.table import Table

    from bench.recipe import RecipeError, discover, load_recipe

    table = Table()
    table.add_column("recipe", no_wrap=True, min_width=24)
    columns = ("hash", "mode", "init", "optimizer", "scheduler", "epochs", "batch", "loss", "vad")
    for name in (*columns, "aug", "seed"):
        table.add_column(name)
    errors = []
    for path in discover(paths or [Path("recipes")]):
        try:
            r = load_recipe(path)
        except RecipeError as error:
            errors.append(str(error))
            continue
        table.add_row(*recipe_summary(r))
    Console(width=max(console.width, 180)).print(table)
    for error in errors:
        console.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
    if errors:
        raise typer.Exit(1)


def recipe_summary(r) -> list[str]:
    """The main settings of a recipe, as short strings."""
    init = "scratch" if r.model.kind == "scratch" else r.model.id
    if r.optimizer is None:
        opt = "- (no training)"
    else:
        opt = f"{r.optimizer.name} lr={r.optimizer.lr:g}"
        if r.optimizer.weight_decay:
            opt += f" wd={r.optimizer.weight_decay:g}"
    sched = "-" if r.scheduler is None else r.scheduler.kind
    aug = (
        "-"
        if r.augmentation is None
        else "+".join(
            k for k in ("impulse_response", "noise", "gain") if getattr(r.augmentation, k)
        )
    )
    vad = "-" if r.vad_loss is None else f"{r.vad_loss.kind}x{r.vad_loss.weight:g}"
    return [
        r.name,
        r.content_hash(),
        r.mode,
        init,
        opt,
        sched,
        str(r.epochs),
        str(r.batch_size),
        r.loss.kind,
        vad,
        aug,
        str(r.seed),
    ]


@app.command()
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
    from bench.runner.stages import Reporter, RunOptions, check_writable, resolve_split

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


@app.command()
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


@app.command()
def gate(
    baseline: Annotated[Path, typer.Option(help="Baseline result file or folder.")] = Path(
        "leaderboard/baseline"
    ),
    candidate: Annotated[Path, typer.Option(help="Candidate result file or folder.")] = Path(
        "results"
    ),
    max_increase: Annotated[
        float, typer.Option(min=0.0, help="Tolerated absolute increase of the metric.")
    ] = 0.005,
    confidence: Annotated[
        float, typer.Option(min=0.5, max=0.999, help="Paired-bootstrap confidence.")
    ] = 0.95,
    markdown: Annotated[Path | None, typer.Option(help="Also write the report here.")] = None,
    update_baseline: Annotated[
        bool, typer.Option("--update-baseline", help="Copy the candidate into the baseline.")
    ] = False,
    metric: Annotated[
        str,
        typer.Option(help="der (the primary metric) or jer (full-pipeline JER, every result)."),
    ] = "der",
) -> None:
    """Fail (exit 1) when a recipe's test DER (or JER) regresses significantly against the
    baseline (or its candidate run failed); exit 2 when the results are not comparable. The
    markdown report is always written, refusals included."""
    from bench import gate as gating
    from bench.io import atomic_write_text

    verdicts, error = [], None
    try:
        if update_baseline:
            for path in gating.update_baseline(candidate, baseline):
                console.print(f"baseline: {path}", markup=False)
            return
        verdicts = gating.compare(baseline, candidate, max_increase, confidence, metric)
    except gating.GateError as failure:
        error = str(failure)
    report = gating.markdown(verdicts, max_increase, confidence, error, metric)
    if markdown is not None:
        atomic_write_text(markdown, report)
    print(report, end="")
    if error is not None:
        raise typer.Exit(gating.EXIT_CODES["refused"])
    raise typer.Exit(gating.EXIT_CODES[gating.outcome(verdicts)])
