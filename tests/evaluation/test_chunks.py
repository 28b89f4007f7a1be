"""DER with pyannote.metrics on real speech (pyannote.audio's sample) and hand-built cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from pyannote.core import Annotation, Segment, SlidingWindow, Timeline

from bench.data import load_folder
from bench.data.audio import AudioCache
from bench.evaluation.chunks import chunk_hypothesis, evaluate_chunks
from bench.evaluation.scoring import ChunkScorer, score
from bench.models.weights import load_initial
from bench.recipe import Pretrained


@pytest.fixture
def sample(sample_split):
    return load_folder(sample_split).files("test")[0]


def shifted(annotation: Annotation, delta: float) -> Annotation:
    result = Annotation(uri=annotation.uri)
    for segment, track, label in annotation.itertracks(yield_label=True):
        result[Segment(segment.start + delta, segment.end + delta), track] = label
    return result


def frame_der(reference: Annotation, hypothesis: Annotation, uem: Segment, step=0.001) -> float:
    """An independent frame-level DER (optimal one-to-one label mapping by brute force)."""
    times = np.arange(uem.start, uem.end, step) + step / 2

    def matrix(annotation):
        labels = sorted(annotation.labels())
        active = np.zeros((len(times), len(labels)), dtype=bool)
        for segment, _, label in annotation.itertracks(yield_label=True):
            active[(times >= segment.start) & (times < segment.end), labels.index(label)] = True
        return active

    ref, hyp = matrix(reference), matrix(hypothesis)
    n_ref, n_hyp = ref.sum(1), hyp.sum(1)
    best = None
    size = max(ref.shape[1], hyp.shape[1])
    ref = np.pad(ref, ((0, 0), (0, size - ref.shape[1])))
    hyp = np.pad(hyp, ((0, 0), (0, size - hyp.shape[1])))
    for perm in itertools.permutations(range(size)):
        correct = (ref & hyp[:, perm]).sum(1)
        errors = np.maximum(n_ref, n_hyp) - correct
        total = errors.sum()
        best = total if best is None else min(best, total)
    return best / n_ref.sum()


def test_reference_against_itself_is_zero(sample):
    result = score(sample.annotation, sample.annotation, sample.annotated)
    assert result["DER"] == 0.0
    assert result["speech"] == pytest.approx(
        sum(s.duration for s, _ in sample.annotation.itertracks())
    )


def test_empty_hypothesis_is_all_miss(sample):
    result = score(sample.annotation, Annotation(uri=sample.uri), sample.annotated)
    assert result["DER"] == pytest.approx(1.0)
    assert result["Miss"] == pytest.approx(1.0)
    assert result["FalseAlarm"] == 0.0 and result["Confusion"] == 0.0


def test_hand_built_case():
    # reference A [0, 10], B [10, 20]; hypothesis x [1, 11], y [11, 21] over UEM [0, 20]
    reference = Annotation(uri="u")
    reference[Segment(0, 10)] = "A"
    reference[Segment(10, 20)] = "B"
    hypothesis = Annotation(uri="u")
    hypothesis[Segment(1, 11)] = "x"
    hypothesis[Segment(11, 21)] = "y"
    result = score(reference, hypothesis, Timeline([Segment(0, 20)]))
    # miss [0, 1] = 1 s; confusion [10, 11] = 1 s; false alarm: [20, 21] is outside the UEM
    assert result["seconds"] == pytest.approx(
        {"confusion": 1.0, "false_alarm": 0.0, "missed_detection": 1.0, "total": 20.0}
    )
    assert result["DER"] == pytest.approx(0.1)


def test_shifted_copy_matches_independent_computation(sample):
    uem = Segment(0, 30)
    hypothesis = shifted(sample.annotation, 0.5)
    result = score(sample.annotation, hypothesis, Timeline([uem]))
    assert 0.05 < result["DER"] < 0.5
    assert result["DER"] == pytest.approx(frame_der(sample.annotation, hypothesis, uem), abs=2e-3)


def test_chunk_scorer_with_oracle_scores_is_nearly_perfect(sample):
    frames = SlidingWindow(start=0.0, duration=0.02, step=0.0169)
    scorer = ChunkScorer()
    labels = sorted(sample.annotation.labels())
    for start in np.arange(0.0, 30.0, 10.0):
        chunk = Segment(float(start), float(start) + 10.0)
        times = np.arange(589) * frames.step + frames.duration / 2 + start
        scores = np.zeros((589, 3))
        for segment, _, label in sample.annotation.crop(chunk).itertracks(yield_label=True):
            scores[(times >= segment.start) & (times < segment.end), labels.index(label)] = 0.9
        scorer.add(sample, chunk, chunk_hypothesis(scores, frames, float(start), 0.5, sample.uri))
    report = scorer.report()
    assert report["DER"] < 0.02
    assert set(report["files"]) == {sample.uri}
    # the chunk-level scorer with an empty hypothesis is all miss, over the whole file
    empty = ChunkScorer()
    for start in (0.0, 10.0, 20.0):
        empty.add(sample, Segment(start, start + 10), Annotation(uri=sample.uri))
    assert empty.report()["Miss"] == pytest.approx(1.0)
    assert empty.report()["speech"] == pytest.approx(report["speech"])


def test_no_reference_speech_has_no_der_but_keeps_the_false_alarm_seconds():
    reference = Annotation(uri="u")  # a file whose RTTM is empty
    hypothesis = Annotation(uri="u")
    hypothesis[Segment(2, 12)] = "x"
    hypothesis[Segment(30, 40)] = "y"  # outside the UEM: not scored
    result = score(reference, hypothesis, Timeline([Segment(0, 20)]))
    assert result["DER"] is None
    assert result["Confusion"] is None and result["FalseAlarm"] is None and result["Miss"] is None
    assert result["seconds"] == pytest.approx(
        {"confusion": 0.0, "false_alarm": 10.0, "missed_detection": 0.0, "total": 0.0}
    )
    assert result["speech"] == 0.0 and "no reference speech" in result["undefined"]
    # nothing said, nothing heard: still undefined, not a perfect 0
    assert score(reference, Annotation(uri="u"), Timeline([Segment(0, 20)]))["DER"] is None


@pytest.mark.usefixtures("one_torch_thread")
def test_a_silent_test_file_reports_false_alarm_seconds_not_a_der(sample_split, tmp_path):
    """segmentation-3.0 applied chunk by chunk to a test set of the real sample and a copy of
    it whose RTTM is empty: the copy's speech is all false alarm, and it has no DER of its own."""
    (sample_split / "test" / "wav" / "silent.wav").write_bytes(
        (sample_split / "test" / "wav" / "sample_test.wav").read_bytes()
    )
    (sample_split / "test" / "rttm" / "silent.rttm").write_text("")
    (sample_split / "test.txt").write_text("sample_test\nsilent\n")
    recordings = load_folder(sample_split).files("test")
    model, _ = load_initial(Pretrained(id="pyannote/segmentation-3.0"))
    report = evaluate_chunks(model, recordings, AudioCache(tmp_path / "audio"), 10.0, None)
    silent, spoken = report["files"]["silent"], report["files"]["sample_test"]
    assert silent["DER"] is None and silent["FalseAlarm"] is None and silent["Miss"] is None
    assert silent["speech"] == 0.0 and silent["seconds"]["missed_detection"] == 0.0
    # the model hears the recording's speech (about 23 s of it) where the reference has none
    assert silent["seconds"]["false_alarm"] > 15.0
    assert 0.0 < spoken["DER"] < 0.5
    # the set's DER is defined, and counts the silent file's false alarm
    errors = (
        sum(f["seconds"][k] for f in (silent, spoken) for k in ("confusion", "false_alarm"))
        + spoken["seconds"]["missed_detection"]
    )
    assert report["DER"] == pytest.approx(errors / spoken["speech"])
    assert report["DER"] > spoken["DER"]
