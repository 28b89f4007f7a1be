"""The PLDA a VBx pipeline clusters with: from a hub pipeline's ``plda/`` folder, a local folder
holding pyannote's two files, or estimated on the split's train embeddings
(:mod:`bench.evaluation.plda`), cached by (estimator, embedding, train data).

Train embeddings are taken as the pipeline takes them, but with the reference as the mask: each
train file is cut into chunks of the segmentation model's duration (half a chunk apart), and
each reference speaker active in a chunk is embedded with the chunk's audio masked to that
speaker's speech. A speaker is a (file, label) pair: labels are per file in many corpora, and a
label shared across files would merge different people."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from pyannote.audio.core.plda import PLDA
from pyannote.core import Segment

from bench.data import SAMPLE_RATE, Recording, Split
from bench.data.audio import AudioCache
from bench.evaluation import plda as estimator
from bench.io import sha256_file, staging_dir, write_json
from bench.models import hub

TRAIN = "train"  # the recipe's ``plda`` value that estimates on the split's train embeddings
FRAMES_PER_SECOND = 100  # the reference masks' resolution (CAM++ interpolates them)
BATCH = 32


@dataclass(frozen=True)
class PldaInfo:
    """Where a pipeline's PLDA came from and what it holds (the record's ``pipeline.plda``)."""

    source: str  # "train" | "hub" | "local"
    ref: str  # "train", the hub id, or the folder
    path: str  # the folder holding the two files
    sha256: str  # over both files
    dimension: int  # the embedding dimension it transforms (lda rows)
    lda_dimension: int
    revision: str | None = None  # hub: the commit
    estimator: str | None = None  # train: bench.evaluation.plda.ESTIMATOR
    speakers: int | None = None  # train: (file, label) pairs it was estimated on
    embeddings: int | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def files_sha256(folder: Path) -> str:
    """sha256 over the two PLDA files of ``folder``."""
    digest = hashlib.sha256()
    for name in estimator.FILES:
        digest.update(f"{name}\0{sha256_file(folder / name)}\n".encode())
    return digest.hexdigest()


def _info(folder: Path, source: str, ref: str, **more: object) -> PldaInfo:
    with np.load(folder / estimator.FILES[0]) as transform:
        dimension, lda_dimension = transform["lda"].shape
    return PldaInfo(source, ref, str(folder), files_sha256(folder), int(dimension),
                    int(lda_dimension), **more)  # fmt: skip


def load(info: PldaInfo) -> PLDA:
    """pyannote's own PLDA on the files ``info`` names."""
    folder = Path(info.path)
    return PLDA(folder / estimator.FILES[0], folder / estimator.FILES[1],
                lda_dimension=info.lda_dimension)  # fmt: skip


def train_key(split: Split) -> str:
    """What the train embeddings depend on of the split: each train file's audio, reference and
    scored region (dev and test can change without another estimate)."""
    digest = hashlib.sha256()
    for rec in split.files("train"):
        turns = [(s.start, s.end, label) for s, _, label in rec.annotation.itertracks(True)]
        regions = [(s.start, s.end) for s in rec.annotated]
        digest.update(json.dumps([rec.uri, rec.sha256, turns, regions]).encode())
    return digest.hexdigest()[:16]


def chunks(rec: Recording, duration: float) -> list[Segment]:
    """Chunks of ``duration`` s, half a chunk apart, inside the file's scored regions."""
    found = []
    for region in rec.annotated:
        start = region.start
        while start + duration <= region.end + 1e-9:
            found.append(Segment(start, start + duration))
            start += duration / 2
        if not found or found[-1].end < region.end - 1e-9:
            if region.duration >= duration / 4:  # the region's end, or a short region whole
                found.append(Segment(max(region.start, region.end - duration), region.end))
    return found


def train_embeddings(
    split: Split, audio: AudioCache, embedding, duration: float
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of each (train file, reference speaker) in each chunk, and their labels."""
    items: list[tuple[torch.Tensor, torch.Tensor, str]] = []
    vectors, labels = [], []

    def flush() -> None:
        if not items:
            return
        waveforms = torch.stack([w for w, _, _ in items])[:, None]
        masks = torch.stack([m for _, m, _ in items])
        found = embedding(waveforms.to(embedding.device), masks.to(embedding.device))
        for row, (_, _, label) in zip(found, items, strict=True):
            if np.all(np.isfinite(row)):
                vectors.append(row)
                labels.append(label)
        items.clear()

    frames = round(duration * FRAMES_PER_SECOND)
    for rec in split.files("train"):
        waveform = audio.waveform(rec.audio)[0]
        for chunk in chunks(rec, duration):
            first = round(chunk.start * SAMPLE_RATE)
            samples = waveform[first : first + round(duration * SAMPLE_RATE)]
            if len(samples) < duration * SAMPLE_RATE - 1:
                continue
            cropped = rec.annotation.crop(chunk)
            for label in cropped.labels():
                mask = torch.zeros(frames)
                for turn in cropped.label_timeline(label):
                    a = int((turn.start - chunk.start) * FRAMES_PER_SECOND)
                    b = int(np.ceil((turn.end - chunk.start) * FRAMES_PER_SECOND))
                    mask[max(0, a) : min(frames, b)] = 1.0
                items.append((samples, mask, f"{rec.uri}/{label}"))
                if len(items) == BATCH:
                    flush()
    flush()
    return np.asarray(vectors), np.asarray(labels)


def estimated(
    split: Split,
    audio: AudioCache,
    embedding,
    embedding_sha256: str | None,
    duration: float,
    cache: Path,
) -> PldaInfo:
    """The PLDA estimated on ``split``'s train embeddings, from the cache when it holds one for
    the same estimator, embedding and train data."""
    key = hashlib.sha256(
        f"{estimator.ESTIMATOR}\0{embedding_sha256}\0{train_key(split)}\0{duration}".encode()
    ).hexdigest()[:16]
    folder = cache / "plda" / key
    meta = folder / "bench-plda.json"
    if not (meta.is_file() and all((folder / name).is_file() for name in estimator.FILES)):
        vectors, labels = train_embeddings(split, audio, embedding, duration)
        with staging_dir(folder) as stage:
            estimator.estimate(vectors, labels, stage)
            write_json(stage / meta.name, {"speakers": len(set(labels)), "embeddings": len(labels)})
    counts = json.loads(meta.read_text())
    return _info(folder, TRAIN, TRAIN, estimator=estimator.ESTIMATOR, **counts)


def resolve_plda(ref: str, token_env: str = "HF_TOKEN", field: str = "pipeline.plda") -> PldaInfo:
    """A PLDA that exists already: a local folder holding the two files, or a hub pipeline's
    ``plda/`` folder (``owner/name[@revision]``, e.g. pyannote/speaker-diarization-community-1)."""
    folder = Path(ref).expanduser()
    if folder.is_dir():
        missing = [name for name in estimator.FILES if not (folder / name).is_file()]
        if missing:
            raise ValueError(f"field '{field}': {folder} holds no {missing[0]}")
        return _info(folder.resolve(), "local", ref)
    found = [
        hub.resolve(ref, filename=f"plda/{name}", field=field, token_env=token_env)
        for name in estimator.FILES
    ]
    return _info(found[0].path.parent, "hub", found[0].id, revision=found[0].revision)
