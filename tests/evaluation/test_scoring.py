"""Full-file scoring (bench.evaluation.scoring.Scorer): the collar variant maps speakers like
md-eval, JER, speaker counts and the overlap breakdown, each against hand computations,
pyannote.metrics or spy-der."""

from __future__ import annotations

import json

import numpy as np
import pytest
import spyder
from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import (
    DiarizationErrorRate,
    DiarizationSpeakerCountAccuracy,
    DiarizationSpeakerCountError,
    JaccardErrorRate,
)

from bench.evaluation.scoring import MAPPING, Scorer

COLLAR = "collar_0.25_no_overlap"


def annotation(uri: str, turns: list[tuple[str, float, float]]) -> Annotation:
    built = Annotation(uri=uri)
    for label, start, end in turns:
        built[Segment(start, end), len(built)] = label
    return built


def turns(built: Annotation) -> list[tuple[str, float, float]]:
    return [(str(label), s.start, s.end) for s, _, label in built.itertracks(yield_label=True)]


def spy_der(reference: Annotation, hypothesis: Annotation, uem: Timeline, **options) -> dict:
    """spy-der's DER and its components in seconds (an md-eval re-implementation)."""
    found = spyder.DER(
        turns(reference), turns(hypothesis), uem=[(s.start, s.end) for s in uem], **options
    )
    seconds = {
        "confusion": found.conf * found.duration,
        "false_alarm": found.falarm * found.duration,
        "missed_detection": found.miss * found.duration,
        "total": found.duration,
    }
    return {"DER": found.der, "seconds": seconds}


def scored(uri: str, reference: Annotation, hypothesis: Annotation, uem: Timeline) -> dict:
    scorer = Scorer()
    scorer.add(uri, reference, hypothesis, uem)
    return scorer.report()


def confusable() -> tuple[Annotation, Annotation, Timeline]:
    """A talks in twelve 0.5 s turns (inside 0.25 s collars) and twice for 2 s, overlapping B
    where the hypothesis is silent; x follows A's short turns and 3 s of B's turn, y A's first
    long turn. On the whole reference x -> A, y -> B covers 6 s, x -> B, y -> A 5 s; with
    collars and overlap removed, A's short turns are gone and x -> B, y -> A wins."""
    short = [("A", 5 + i, 5.5 + i) for i in range(12)]
    reference = annotation("c", [("B", 0, 4), *short, ("A", 20, 22), ("A", 26, 28), ("B", 27, 29)])
    hypothesis = annotation("c", [("x", 0, 3), *(("x", s, e) for _, s, e in short), ("y", 20, 22)])
    return reference, hypothesis, Timeline([Segment(0, 30)])


def test_collar_variant_maps_speakers_like_md_eval():
    reference, hypothesis, uem = confusable()
    report = scored("c", reference, hypothesis, uem)
    variant = report[COLLAR]
    # md-eval's mapping (x -> A, y -> B) then 0.25 s collars and overlap [27, 28] removed:
    # B [0.25, 3.75] is x's (= A) to 3, then missed: 2.75 s confusion, 0.75 s miss; A
    # [20.25, 21.75] is y's (= B): 1.5 s confusion; A [26.25, 26.75] and B [28.25, 28.75] are
    # missed; 6 s of speech scored, all of it wrong
    assert variant["seconds"] == pytest.approx(
        {"confusion": 4.25, "false_alarm": 0.0, "missed_detection": 1.75, "total": 6.0}
    )
    assert variant["DER"] == pytest.approx(1.0)
    expected = spy_der(reference, hypothesis, uem, collar=0.25, regions="nonoverlap")
    assert variant["DER"] == pytest.approx(expected["DER"], abs=1e-9)
    assert variant["seconds"] == pytest.approx(expected["seconds"], abs=1e-9)
    # pyannote.metrics maps again after removing collars and overlap (x -> B, y -> A): only
    # B's [3, 3.75] and the two overlap-side misses are left, 1.75 s of 6
    naive = DiarizationErrorRate(collar=0.5, skip_overlap=True)(reference, hypothesis, uem=uem)
    assert naive == pytest.approx(1.75 / 6.0)
    assert abs(naive - variant["DER"]) > 0.5
    assert variant["mapping"] == MAPPING and "\n" not in MAPPING
    # primary (collar 0, overlap scored), the same mapping: 3 s + 2 s confusion, 1 s + 4 s
    # missed (B [3, 4], A [26, 28], B [27, 29]) of 16 s
    assert report["seconds"] == pytest.approx(
        {"confusion": 5.0, "false_alarm": 0.0, "missed_detection": 5.0, "total": 16.0}
    )
    assert report["DER"] == pytest.approx(spy_der(reference, hypothesis, uem)["DER"], abs=1e-9)
    assert report["DER"] == pytest.approx(DiarizationErrorRate()(reference, hypothesis, uem=uem))
    assert report["DER"] == pytest.approx(10.0 / 16.0)


