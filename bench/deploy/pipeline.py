"""The pipeline class an exported folder names in its ``config.yaml``.

``pyannote.audio.Pipeline.from_pretrained(DIR)`` imports the class ``config.yaml`` names and
calls it with ``pipeline.params`` (``$model/segmentation`` and ``$model/embedding`` expanded to
``{"checkpoint": DIR, "subfolder": ...}``) plus ``token`` and ``cache_dir``, then instantiates
``params``. pyannote's own ``SpeakerDiarization`` cannot be named there for a bench run: it
loads a PLDA from the hub even for agglomerative clustering, and knows no CAM++. This class
builds bench's pipeline (:class:`bench.evaluation.pipeline.BenchSpeakerDiarization`, the one
every run is scored with) from those references, and returns pyannote 4's ``DiarizeOutput``.
Its dotted path is part of every exported folder: keep it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyannote.audio.pipelines.utils import get_model, get_plda

from bench.evaluation.pipeline import BenchSpeakerDiarization
from bench.models.embeddings import DEFAULT_EMBEDDING, resolve_embedding

# what `bench export` writes in config.yaml's pipeline.name
CLASS_PATH = "bench.deploy.pipeline.ExportedSpeakerDiarization"


def folder_of(reference: Any) -> Path | None:
    """The local folder a ``$model/NAME`` reference expands to (None for anything else)."""
    if isinstance(reference, dict) and "checkpoint" in reference:
        return Path(reference["checkpoint"]) / (reference.get("subfolder") or "")
    return None


def embedding_option(reference: Any, name: str) -> str:
    """The :func:`bench.models.embeddings.resolve_embedding` option for an exported embedding:
    the copied CAM++ file or pyannote checkpoint in the folder, or a hub id with its commit."""
    folder = folder_of(reference)
    if folder is None:
        return str(reference)
    return f"campplus:{folder}" if name.startswith("campplus") else str(folder)


class ExportedSpeakerDiarization(BenchSpeakerDiarization):
    """bench's diarization pipeline, built from an exported folder's ``config.yaml``:
    ``segmentation`` and ``embedding`` are references (``$model/...`` or a hub id); the other
    ``pipeline.params`` (clustering, step, batch sizes) are
    :class:`~bench.evaluation.pipeline.BenchSpeakerDiarization`'s own."""

    def __init__(
        self,
        segmentation: Any,
        embedding: Any,
        embedding_name: str = DEFAULT_EMBEDDING,
        plda: Any = None,
        token: str | None = None,
        cache_dir: str | Path | None = None,
        **options: Any,
    ):
        model = get_model(segmentation, token=token, cache_dir=cache_dir)
        embedder, info = resolve_embedding(embedding_option(embedding, embedding_name))
        if plda is not None:  # VBx: ``$model/plda``, read by pyannote's own loader
            plda = get_plda(plda, token=token, cache_dir=cache_dir)
        super().__init__(model, embedder, embedding_name=embedding_name, plda=plda, **options)
        self.embedding_info = info
        self.legacy = False  # pyannote 4's DiarizeOutput, as its own pipelines return
