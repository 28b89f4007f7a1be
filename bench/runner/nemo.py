"""A NeMo recipe as a run (:class:`bench.recipe.NemoRecipe`): its identity (settings, initial
weights, both environments), training and diarization by NeMo's own code in NeMo's environment
(:mod:`bench.nemo`), the test hypotheses scored with the recipes' Scorer, and a record of kind
``nemo`` that the leaderboard ranks and the gate judges beside the pyannote recipes.

Resume, ``--force``, the per-run lock, failure records and W&B are the runner's, as for every
run: the worker resumes from the last checkpoint in the run folder, a non-finite loss (or the
loss rules of :func:`bench.training.divergence.nemo_divergence`) records the run as diverged."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.io import atomic_write_text
from bench.recipe import FieldRefusal, NemoPretrained, NemoRecipe, NemoScratch, RecipeError
from bench.results import Override, PipelineSetup, Row, ScoreReport, TestScores, ok_record
from bench.results import record_stem as stem_of
from bench.runner.options import RunOptions, _plain

if TYPE_CHECKING:
    from bench.nemo.environment import NemoEnvironment
    from bench.runner.active import ActiveRun

# on the demo, runs are capped to finish in minutes on 2 CPU cores (recorded as overrides)
DEMO_CAPS: dict[str, Any] = {"epochs": 2, "batch_size": 4, "session_len_sec": 30.0}
# run options that do not apply to a NeMo run (said once, never silently)
NOT_APPLYING = ("precision", "embedding", "tune_trials", "also_test")
COLUMNS = ["loss/train", "loss/val"]  # NeMo's epoch rows: its losses, then what it validates


@dataclass(frozen=True)
class NemoPlan:
    """What a resolved NeMo run starts from: the environment and the initial weights' file
    (None: the stock config with random weights), with their content hash."""

    env: NemoEnvironment
    init_file: Path | None
    init_sha256: str
    init_info: dict[str, Any]


def _resolve_init(
    spec: NemoRecipe, path: Path, local_only: bool = False
) -> tuple[Path | None, str, dict[str, Any]]:
    """The initial weights' file, content hash and description; a scratch model's content is
    its stock config's. ``local_only``: a hub model from the local cache only."""
    from bench.io import sha256_file
    from bench.models import hub
    from bench.nemo import stock_config

    init = spec.init
    if isinstance(init, NemoScratch):
        config = stock_config(spec.model)
        return None, sha256_file(config), {"kind": "scratch", "config": config.name}
    found = hub.resolve(
        init.id,
        filename=f"{init.id.split('@')[0].rsplit('/', 1)[-1]}.nemo",  # NeMo's from_pretrained
        field="init.id",
        revision=init.revision,
        revision_field="init.revision",
        token_env=init.token_env,
        local_only=local_only,
    )
    info = {
        "kind": found.origin,
        "ref": init.id,
        "path": str(found.path),
        "revision": found.revision,
    }
    return found.path, found.sha256, info


def effective_nemo(
    spec: NemoRecipe, options: RunOptions, demo: bool, path: Path
) -> tuple[NemoRecipe, dict[str, Override], list[str], list[str]]:
    """``spec`` with the command line's overrides and, on the demo, its caps; what changed;
    the options that do not apply; and warnings (the demo's small model standing in for
    weights that cannot be had offline)."""
    from bench.nemo import SMALL_CONFIGS

    changes: dict[str, Any] = {}
    warnings: list[str] = []
    if options.epochs is not None and spec.epochs > 0:
        changes["epochs"] = options.epochs
    if options.seed is not None:
        changes["seed"] = options.seed
    if demo:
        for name, cap in DEMO_CAPS.items():
            value = changes.get(name, getattr(spec, name))
            if name == "session_len_sec" and (spec.model != "sortformer" or not spec.epochs):
                continue
            if value is None or value > cap:
                changes[name] = cap
        if isinstance(spec.init, NemoPretrained):  # the demo downloads nothing
            try:
                _resolve_init(spec, path, local_only=True)
            except Exception as error:  # hub.ResolveError, or an unreadable file
                small = NemoScratch(config=SMALL_CONFIGS[spec.model])
                changes["init"] = small
                warnings.append(
                    f"{spec.init.id} is not in the local cache ({error}); on the demo a small "
                    f"{spec.model} from scratch stands in (recorded)"
                )
    changes = {k: v for k, v in changes.items() if v != getattr(spec, k)}
    applied: dict[str, Override] = {
        k: {"declared": _plain(getattr(spec, k)), "ran": _plain(v)} for k, v in changes.items()
    }
    if options.max_batches is not None:
        applied["max_batches"] = {"declared": None, "ran": options.max_batches}
    ignored = [f"--{n.replace('_', '-')}" for n in NOT_APPLYING if getattr(options, n)]
    if not options.pipeline:  # NeMo's own diarization of the test files is its only score
        ignored.append("--no-pipeline")
    if options.devices > 1:
        ignored.append("--devices")
    return spec.with_overrides(**changes), applied, ignored, warnings


