"""A pretrained pipeline as a run (:class:`bench.recipe.PretrainedPipeline`): its identity from
what it is (a folder's content hash, a hub commit), loaded with the trust check, re-tuned on dev
when asked, applied to the test files (and ``--also-test`` splits) with the recipes' Scorer, and
recorded like a recipe's run (kind ``pipeline``), so the leaderboard ranks it and the gate
judges it beside them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.io import cache_root
from bench.recipe import FieldRefusal, PretrainedPipeline, RecipeError
from bench.results import (
    AlsoTest,
    Override,
    PipelineSetup,
    ScoreReport,
    TestScores,
    ok_record,
    record_stem,
)
from bench.results.identity import identify_pipeline
from bench.runner.device import device_description
from bench.runner.options import RunOptions, extra_splits

if TYPE_CHECKING:
    from bench.evaluation.pipeline import HypothesisSets
    from bench.runner.active import ActiveRun

# run options that train, and so do not apply to a pipeline (said once, never silently)
TRAINING_OPTIONS = ("epochs", "max_batches", "precision")


def effective_pipeline(
    spec: PretrainedPipeline, options: RunOptions, path: Path
) -> tuple[PretrainedPipeline, dict[str, Override], list[str]]:
    """``spec`` with the command line's overrides that apply (``--seed``, and ``--tune-trials``
    when it re-tunes), what changed, and the options that do not apply (they train)."""
    if not options.pipeline:
        raise RecipeError(f"{path}: a PretrainedPipeline is the pipeline stage: --no-pipeline "
                          "leaves it nothing to run")  # fmt: skip
    if options.embedding:
        raise RecipeError(f"{path}: --embedding does not apply to a PretrainedPipeline (its "
                          "embedding is the pipeline's)")  # fmt: skip
    changes: dict[str, object] = {}
    if options.seed is not None:
        changes["seed"] = options.seed
    if options.tune_trials is not None and spec.retune:
        changes["tune_trials"] = options.tune_trials
    changes = {k: v for k, v in changes.items() if v != getattr(spec, k)}
    applied: dict[str, Override] = {
        k: {"declared": getattr(spec, k), "ran": v} for k, v in changes.items()
    }
    ignored = [f"--{n.replace('_', '-')}" for n in TRAINING_OPTIONS if getattr(options, n)]
    if options.tune_trials is not None and not spec.retune:
        ignored.append("--tune-trials (retune=False)")
    return spec.with_overrides(**changes), applied, ignored


def content(spec: PretrainedPipeline, path: Path) -> str:
    """What the pipeline is: the sha256 of a folder's files, or a hub repository's commit."""
    from bench.models import hub
    from bench.results.identity import tree_sha256

    if spec.path is not None:
        folder = Path(spec.path).expanduser()
        if not folder.is_dir():
            raise FieldRefusal(("path",), f"{folder}: no such folder").located(path)
        return tree_sha256(folder)
    try:
        found = hub.resolve(spec.id, filename="config.yaml", field="id", revision=spec.revision,
                            token_env=spec.token_env)  # fmt: skip
    except hub.ResolveError as error:
        raise RecipeError(f"{path}: {error}") from None
    return f"{found.id}@{found.revision}"


def resolve_pipeline(run: ActiveRun) -> None:
    """A pipeline run's overrides, identity and file names."""
    spec, run.overrides, ignored = effective_pipeline(run.declared, run.options, run.path)
    run.recipe = spec
    if ignored:
        run.report.say(f"{spec.name}: a pretrained pipeline is not trained: "
                       f"{', '.join(ignored)} do(es) not apply")  # fmt: skip
    run.identity = identify_pipeline(spec, run.split.fingerprint, content(spec, run.path))
    run.stem = record_stem(run.identity, spec.name, run.split.fingerprint)
    run.run_dir = run.store.staging_dir(run.stem) if run.options.force else run.final_dir


