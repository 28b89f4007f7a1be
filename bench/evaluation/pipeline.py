"""Full-file diarization DER: pyannote.audio's SpeakerDiarization pipeline, tuned on dev, scored
on test.

The pipeline is pyannote.audio 4.0.7's ``SpeakerDiarization`` (sliding-window segmentation,
speaker embeddings per (chunk, local speaker), clustering, reconstruction) with

- the segmentation model under evaluation: multilabel (sigmoid outputs, binarised at the tunable
  ``segmentation.threshold``) or powerset (no threshold: pyannote only exposes
  ``segmentation.min_duration_off`` for powerset models);
- an embedding from :mod:`bench.models.embeddings` (CAM++ by default, offline);
- ``AgglomerativeClustering`` (method ``centroid``, ``min_cluster_size`` 15, as in the reference
  write-up).

Hyper-parameters are tuned on dev with pyannote.pipeline's ``Optimizer`` (optuna TPE sampler with
a fixed seed) in the reference write-up's two stages, ``segmentation.min_duration_off`` frozen at 0:

1. ``segmentation.threshold`` with oracle clustering (multilabel models only; a powerset model has
   nothing left to tune at this stage, which is then skipped);
2. ``clustering.threshold``, segmentation parameters frozen at their stage-1 values, ``method`` and
   ``min_cluster_size`` frozen.

Each stage's first trial is its starting point (the initial parameters, with stage 1's threshold in
stage 2), so no stage ends above its start, and the record keeps both (``start_dev_der`` and
``dev_der`` of each stage). Trials run in pyannote's training mode, which caches the segmentation
of each dev file and, while ``segmentation.threshold`` does not change (stage 2, or any powerset
model), its embeddings, so a clustering trial costs only the clustering: every (dev file,
segmentation threshold) is embedded once. The full pipeline's dev DER at the initial parameters
(``dev_der_before``) is recorded when it shares those embeddings (a powerset model, or stage 1
kept threshold 0.5); after stage 1 moved the threshold it would need one more embedding pass of
dev (as long as the whole test pass) and is not computed: stage 1's own start (threshold 0.5,
oracle clustering) says what the move bought. Dev DER is optimised and reported with
``pyannote.metrics.DiarizationErrorRate`` (optimal mapping, no collar, overlap scored): the same
metric as the test's primary score.

The tuned pipeline is then applied to each full test file (audio handed over as an in-memory
waveform decoded by :class:`bench.data.audio.AudioCache`; no FFmpeg/torchcodec) and scored
inside the UEM in two variants (:class:`bench.evaluation.scoring.Scorer`): no collar with
overlap (primary), and the older convention some papers report: a 0.25 s collar on each side of
every reference boundary (NIST md-eval's ``-c 0.25``) with overlapping speech skipped.
pyannote.metrics' ``collar`` is the *total* width of the no-score zone, so that variant is its
``collar=0.5``.

Real-time factors (processing seconds per audio second, over the test files) are timed with the
pipeline's hook: ``segmentation`` (model inference, binarisation, speaker counting),
``embedding`` (all (chunk, speaker) embeddings), ``clustering`` (clustering, reconstruction and
conversion to an annotation).
"""

from __future__ import annotations

import io
import re
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import torch
from pyannote.audio import Audio, Inference, Model
from pyannote.audio.core.inference import BaseInference
from pyannote.audio.core.plda import PLDA
from pyannote.audio.pipelines.clustering import Clustering
from pyannote.audio.pipelines.speaker_diarization import SpeakerDiarization
from pyannote.core import Annotation
from pyannote.metrics.diarization import DiarizationErrorRate
from pyannote.pipeline.parameter import ParamDict, Uniform

from bench.data import SAMPLE_RATE, Recording, Split
from bench.data.audio import AudioCache
from bench.evaluation.scoring import PRIMARY, Scorer
from bench.models.embeddings import DEFAULT_EMBEDDING

