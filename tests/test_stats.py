"""Bootstrap intervals for DER over test files (bench.stats)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from bench import stats
from bench.results import ScoreReport

TOTALS = np.array([30.0, 45.0, 12.0, 60.0, 25.0, 40.0, 18.0, 33.0])
ERRORS = np.array([6.0, 9.5, 3.0, 12.0, 4.0, 9.0, 5.5, 6.0])


def test_der_is_pooled_errors_over_pooled_speech():
    assert stats.der(ERRORS, TOTALS) == pytest.approx(ERRORS.sum() / TOTALS.sum())
    assert stats.der([0.0], [0.0]) == 0.0
    assert math.isnan(stats.der([1.0], [0.0]))


def test_interval_contains_the_estimate_and_is_deterministic():
    first = stats.bootstrap_der(ERRORS, TOTALS, seed=0)
    again = stats.bootstrap_der(ERRORS, TOTALS, seed=0)
    other_seed = stats.bootstrap_der(ERRORS, TOTALS, seed=1)
    assert first == again
    assert first.defined and first.low < first.estimate < first.high
    assert first.estimate == pytest.approx(ERRORS.sum() / TOTALS.sum())
    assert first.n_files == len(TOTALS)
    assert (first.low, first.high) != (other_seed.low, other_seed.high)
    assert other_seed.contains(other_seed.estimate)


def test_interval_matches_a_direct_resampling_loop():
    """The vectorised bootstrap equals the textbook loop with the same generator."""
    found = stats.bootstrap_der(ERRORS, TOTALS, resamples=500, seed=4)
    rng = np.random.default_rng(4)
    draws = rng.integers(0, len(TOTALS), size=(500, len(TOTALS)))
    ders = [ERRORS[d].sum() / TOTALS[d].sum() for d in draws]
    assert found.low == pytest.approx(np.percentile(ders, 2.5))
    assert found.high == pytest.approx(np.percentile(ders, 97.5))


def test_more_files_narrow_the_interval():
    narrow = stats.bootstrap_der(np.tile(ERRORS, 16), np.tile(TOTALS, 16))
    wide = stats.bootstrap_der(ERRORS, TOTALS)
    assert narrow.high - narrow.low < (wide.high - wide.low) / 2


def test_one_file_has_no_interval():
    single = stats.bootstrap_der([3.0], [10.0])
    assert single.estimate == pytest.approx(0.3) and not single.defined
    assert not single.contains(0.3)


def test_identical_runs_are_tied_with_zero_difference():
    same = stats.paired_bootstrap(ERRORS, TOTALS, ERRORS, TOTALS)
    assert same.difference.estimate == 0.0
    assert same.difference.low == 0.0 == same.difference.high
    assert same.tied and not same.worse and not same.better


def test_much_higher_errors_on_every_file_is_significantly_worse():
    worse = stats.paired_bootstrap(ERRORS, TOTALS, ERRORS * 1.5, TOTALS)
    assert worse.worse and not worse.tied
    assert worse.difference.low > 0
    assert worse.difference.estimate == pytest.approx(0.5 * ERRORS.sum() / TOTALS.sum())
    assert worse.difference.contains(worse.difference.estimate)
    better = stats.paired_bootstrap(ERRORS * 1.5, TOTALS, ERRORS, TOTALS)
    assert better.better and better.difference.high < 0


def test_pairing_removes_the_between_file_variance():
    """A small but consistent improvement is significant only when the files are paired."""
    rng = np.random.default_rng(7)
    totals = rng.uniform(20, 60, size=40)
    hard = totals * rng.uniform(0.05, 0.6, size=40)  # files differ a lot in difficulty
    better = hard - 0.01 * totals
    paired = stats.paired_bootstrap(hard, totals, better, totals)
    assert paired.better
    unpaired_a = stats.bootstrap_der(hard, totals)
    unpaired_b = stats.bootstrap_der(better, totals)
    assert unpaired_a.low < unpaired_b.high  # the separate intervals overlap


def test_noise_around_the_same_level_is_tied():
    rng = np.random.default_rng(3)
    noisy = np.clip(ERRORS + rng.normal(0, 1.5, size=ERRORS.size), 0, None)
    assert stats.paired_bootstrap(ERRORS, TOTALS, noisy, TOTALS).tied


def test_compare_files_aligns_by_uri():
    a = {"x": (1.0, 10.0), "y": (2.0, 10.0), "z": (3.0, 10.0)}
    b_reordered = {"z": (3.0, 10.0), "x": (1.0, 10.0), "y": (2.0, 10.0)}
    assert stats.compare_files(a, b_reordered).difference.estimate == 0.0
    assert stats.compare_files(a, b_reordered).tied
    with pytest.raises(ValueError, match="share no test file"):
        stats.compare_files(a, {"w": (1.0, 1.0)})


def report_of(files: dict) -> ScoreReport:
    """A score report over ``files`` (the bootstrap reads each file's seconds)."""
    zero = {"confusion": 0.0, "false_alarm": 0.0, "missed_detection": 0.0, "total": 0.0}
    return ScoreReport.model_validate({"DER": None, "seconds": zero, "files": files})


def test_file_components_read_a_result():
    seconds = {"confusion": 1.0, "false_alarm": 2.0, "missed_detection": 0.5, "total": 10.0}
    files = {"f1": {"DER": 0.35, "seconds": seconds}}
    assert report_of(files).components() == {"f1": (3.5, 10.0)}


def test_large_test_sets_are_drawn_in_blocks_with_the_same_result(monkeypatch):
    errors, totals = np.tile(ERRORS, 50), np.tile(TOTALS, 50)
    whole = stats.bootstrap_der(errors, totals, resamples=300)
    monkeypatch.setattr(stats, "_CELLS", 1000)  # 2 resamples per block
    assert stats.bootstrap_der(errors, totals, resamples=300) == whole
    assert whole.low < whole.estimate < whole.high


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        stats.bootstrap_der([1.0, 2.0], [3.0])
    with pytest.raises(ValueError, match="no test files"):
        stats.bootstrap_der([], [])
    with pytest.raises(ValueError, match="same files"):
        stats.paired_bootstrap([1.0], [2.0], [1.0, 2.0], [2.0, 3.0])


def test_a_file_without_reference_speech_counts_its_false_alarm():
    """A silent test file (empty RTTM) is recorded with DER None and its false-alarm seconds;
    its errors join the pooled numerator, and resamples drawing only silent files (DER
    undefined) are left out of the interval."""
    seconds = {"confusion": 0.0, "false_alarm": 36.8, "missed_detection": 0.0, "total": 0.0}
    silent = {"DER": None, "FalseAlarm": None, "seconds": seconds}
    spoken = {
        uri: {"DER": e / t, "seconds": {**seconds, "false_alarm": e, "total": t}}
        for uri, e, t in zip("abcdefgh", ERRORS, TOTALS, strict=True)
    }
    files = report_of({**spoken, "silent": silent}).components()
    assert files["silent"] == (36.8, 0.0)
    found = stats.interval_of_files(files)
    assert found.estimate == pytest.approx((ERRORS.sum() + 36.8) / TOTALS.sum())
    assert found.defined and found.low < found.estimate < found.high
    assert found.n_files == len(TOTALS) + 1
    heard_nothing = {**silent, "seconds": {**seconds, "false_alarm": 0.0}}
    quiet = report_of({**spoken, "silent": heard_nothing}).components()
    comparison = stats.compare_files(files, quiet)
    assert comparison.difference.estimate == pytest.approx(-36.8 / TOTALS.sum())
    assert comparison.difference.low < 0.0 and comparison.difference.high == 0.0
    # two files, one silent: the resamples are (a, a) 0.3, (a, silent) 0.7 and (silent, silent)
    # undefined; the interval comes from the defined ones
    pair = stats.interval_of_files({"a": (3.0, 10.0), "silent": (4.0, 0.0)})
    assert pair.defined and pair.estimate == pytest.approx(0.7)
    assert (pair.low, pair.high) == pytest.approx((0.3, 0.7))


def test_jer_components_give_the_pooled_jer_and_its_paired_comparison():
    """Scorer's per-file ``jaccard`` bootstraps like DER's seconds: the estimate is the pooled
    JER, a file without reference speakers adds nothing, and a paired comparison of two
    hypothesis sets estimates the difference of their JERs."""
    from pyannote.core import Annotation, Segment, Timeline

    from bench.evaluation.scoring import Scorer

    def annotation(turns):
        built = Annotation()
        for label, start, end in turns:
            built[Segment(start, end), len(built)] = label
        return built

    uem = Timeline([Segment(0, 30)])
    rng = np.random.default_rng(0)
    good, bad = Scorer({}), Scorer({})
    for i in range(6):
        cuts = np.sort(rng.uniform(0, 30, size=6))
        turns = list(enumerate(itertools.pairwise(cuts)))
        reference = annotation([("AB"[k % 2], a, b) for k, (a, b) in turns])
        shifted = annotation([("xy"[k % 2], a + 0.5, b) for k, (a, b) in turns])
        merged = annotation([("x", cuts[0], cuts[-1])])  # one speaker for two
        good.add(f"f{i}", reference, shifted, uem)
        bad.add(f"f{i}", reference, merged, uem)
    silent = annotation([("x", 1, 2)])
    good.add("silent", Annotation(), silent, uem)
    bad.add("silent", Annotation(), silent, uem)
    a, b = good.report(), bad.report()
    files_a = ScoreReport.model_validate(a).jer_components()
    assert files_a["silent"] == (0.0, 0.0)
    assert files_a["f0"] == (a["files"]["f0"]["jaccard"]["speaker_error"], 2.0)
    interval = stats.interval_of_files(files_a)
    assert interval.estimate == pytest.approx(a["JER"])
    assert interval.defined and interval.low <= a["JER"] <= interval.high
    comparison = stats.compare_files(files_a, ScoreReport.model_validate(b).jer_components())
    assert comparison.difference.estimate == pytest.approx(b["JER"] - a["JER"])
    assert b["JER"] > a["JER"] and comparison.worse
