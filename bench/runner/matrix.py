"""Running many recipes (and seeds): in this process or in parallel worker processes, with a
summary of what each run recorded."""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import mean, stdev
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.data import Split
from bench.io import atomic_write_text
from bench.results import (
    DER_KEY,
    METRIC_LABELS,
    Stored,
    Unreadable,
    load_results,
    output_paths,
    primary_metric,
)
from bench.runner.options import RunOptions
from bench.runner.stages import RunFailed, run_recipe


@dataclass(frozen=True)
class Job:
    """One run to do: a recipe file and the seed it runs with (None: its own)."""

    recipe: Path
    seed: int | None  # None: the recipe's (or --seed's) own


# the most seeds one recipe may run with: each is a whole run (a larger count is a typo)
MAX_SEEDS = 1000


def parse_seeds(text: str | None) -> list[int] | None:
    """``"3"`` -> seeds 0, 1, 2; ``"0,7,42"`` -> those seeds. A count must be 1 to
    :data:`MAX_SEEDS`; listed seeds must be >= 0, distinct, and at most that many."""
    if text is None:
        return None
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--seeds {text!r}: expected a count (3) or a list (0,7,42)") from None
    if "," not in text:
        if len(values) != 1 or not 1 <= values[0] <= MAX_SEEDS:
            raise ValueError(f"--seeds {text!r}: expected a count from 1 to {MAX_SEEDS}")
        return list(range(values[0]))
    if not values or any(v < 0 for v in values):
        raise ValueError(f"--seeds {text!r}: expected seeds >= 0")
    if len(set(values)) != len(values):
        raise ValueError(f"--seeds {text!r}: a seed is listed twice (the same run)")
    if len(values) > MAX_SEEDS:
        raise ValueError(f"--seeds {text!r}: at most {MAX_SEEDS} seeds")
    return values


def plan(recipes: list[Path], seeds: list[int] | None) -> list[Job]:
    """Every (recipe, seed) run of a ``bench run``, in order."""
    return [Job(r, s) for r in recipes for s in (seeds or [None])]


def _execute(
    job: Job, options: RunOptions, split: tuple[Split, bool], console: Console
) -> Path | None:
    """One job; its result file (a failure's record), or None when not even that was written."""
    if job.seed is not None:
        options = replace(options, seed=job.seed)
    try:
        return run_recipe(job.recipe, options, console, split)
    except RunFailed as failure:
        return failure.result


def sharing(workers: int, jobs: int, gpus: int) -> int:
    """How many runs use one device at once: the workers actually busy, spread round robin
    over the GPUs (or all on the CPU)."""
    busy = max(1, min(workers, jobs))
    return -(-busy // gpus) if gpus else busy


def _init_worker(devices: Any, threads: int) -> None:
    """Pin a worker process to one GPU (before CUDA starts) and a share of the CPU threads."""
    import torch

    gpu = devices.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    torch.set_num_threads(threads)


def _worker(job: Job, options: RunOptions, split: tuple[Split, bool]) -> Path | None:
    """One job in a worker process, its output lines prefixed with the job's name."""
    prefix = f"[{job.recipe.stem}{'' if job.seed is None else f' s{job.seed}'}] "
    return _execute(job, replace(options, progress=False), split, _Prefixed(prefix))


class _Prefixed(Console):
    """A console whose lines say which job printed them."""

    def __init__(self, prefix: str):
        super().__init__(soft_wrap=True)
        self.prefix = prefix

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(escape(self.prefix), *objects, sep="", **kwargs)


Returned = tuple[str, str, dict[str, str]]


def _ray_job(job: Job, options: RunOptions, split: tuple[Split, bool]) -> Returned | None:
    """One job as a Ray task: run it, hand its result and the output files it lists back (the
    worker's disk may not be ours)."""
    path = _worker(job, options, split)  # Ray sets CUDA_VISIBLE_DEVICES for a GPU task
    return None if path is None else pack_result(options.results, path)


def pack_result(results: Path, path: Path) -> Returned:
    """A result file's name and text, and the text of each output file its record lists
    (relative path -> text; the ones missing on this disk left out)."""
    text = path.read_text()
    files: dict[str, str] = {}
    for relative in output_paths(json.loads(text).get("outputs")):
        if (results / relative).is_file():
            files[relative] = (results / relative).read_text()
    return path.name, text, files


def unpack_result(results: Path, returned: Returned) -> Path:
    """Write what :func:`pack_result` handed back into ``results`` (files that already hold
    the same text are left alone); return the result file's path."""
    name, text, files = returned
    for relative, content in [*files.items(), (name, text)]:  # the result last
        target = results / relative
        if not target.is_file() or target.read_text() != content:
            atomic_write_text(target, content)
    return results / name


def run_on_ray(
    jobs: list[Job], options: RunOptions, split: tuple[Split, bool], console: Console
) -> list[Path | None]:
    """Run every job as a task on a Ray cluster: the one ``RAY_ADDRESS`` (or ``ray start``)
    points to, else a local instance. Workers need the data and cache paths (shared storage);
    results come back to this machine's results folder. One GPU a task when the cluster has GPUs.
    """
    import ray

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, log_to_driver=True)
    gpus = 1 if options.device != "cpu" and ray.cluster_resources().get("GPU", 0) else 0
    task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(_ray_job)
    console.print(f"ray: {len(jobs)} task(s) on {ray.cluster_resources()}")
    refs = [task.remote(job, options, split) for job in jobs]
    paths: list[Path | None] = []
    for returned in ray.get(refs):
        paths.append(None if returned is None else unpack_result(options.results, returned))
    return paths


