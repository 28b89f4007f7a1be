"""Full-file DER of a segmentation model: the pipeline tuned on dev (:mod:`.tuning`), applied to the
test files and the ``--also-test`` splits (:mod:`.pipeline`), scored (:mod:`.scoring`)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pyannote.audio import Model
from pyannote.audio.core.plda import PLDA

from bench.data import Split
from bench.data.audio import AudioCache
from bench.evaluation import vbx
from bench.evaluation.pipeline import (
    DEFAULT_TRIALS,
    FROZEN_CLUSTERING,
    INITIAL_CLUSTERING,
    SEGMENTATION_STEP,
    BenchSpeakerDiarization,
    Hypotheses,
    HypothesisSets,
    apply,
    pipeline_file,
    score_splits,
    torch_threads,
)
from bench.evaluation.tuning import tune
from bench.io import cache_root
from bench.models.embeddings import DEFAULT_EMBEDDING, resolve_embedding
from bench.results import PipelineSetup


def tuned_pipeline(
    segmentation_model: Model | str | Path,
    setup: PipelineSetup,
    device: str | torch.device = "cpu",
    batch_size: int = 32,
) -> BenchSpeakerDiarization:
    """The pipeline a run tuned, rebuilt from its checkpoint and its record's ``pipeline``
    (embedding, clustering, PLDA, tuned parameters). The embedding and the PLDA must be the files
    the run used: another file under the same name (a hub revision that moved, a local file
    that changed) is refused."""
    target = _device(device)
    embedding = setup["embedding"]
    embedder, info = resolve_embedding(embedding["name"], device=target)
    if info.sha256 != embedding.get("sha256"):
        raise ValueError(
            f"embedding {embedding['name']!r} resolves to another file now (sha256 "
            f"{info.sha256}, recorded {embedding.get('sha256')})"
        )
    plda = None
    recorded = setup.get("plda")
    if recorded:
        folder = Path(str(recorded["path"]))
        if not folder.is_dir() or vbx.files_sha256(folder) != recorded.get("sha256"):
            raise ValueError(f"the run's PLDA ({folder}) is gone or changed")
        plda = vbx.load(vbx.PldaInfo(**recorded))
    model, _ = _segmentation_model(segmentation_model)
    duration = (setup.get("segmentation") or {}).get("duration")
    if duration and model.specifications.duration != duration:  # epochs=0: the run's task's
        model.specifications = dataclasses.replace(model.specifications, duration=duration)
    model.eval().to(target)
    return BenchSpeakerDiarization(
        model,
        embedder,
        embedding_name=embedding["name"],
        clustering=(setup.get("clustering") or {}).get("name", "AgglomerativeClustering"),
        plda=plda,
        segmentation_batch_size=batch_size,
        embedding_batch_size=batch_size,
    ).instantiate(setup["tuning"]["params"])


def apply_tuned(
    segmentation_model: Model | str | Path,
    setup: PipelineSetup,
    splits: Sequence[Split],
    audio_cache: AudioCache,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    batch_size: int = 32,
) -> tuple[dict[str, Any], dict[str, Hypotheses]]:
    """A pipeline tuned earlier (:func:`tuned_pipeline`) applied to more splits' test files, as
    :func:`evaluate_pipeline` applies it to ``also_test``."""
    with torch_threads(threads):
        pipeline = tuned_pipeline(segmentation_model, setup, device, batch_size)
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
    plda: str | None = None,
    cache: Path | None = None,
    token_env: str = "HF_TOKEN",
) -> tuple[PipelineSetup, HypothesisSets]:
    """Tune the diarization pipeline on ``split``'s dev files, apply it to its full test files
    (and at its initial parameters, to say whether tuning carried over; and to the test files of
    each ``also_test`` split), and return a JSON-able record (embedding, clustering, tuning, test
    scores, RTFs, ``also_test`` scores keyed by fingerprint) and the hypotheses:
    ``{"dev": {uri: Annotation}, "test": {...}, "also_test": {fingerprint: {...}}}``.

    ``plda`` (a PLDA source, :mod:`bench.evaluation.vbx`) clusters with VBx instead of AHC; an
    estimated one is cached under ``cache``. ``threads`` sets torch's intra-op threads for the
    call (restored afterwards; None keeps the process's, which ``OMP_NUM_THREADS`` sets)."""
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
            plda,
            cache,
            token_env,
        )