def random_case(seed: int, duration: float = 60.0) -> tuple[Annotation, Annotation, Timeline]:
    """Three reference speakers, two to four hypothesis ones, turns of 0.3-5 s (overlaps
    included), a UEM in two parts that cuts through turns."""
    rng = np.random.default_rng(seed)

    def speakers(prefix: str, count: int) -> list[tuple[str, float, float]]:
        out = []
        for k in range(count):
            t = rng.uniform(0, 5)
            while t < duration - 2:
                length = rng.uniform(0.3, 5)
                out.append((f"{prefix}{k}", round(t, 3), round(min(t + length, duration), 3)))
                t += length + rng.uniform(0.3, 8)
        return out

    reference = annotation("r", speakers("S", 3))
    hypothesis = annotation("r", speakers("h", int(rng.integers(2, 5))))
    return reference, hypothesis, Timeline([Segment(1, 30), Segment(33, duration - 1)])


def test_scores_equal_spyder_on_random_cases():
    """Primary DER, the collar variant and the overlap breakdown equal spy-der's (its regions
    "single" and "overlap"; "nonoverlap" adds non-speech) on 30 random cases; pyannote.metrics'
    own collar DER differs on some."""
    naive_differs = 0
    for seed in range(30):
        reference, hypothesis, uem = random_case(seed)
        report = scored("r", reference, hypothesis, uem)
        assert report["DER"] == pytest.approx(spy_der(reference, hypothesis, uem)["DER"], abs=1e-9)
        collar = spy_der(reference, hypothesis, uem, collar=0.25, regions="nonoverlap")
        assert report[COLLAR]["DER"] == pytest.approx(collar["DER"], abs=1e-9)
        naive = DiarizationErrorRate(collar=0.5, skip_overlap=True)(reference, hypothesis, uem=uem)
        naive_differs += abs(naive - collar["DER"]) > 1e-6
        overlap = report["overlap"]
        for ours, theirs in (("single", "single"), ("overlapped", "overlap")):
            expected = spy_der(reference, hypothesis, uem, regions=theirs)["seconds"]
            assert overlap[ours]["seconds"] == pytest.approx(expected, abs=1e-9)
        nonoverlap = spy_der(reference, hypothesis, uem, regions="nonoverlap")["seconds"]
        false_alarm = sum(overlap[p]["seconds"]["false_alarm"] for p in ("non_speech", "single"))
        assert false_alarm == pytest.approx(nonoverlap["false_alarm"], abs=1e-9)
    assert naive_differs >= 3


def overlapping() -> tuple[Annotation, Annotation, Timeline]:
    """A [0, 10], B [8, 20] (overlap [8, 10]); x [0, 10.3] + [15, 15.5] + [21, 22], y
    [10.3, 20]; UEM [0, 25]."""
    reference = annotation("o", [("A", 0, 10), ("B", 8, 20)])
    hypothesis = annotation("o", [("x", 0, 10.3), ("y", 10.3, 20), ("x", 15, 15.5), ("x", 21, 22)])
    return reference, hypothesis, Timeline([Segment(0, 25)])


