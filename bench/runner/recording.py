"""The end of a run: its hypotheses written, the W&B run closed, its result (or its failure)
recorded through the results store; and ``--also-test`` splits added to a finished result."""

from __future__ import annotations

import hashlib
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from bench.data import rttm_text
from bench.io import atomic_write_text, cache_root
from bench.results import (
    EPOCH_COLUMNS,
    AlsoTest,
    HypothesisFile,
    Outputs,
    WandbInfo,
    failed_record,
    hypothesis_path,
    ok_record,
    progress_notes,
    read_record,
)
from bench.runner.device import choose_accelerator, device_description
from bench.runner.options import extra_splits

if TYPE_CHECKING:  # stages imports this module
    from bench.evaluation.pipeline import HypothesisSets
    from bench.runner.active import ActiveRun


def write_hypotheses(run_dir: Path, stem: str, hypotheses: HypothesisSets) -> Outputs:
    """Write the pipeline's hypothesis RTTMs under ``run_dir``; return the record's
    ``outputs``: paths relative to the results folder (where ``run_dir`` ends up) and sha256."""
    outputs: Outputs = {"format": "rttm"}
    parts = [(("dev",), hypotheses["dev"]), (("test",), hypotheses["test"])]
    parts += [(("also_test", fp), found) for fp, found in hypotheses["also_test"].items()]
    for keys, found in parts:
        entries: dict[str, HypothesisFile] = {}
        for uri, annotation in found.items():
            relative = hypothesis_path(stem, "/".join(keys), uri)
            text = rttm_text(annotation)
            atomic_write_text(run_dir / relative.relative_to(Path("runs") / stem), text)
            entries[uri] = {
                "path": relative.as_posix(),
                "sha256": hashlib.sha256(text.encode()).hexdigest(),
            }
        target = outputs
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = entries
    return outputs


def add_also_test(run: ActiveRun, path: Path) -> None:
    """Score a finished run's tuned pipeline (its best checkpoint, embedding and recorded
    parameters) on the ``--also-test`` splits its result lacks, and add them to the result.
    Whatever goes wrong is a warning: the finished result stays as it is."""
    try:
        _add_also_test(run, path)
    except Exception as error:
        run.report.warn(f"--also-test not added to {path.name}: {error}")


def _add_also_test(run: ActiveRun, path: Path) -> None:
    from bench.data.audio import AudioCache
    from bench.evaluation.diarize import apply_tuned

    result = read_record(path)
    done = result.also_test
    splits = [s for s in extra_splits(run.options, run.split) if s.fingerprint not in done]
    tuned = result.pipeline
    if not splits:
        return
    if not tuned:
        raise ValueError("the result has no pipeline scores (the run had no pipeline)")
    if result.kind == "pipeline":  # its pipeline is loaded, not rebuilt from a checkpoint
        raise ValueError("a pretrained pipeline's result: --force runs it again with them")
    if result.kind == "nemo":
        raise ValueError("a NeMo run's result: --also-test does not apply to NeMo runs yet")
    model = result.best_checkpoint
    identity = result.run_identity
    if model is None and identity is not None and identity.epochs == 0:
        model = (result.initial_weights or {}).get("path")  # evaluated as they are
    if not model or not Path(model).exists():
        raise ValueError(f"the run's weights ({model}) are gone: --force re-runs it")
    names = ", ".join(s.name for s in splits)
    run.report.say(f"{run.recipe.name}: adding --also-test {names} to its result")
    audio = AudioCache(
        cache_root(run.options.cache_dir) / "audio", [r for s in splits for r in s.every_file()]
    )
    acc = choose_accelerator(run.options.device)
    with run.timed("also_test"):
        extra, found = apply_tuned(
            model, tuned, splits, audio, device="cuda" if acc == "gpu" else "cpu"
        )
    written = write_hypotheses(run.final_dir, run.stem, {"dev": {}, "test": {}, "also_test": found})
    outputs = result.outputs or {"format": "rttm"}
    outputs.setdefault("also_test", {}).update(written["also_test"])
    added = {k: AlsoTest.model_validate(v) for k, v in extra.items()}
    for entry in added.values():
        run.report.scores(f"also tested on {entry.dataset['name']}", entry.pipeline)
    run.store.write(result.model_copy(update={"also_test": {**done, **added}, "outputs": outputs}))


def _finish_logger(run: ActiveRun, exit_code: int = 0) -> WandbInfo | None:
    if run.logger is None:
        return None
    from bench.runner.tracking import finish

    logger, run.logger = run.logger, None
    if exit_code:
        logger.experiment.finish(exit_code=exit_code)
        return None
    metrics = {
        f"test/{kind}/{k}": getattr(report, k)
        for kind in ("chunk", "pipeline")
        if (report := getattr(run.scores, kind)) is not None
        for k in ("DER", "Confusion", "FalseAlarm", "Miss")
    }
    logger.log_metrics(metrics)
    return finish(logger)


def record(run: ActiveRun) -> Path:
    """Move a forced run into place, then write its result (replacing the old one atomically)."""
    from bench.training.fit import dataloader_settings

    wandb_info = _finish_logger(run)
    fitted = run.fitted
    best_checkpoint = str(fitted.best_checkpoint) if fitted.best_checkpoint else None
    if run.run_dir != run.final_dir:  # --force: the new run folder replaces the old one
        run.store.swap_in(run.run_dir, run.stem)
        staged = str(run.run_dir)
        best_checkpoint = best_checkpoint and best_checkpoint.replace(staged, str(run.final_dir))
        if wandb_info:
            wandb_info["dir"] = wandb_info["dir"].replace(staged, str(run.final_dir))
        run.run_dir = run.final_dir
    if run.budget is not None:
        run.budget = {**run.budget, "optimizer_steps_run": fitted.steps}
    result = ok_record(
        **run.record_fields(),
        columns=list(EPOCH_COLUMNS),
        best_epoch=fitted.best_epoch,
        best_validation=fitted.best,
        stopped_early=fitted.stopped_early,
        best_checkpoint=best_checkpoint,
        test=run.scores,
        pipeline=run.pipeline,
        also_test=run.also_test,
        outputs=run.outputs,
        throughput=fitted.throughput,
        device={
            **device_description(run.accelerator),
            **dataloader_settings(run.recipe, run.accelerator),
            "precision": run.precision,
            "devices": run.options.devices,
            "strategy": run.options.strategy,
            "world_size": run.identity.world_size,
            "global_batch": run.identity.global_batch,
        },
        wandb=wandb_info,
    )
    for note in progress_notes(result):
        run.report.warn(note)
    try:
        return run.store.write(result)
    except OSError as error:
        raise OSError(
            f"could not write the result into {run.results_dir}: {error.strerror or error}; "
            f"the trained run is kept in {run.run_dir}: run the same command again to finish it"
        ) from error


def record_failure(run: ActiveRun, error: BaseException) -> Path | None:
    """Record a failed or diverged attempt beside (never over) a good result."""
    try:
        _finish_logger(run, exit_code=1)
    except Exception as wandb_error:  # the failure matters more than its W&B run
        run.report.warn(f"could not close the W&B run: {wandb_error}")
    diverged = isinstance(error, FloatingPointError)
    failure = failed_record(error, traceback.format_exc(), diverged, **run.record_fields())
    try:
        return run.store.write(failure)
    except OSError as write_error:
        run.report.say(f"could not record the failure: {write_error}", "red", "error:")
        return None
