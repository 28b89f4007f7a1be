"""Chunk-level test DER with pyannote.metrics.

Each test file is cut into consecutive chunks of the training duration; the model's frame scores
for a chunk are binarised (at the dev-optimal threshold in multilabel mode, by the argmax in
powerset mode) into a pyannote.core Annotation, which is scored against the reference cropped to
the chunk and to the UEM. Components accumulate over the whole split and per file
(:class:`bench.evaluation.scoring.ChunkScorer`; DER scoring itself lives in
:mod:`bench.evaluation.scoring`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from pyannote.audio import Model
from pyannote.audio.utils.powerset import Powerset
from pyannote.audio.utils.signal import Binarize
from pyannote.core import Annotation, Segment, SlidingWindow, SlidingWindowFeature

from bench.data import Recording
from bench.data.audio import AudioCache
from bench.evaluation.scoring import ChunkScorer


def chunk_hypothesis(
    scores: np.ndarray, frames: SlidingWindow, start: float, threshold: float, uri: str
) -> Annotation:
    """Binarise one chunk's (frames, speakers) scores into an Annotation in file time."""
    window = SlidingWindow(start=start + frames.start, duration=frames.duration, step=frames.step)
    hypothesis = Binarize(onset=threshold, offset=threshold)(SlidingWindowFeature(scores, window))
    hypothesis.uri = uri
    return hypothesis


@torch.inference_mode()
def chunk_scores(
    model: Model, waveform: torch.Tensor, starts: Iterable[float], duration: float, batch_size: int
) -> list[np.ndarray]:
    """Speaker scores (frames, speakers) for each chunk start (zero-padded at the end)."""
    sample_rate = model.hparams.sample_rate
    length = round(duration * sample_rate)
    device = next(model.parameters()).device
    chunks = []
    for start in starts:
        first = round(start * sample_rate)
        piece = waveform[:, first : first + length]
        chunks.append(torch.nn.functional.pad(piece, (0, length - piece.shape[1])))
    outputs: list[np.ndarray] = []
    spec = model.specifications
    powerset = None
    if spec.powerset:  # a task sets model.powerset; a model loaded on its own has none yet
        powerset = getattr(model, "powerset", None) or Powerset(
            len(spec.classes), spec.powerset_max_classes
        )
        powerset = powerset.to(device)
    for i in range(0, len(chunks), batch_size):
        batch = torch.stack(chunks[i : i + batch_size]).to(device)
        prediction = model(batch)
        if powerset is not None:
            prediction = powerset.to_multilabel(prediction)
        outputs.extend(prediction.float().cpu().numpy())
    return outputs


def evaluate_chunks(
    model: Model,
    recordings: list[Recording],
    audio: AudioCache,
    duration: float,
    threshold: float | None,
    batch_size: int = 16,
) -> dict:
    """Chunk-level DER, Confusion, FalseAlarm, Miss over ``recordings`` (and per file)."""
    was_training = model.training
    model.eval()
    scorer = ChunkScorer()
    frames = model.receptive_field
    onset = 0.5 if threshold is None else threshold
    for rec in recordings:
        starts = list(np.arange(0.0, rec.duration, duration))
        scores = chunk_scores(model, audio.waveform(rec.audio), starts, duration, batch_size)
        for start, chunk_scores_ in zip(starts, scores, strict=True):
            chunk = Segment(float(start), float(min(start + duration, rec.duration)))
            hypothesis = chunk_hypothesis(chunk_scores_, frames, float(start), onset, rec.uri)
            scorer.add(rec, chunk, hypothesis)
    model.train(was_training)
    report = scorer.report()
    report["threshold"] = threshold
    report["chunk_duration"] = duration
    return report
