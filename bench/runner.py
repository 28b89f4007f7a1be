"""One run, end to end: recipe -> split -> training -> test evaluation -> result JSON."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
import traceback
import warnings
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel
from rich.console import Console

from bench.augmentation import build_augmentation
from bench.data import AudioCache, BenchProtocol, Split, load_folder, load_protocol
from bench.evaluation import evaluate_chunks
from bench.recipe import Recipe, load_recipe
from bench.results import (
    SCHEMA_VERSION,
    git_commit,
    read_result,
    result_stem,
    versions,
    write_json,
)
from bench.task import DER, BenchDiarization
from bench.training import EPOCH_COLUMNS, fit, precision, prepare_model

# The demo must finish in a few minutes on 2 CPU cores: its runs are capped (shorter chunks,
# smaller batches, fewer epochs), say so, and record it under "overrides".
DEMO_PROFILE = {"epochs": 12, "batch_size": 8, "duration": 5.0}


# Warnings with nothing actionable for a bench user (bench reports head re-initialisation itself).
_QUIET = (
    "target_rate is required by Identity",
    "`isinstance(treespec, LeafSpec)` is deprecated",
    "Your `IterableDataset` has `__len__` defined",
    "Model has been trained for a different task",
    "The number of training batches",
    "but have no logger configured",
    "Targets are not (yet) supported by ApplyImpulseResponse",
    "is required by ApplyImpulseResponse",
)


def quiet_known_warnings() -> None:
    for message in _QUIET:
        warnings.filterwarnings("ignore", message=f".*{re.escape(message)}")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
        logging.getLogger(name).setLevel(logging.WARNING)


def default_cache_dir() -> Path:
    return Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "bench"))


@dataclass
class RunOptions:
    data: Path | None = None
    protocol: str | None = None
    results: Path = Path("results")
    epochs: int | None = None
    seed: int | None = None
    device: str = "auto"
    wandb: bool = True
    cache_dir: Path | None = None
    progress: bool = True
    max_batches: int | None = None
    force: bool = False
    pipeline: bool = True
    embedding: str | None = None
    tune_trials: tuple[int, int] | None = None
    devices: int = 1
    strategy: str = "auto"


def resolve_split(options: RunOptions) -> tuple[Split, bool]:
    """The split to run on, and whether it is the embedded demo."""
    if options.data is None:
        from bench.demo import ensure_demo

        return load_folder(ensure_demo(options.cache_dir or default_cache_dir())), True
    if options.protocol is not None:
        return load_protocol(options.data, options.protocol), False
    if options.data.suffix in {".yml", ".yaml"}:
        raise ValueError(f"{options.data}: a database.yml needs --protocol NAME")
    return load_folder(options.data), False


def effective_recipe(
    recipe: Recipe, options: RunOptions, demo: bool
) -> tuple[Recipe, dict[str, Any]]:
    """Apply command-line overrides and, on the demo, the demo profile; report each change.

    ``--epochs`` leaves recipes with ``epochs=0`` (no fine-tuning) alone."""
    changes: dict[str, Any] = {}
    if options.epochs is not None and recipe.epochs > 0:
        changes["epochs"] = options.epochs
    if options.seed is not None:
        changes["seed"] = options.seed
    if not options.pipeline:
        changes["pipeline"] = None
    elif recipe.pipeline is not None and (options.embedding or options.tune_trials):
        changes["pipeline"] = recipe.pipeline.model_copy(
            update={
                k: v
                for k, v in (("embedding", options.embedding), ("tune_trials", options.tune_trials))
                if v is not None
            }
        )
    if demo:
        for key, cap in DEMO_PROFILE.items():
            current = changes.get(key, getattr(recipe, key))
            if current > cap:
                changes[key] = cap
    changes = {k: v for k, v in changes.items() if v != getattr(recipe, k)}
    applied = {
        k: {"declared": _plain(getattr(recipe, k)), "ran": _plain(v)} for k, v in changes.items()
    }
    if options.max_batches is not None:
        applied["max_batches"] = {"declared": None, "ran": options.max_batches}
    return recipe.with_overrides(**changes), applied


def _plain(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def accelerator(device: str) -> str:
    if device == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    if device in {"cuda", "gpu"}:
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available")
        return "gpu"
    if device != "cpu":
        raise ValueError(f"--device {device!r}: expected auto, cpu or cuda")
    return "cpu"


def device_description(acc: str) -> dict[str, Any]:
    if acc == "gpu":
        return {"accelerator": "cuda", "name": torch.cuda.get_device_name(0)}
    return {"accelerator": "cpu", "threads": torch.get_num_threads(), "cores": os.cpu_count()}


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


@dataclass
class RunState:
    """What an interrupted run needs to resume: written once the initial model is evaluated."""

    initial_validation: dict[str, Any]
    initial_test: dict[str, Any]
    wandb_id: str | None

    FILE = "state.json"

    def save(self, run_dir: Path) -> None:
        write_json(run_dir / self.FILE, asdict(self))

    @classmethod
    def load(cls, run_dir: Path) -> RunState | None:
        """The state of an interrupted run in ``run_dir``, if it got as far as a checkpoint."""
        path = run_dir / cls.FILE
        if not path.is_file() or not (run_dir / "checkpoints" / "last.ckpt").is_file():
            return None
        return cls(**json.loads(path.read_text()))


def full_file_der(
    recipe: Recipe, model: Any, split: Split, audio: AudioCache, acc: str, console: Console
) -> dict[str, Any]:
    """The diarization pipeline with the best checkpoint, tuned on dev, scored on full test
    files (see :mod:`bench.pipeline`)."""
    from bench.pipeline import evaluate_pipeline

    spec = recipe.pipeline
    console.print(
        f"pipeline: {spec.embedding} embedding, tuning on dev ({spec.tune_trials[0]}+"
        f"{spec.tune_trials[1]} trials), then full test files"
    )
    record = evaluate_pipeline(
        model,
        split,
        audio,
        embedding=spec.embedding,
        trials=spec.tune_trials,
        seed=recipe.seed,
        device="cuda" if acc == "gpu" else "cpu",
        threads=1
        if acc == "cpu"
        else None,  # as fast as 2 on an idle 2-core CPU, far faster on a busy one
    )
    test = record["test"]
    console.print(
        f"test (full-file pipeline): DER {test['DER']:.4f}  Confusion {test['Confusion']:.4f}  "
        f"FalseAlarm {test['FalseAlarm']:.4f}  Miss {test['Miss']:.4f}  | collar 0.25 s, "
        f"no overlap: DER {test['collar_0.25_no_overlap']['DER']:.4f}  | dev DER "
        f"{record['tuning']['dev_der_before']:.4f} -> {record['tuning']['dev_der_after']:.4f}"
    )
    return record


class RunFailed(RuntimeError):
    """A run that ended without a result; its failure was recorded at ``result``."""

    def __init__(self, message: str, result: Path):
        super().__init__(message)
        self.result = result


def _dataset_record(split: Split, demo: bool) -> dict[str, Any]:
    return {
        "name": split.name,
        "fingerprint": split.fingerprint,
        "source": split.source,
        "demo": demo,
        "subsets": split.summary(),
    }


def run_recipe(
    path: Path,
    options: RunOptions,
    console: Console | None = None,
    split: tuple[Split, bool] | None = None,
) -> Path:
    """Train and evaluate one recipe file; return the path of its result JSON.

    ``split`` is the (split, is_demo) pair from :func:`resolve_split`, resolved here when absent.
    A recipe that cannot be loaded, or whose run raises or diverges, is recorded as a result with
    status "failed" or "diverged" (reason and traceback), then :class:`RunFailed` is raised.
    """
    console = console or Console(soft_wrap=True)
    quiet_known_warnings()
    split_, demo = split or resolve_split(options)
    state: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "status": "running",
        "recipe_file": str(path),
        "recipe": None,
        "recipe_hash": None,
        "dataset": _dataset_record(split_, demo),
        "started": datetime.now(UTC).isoformat(),
    }
    results_dir = options.results.resolve()
    try:
        return _run(path, options, console, split_, demo, state, results_dir)
    except Exception as error:
        diverged = isinstance(error, FloatingPointError)
        state.update(
            status="diverged" if diverged else "failed",
            error={
                "type": type(error).__name__,
                "message": str(error),
                "traceback": traceback.format_exc(),
            },
            finished=datetime.now(UTC).isoformat(),
            versions=versions(),
            git=git_commit(),
        )
        logger = state.pop("_logger", None)
        if logger is not None:
            logger.experiment.finish(exit_code=1)
        stem = state.pop("_stem", None) or f"{Path(path).stem}-invalid-{split_.fingerprint}"
        out = write_json(results_dir / f"{stem}.json", state)
        console.print(f"[red]{state['status']}:[/] {path}: {error}", highlight=False)
        console.print(f"result: {out}")
        raise RunFailed(str(error), out) from error


def _ddp_child() -> bool:
    """True in the extra processes Lightning's DDP launcher starts (they re-run this command)."""
    return int(os.environ.get("LOCAL_RANK", "0")) > 0 or int(os.environ.get("NODE_RANK", "0")) > 0