def _tunable(pipeline: Any, spec: PretrainedPipeline) -> tuple[Any, Any, str, Any]:
    """The segmentation model, embedding, its name and (VBx) PLDA of a pipeline bench can
    re-tune: a SpeakerDiarization with agglomerative or VBx clustering."""
    from pyannote.audio.pipelines.speaker_diarization import SpeakerDiarization

    clustering = getattr(pipeline, "klustering", None)
    tunable = ("AgglomerativeClustering", "VBxClustering")
    if not isinstance(pipeline, SpeakerDiarization) or clustering not in tunable:
        raise RecipeError(
            f"{spec.name}: retune=True needs a SpeakerDiarization pipeline with agglomerative "
            f"or VBx clustering (this one: {type(pipeline).__name__}, {clustering})"
        )
    plda = pipeline._plda if clustering == "VBxClustering" else None
    return pipeline._segmentation.model, pipeline._embedding, str(pipeline.embedding), plda


def evaluate_pretrained(run: ActiveRun) -> HypothesisSets:
    """Load, (re-tune,) apply and score the pipeline; return the hypotheses."""
    import torch

    from bench.data.audio import AudioCache
    from bench.deploy.load import load_pipeline
    from bench.evaluation.pipeline import apply_to_test, pipeline_file, plain, score_splits
    from bench.evaluation.tuning import tune

    spec: PretrainedPipeline = run.recipe
    started = time.perf_counter()
    loaded = load_pipeline(spec.path or spec.id, trust=spec.trust, revision=spec.revision,
                           token_env=spec.token_env)  # fmt: skip
    device = torch.device("cuda" if run.accelerator == "gpu" else "cpu")
    pipeline = loaded.pipeline.to(device)
    audio = AudioCache(cache_root(run.options.cache_dir) / "audio", run.split.every_file())
    tuning, dev = None, {}
    if spec.retune:
        model, embedder, name, plda = _tunable(pipeline, spec)
        files = [pipeline_file(rec, audio, with_reference=True) for rec in run.split.files("dev")]
        run.report.say(f"re-tuning on dev ({spec.tune_trials[0]}+{spec.tune_trials[1]} trials)")
        pipeline, tuning, dev = tune(
            model, embedder, files, spec.tune_trials, spec.seed, name, plda=plda
        )
    with run.timed("pipeline"):
        test, rtf, hypotheses = apply_to_test(pipeline, run.split.files("test"), audio)
        extra, found = score_splits(pipeline, extra_splits(run.options, run.split), audio)
    report = ScoreReport.model_validate(test)
    run.report.scores("pretrained pipeline", report)
    run.scores = TestScores(pipeline=report)
    run.also_test = {k: AlsoTest.model_validate(v) for k, v in extra.items()}
    setup: PipelineSetup = {
        "source": {
            "kind": loaded.kind,
            "ref": loaded.ref,
            "content": run.identity.init_sha256,
            **loaded.info,
        },
        "class": f"{type(pipeline).__module__}.{type(pipeline).__qualname__}",
        "params": pipeline.parameters(instantiated=True),
        "rtf": rtf,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "wall_time_s": {"total": round(time.perf_counter() - started, 3)},
    }
    if tuning is not None:
        setup["tuning"] = tuning
    run.pipeline = plain(setup)
    return {"dev": dev, "test": hypotheses, "also_test": found}


def record_pipeline(run: ActiveRun, hypotheses: HypothesisSets) -> Path:
    """Write the hypotheses and the pipeline run's result."""
    from bench.runner.recording import write_hypotheses

    outputs = write_hypotheses(run.run_dir, run.stem, hypotheses)
    if run.run_dir != run.final_dir:
        run.store.swap_in(run.run_dir, run.stem)
        run.run_dir = run.final_dir
    result = ok_record(
        **run.record_fields(),
        test=run.scores,
        pipeline=run.pipeline,
        also_test=run.also_test,
        outputs=outputs,
        device={**device_description(run.accelerator), "devices": 1, "world_size": 1},
    )
    return run.store.write(result)
