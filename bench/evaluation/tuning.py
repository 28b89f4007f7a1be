"""Tuning the pipeline on dev: optuna (TPE, seeded) over pyannote.pipeline's parameters in two
stages (segmentation threshold with oracle clustering, then the clustering threshold), sharing one
embedding pass; the tuned parameters, each stage's start and best, and dev DER before and after."""

from __future__ import annotations

import time
from typing import Any

from pyannote.audio import Model
from pyannote.audio.core.inference import BaseInference
from pyannote.audio.core.plda import PLDA
from pyannote.pipeline import Optimizer

from bench.evaluation.pipeline import (
    DEFAULT_TRIALS,
    FROZEN_CLUSTERING,
    INITIAL_SEGMENTATION_THRESHOLD,
    BenchSpeakerDiarization,
    Hypotheses,
    plain,
    quiet_pipeline,
)
from bench.evaluation.scoring import Scorer
from bench.models.embeddings import DEFAULT_EMBEDDING
from bench.results import Tuning, TuningStage


def score_dev(
    pipeline: BenchSpeakerDiarization, params: dict, files: list[dict], variants=None
) -> tuple[dict[str, Any], Hypotheses]:
    """Dev scores of ``pipeline`` with ``params`` (training mode: cached segmentations and, for
    an unchanged segmentation threshold, embeddings) and its hypotheses."""
    pipeline.instantiate(params)
    pipeline.training = True
    scorer = Scorer({} if variants is None else variants)
    hypotheses: Hypotheses = {}
    try:
        for file in files:
            hypothesis = pipeline(file)
            hypothesis.uri = file["uri"]
            hypotheses[file["uri"]] = hypothesis
            scorer.add(file["uri"], file["annotation"], hypothesis, file["annotated"])
    finally:
        pipeline.training = False
    return scorer.report(), hypotheses