def test_overlap_breakdown_splits_der_by_reference_speakers():
    report = scored("o", *overlapping())
    overlap = report["overlap"]
    # non-speech [20, 25]: x's [21, 22] is a false alarm, and DER is undefined there
    assert overlap["non_speech"]["seconds"] == pytest.approx(
        {"confusion": 0.0, "false_alarm": 1.0, "missed_detection": 0.0, "total": 0.0}
    )
    assert overlap["non_speech"]["DER"] is None
    # one speaker, [0, 8] + [10, 20]: x (= A) speaks for B over [10, 10.3], x doubles y over
    # [15, 15.5]
    assert overlap["single"]["seconds"] == pytest.approx(
        {"confusion": 0.3, "false_alarm": 0.5, "missed_detection": 0.0, "total": 18.0}
    )
    assert overlap["single"]["DER"] == pytest.approx(0.8 / 18.0)
    # overlap [8, 10]: x (= A) is right, B is missed
    assert overlap["overlapped"]["seconds"] == pytest.approx(
        {"confusion": 0.0, "false_alarm": 0.0, "missed_detection": 2.0, "total": 4.0}
    )
    # the three parts add up to the whole, per file and in total
    for key, whole in report["seconds"].items():
        assert sum(overlap[part]["seconds"][key] for part in overlap) == pytest.approx(whole)
        assert sum(overlap[part]["files"]["o"]["seconds"][key] for part in overlap) == (
            pytest.approx(report["files"]["o"]["seconds"][key])
        )
    assert report["seconds"] == pytest.approx(
        {"confusion": 0.3, "false_alarm": 1.5, "missed_detection": 2.0, "total": 22.0}
    )
    # DER and its rates are the components over the reference speech
    assert report["DER"] == pytest.approx(3.8 / 22.0)
    assert report["DER"] == pytest.approx(
        report["Confusion"] + report["FalseAlarm"] + report["Miss"]
    )


def test_jer_per_file_and_pooled():
    reference, hypothesis, uem = overlapping()
    scorer = Scorer()
    scorer.add("o", reference, hypothesis, uem)
    other, other_hypothesis, _ = confusable()
    scorer.add("c", other, other_hypothesis, Timeline([Segment(0, 30)]))
    report = scorer.report()
    # "o", by hand: A [0, 10] against x (11.8 s in all, 1.8 s outside A), B [8, 20] against y
    # [10.3, 20] (2.3 s of B missed, union 12 s)
    by_hand = (1.8 / 11.8 + 2.3 / 12.0) / 2
    assert report["files"]["o"]["JER"] == pytest.approx(by_hand)
    assert report["files"]["o"]["jaccard"] == pytest.approx(
        {"speaker_error": 1.8 / 11.8 + 2.3 / 12.0, "speaker_count": 2}
    )
    # "c", by hand: A (10 s) against x (9 s; union 13 s, 3 s outside A, 4 s of A missed), B
    # (6 s) against y (2 s, all outside B): 7/13 and 1
    assert report["files"]["c"]["JER"] == pytest.approx((7 / 13 + 1.0) / 2)
    # pooled: summed speaker errors over summed reference speakers, which is what
    # pyannote.metrics accumulates
    pooled = JaccardErrorRate()
    pooled(reference, hypothesis, uem=uem)
    pooled(other, other_hypothesis, uem=Timeline([Segment(0, 30)]))
    assert report["JER"] == pytest.approx(abs(pooled))
    assert report["JER"] == pytest.approx((1.8 / 11.8 + 2.3 / 12.0 + 7 / 13 + 1.0) / 4)
    assert report["jaccard"]["speaker_count"] == 4