def check_config(spec: NemoRecipe) -> None:
    """Every config override names a field of the stock config (refused at its recipe line)."""
    from bench.nemo import config_problem

    if isinstance(spec.init, NemoScratch):
        for key in spec.init.config:
            problem = config_problem(spec.model, key)
            if problem:
                raise FieldRefusal(("init", "config"), problem)


def resolve_nemo(run: ActiveRun) -> None:
    """A NeMo run's overrides, environment, initial weights, identity and file names."""
    from bench.models.hub import ResolveError
    from bench.nemo.environment import nemo_environment
    from bench.results.identity import identify_nemo

    spec, run.overrides, ignored, warnings = effective_nemo(
        run.declared, run.options, run.demo, run.path
    )
    run.recipe = spec
    for warning in warnings:
        run.report.warn(warning)
    if ignored:
        run.report.say(f"{spec.name}: a NeMo recipe: {', '.join(ignored)} do(es) not apply")
    try:
        check_config(spec)
        init_file, init_sha, info = _resolve_init(spec, run.path)
    except FieldRefusal as refusal:
        raise refusal.located(run.path) from None
    except ResolveError as error:
        raise RecipeError(f"{run.path}: {error}") from None
    env = nemo_environment()
    run.nemo = NemoPlan(env, init_file, init_sha, info)
    run.identity = identify_nemo(
        spec,
        run.split.fingerprint,
        init_sha,
        env.describe()["digest"],
        max_batches=run.options.max_batches,
    )
    run.stem = stem_of(run.identity, spec.name, run.split.fingerprint)
    run.run_dir = run.store.staging_dir(run.stem) if run.options.force else run.final_dir


def job_session(spec: NemoRecipe) -> float | None:
    """Sortformer's training session length: the recipe's, else NeMo's stock config's; None
    for MSDD, which trains on whole manifest lines."""
    if spec.model != "sortformer":
        return None
    if spec.session_len_sec is not None:
        return spec.session_len_sec
    import yaml

    from bench.nemo import stock_config

    stock = yaml.safe_load(stock_config(spec.model).read_text(encoding="utf-8"))
    return float(stock["model"]["train_ds"]["session_len_sec"])


def job_for(run: ActiveRun, manifests: dict[str, Path]) -> dict[str, Any]:
    """The worker's job: every recipe setting it runs with (bench/nemo/worker.py checks it)."""

    import torch

    spec: NemoRecipe = run.recipe
    plan: NemoPlan = run.nemo
    session = job_session(spec)
    optimizer = spec.optimizer.model_dump() if spec.optimizer else None
    return {
        "model": spec.model,
        "init": {"kind": "file", "path": str(plan.init_file)}
        if plan.init_file
        else {"kind": "scratch"},
        "config": dict(spec.init.config) if isinstance(spec.init, NemoScratch) else {},
        "train_manifest": str(manifests["train"]),
        "dev_manifest": str(manifests["dev"]),
        "test_manifest": str(manifests["test"]),
        "epochs": spec.epochs,
        "batch_size": spec.batch_size,
        "max_steps": run.options.max_batches,
        "seed": spec.seed,
        "device": run.accelerator,
        "threads": torch.get_num_threads(),  # the run's share of the cores; recorded
        "optimizer": optimizer or {"name": "adamw", "lr": 1e-4, "weight_decay": 0.0},
        "warmup_steps": spec.warmup_steps,
        "session_len_sec": session,
        "postprocessing": spec.postprocessing.model_dump() if spec.postprocessing else None,
    }


def epoch_row(event: dict[str, Any]) -> Row:
    """A worker's epoch as a record's row: ``epoch``, ``lr``, the losses under the names every
    record uses (``loss/train``, ``loss/val``), optimizer steps, and what NeMo validated."""
    row: Row = {
        "epoch": event["epoch"],
        "lr": event.get("lr"),
        "loss/train": event.get("train_loss"),
        "loss/val": event.get("val_loss"),
        "steps": event.get("steps"),
    }
    skip = {"event", "epoch", "lr", "train_loss", "val_loss", "steps"}
    row.update({k: v for k, v in event.items() if k not in skip and isinstance(v, int | float)})
    return row