SEGMENTATION_STEP = 0.1  # ratio of the segmentation window (pyannote's default)
CLUSTERING_METHOD = "centroid"
MIN_CLUSTER_SIZE = 15
# initial ("before tuning") values: 0.5 for sigmoid scores; pyannote/speaker-diarization-3.1's
# centroid-linkage threshold for the clustering
INITIAL_SEGMENTATION_THRESHOLD = 0.5
DEFAULT_TRIALS = (10, 10)  # tuning trials per stage (segmentation, clustering)
INITIAL_CLUSTERING_THRESHOLD = 0.7045654963945799
# each clustering's initial parameters: for VBx, pyannote 4's defaults (those of
# pyannote/speaker-diarization-community-1, tuned for its own embedding and PLDA)
INITIAL_CLUSTERING: dict[str, dict[str, float | int | str]] = {
    "AgglomerativeClustering": {
        "method": CLUSTERING_METHOD,
        "min_cluster_size": MIN_CLUSTER_SIZE,
        "threshold": INITIAL_CLUSTERING_THRESHOLD,
    },
    "VBxClustering": {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8},
}
# what the second tuning stage holds fixed of each clustering (the rest it tunes)
FROZEN_CLUSTERING: dict[str, tuple[str, ...]] = {
    "AgglomerativeClustering": ("method", "min_cluster_size"),
    "VBxClustering": (),
}

_QUIET = (
    "The detected number of speakers",  # pyannote's warning on very short files
    "The given NumPy array is not writable",
    "std(): degrees of freedom is <= 0",
    "suggest_uniform has been deprecated",  # pyannote.pipeline's use of optuna
    "Cannot compute a reliable confidence interval",  # pyannote.metrics, with one dev file
    # pyannote 4's DiarizeOutput: the centroid of a speaker without a usable embedding
    "Mean of empty slice",
    "invalid value encountered in divide",
)


@contextmanager
def quiet_pipeline() -> Iterator[None]:
    """Silence the warnings pyannote's pipeline is known to give (listed above), and what VBx
    prints ("Value of auxiliary function has decreased!") to standard output."""
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
        for message in _QUIET:
            warnings.filterwarnings("ignore", message=f".*{re.escape(message)}")
        yield


class BenchSpeakerDiarization(SpeakerDiarization):
    """pyannote.audio 4.0.7's ``SpeakerDiarization`` with a given segmentation model, embedding
    object and (for ``VBxClustering``) PLDA object.

    ``SpeakerDiarization.__init__`` always loads a PLDA (a hub download, even when the clustering
    does not use it) and builds its embedding from a name; this constructor sets up the same
    attributes from objects instead. Everything else (``apply``, training caches, parameters,
    pyannote's own ``VBxClustering``) is pyannote's own. The embedding of an
    ``OracleClustering`` pipeline is never computed.
    """

    def __init__(
        self,
        segmentation: Model,
        embedding: BaseInference,
        embedding_name: str = DEFAULT_EMBEDDING,
        clustering: str = "AgglomerativeClustering",
        segmentation_step: float = SEGMENTATION_STEP,
        segmentation_batch_size: int = 32,
        embedding_batch_size: int = 32,
        embedding_exclude_overlap: bool = False,
        der_variant: dict | None = None,
        plda: PLDA | None = None,
    ):
        super(SpeakerDiarization, self).__init__()
        if clustering not in Clustering.__members__:
            choices = ", ".join(Clustering.__members__)
            raise ValueError(f"clustering {clustering!r}: expected one of {choices}")
        if (clustering == "VBxClustering") != (plda is not None):
            raise ValueError("VBxClustering clusters with a PLDA, and only it takes one")
        self.legacy = True  # apply() returns the Annotation (what pyannote's Optimizer scores)
        self.segmentation_model = segmentation
        self.segmentation_step = segmentation_step
        self.embedding = embedding_name
        self.embedding_batch_size = embedding_batch_size
        self.embedding_exclude_overlap = embedding_exclude_overlap
        self.plda = None
        self._plda = plda
        self.klustering = clustering
        self.der_variant = der_variant or dict(PRIMARY)

        duration = segmentation.specifications.duration
        self._segmentation = Inference(
            segmentation,
            duration=duration,
            step=segmentation_step * duration,
            skip_aggregation=True,
            batch_size=segmentation_batch_size,
        )
        if segmentation.specifications.powerset:
            self.segmentation = ParamDict(min_duration_off=Uniform(0.0, 1.0))
        else:
            self.segmentation = ParamDict(
                threshold=Uniform(0.1, 0.9), min_duration_off=Uniform(0.0, 1.0)
            )

        self._embedding = embedding
        self._audio = Audio(sample_rate=embedding.sample_rate, mono="downmix")
        metric = "not_applicable" if clustering == "OracleClustering" else embedding.metric
        if plda is not None:
            self.clustering = Clustering[clustering].value(plda, metric=metric)
        else:
            self.clustering = Clustering[clustering].value(metric=metric)
        self._expects_num_speakers = self.clustering.expects_num_clusters
        self.device = segmentation.device  # what Pipeline.to() would set

    @property
    def powerset(self) -> bool:
        return bool(self._segmentation.model.specifications.powerset)

    def get_embeddings(self, file, binary_segmentations, exclude_overlap=False, hook=None):
        if self.klustering == "OracleClustering":
            return None  # oracle clustering needs none: skip the most expensive step
        return super().get_embeddings(
            file, binary_segmentations, exclude_overlap=exclude_overlap, hook=hook
        )

    def get_metric(self) -> DiarizationErrorRate:
        return DiarizationErrorRate(**self.der_variant)

    def initial_parameters(self) -> dict:
        """The untuned ("before") parameters (``default_parameters`` is VBx-specific in 4.0.7)."""
        segmentation: dict[str, float] = {"min_duration_off": 0.0}
        if not self.powerset:
            segmentation["threshold"] = INITIAL_SEGMENTATION_THRESHOLD
        params: dict[str, Any] = {"segmentation": segmentation}
        if self.klustering in INITIAL_CLUSTERING:
            params["clustering"] = dict(INITIAL_CLUSTERING[self.klustering])
        return params

    def default_parameters(self) -> dict:
        return self.initial_parameters()


