"""Bootstrap statistics for DER (and JER) over test files (pure numpy).

A run's test DER is ``sum(errors) / sum(totals)`` over the test files, where ``errors`` is a
file's confusion + false alarm + missed detection seconds and ``totals`` its reference speech
seconds. JER has the same form: a file's summed speaker errors over its reference speakers, so
every function below serves both (a score report gives either as ``{uri: (errors, total)}``:
:class:`bench.results.ScoreReport`). Resampling *files* with replacement gives a confidence
interval for that ratio; resampling the same files for two runs (a paired bootstrap) gives one
for their difference. Every function takes a fixed ``seed``, so the same inputs always give the
same interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 0
_CELLS = 2_000_000  # resamples x files drawn at once (bounds memory for large test sets)


@dataclass(frozen=True)
class Interval:
    """A point estimate with a bootstrap confidence interval (NaN bounds: too few files)."""

    estimate: float
    low: float
    high: float
    n_files: int
    confidence: float = CONFIDENCE

    @property
    def defined(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    def contains(self, value: float) -> bool:
        return self.defined and self.low <= value <= self.high


@dataclass(frozen=True)
class Comparison:
    """``b - a`` in DER (positive: ``b`` makes more errors), with its paired-bootstrap interval."""

    difference: Interval

    @property
    def tied(self) -> bool:
        """The interval includes 0, or cannot be estimated: no significant difference."""
        return not self.difference.defined or self.difference.contains(0.0)

    @property
    def worse(self) -> bool:
        """``b`` is significantly worse than ``a``."""
        return self.difference.defined and self.difference.low > 0.0

    @property
    def better(self) -> bool:
        """``b`` is significantly better than ``a``."""
        return self.difference.defined and self.difference.high < 0.0


def der(errors: np.ndarray, totals: np.ndarray) -> float:
    """Pooled DER: total error seconds over total reference seconds (0 when both are 0)."""
    total = float(np.sum(totals))
    error = float(np.sum(errors))
    if total == 0.0:
        return 0.0 if error == 0.0 else math.nan
    return error / total


def _indices(n: int, resamples: int, seed: int) -> list[np.ndarray]:
    """Bootstrap file indices, ``resamples`` rows of ``n``, drawn in memory-bounded blocks."""
    rng = np.random.default_rng(seed)
    block = max(1, _CELLS // max(n, 1))
    out = []
    for start in range(0, resamples, block):
        out.append(rng.integers(0, n, size=(min(block, resamples - start), n)))
    return out


def _ratios(errors: np.ndarray, totals: np.ndarray, blocks: list[np.ndarray]) -> np.ndarray:
    num = np.concatenate([errors[b].sum(axis=1) for b in blocks])
    den = np.concatenate([totals[b].sum(axis=1) for b in blocks])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.nan, 0.0))


def _interval(estimate: float, samples: np.ndarray, n: int, confidence: float) -> Interval:
    samples = samples[np.isfinite(samples)]
    if n < 2 or samples.size == 0:
        return Interval(estimate, math.nan, math.nan, n, confidence)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    # percentiles of a degenerate distribution may differ from the estimate by rounding
    return Interval(estimate, min(float(low), estimate), max(float(high), estimate), n, confidence)


def _arrays(errors: Any, totals: Any) -> tuple[np.ndarray, np.ndarray]:
    e = np.asarray(errors, dtype=float).ravel()
    t = np.asarray(totals, dtype=float).ravel()
    if e.shape != t.shape:
        raise ValueError(f"errors and totals differ in length: {e.size} != {t.size}")
    if e.size == 0:
        raise ValueError("no test files to bootstrap over")
    return e, t


def bootstrap_der(
    errors: Any,
    totals: Any,
    *,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> Interval:
    """DER with a percentile bootstrap interval over files (undefined with fewer than 2 files)."""
    e, t = _arrays(errors, totals)
    blocks = _indices(e.size, resamples, seed)
    return _interval(der(e, t), _ratios(e, t, blocks), e.size, confidence)


def paired_bootstrap(
    errors_a: Any,
    totals_a: Any,
    errors_b: Any,
    totals_b: Any,
    *,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> Comparison:
    """DER(b) - DER(a) over the same files (same order), resampled together.

    Both runs must be scored on the same test files; row ``i`` of every array is file ``i``.
    """
    ea, ta = _arrays(errors_a, totals_a)
    eb, tb = _arrays(errors_b, totals_b)
    if ea.size != eb.size:
        raise ValueError(f"paired runs need the same files: {ea.size} != {eb.size}")
    blocks = _indices(ea.size, resamples, seed)
    samples = _ratios(eb, tb, blocks) - _ratios(ea, ta, blocks)
    estimate = der(eb, tb) - der(ea, ta)
    return Comparison(_interval(estimate, samples, ea.size, confidence))


def compare_files(
    a: Mapping[str, tuple[float, float]],
    b: Mapping[str, tuple[float, float]],
    **options: Any,
) -> Comparison:
    """:func:`paired_bootstrap` on two ``{uri: (errors, total)}`` maps, on the files both have."""
    uris = sorted(set(a) & set(b))
    if not uris:
        raise ValueError("the two runs share no test file")
    ea, ta = zip(*(a[u] for u in uris), strict=True)
    eb, tb = zip(*(b[u] for u in uris), strict=True)
    return paired_bootstrap(ea, ta, eb, tb, **options)


def interval_of_files(files: Mapping[str, tuple[float, float]], **options: Any) -> Interval:
    """:func:`bootstrap_der` on a ``{uri: (errors, total)}`` map (files in sorted URI order)."""
    uris = sorted(files)
    if not uris:
        raise ValueError("no test files to bootstrap over")
    errors, totals = zip(*(files[u] for u in uris), strict=True)
    return bootstrap_der(errors, totals, **options)


def compare_seeded(
    a: list[Mapping[str, tuple[float, float]]],
    b: list[Mapping[str, tuple[float, float]]],
    *,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> Comparison:
    """Mean-over-seeds DER(b) - DER(a) for runs paired by seed (``a[i]`` and ``b[i]`` share a
    seed), on the files every run has. Each bootstrap resample draws seeds and files with
    replacement, the same draw for both sides, so both sources of spread enter the interval."""
    if len(a) != len(b) or not a:
        raise ValueError(f"paired seeds needed on both sides: {len(a)} != {len(b)}")
    uris = sorted(set.intersection(*(set(run) for run in (*a, *b))))
    if not uris:
        raise ValueError("the runs share no test file")

    def arrays(runs: list[Mapping[str, tuple[float, float]]]) -> tuple[np.ndarray, np.ndarray]:
        cells = np.array([[run[u] for u in uris] for run in runs], dtype=float)
        return cells[..., 0], cells[..., 1]  # (seeds, files)

    (ea, ta), (eb, tb) = arrays(a), arrays(b)
    n_seeds, n_files = ea.shape

    def mean_der(errors: np.ndarray, totals: np.ndarray, seeds: np.ndarray, files: np.ndarray):
        num = errors[seeds][:, :, files].sum(axis=-1)  # (resamples?, seeds drawn)
        den = totals[seeds][:, :, files].sum(axis=-1)
        return (num / np.where(den > 0, den, np.nan)).mean(axis=-1)

    rng = np.random.default_rng(seed)
    samples = np.empty(resamples)
    for r in range(resamples):
        seeds = rng.integers(0, n_seeds, size=(1, n_seeds))
        files = rng.integers(0, n_files, size=n_files)
        samples[r] = (mean_der(eb, tb, seeds, files) - mean_der(ea, ta, seeds, files))[0]
    everything = np.arange(n_files)
    all_seeds = np.arange(n_seeds)[None, :]
    estimate = float(
        (mean_der(eb, tb, all_seeds, everything) - mean_der(ea, ta, all_seeds, everything))[0]
    )
    return Comparison(_interval(estimate, samples, n_files, confidence))
