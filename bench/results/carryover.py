"""Does tuning carry over? A run's full pipeline is scored on test at its tuned parameters and at
its initial ones (``test.pipeline`` and ``test.pipeline_initial``): tuning that lowered dev DER
but raised test DER beyond the paired-bootstrap noise overfit dev (pyannote-audio #1535 reports
43 % -> 47 % on test after tuning). Torch-free: the console, the run page and the leaderboard
read it from the record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench import stats
from bench.io import is_number
from bench.results.scores import TestScores


@dataclass(frozen=True)
class Carryover:
    """Dev and test DER before and after tuning, and the paired comparison on test."""

    dev_before: float | None
    dev_after: float | None
    test_before: float
    test_after: float
    test_change: stats.Comparison  # tuned - initial, over the test files

    @property
    def helped_dev(self) -> bool:
        return (
            is_number(self.dev_before)
            and is_number(self.dev_after)
            and self.dev_after < self.dev_before
        )

    @property
    def overfit(self) -> bool:
        """Tuning helped dev and hurt test beyond the noise."""
        return self.helped_dev and self.test_change.worse

    @property
    def text(self) -> str:
        """One line for the console, the run page and the leaderboard."""
        interval = self.test_change.difference
        verdict = "tuning overfit dev" if self.overfit else "tuning"
        return (
            f"{verdict}: dev DER {_pct(self.dev_before)} -> {_pct(self.dev_after)}, test DER "
            f"{_pct(self.test_before)} -> {_pct(self.test_after)} (change "
            f"[{100 * interval.low:+.2f}, {100 * interval.high:+.2f}] points, 95%)"
        )


def _pct(value: Any) -> str:
    return f"{100 * value:.2f}%" if is_number(value) else "–"


def carryover(test: TestScores, tuning: dict[str, Any] | None) -> Carryover | None:
    """The carry-over of a run's tuning (None when the record has no initial-parameters score)."""
    before, after = test.pipeline_initial, test.pipeline
    if before is None or after is None or not before.defined or not after.defined:
        return None
    tuning = tuning or {}
    try:
        change = stats.compare_files(before.components(), after.components())
    except ValueError:  # no test file in common: a damaged record
        return None
    return Carryover(
        tuning.get("dev_der_before"), tuning.get("dev_der_after"), before.DER, after.DER, change
    )