class StepTimer:
    """A pyannote pipeline hook recording when each step of ``apply`` ends."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.marks: dict[str, float] = {}

    def __call__(self, step_name: str, step_artefact: Any, file=None, total=None, completed=None):
        if completed is None and total is None:  # the end of a step, not a progress update
            self.marks.setdefault(step_name, time.perf_counter())

    @staticmethod
    def stage_ends(marks: dict[str, float], end: float) -> dict[str, float]:
        """The value of ``marks`` (per pyannote step) when segmentation, embedding and
        clustering ended; ``end`` for the last."""
        segmented = marks.get("speaker_counting", marks.get("segmentation", end))
        return {
            "segmentation": segmented,
            "embedding": marks.get("embeddings", segmented),
            "clustering": end,
        }

    def split(self, end: float) -> dict[str, float]:
        """Seconds spent in segmentation, embedding and clustering."""
        ends = self.stage_ends(self.marks, end)
        return {
            "segmentation": ends["segmentation"] - self.start,
            "embedding": ends["embedding"] - ends["segmentation"],
            "clustering": end - ends["embedding"],
        }


def pipeline_file(rec: Recording, audio: AudioCache, with_reference: bool) -> dict[str, Any]:
    """The in-memory pyannote file of a recording (reference and UEM only when tuning)."""
    file: dict[str, Any] = {
        "uri": rec.uri,
        "waveform": audio.waveform(rec.audio),
        "sample_rate": SAMPLE_RATE,
    }
    if with_reference:
        file["annotation"] = rec.annotation
        file["annotated"] = rec.annotated
    return file


Hypotheses = dict[str, Annotation]


class HypothesisSets(TypedDict):
    """A run's hypotheses: dev and test files by URI, and each ``--also-test`` split's by its
    fingerprint."""

    dev: Hypotheses
    test: Hypotheses
    also_test: dict[str, Hypotheses]


def plain(value: Any) -> Any:
    """JSON-able copy of a parameter dict (numpy scalars -> Python)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def annotation_of(output: Any) -> Annotation:
    """The diarization in a pipeline's output: pyannote 4's ``DiarizeOutput`` (exported and
    hub pipelines) or an ``Annotation`` (bench's tuning pipelines, older pyannote)."""
    return getattr(output, "speaker_diarization", output)