def _sampler(seed: int, trials: int):
    from optuna.samplers import TPESampler

    # optuna's default of 10 random start-up trials would make a 10-trial study a random search
    return TPESampler(seed=seed, n_startup_trials=max(1, min(10, trials // 2)))


def tune_stage(
    pipeline: BenchSpeakerDiarization,
    files: list[dict],
    frozen: dict,
    start: dict,
    trials: int,
    seed: int,
) -> tuple[dict, float, float]:
    """Optimise the non-frozen parameters of ``pipeline`` on ``files``; the first trial is
    ``start``. Returns the best parameters (frozen ones included), their dev DER and the dev DER
    of ``start``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pipeline.freeze(frozen)
    optimizer = Optimizer(pipeline, sampler=_sampler(seed, trials))
    result = optimizer.tune(files, n_iterations=trials, warm_start=start, show_progress=False)
    first = optimizer.study_.trials[0].value
    return result["params"], float(result["loss"]), float(first)


def _merge(base: dict, update: dict) -> dict:
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for key, value in update.items():
        if isinstance(value, dict):
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = value
    return merged


@quiet_pipeline()
def tune(
    segmentation: Model,
    embedding: BaseInference,
    dev: list[dict],
    trials: tuple[int, int] = DEFAULT_TRIALS,
    seed: int = 0,
    embedding_name: str = DEFAULT_EMBEDDING,
    batch_size: int = 32,
    plda: PLDA | None = None,
    dev_before: bool = False,
) -> tuple[BenchSpeakerDiarization, Tuning, Hypotheses]:
    """Tune the pipeline on the ``dev`` files (dicts from :func:`pipeline_file` with reference)
    in the reference write-up's two stages; return it instantiated with the tuned parameters,
    the record, and its dev hypotheses. With a ``plda`` the pipeline clusters with VBx, and the
    second stage tunes its ``threshold``, ``Fa`` and ``Fb``. ``dev_before``: score dev at the
    initial parameters even where that costs one more embedding pass of dev (a multilabel model
    whose threshold moved), so that the record can say whether tuning carried over to test."""
    started = time.perf_counter()
    # pyannote's training caches live in the file dicts and do not know which model filled them
    dev = [{k: v for k, v in file.items() if not k.startswith("training_cache/")} for file in dev]
    kwargs = {
        "embedding_name": embedding_name,
        "segmentation_batch_size": batch_size,
        "embedding_batch_size": batch_size,
    }
    clustering = "AgglomerativeClustering" if plda is None else "VBxClustering"

    def build() -> BenchSpeakerDiarization:
        """A fresh pipeline of these models (a tuned one keeps its stage's frozen parameters)."""
        return BenchSpeakerDiarization(
            segmentation, embedding, clustering=clustering, plda=plda, **kwargs
        )

    pipeline = build()
    initial = pipeline.initial_parameters()
    stages: list[TuningStage] = []

    # stage 1: segmentation threshold with oracle clustering (multilabel models only)
    segmentation_params = dict(initial["segmentation"])
    if pipeline.powerset or trials[0] <= 0:
        stages.append(
            {
                "name": "segmentation",
                "trials": 0,
                "skipped": "powerset model: no segmentation threshold to tune"
                if pipeline.powerset
                else "no trials requested",
            }
        )
    else:
        oracle = BenchSpeakerDiarization(
            segmentation, embedding, clustering="OracleClustering", **kwargs
        )
        clock = time.perf_counter()
        best, loss, start = tune_stage(
            oracle,
            dev,
            frozen={"segmentation": {"min_duration_off": 0.0}},
            start={"segmentation": {"threshold": INITIAL_SEGMENTATION_THRESHOLD}},
            trials=trials[0],
            seed=seed,
        )
        segmentation_params = {
            "threshold": float(best["segmentation"]["threshold"]),
            "min_duration_off": 0.0,
        }
        stages.append(
            {
                "name": "segmentation",
                "clustering": "OracleClustering",
                "tuned": ["segmentation.threshold"],
                "frozen": {"segmentation.min_duration_off": 0.0},
                "trials": trials[0],
                "start": {"segmentation.threshold": INITIAL_SEGMENTATION_THRESHOLD},
                "start_dev_der": start,
                "best": plain(best),
                "dev_der": loss,
                "wall_time_s": round(time.perf_counter() - clock, 3),
            }
        )

    # stage 2: the clustering's parameters (AHC: the threshold, centroid linkage and minimum
    # cluster size frozen; VBx: threshold, Fa, Fb), segmentation frozen; its first trial embeds
    # dev at the stage-1 threshold and every later trial reuses those embeddings
    clustering_frozen = {k: initial["clustering"][k] for k in FROZEN_CLUSTERING[clustering]}
    free = {k: v for k, v in initial["clustering"].items() if k not in clustering_frozen}
    params = _merge(initial, {"segmentation": segmentation_params})
    if trials[1] > 0:
        clock = time.perf_counter()
        best, loss, start = tune_stage(
            pipeline,
            dev,
            frozen={"segmentation": segmentation_params, "clustering": clustering_frozen},
            start={"clustering": free},
            trials=trials[1],
            seed=seed,
        )
        params = _merge(params, {"clustering": {k: best["clustering"][k] for k in free}})
        stages.append(
            {
                "name": "clustering",
                "clustering": clustering,
                "tuned": [f"clustering.{k}" for k in free],
                "frozen": {
                    **{f"segmentation.{k}": v for k, v in segmentation_params.items()},
                    **{f"clustering.{k}": v for k, v in clustering_frozen.items()},
                },
                "trials": trials[1],
                "start": {f"clustering.{k}": v for k, v in free.items()},
                "start_dev_der": start,
                "best": plain(best),
                "dev_der": loss,
                "wall_time_s": round(time.perf_counter() - clock, 3),
            }
        )
    else:
        stages.append({"name": "clustering", "trials": 0, "skipped": "no trials requested"})

    after, hypotheses = score_dev(pipeline, params, dev)
    # the initial parameters share the tuned ones' embeddings only at the same threshold
    before, before_cost = None, "none: the tuned pass's embeddings"
    if segmentation_params == initial["segmentation"]:
        before = after if params == initial else score_dev(pipeline, initial, dev)[0]
    elif dev_before:  # the dev files' cached segmentation is reused
        before = score_dev(build(), initial, dev)[0]
        before_cost = "one more embedding pass of dev (the tuned threshold differs)"
    tuned = build().instantiate(params)
    record = {
        "trials": {"segmentation": stages[0]["trials"], "clustering": stages[1]["trials"]},
        "trials_requested": list(trials),
        "seed": seed,
        "sampler": "optuna TPESampler(seed, n_startup_trials=min(10, trials // 2))",
        "initial_params": plain(initial),
        "params": plain(params),
        "dev_der_before": None if before is None else before["DER"],
        "dev_before_cost": before_cost if before is not None else None,
        "dev_der_after": after["DER"],
        "dev_before": before,
        "dev_after": after,
        "dev_files": len(dev),
        "stages": stages,
        "wall_time_s": round(time.perf_counter() - started, 3),
    }
    return tuned, record, hypotheses


def stage_summaries(tuning: Tuning) -> list[str]:
    """One line per tuned stage of a tuning record: the parameter's move and dev DER's."""
    lines = []
    for stage in tuning.get("stages", []):
        if "start" not in stage:
            continue
        moves = []
        for name, start in stage["start"].items():
            section, _, key = name.partition(".")
            moves.append(f"{name} {start:.4g} -> {stage['best'][section][key]:.4g}")
        how = " with oracle clustering" if stage["clustering"] == "OracleClustering" else ""
        lines.append(
            f"{', '.join(moves)}: dev DER{how} "
            f"{stage['start_dev_der']:.4f} -> {stage['dev_der']:.4f}"
        )
    return lines