def run_nemo(run: ActiveRun) -> Path:
    """Train and diarize with NeMo, score the test hypotheses, record the run; its path."""
    from bench.corpora.nemo import write_manifests
    from bench.data import read_rttm_all
    from bench.evaluation.external import score_test
    from bench.nemo.backend import run_worker
    from bench.runner.recording import _finish_logger, write_hypotheses
    from bench.training.divergence import nemo_divergence

    spec: NemoRecipe = run.recipe
    plan: NemoPlan = run.nemo
    run.report.say(
        f"{spec.name} ({spec.content_hash()}): NeMo {spec.model} from "
        f"{plan.init_info.get('ref') or 'scratch (stock config)'} ({plan.init_sha256[:12]}) on "
        f"split {run.split.name} ({run.split.fingerprint}), seed {spec.seed}, {run.accelerator}, "
        f"{spec.epochs} epoch(s), batch {spec.batch_size}"
    )
    if run.options.force:
        shutil.rmtree(run.run_dir, ignore_errors=True)
    run.run_dir.mkdir(parents=True, exist_ok=True)
    window = job_session(spec)
    manifests = write_manifests(run.split, run.run_dir / "manifests", window)
    _start_wandb(run)

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "start":
            resumed = f", resuming from {event['resume']}" if event.get("resume") else ""
            run.report.say(f"NeMo {event.get('nemo_version')}, {event.get('parameters')} "
                           f"parameters{resumed}")  # fmt: skip
        elif event.get("event") == "initial":
            run.report.say(f"before training: loss/val {_fmt(event.get('val_loss'))}")
        elif event.get("event") == "epoch":
            row = epoch_row(event)
            run.report.say(
                f"epoch {row['epoch']:>3}  loss/train {_fmt(row['loss/train'])}  loss/val "
                f"{_fmt(row['loss/val'])}  steps {row['steps']}"
            )
            if run.logger is not None:
                run.logger.log_metrics({k: v for k, v in row.items() if v is not None})

    out = run.run_dir / "nemo"
    job = job_for(run, manifests)
    with run.timed("train"):
        result = run_worker(plan.env, job, out, on_event)
    run.epochs = [epoch_row(row) for row in result.get("epochs") or []]
    initial = result.get("initial_validation")
    run.initial_validation = epoch_row({"epoch": 0, **initial}) if initial else None
    kept = result.get("best_epoch")
    reason = nemo_divergence(run.initial_validation, run.epochs, kept)
    if reason:
        raise FloatingPointError(reason)
    with run.timed("test"):
        found: dict[str, Any] = {}
        for file in sorted((out / "hyp").glob("*.rttm")):
            found.update(read_rttm_all(file) or {file.stem: _empty(file.stem)})
        report, _, _ = score_test(run.split, found, False, where=str(out / "hyp"))
    scores = ScoreReport.model_validate(report)
    run.report.scores(f"NeMo {spec.model}", scores)
    run.scores = TestScores(pipeline=scores)
    hypotheses = {uri: found[uri] for uri in (r.uri for r in run.split.files("test"))}
    run.outputs = write_hypotheses(
        run.run_dir, run.stem, {"dev": {}, "test": hypotheses, "also_test": {}}
    )
    wandb_info = _finish_logger(run)
    if run.run_dir != run.final_dir:
        run.store.swap_in(run.run_dir, run.stem)
        run.run_dir = run.final_dir
    setup: PipelineSetup = {
        "source": {"kind": "nemo", "model": spec.model, **plan.init_info},
        "class": MODEL_CLASSES[spec.model],
        "params": spec.postprocessing.model_dump() if spec.postprocessing else {},
        "nemo": {k: result.get(k) for k in NEMO_FACTS},
        "environment": plan.env.describe(),
        # MSDD is applied with oracle VAD: the reference's speech regions (no VAD model offline)
        "oracle_vad": spec.model == "msdd",
        "device": run.accelerator,
        "wall_time_s": result.get("wall_time_s") or {},
    }
    best = next((r for r in run.epochs if r.get("epoch") == kept), None)
    extra = [k for r in run.epochs for k in r if k not in ("epoch", "lr", "steps", *COLUMNS)]
    record = ok_record(
        **run.record_fields(),
        columns=[*COLUMNS, *dict.fromkeys(extra)],
        best_epoch=kept,
        best_validation=best,
        best_checkpoint=str(run.final_dir / "nemo" / "model.nemo"),
        test=run.scores,
        pipeline=setup,
        outputs=run.outputs,
        device={
            "accelerator": run.accelerator,
            "threads": job["threads"],
            "devices": 1,
            "world_size": 1,
            "global_batch": spec.batch_size,
            "precision": "32-true",
        },
        wandb=wandb_info,
    )
    return run.store.write(record)


# what the worker's result says of the run, kept in the record's ``pipeline.nemo``
NEMO_FACTS = ("nemo_version", "torch_version", "lightning_version", "config_sha256",
              "init_sha256", "parameters", "steps", "kept")  # fmt: skip
MODEL_CLASSES = {
    "sortformer": "nemo.collections.asr.models.SortformerEncLabelModel",
    "msdd": "nemo.collections.asr.models.EncDecDiarLabelModel",
}


def _empty(uri: str):
    from pyannote.core import Annotation

    return Annotation(uri=uri)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def _start_wandb(run: ActiveRun) -> None:
    """The run's W&B logger (offline without a key), continuing an interrupted attempt's run."""
    if not run.options.wandb:
        return
    from bench.runner.tracking import make_logger

    id_file = run.run_dir / "wandb-id"
    wandb_id = id_file.read_text().strip() if id_file.is_file() else None
    config = {
        "recipe": run.recipe.resolved(),
        "recipe_hash": run.recipe.content_hash(),
        "identity": run.identity.as_dict(),
        "dataset_fingerprint": run.split.fingerprint,
        "demo": run.demo,
        "overrides": run.overrides,
        "toolkit": "nemo",
    }
    run.logger = make_logger(run.run_dir, run.stem, config, wandb_id)
    atomic_write_text(id_file, run.logger.experiment.id)


__all__ = ["NemoPlan", "effective_nemo", "epoch_row", "resolve_nemo", "run_nemo"]