def run_jobs(
    jobs: list[Job],
    options: RunOptions,
    split: tuple[Split, bool],
    console: Console,
    workers: int,
    executor: str = "local",
) -> list[Path | None]:
    """Run every job; return their result files in job order (failures included; None where a
    run could not even record its failure)."""
    options = replace(
        options,
        results=options.results.resolve(),
        cache_dir=options.cache_dir.resolve() if options.cache_dir else None,
    )
    if executor == "ray":
        return run_on_ray(jobs, options, split, console)
    if executor != "local":
        raise ValueError(f"--executor {executor!r}: expected local or ray")
    if workers <= 1:
        return [_execute(job, options, split, console) for job in jobs]
    import torch

    context = multiprocessing.get_context("spawn")
    gpus = torch.cuda.device_count() if options.device != "cpu" else 0
    options = replace(options, sharing=sharing(workers, len(jobs), gpus))
    devices = context.Queue()
    for slot in range(workers):  # one GPU a worker process (round robin), or none
        devices.put(slot % gpus if gpus else None)
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(devices, threads),
    ) as pool:
        futures = [pool.submit(_worker, job, options, split) for job in jobs]
        return [future.result() for future in futures]


def _groups(paths: list[Path | None]) -> tuple[dict[str, list[Stored]], list[Unreadable]]:
    """Results by run family (the same identity but for the seed), in run order, and the files
    that could not be read back."""
    groups: dict[str, list[Stored]] = {}
    unreadable: list[Unreadable] = []
    for path in paths:
        if path is None:
            continue
        found = load_results(path)
        unreadable += found.unreadable
        for stored in found.records:
            identity = stored.record.run_identity
            key = identity.family if identity else f"{stored.record.name}-unresolved"
            groups.setdefault(key, []).append(stored)
    return groups, unreadable


def summary(paths: list[Path | None]) -> tuple[Table, int]:
    """A table of the runs (mean and spread over seeds) and the number of failed runs (a run
    that left no record at all counts as failed)."""
    groups, unreadable = _groups(paths)
    metric = primary_metric(
        *(s.record for runs in groups.values() for s in runs if s.record.status == "ok")
    )
    table = Table(title="bench run summary")
    for column in (
        "recipe",
        "runs",
        "seeds",
        "status",
        f"test {METRIC_LABELS[metric]}",
        "best dev DER",
        "result",
    ):
        table.add_column(column, no_wrap=column == "recipe")
    failed = sum(path is None for path in paths) + len(unreadable)
    names = [runs[0].record.name for runs in groups.values()]
    for runs in groups.values():
        ok = [s.record for s in runs if s.record.status == "ok"]
        failed += len(runs) - len(ok)
        statuses = sorted({s.record.status for s in runs})
        name = runs[0].record.name
        identity = runs[0].record.run_identity
        if names.count(name) > 1 and identity:  # same recipe, different experiments
            name += f" (e{identity.epochs}, b{identity.max_batches or '-'}, {identity.family[:6]})"
        table.add_row(
            name,
            str(len(runs)),
            ",".join(str(s.record.seed) for s in runs),
            ", ".join(statuses),
            _spread([report.DER for r in ok if (report := r.scores(metric)) is not None]),
            _spread([r.best_validation.get(DER_KEY) for r in ok if r.best_validation]),
            str(runs[0].path) if len(runs) == 1 else f"{len(runs)} files in {runs[0].path.parent}",
        )
    for bad in unreadable:
        table.add_row(bad.path.stem, "1", "", "unreadable", "-", "-", bad.reason)
    return table, failed


def _spread(values: list[float | None]) -> str:
    """One value, or mean ± standard deviation over seeds."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{mean(values):.4f} ± {stdev(values):.4f}"
