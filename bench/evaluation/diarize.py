"""Full-file DER of a segmentation model: the pipeline tuned on dev (:mod:`.tuning`), applied to the
test files and the ``--also-test`` splits (:mod:`.pipeline`), scored (:mod:`.scoring`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pyannote.audio import Model

from bench.data import Split
from bench.data.audio import AudioCache
from bench.evaluation.pipeline import (
    CLUSTERING_METHOD,
    DEFAULT_TRIALS,
    MIN_CLUSTER_SIZE,
    SEGMENTATION_STEP,
    BenchSpeakerDiarization,
    Hypotheses,
    apply_to_test,
    pipeline_file,
    score_splits,
    torch_threads,
)
from bench.evaluation.tuning import tune
from bench.models.embeddings import DEFAULT_EMBEDDING, resolve_embedding
from bench.results import PipelineSetup


def apply_tuned(
    segmentation_model: Model | str | Path,
    embedding: dict[str, Any],
    params: dict,
    splits: Sequence[Split],
    audio_cache: AudioCache,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    batch_size: int = 32,
) -> tuple[dict[str, Any], dict[str, Hypotheses]]:
    """A pipeline tuned earlier (its checkpoint, embedding and recorded parameters) applied to
    more splits' test files, as :func:`evaluate_pipeline` applies it to ``also_test``.
    ``embedding`` is the recorded ``pipeline.embedding``: another file under its name (a hub
    revision that moved, a local file that changed) is refused."""
    with torch_threads(threads):
        target = _device(device)
        embedder, info = resolve_embedding(embedding["name"], device=target)
        if info.sha256 != embedding.get("sha256"):
            raise ValueError(
                f"embedding {embedding['name']!r} resolves to another file now (sha256 "
                f"{info.sha256}, recorded {embedding.get('sha256')})"
            )
        model, _ = _segmentation_model(segmentation_model)
        model.eval().to(target)
        pipeline = BenchSpeakerDiarization(
            model,
            embedder,
            embedding_name=embedding["name"],
            segmentation_batch_size=batch_size,
            embedding_batch_size=batch_size,
        ).instantiate(params)
        return score_splits(pipeline, splits, audio_cache)


def _device(device: str | torch.device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device in {"cuda", "gpu"} and not torch.cuda.is_available():
        raise ValueError("device cuda: no CUDA device is available")
    return torch.device("cuda" if device == "gpu" else device)


def _segmentation_model(model: Model | str | Path) -> tuple[Model, dict[str, Any]]:
    if isinstance(model, Model):
        return model, {"source": "in-memory model"}
    from bench.models.weights import load_initial
    from bench.recipe import Pretrained

    loaded, source = load_initial(Pretrained(id=str(model)))
    return loaded, {"source": source.id, "origin": source.origin, "sha256": source.sha256}


def evaluate_pipeline(
    segmentation_model: Model | str | Path,
    split: Split,
    audio_cache: AudioCache,
    embedding: str | None = DEFAULT_EMBEDDING,
    trials: tuple[int, int] = DEFAULT_TRIALS,
    seed: int = 0,
    device: str | torch.device = "cpu",
    batch_size: int = 32,
    threads: int | None = None,
    also_test: Sequence[Split] = (),
) -> tuple[PipelineSetup, dict[str, Any]]:
    """Tune the diarization pipeline on ``split``'s dev files, apply it to its full test files
    (and to the test files of each ``also_test`` split), and return a JSON-able record
    (embedding, tuning, test scores, RTFs, ``also_test`` scores keyed by fingerprint) and the
    hypotheses: ``{"dev": {uri: Annotation}, "test": {...}, "also_test": {fingerprint: {...}}}``.

    ``threads`` sets torch's intra-op threads for the call (restored afterwards; None keeps the
    process's, which ``OMP_NUM_THREADS`` sets)."""
    with torch_threads(threads):
        return _evaluate(
            segmentation_model,
            split,
            audio_cache,
            embedding,
            trials,
            seed,
            device,
            batch_size,
            also_test,
        )


def _evaluate(
    segmentation_model: Model | str | Path,
    split: Split,
    audio_cache: AudioCache,
    embedding: str | None,
    trials: tuple[int, int],
    seed: int,
    device: str | torch.device,
    batch_size: int,
    also_test: Sequence[Split] = (),
) -> tuple[PipelineSetup, dict[str, Any]]:
    started = time.perf_counter()
    target = _device(device)
    model, segmentation_info = _segmentation_model(segmentation_model)
    model.eval().to(target)
    embedder, info = resolve_embedding(embedding, device=target)
    dev = [pipeline_file(rec, audio_cache, with_reference=True) for rec in split.files("dev")]
    name = embedding or DEFAULT_EMBEDDING
    pipeline, tuning, dev_hypotheses = tune(model, embedder, dev, trials, seed, name, batch_size)
    clock = time.perf_counter()
    test, rtf, test_hypotheses = apply_to_test(pipeline, split.files("test"), audio_cache)
    test_time = time.perf_counter() - clock
    extra, found = score_splits(pipeline, also_test, audio_cache)
    hypotheses = {"dev": dev_hypotheses, "test": test_hypotheses, "also_test": found}
    specifications = model.specifications
    return {
        "embedding": info.as_dict(),
        "segmentation": {
            **segmentation_info,
            "powerset": bool(specifications.powerset),
            "duration": float(specifications.duration),
            "step": SEGMENTATION_STEP,
        },
        "clustering": {
            "name": "AgglomerativeClustering",
            "method": CLUSTERING_METHOD,
            "min_cluster_size": MIN_CLUSTER_SIZE,
        },
        "tuning": tuning,
        "test": test,
        "also_test": extra,
        "rtf": rtf,
        "device": str(target),
        "threads": torch.get_num_threads(),
        "wall_time_s": {
            "tuning": tuning["wall_time_s"],
            "test": round(test_time, 3),
            "total": round(time.perf_counter() - started, 3),
        },
    }, hypotheses