def _run(
    path: Path,
    options: RunOptions,
    console: Console,
    split: Split,
    demo: bool,
    state: dict[str, Any],
    results_dir: Path,
) -> Path:
    import lightning

    stages: dict[str, float] = {}
    clock = time.perf_counter()
    declared = load_recipe(path)
    recipe, overrides = effective_recipe(declared, options, demo)
    stages["load"] = time.perf_counter() - clock

    acc = accelerator(options.device)
    stem = result_stem(
        recipe.name, recipe.content_hash(), split.fingerprint, recipe.seed, recipe.epochs
    ) + (f"-b{options.max_batches}" if options.max_batches else "")
    state.update(
        _stem=stem,
        recipe=recipe.resolved(),
        recipe_hash=recipe.content_hash(),
        declared_recipe_hash=declared.content_hash(),
        overrides=overrides,
        seed=recipe.seed,
    )
    run_dir = results_dir / "runs" / stem
    existing = results_dir / f"{stem}.json"
    if options.force:
        if not _ddp_child():  # DDP's extra processes re-run this command: clear only once
            shutil.rmtree(run_dir, ignore_errors=True)
    elif existing.is_file() and read_result(existing).get("status") == "ok":
        console.print(f"[bold]{recipe.name}[/]: skipped, its result exists (--force re-runs it)")
        console.print(f"result: {existing}")
        return existing
    run_dir.mkdir(parents=True, exist_ok=True)
    resume = RunState.load(run_dir)
    console.print(
        f"[bold]{recipe.name}[/] ({recipe.content_hash()}) on split [bold]{split.name}[/] "
        f"({split.fingerprint}), seed {recipe.seed}, {acc}"
    )
    if demo:
        console.print(
            "[yellow]demo split:[/] runs are capped to finish in minutes on a CPU: "
            + ", ".join(f"{k} {v['declared']} -> {v['ran']}" for k, v in overrides.items())
            if overrides
            else "[yellow]demo split[/]"
        )
    elif overrides:
        console.print("overrides: " + ", ".join(f"{k}={v['ran']}" for k, v in overrides.items()))

    clock = time.perf_counter()
    cache_dir = options.cache_dir or default_cache_dir()
    audio = AudioCache(cache_dir / "audio")
    for subset in split.recordings:
        for rec in split.files(subset):
            audio.prepare(rec.audio)
    lightning.seed_everything(recipe.seed, workers=True, verbose=False)
    augmentation = build_augmentation(recipe.augmentation, split.root)
    # the split's index for this chunk duration, built once and shared by every recipe (it holds
    # audio paths, so a copy of the same split elsewhere gets its own)
    where = hashlib.sha256(split.source.encode()).hexdigest()[:8]
    index = cache_dir / "tasks" / f"{split.fingerprint}-{where}-{recipe.duration:g}s.npz"
    task = BenchDiarization(BenchProtocol(split), recipe, audio, index, augmentation)
    model, init = prepare_model(recipe, task)
    stages["prepare"] = time.perf_counter() - clock
    console.print(f"initial weights: {init.source.id} ({init.source.origin}): {init.reason}")

    config = {
        "recipe": recipe.resolved(),
        "recipe_hash": recipe.content_hash(),
        "dataset_fingerprint": split.fingerprint,
        "demo": demo,
        "overrides": overrides,
        "initial_weights": init.as_dict(),
    }
    loggers = []
    if options.wandb:
        from bench.tracking import make_logger

        loggers.append(make_logger(run_dir, stem, config, resume.wandb_id if resume else None))
        state["_logger"] = loggers[0]

    state["epochs"] = []

    def show(row: dict[str, Any]) -> None:
        state["epochs"].append(row)
        console.print(
            f"epoch {row['epoch']:>3}  DER {_fmt(row[DER])}  Conf {_fmt(row[f'{DER}/Confusion'])}  "
            f"FA {_fmt(row[f'{DER}/FalseAlarm'])}  Miss {_fmt(row[f'{DER}/Miss'])}  "
            f"thr {_fmt(row[f'{DER}/Threshold'])}  loss/val {_fmt(row['loss/val'])}  "
            f"loss/train {_fmt(row['loss/train'])}"
        )

    initial_test: dict[str, Any] = {}

    def before_training(initial: dict[str, Any]) -> None:
        threshold = initial[f"{DER}/Threshold"] if recipe.mode == "multilabel" else None
        initial_test.update(
            evaluate_chunks(model, split.files("test"), audio, recipe.duration, threshold)
        )
        console.print(
            f"before training: dev DER {_fmt(initial[DER])}, test DER {initial_test['DER']:.4f}"
        )
        wandb_id = loggers[0].experiment.id if loggers else None
        RunState(initial, dict(initial_test), wandb_id).save(run_dir)

    if resume is not None:
        initial_test.update(resume.initial_test)
        console.print(f"resuming from {run_dir / 'checkpoints' / 'last.ckpt'}")

    clock = time.perf_counter()
    fitted = fit(
        recipe,
        model,
        run_dir,
        acc,
        loggers,
        show,
        before_training,
        progress=options.progress,
        max_batches=options.max_batches,
        initial=resume.initial_validation if resume else None,
        devices=options.devices,
        strategy=options.strategy,
    )
    if fitted.rank != 0:  # other DDP processes: training is their whole job
        raise SystemExit(0)
    stages["train"] = time.perf_counter() - clock

    best = next((r for r in fitted.epochs if r["epoch"] == fitted.best_epoch), None)
    chosen = best or fitted.initial  # epochs=0: the initial weights are the ones evaluated
    threshold = chosen[f"{DER}/Threshold"] if recipe.mode == "multilabel" else None
    clock = time.perf_counter()
    test = evaluate_chunks(model, split.files("test"), audio, recipe.duration, threshold)
    stages["test"] = time.perf_counter() - clock
    console.print(
        f"test (chunk-level): DER {test['DER']:.4f}  Confusion {test['Confusion']:.4f}  "
        f"FalseAlarm {test['FalseAlarm']:.4f}  Miss {test['Miss']:.4f}"
    )
    scores = {"chunk": test, "chunk_before_training": initial_test}
    pipeline = None
    if recipe.pipeline is not None:
        clock = time.perf_counter()
        pipeline = full_file_der(recipe, model, split, audio, acc, console)
        scores["pipeline"] = pipeline.pop("test")
        stages["pipeline"] = time.perf_counter() - clock

    wandb_info = None
    if loggers:
        from bench.tracking import finish

        metrics = {
            f"test/{kind}/{k}": scores[kind][k]
            for kind in ("chunk", "pipeline")
            if kind in scores
            for k in ("DER", "Confusion", "FalseAlarm", "Miss")
        }
        loggers[0].log_metrics(metrics)
        wandb_info = finish(state.pop("_logger"))

    result = {
        "schema": SCHEMA_VERSION,
        "status": "ok",
        "recipe": recipe.resolved(),
        "recipe_hash": recipe.content_hash(),
        "declared_recipe_hash": declared.content_hash(),
        "recipe_file": str(path),
        "overrides": overrides,
        "dataset": state["dataset"],
        "seed": recipe.seed,
        "initial_weights": init.as_dict(),
        "columns": list(EPOCH_COLUMNS),
        "initial_validation": fitted.initial,
        "epochs": fitted.epochs,
        "best_epoch": fitted.best_epoch,
        "best_validation": best,
        "stopped_early": fitted.stopped_early,
        "best_checkpoint": str(fitted.best_checkpoint) if fitted.best_checkpoint else None,
        "test": scores,
        "pipeline": pipeline,
        "wall_time": {k: round(v, 3) for k, v in stages.items()},
        "started": state["started"],
        "finished": datetime.now(UTC).isoformat(),
        "device": {
            **device_description(acc),
            "precision": precision(recipe, acc),
            "devices": options.devices,
            "strategy": options.strategy,
        },
        "versions": versions(),
        "git": git_commit(),
        "wandb": wandb_info,
    }
    out = write_json(results_dir / f"{stem}.json", result)
    console.print(f"result: {out}")
    return out