@dataclass
class Applied:
    """A pipeline applied to test files: scores, real-time factors, hypotheses and, when an
    initial-parameters pipeline was applied beside it, that one's scores (``initial``) and on how
    many files it reused the tuned pass's embeddings."""

    scores: dict[str, Any]
    rtf: dict[str, Any]
    hypotheses: dict[str, Annotation]
    initial: dict[str, Any] | None = None
    reused_embeddings: int = 0


def apply_to_test(
    pipeline: SpeakerDiarization, recordings: Iterable[Recording], audio: AudioCache
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Annotation]]:
    """Apply the instantiated pipeline to each full test file (no reference given to it); return
    the scores, the real-time factors and the hypotheses."""
    applied = apply(pipeline, recordings, audio)
    return applied.scores, applied.rtf, applied.hypotheses


def apply(
    pipeline: SpeakerDiarization,
    recordings: Iterable[Recording],
    audio: AudioCache,
    initial: SpeakerDiarization | None = None,
) -> Applied:
    """Apply the instantiated pipeline to each full test file (no reference given to it), and,
    file by file, ``initial`` (the same models at the initial parameters) too: in pyannote's
    training mode, so it reuses the file's segmentation, and its embeddings where the
    segmentation threshold is the same (a powerset model, or a threshold tuning kept). Only
    the first pipeline is timed; one file's caches are held at a time."""
    both = [pipeline] if initial is None else [pipeline, initial]
    for each in both:
        each.training = initial is not None
    scorer, before = Scorer(), Scorer()
    seconds = {"segmentation": 0.0, "embedding": 0.0, "clustering": 0.0}
    audio_seconds, reused = 0.0, 0
    hypotheses: dict[str, Annotation] = {}
    try:
        for rec in recordings:
            file = pipeline_file(rec, audio, with_reference=False)
            timer = StepTimer()
            with quiet_pipeline():
                hypothesis = annotation_of(pipeline(file, hook=timer))
            for step, value in timer.split(time.perf_counter()).items():
                seconds[step] += value
            audio_seconds += rec.duration
            hypothesis.uri = rec.uri
            hypotheses[rec.uri] = hypothesis
            scorer.add(rec.uri, rec.annotation, hypothesis, rec.annotated)
            if initial is not None:
                cached = file.get("training_cache/embeddings", {}).get("embeddings")
                with quiet_pipeline():
                    other = annotation_of(initial(file))
                reused += file.get("training_cache/embeddings", {}).get("embeddings") is cached
                other.uri = rec.uri
                before.add(rec.uri, rec.annotation, other, rec.annotated)
    finally:
        for each in both:
            each.training = False
    rtf = {step: value / audio_seconds if audio_seconds else 0.0 for step, value in seconds.items()}
    rtf["total"] = sum(rtf.values())
    rtf["seconds"] = {step: round(value, 3) for step, value in seconds.items()}
    rtf["audio_seconds"] = audio_seconds
    return Applied(scorer.report(), rtf, hypotheses, before.report() if initial else None, reused)


def score_splits(
    pipeline: BenchSpeakerDiarization, splits: Sequence[Split], audio: AudioCache
) -> tuple[dict[str, Any], dict[str, Hypotheses]]:
    """The tuned pipeline on each split's test files: ``also_test`` entries and hypotheses, both
    keyed by the split's fingerprint."""
    extra: dict[str, Any] = {}
    hypotheses: dict[str, Hypotheses] = {}
    for split in splits:
        scores, _, found = apply_to_test(pipeline, split.files("test"), audio)
        extra[split.fingerprint] = {"dataset": split.describe(), "pipeline": scores}
        hypotheses[split.fingerprint] = found
    return extra, hypotheses


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (no-op for None)."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def single_speaker_hypothesis(reference: Annotation, label: str = "speaker") -> Annotation:
    """Every speech region of ``reference`` as one speaker (a trivial baseline)."""
    hypothesis = Annotation(uri=reference.uri)
    for segment in reference.get_timeline().support():
        hypothesis[segment] = label
    return hypothesis
