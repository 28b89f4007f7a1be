"""One run, end to end, as named stages: resolve -> assemble -> train -> evaluate -> pipeline ->
record."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from bench.data import Split
from bench.io import cache_root
from bench.recipe import FieldRefusal, NemoRecipe, PretrainedPipeline, RecipeError, load_recipe
from bench.results import (
    DER_KEY,
    AlsoTest,
    Row,
    ScoreReport,
    TestScores,
    carryover,
    record_stem,
)
from bench.runner.active import ActiveRun, _ddp_child
from bench.runner.console import Reporter, _fmt, quiet_known_warnings
from bench.runner.device import choose_accelerator
from bench.runner.options import RunOptions, effective_recipe, extra_splits, resolve_split
from bench.runner.recording import add_also_test, record, record_failure, write_hypotheses
from bench.runner.state import RunState

if TYPE_CHECKING:  # the stages import torch on use, so that a finished run skips without it
    from bench.training.task import BenchDiarization


class RunFailed(RuntimeError):
    """A run that ended without a result; its failure was recorded at ``result``."""

    def __init__(self, message: str, result: Path | None):
        super().__init__(message)
        self.result = result


class Diverged(FloatingPointError):
    """Training diverged (non-finite values, or the run's own evidence says so)."""


# ---------------------------------------------------------------------------------------------
# Stages


def resolve(run: ActiveRun) -> None:
    """Load the recipe, apply caps and overrides, and fix the run's identity and file names."""
    with run.timed("load"):
        run.declared = load_recipe(run.path)
    run.accelerator = choose_accelerator(run.options.device)
    if isinstance(run.declared, PretrainedPipeline):  # a pipeline as shipped: no training
        from bench.runner.pipelines import resolve_pipeline

        resolve_pipeline(run)
        return
    if isinstance(run.declared, NemoRecipe):  # trained and applied by NeMo, in its own venv
        from bench.runner.nemo import resolve_nemo

        resolve_nemo(run)
        return
    with run.timed("load"):
        run.recipe, run.overrides = effective_recipe(run.declared, run.options, run.demo)
    from bench.results.identity import identify, precision

    try:
        run.precision = precision(run.recipe, run.accelerator)
    except ValueError as error:  # named like every recipe refusal: the line, or the option
        from bench.recipe import field_location

        where = (
            f"--precision {run.recipe.precision}"
            if "precision" in run.overrides
            else f"{field_location(run.path, ('precision',))}: field 'precision'"
        )
        raise RecipeError(f"{where}: {error}") from None
    run.identity = identify(
        run.recipe,
        run.split.fingerprint,
        run.split.root,
        max_batches=run.options.max_batches,
        world_size=run.options.devices,
        precision=run.precision,
    )
    run.stem = record_stem(run.identity, run.recipe.name, run.split.fingerprint)
    from bench.recipe.budget import budget

    train_seconds = sum(r.annotated.duration() for r in run.split.files("train"))
    run.budget = budget(
        run.recipe,
        train_seconds,
        max_batches=run.options.max_batches,
        world_size=run.options.devices,
        recipe_file=run.path,
    )
    # a forced run trains beside the result it replaces, which stays until the new one is written
    run.run_dir = run.store.staging_dir(run.stem) if run.options.force else run.final_dir


def existing_result(run: ActiveRun) -> Path | None:
    """The good result of this identity, if one is recorded; an unreadable one counts as
    absent (it is named, and the run goes ahead)."""
    path, unreadable = run.store.existing(run.stem)
    if unreadable is not None:
        run.report.warn(f"{unreadable.reason}; running again")
    return path


@contextmanager
def run_lock(run: ActiveRun) -> Iterator[None]:
    """One process at a time per run identity: a second one waits for the first, then skips."""
    if _ddp_child():  # the launching process holds it for the whole DDP group
        yield
        return

    def waiting() -> None:
        run.report.say(f"{run.stem}: another bench process is running it; waiting for it")

    with run.store.lock(run.stem, waiting):
        yield


def announce(run: ActiveRun) -> None:
    """Say what is about to run: recipe, split, seed, device, budget and its warnings."""
    recipe, split = run.recipe, run.split
    run.report.say(
        f"{recipe.name} ({recipe.content_hash()}) on split {split.name} ({split.fingerprint}), "
        f"seed {recipe.seed}, {run.accelerator}, {run.precision}"
    )
    changes = ", ".join(f"{k} {v['declared']} -> {v['ran']}" for k, v in run.overrides.items())
    if run.demo:
        run.report.say(
            "runs are capped to finish in minutes on a CPU: " + changes
            if changes
            else "embedded demo data",
            "yellow",
            "demo split:",
        )
    elif changes:
        run.report.say(f"overrides: {changes}")
    b = run.budget or {}
    if recipe.epochs:
        run.report.say(
            f"budget: {b['optimizer_steps']} optimizer steps ({b['steps_per_epoch']} per epoch x "
            f"{recipe.epochs}), {b['samples_seen']} chunks, {b['audio_hours_seen']:g} h of audio "
            f"seen ({b['train_hours']:g} h of train audio), about {b['step_memory_gib']:g} GiB a "
            "training step"
        )
    for warning in b.get("warnings") or []:
        run.report.warn(warning)


def assemble(run: ActiveRun, index_dir: Path | None = None) -> BenchDiarization:
    """Check the run fits the machine, then build its task and initial model
    (:func:`bench.training.assemble.assemble`: the same function the GPU check and the tests
    call). A value the model or the machine refuses is named at its recipe line."""
    from bench.runner.limits import check_memory, check_plda
    from bench.training.assemble import assemble as build

    try:
        check_memory(run)
        check_plda(run)
        with run.timed("prepare"):
            built = build(run.recipe, run.split, cache_root(run.options.cache_dir), index_dir)
    except FieldRefusal as refusal:
        raise refusal.located(run.path) from None
    run.audio, run.model, run.init = built.audio, built.model, built.init
    for note in built.audio.repaired:
        run.report.warn(note)
    return built.task


def train(run: ActiveRun) -> None:
    """Validate the initial model, score it on test, train, keep the best checkpoint."""
    from bench.evaluation.chunks import evaluate_chunks
    from bench.training.fit import fit

    recipe, run_dir = run.recipe, run.run_dir
    if run.options.force and not _ddp_child():  # DDP's extra processes re-run this command
        shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        run.resume = RunState.load(run_dir)
    except ValueError as error:
        aside = RunState.set_aside(run_dir)
        run.report.warn(f"{error}; moved to {aside}, the run starts again")
        run.resume = None
    source = run.init.source
    run.report.say(f"initial weights: {source.id} ({source.origin}): {run.init.reason}")
    loggers = []
    if run.options.wandb:
        from bench.runner.tracking import make_logger

        config = {
            "recipe": recipe.resolved(),
            "recipe_hash": recipe.content_hash(),
            "identity": run.identity.as_dict(),
            "dataset_fingerprint": run.split.fingerprint,
            "demo": run.demo,
            "overrides": run.overrides,
            "initial_weights": run.init.as_dict(),
        }
        wandb_id = run.resume.wandb_id if run.resume else None
        run.logger = make_logger(run_dir, run.stem, config, wandb_id)
        loggers.append(run.logger)

    def on_epoch(row: Row) -> None:
        run.epochs.append(row)
        run.report.epoch(row)

    def before_training(initial: Row) -> None:
        run.initial_validation = initial
        der = DER_KEY
        threshold = initial[f"{der}/Threshold"] if recipe.mode == "multilabel" else None
        run.initial_test.update(
            evaluate_chunks(
                run.model, run.split.files("test"), run.audio, recipe.duration, threshold
            )
        )
        run.report.say(
            f"before training: dev DER {_fmt(initial[der])}, test DER "
            f"{_fmt(run.initial_test['DER'])}"
        )
        wandb_id = run.logger.experiment.id if run.logger else None
        RunState(initial, dict(run.initial_test), wandb_id).save(run_dir)

    if run.resume is not None:
        run.initial_test.update(run.resume.initial_test)
        run.initial_validation = run.resume.initial_validation
        run.report.say(f"resuming from {run_dir / 'checkpoints' / 'last.ckpt'}")
    with run.timed("train"):
        run.fitted = fit(
            recipe,
            run.model,
            run_dir,
            run.accelerator,
            loggers,
            on_epoch,
            before_training,
            progress=run.options.progress,
            max_batches=run.options.max_batches,
            initial=run.resume.initial_validation if run.resume else None,
            devices=run.options.devices,
            strategy=run.options.strategy,
        )
    if run.fitted.rank != 0:  # other DDP processes: training is their whole job
        run.ddp_child_done = True
        raise SystemExit(0)
    run.epochs = run.fitted.epochs
    check_divergence(run)


def check_divergence(run: ActiveRun) -> None:
    """Refuse to evaluate a run whose own record says it diverged (bench.training.divergence)."""
    from bench.training.divergence import divergence

    fitted = run.fitted
    reason = divergence(fitted.initial, fitted.epochs, run.recipe.mode, fitted.best_epoch)
    if reason:
        raise Diverged(reason)


def evaluate(run: ActiveRun) -> None:
    """Chunk-level test DER of the best checkpoint, at its dev-optimal threshold."""
    from bench.evaluation.chunks import evaluate_chunks

    fitted, recipe = run.fitted, run.recipe
    chosen = fitted.best or fitted.initial  # epochs=0: the initial weights are the ones evaluated
    threshold = chosen[f"{DER_KEY}/Threshold"] if recipe.mode == "multilabel" else None
    with run.timed("test"):
        test = evaluate_chunks(
            run.model, run.split.files("test"), run.audio, recipe.duration, threshold
        )
    chunk = ScoreReport.model_validate(test)
    run.report.scores("chunk-level", chunk)
    before = ScoreReport.model_validate(run.initial_test) if run.initial_test else None
    run.scores = TestScores(chunk=chunk, chunk_before_training=before)


def pipeline(run: ActiveRun) -> None:
    """Full-file DER: the diarization pipeline with the best checkpoint, tuned on dev, scored on
    full test files (see :mod:`bench.evaluation.pipeline`)."""
    spec = run.recipe.pipeline
    if spec is None:
        return
    from bench.evaluation.diarize import evaluate_pipeline
    from bench.evaluation.tuning import stage_summaries

    clustering = "AHC" if spec.clustering == "ahc" else f"VBx (PLDA: {spec.plda})"
    run.report.say(
        f"pipeline: {spec.embedding} embedding, {clustering}, tuning on dev "
        f"({spec.tune_trials[0]}+{spec.tune_trials[1]} trials), then full test files"
    )
    with run.timed("pipeline"):
        record, hypotheses = evaluate_pipeline(
            run.model,
            run.split,
            run.audio,
            embedding=spec.embedding,
            trials=spec.tune_trials,
            seed=run.recipe.seed,
            device="cuda" if run.accelerator == "gpu" else "cpu",
            also_test=extra_splits(run.options, run.split),
            plda=spec.plda,
            cache=cache_root(run.options.cache_dir),
            token_env=run.recipe.token_env,
            # threads: the process's own, all cores for one run and a share of them under
            # --jobs (2 threads on 2 cores: 0.72x the wall time of 1, README "Speed")
        )
    run.outputs = write_hypotheses(run.run_dir, run.stem, hypotheses)
    run.also_test = {k: AlsoTest.model_validate(v) for k, v in record.pop("also_test").items()}
    for extra in run.also_test.values():
        run.report.scores(f"also tested on {extra.dataset['name']}", extra.pipeline)
    test = ScoreReport.model_validate(record.pop("test"))
    initial = ScoreReport.model_validate(record.pop("test_initial"))
    run.report.scores("full-file pipeline", test)
    variant = test.variant
    tuning = record["tuning"]
    run.report.say(
        f"collar 0.25 s, no overlap: DER {_fmt(variant.DER if variant else None)}  | tuning: "
        f"dev DER {_fmt(tuning['dev_der_before'])} -> {_fmt(tuning['dev_der_after'])}, test DER "
        f"{_fmt(initial.DER)} -> {_fmt(test.DER)}"
    )
    for line in stage_summaries(tuning):
        run.report.say(f"  tuned {line}")
    run.scores.pipeline = test
    run.scores.pipeline_initial = initial
    run.pipeline = record
    carried = carryover(run.scores, tuning)
    if carried is not None and carried.overfit:
        run.report.warn(carried.text)


# ---------------------------------------------------------------------------------------------
# One run


def run_stages(run: ActiveRun) -> Path:
    """A recipe's stages, in order; the result's path."""
    announce(run)
    assemble(run)
    train(run)
    evaluate(run)
    pipeline(run)
    return record(run)


def run_pretrained(run: ActiveRun) -> Path:
    """A pretrained pipeline's stages (:mod:`bench.runner.pipelines`); the result's path."""
    from bench.runner.pipelines import evaluate_pretrained, record_pipeline

    spec = run.recipe
    run.report.say(
        f"{spec.name} ({spec.content_hash()}): pretrained pipeline {spec.path or spec.id} "
        f"({run.identity.init_sha256}) on split {run.split.name} ({run.split.fingerprint}), "
        f"{'re-tuned on dev' if spec.retune else 'as shipped'}, {run.accelerator}"
    )
    hypotheses = evaluate_pretrained(run)
    return record_pipeline(run, hypotheses)


def _stages_of(run: ActiveRun):
    """The stages a resolved run goes through: a recipe's, a pipeline's or a NeMo run's."""
    if run.nemo is not None:
        from bench.runner.nemo import run_nemo

        return run_nemo
    return run_pretrained if run.pretrained else run_stages


def run_recipe(
    path: Path,
    options: RunOptions,
    console: Console | Reporter | None = None,
    split: tuple[Split, bool] | None = None,
) -> Path:
    """Train and evaluate one recipe file; return the path of its result JSON.

    ``split`` is the (split, is_demo) pair from :func:`resolve_split`, resolved here when absent.
    A recipe that cannot be loaded, raises, exits or diverges is recorded as a result with status
    "failed" or "diverged" (reason and traceback), then :class:`RunFailed` is raised. Ctrl-C is
    recorded too, then stops the command.
    """
    report = console if isinstance(console, Reporter) else Reporter(console)
    quiet_known_warnings()
    split_, demo = split or resolve_split(options)
    run = ActiveRun(Path(path), options, split_, demo, report, options.results.resolve())
    try:
        resolve(run)
        if not options.force and (done := existing_result(run)):
            report.say(f"{run.recipe.name}: skipped, its result exists (--force re-runs it)")
            if options.also_test:
                with run_lock(run):
                    add_also_test(run, done)
            report.result(done)
            return done
        with run_lock(run):
            if not options.force and (done := existing_result(run)):  # the other process's
                report.say(f"{run.recipe.name}: skipped, another process recorded it")
                report.result(done)
                return done
            # DDP's extra processes re-run this command: the launching process owns the files
            for left in [] if _ddp_child() else run.store.clear_leftovers(run.stem):
                report.say(f"removed {left}: left by an earlier killed or failed run")
            try:
                out = _stages_of(run)(run)
            except BaseException:
                if options.force and not _ddp_child():  # --force never resumes
                    run.store.clear_leftovers(run.stem)
                raise
        report.result(out)
        return out
    except KeyboardInterrupt:
        record_failure(run, KeyboardInterrupt("interrupted (Ctrl-C)"))
        raise
    except (Exception, SystemExit) as error:
        if run.ddp_child_done:
            raise
        if isinstance(error, SystemExit):  # a recipe or library that exits ends only its run
            error = RuntimeError(f"sys.exit({error.code!r}) was called during the run")
        out = record_failure(run, error)
        status = "diverged" if isinstance(error, FloatingPointError) else "failed"
        named = isinstance(error, RecipeError)  # it names the file and line itself
        report.say(str(error) if named else f"{path}: {error}", "red", f"{status}:")
        if out is not None:
            report.result(out)
        raise RunFailed(str(error), out) from error