def resolve_plda(
    ref: str,
    split: Split,
    audio_cache: AudioCache,
    embedder: Any,
    info: Any,
    duration: float,
    cache: Path | None,
    token_env: str = "HF_TOKEN",
) -> tuple[PLDA, vbx.PldaInfo]:
    """The PLDA ``ref`` names (``train``: estimated on the split's train embeddings, cached),
    refused when it transforms embeddings of another dimension than ``embedder``'s."""
    if ref == vbx.TRAIN:
        found = vbx.estimated(
            split, audio_cache, embedder, info.sha256, duration, cache or cache_root()
        )
    else:
        found = vbx.resolve_plda(ref, token_env)
    check_plda(found, int(embedder.dimension), info.name)
    return vbx.load(found), found


def check_plda(found: vbx.PldaInfo, dimension: int, embedding: str) -> None:
    """Refuse a PLDA made for embeddings of another dimension (a ``ValueError`` naming the
    recipe field)."""
    if found.dimension != dimension:
        raise ValueError(
            f"field 'pipeline.plda': {found.ref} transforms {found.dimension}-dimensional "
            f"embeddings, and the embedding {embedding!r} gives {dimension}"
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
    plda_ref: str | None = None,
    cache: Path | None = None,
    token_env: str = "HF_TOKEN",
) -> tuple[PipelineSetup, HypothesisSets]:
    started = time.perf_counter()
    target = _device(device)
    model, segmentation_info = _segmentation_model(segmentation_model)
    model.eval().to(target)
    embedder, info = resolve_embedding(embedding, device=target)
    specifications = model.specifications
    plda, plda_info = None, None
    if plda_ref is not None:
        duration = float(specifications.duration)
        plda, plda_info = resolve_plda(
            plda_ref, split, audio_cache, embedder, info, duration, cache, token_env
        )
    dev = [pipeline_file(rec, audio_cache, with_reference=True) for rec in split.files("dev")]
    name = embedding or DEFAULT_EMBEDDING
    pipeline, tuning, dev_hypotheses = tune(
        model, embedder, dev, trials, seed, name, batch_size, plda=plda, dev_before=True
    )
    clustering = "AgglomerativeClustering" if plda is None else "VBxClustering"
    initial = BenchSpeakerDiarization(
        model, embedder, embedding_name=name, clustering=clustering, plda=plda,
        segmentation_batch_size=batch_size, embedding_batch_size=batch_size,
    ).instantiate(tuning["initial_params"])  # fmt: skip
    clock = time.perf_counter()
    applied = apply(pipeline, split.files("test"), audio_cache, initial=initial)
    test_time = time.perf_counter() - clock
    extra, found = score_splits(pipeline, also_test, audio_cache)
    hypotheses: HypothesisSets = {
        "dev": dev_hypotheses,
        "test": applied.hypotheses,
        "also_test": found,
    }
    files = len(applied.hypotheses)
    setup: PipelineSetup = {
        "embedding": info.as_dict(),
        "segmentation": {
            **segmentation_info,
            "powerset": bool(specifications.powerset),
            "duration": float(specifications.duration),
            "step": SEGMENTATION_STEP,
        },
        "clustering": {
            "name": clustering,
            **{k: INITIAL_CLUSTERING[clustering][k] for k in FROZEN_CLUSTERING[clustering]},
        },
        "tuning": tuning,
        "initial_test": {
            "files": files,
            "reused_embeddings": applied.reused_embeddings,
            "cost": "none: the tuned pass's embeddings"
            if applied.reused_embeddings == files
            else "one more embedding pass of test (the tuned threshold differs)",
        },
        "test": applied.scores,
        "test_initial": applied.initial,
        "also_test": extra,
        "rtf": applied.rtf,
        "device": str(target),
        "threads": torch.get_num_threads(),
        "wall_time_s": {
            "tuning": tuning["wall_time_s"],
            "test": round(test_time, 3),
            "total": round(time.perf_counter() - started, 3),
        },
    }
    if plda_info is not None:
        setup["plda"] = plda_info.as_dict()
    return setup, hypotheses
