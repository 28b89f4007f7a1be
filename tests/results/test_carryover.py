"""bench.results.carryover: tuning that lowered dev DER and raised test DER beyond the
paired-bootstrap noise is flagged; within the noise, or without a dev gain, it is not."""

from __future__ import annotations

from bench.results import ScoreReport, TestScores, carryover


def report(errors: dict[str, float], total: float = 100.0) -> ScoreReport:
    files = {
        uri: {
            "DER": e / total,
            "seconds": {"confusion": e, "false_alarm": 0.0, "missed_detection": 0.0,
                        "total": total},
        }
        for uri, e in errors.items()
    }  # fmt: skip
    total_errors = sum(errors.values())
    return ScoreReport.model_validate(
        {
            "DER": total_errors / (total * len(errors)),
            "seconds": {"confusion": total_errors, "false_alarm": 0.0,
                        "missed_detection": 0.0, "total": total * len(errors)},
            "files": files,
        }
    )  # fmt: skip


INITIAL = {f"f{i}": 10.0 + i for i in range(8)}


def test_tuning_that_helped_dev_and_hurt_test_is_overfit():
    worse = report({uri: e + 8.0 for uri, e in INITIAL.items()})
    scores = TestScores(pipeline=worse, pipeline_initial=report(INITIAL))
    found = carryover(scores, {"dev_der_before": 0.30, "dev_der_after": 0.20})
    assert found.overfit and found.test_change.worse
    assert found.text.startswith("tuning overfit dev: dev DER 30.00% -> 20.00%, test DER ")


def test_within_the_noise_or_without_a_dev_gain_it_is_not():
    mixed = {uri: e + (3.0 if i % 2 else -3.0) for i, (uri, e) in enumerate(INITIAL.items())}
    noisy = TestScores(pipeline=report(mixed), pipeline_initial=report(INITIAL))
    assert not carryover(noisy, {"dev_der_before": 0.3, "dev_der_after": 0.2}).overfit
    worse = TestScores(
        pipeline=report({u: e + 8.0 for u, e in INITIAL.items()}), pipeline_initial=report(INITIAL)
    )
    assert not carryover(worse, {"dev_der_before": 0.2, "dev_der_after": 0.2}).overfit
    assert not carryover(worse, {"dev_der_before": None, "dev_der_after": 0.2}).overfit
    assert carryover(TestScores(pipeline=report(INITIAL)), {}) is None  # older records