def test_speaker_count_with_extra_hypothesis_speakers():
    """Counts inside the UEM only: C and w speak outside it and do not count."""
    uem = Timeline([Segment(0, 20)])
    reference = annotation("extra", [("A", 0, 8), ("B", 8, 16), ("C", 21, 24)])
    hypothesis = annotation(
        "extra", [("x", 0, 6), ("y", 6, 12), ("z", 12, 16), ("v", 16, 17), ("w", 22, 24)]
    )
    exact = annotation("exact", [("A", 0, 5), ("B", 5, 10)])
    files = [("extra", reference, hypothesis), ("exact", exact, exact)]
    scorer = Scorer()
    accuracy, error = DiarizationSpeakerCountAccuracy(), DiarizationSpeakerCountError()
    for uri, ref, hyp in files:
        scorer.add(uri, ref, hyp, uem)
        accuracy(ref, hyp, uem=uem)
        error(ref, hyp, uem=uem)
    report = scorer.report()
    assert report["files"]["extra"]["speakers"] == {"reference": 2, "hypothesis": 4}
    assert report["files"]["exact"]["speakers"] == {"reference": 2, "hypothesis": 2}
    # one file of two exactly right; errors 2 and 0
    assert report["speaker_count"] == {"accuracy": 0.5, "mae": 1.0, "files": 2}
    assert report["speaker_count"]["accuracy"] == pytest.approx(abs(accuracy))
    assert report["speaker_count"]["mae"] == pytest.approx(abs(error))


def test_a_file_without_reference_speech():
    """DER and JER are undefined (None) and it adds nothing to the pooled JER; its false
    alarm is kept (whole and non-speech part); pyannote.metrics would give it JER 1.0."""
    uem = Timeline([Segment(0, 20)])
    silent, hypothesis = Annotation(uri="silent"), annotation("silent", [("x", 3, 7)])
    reference, spoken, _ = overlapping()
    scorer = Scorer()
    scorer.add("silent", silent, hypothesis, uem)
    scorer.add("o", reference, spoken, Timeline([Segment(0, 25)]))
    report = scorer.report()
    file = report["files"]["silent"]
    assert file["DER"] is None and file["JER"] is None
    assert file["jaccard"] == {"speaker_error": 0.0, "speaker_count": 0}
    assert file["speakers"] == {"reference": 0, "hypothesis": 1}
    assert file["seconds"]["false_alarm"] == pytest.approx(4.0)
    assert report["overlap"]["non_speech"]["files"]["silent"]["seconds"]["false_alarm"] == (
        pytest.approx(4.0)
    )
    assert report["JER"] == pytest.approx(report["files"]["o"]["JER"])
    assert JaccardErrorRate()(silent, hypothesis, uem=uem) == 1.0
    empty = Scorer()
    empty.add("silent", silent, hypothesis, uem)
    alone = empty.report()
    assert alone["DER"] is None and alone["JER"] is None
    assert alone["speaker_count"] == {"accuracy": 0.0, "mae": 1.0, "files": 1}


def test_primary_only_scorer_keeps_every_field():
    """``Scorer({})`` (dev scoring) drops the collar variant, nothing else."""
    reference, hypothesis, uem = overlapping()
    full, primary = Scorer(), Scorer({})
    for scorer in (full, primary):
        scorer.add("o", reference, hypothesis, uem)
    a, b = full.report(), primary.report()
    json.dumps(a)  # JSON-able as it is
    rates = {"DER", "Confusion", "FalseAlarm", "Miss", "speech", "seconds"}
    new = {"JER", "jaccard", "speaker_count", "overlap"}
    assert set(a) == rates | new | {"collar", "skip_overlap", "files", COLLAR}
    assert COLLAR in a and COLLAR not in b
    assert set(a) - {COLLAR} == set(b)
    for key in ("DER", "JER", "jaccard", "speaker_count", "overlap", "files", "seconds"):
        assert a[key] == b[key]
    assert set(b["overlap"]) == {"non_speech", "single", "overlapped"}
    assert {"JER", "jaccard", "speakers", "DER", "seconds"} <= set(b["files"]["o"])
    assert b["collar"] == 0.0 and b["skip_overlap"] is False
    assert a[COLLAR]["collar"] == 0.5 and a[COLLAR]["collar_each_side"] == 0.25
    assert a[COLLAR]["skip_overlap"] is True and set(a[COLLAR]["files"]) == {"o"}
