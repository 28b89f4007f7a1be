"""The detail metrics of a full-pipeline score report: JER, speaker counting, DER by overlap."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench import stats

_DETAILS = ("JER", "overlap", "speaker_count")  # report keys only newer results have


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _get(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...``, or None where any level is missing or not a mapping."""
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def pipeline_scores(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record's full-pipeline test report (``test.pipeline``), or ``{}``."""
    found = _get(record, "test", "pipeline")
    return found if isinstance(found, dict) else {}


def detailed(scores: Mapping[str, Any]) -> bool:
    """The report carries the detail metrics (JER, overlap, speaker counting): newer results."""
    return any(key in scores for key in _DETAILS)


def jer_files(scores: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """``{uri: (speaker error, speaker count)}`` (:func:`bench.stats.jer_components`); ``{}``
    when any file lacks them (no interval rather than one over some of the files)."""
    try:
        return stats.jer_components(scores.get("files") or {})
    except (KeyError, TypeError, ValueError):
        return {}


def jer_interval(scores: Mapping[str, Any]) -> stats.Interval | None:
    """The recorded JER with a 95% bootstrap interval over files (the same resampling as DER:
    JER pools speaker error over speaker count); None when no JER is recorded."""
    estimate = _number(scores.get("JER"))
    if estimate is None:
        return None
    files = jer_files(scores)
    if not files:
        return stats.Interval(estimate, math.nan, math.nan, 0)
    found = stats.interval_of_files(files)
    return stats.Interval(estimate, found.low, found.high, found.n_files)


@dataclass(frozen=True)
class Details:
    """A run's full-pipeline detail metrics; None where the result does not record them."""

    jer: stats.Interval | None = None
    sca: float | None = None  # speaker-count accuracy: files with the right number of speakers
    mae: float | None = None  # mean absolute error of the number of speakers per file
    single: float | None = None  # DER where the reference has one speaker
    overlapped: float | None = None  # DER where the reference has two or more speakers


def details(scores: Mapping[str, Any]) -> Details:
    """The detail metrics of a full-pipeline report (``{}`` gives an empty one)."""
    return Details(
        jer=jer_interval(scores),
        sca=_number(_get(scores, "speaker_count", "accuracy")),
        mae=_number(_get(scores, "speaker_count", "mae")),
        single=_number(_get(scores, "overlap", "single", "DER")),
        overlapped=_number(_get(scores, "overlap", "overlapped", "DER")),
    )


@dataclass(frozen=True)
class FileRow:
    """One test file's scores, every metric the report has for it (None where it has not)."""

    uri: str
    speech: float | None
    der: float | None
    confusion: float | None
    false_alarm: float | None
    miss: float | None
    jer: float | None = None
    reference_speakers: int | None = None
    hypothesis_speakers: int | None = None
    single: float | None = None
    overlapped: float | None = None


def _count(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def file_rows(scores: Mapping[str, Any]) -> list[FileRow]:
    """The per-file table of a score report (chunk-level or full-pipeline), sorted by URI."""
    rows = []
    for uri, file in sorted((scores.get("files") or {}).items()):
        rows.append(
            FileRow(
                uri=str(uri),
                speech=_number(_get(file, "speech")),
                der=_number(_get(file, "DER")),
                confusion=_number(_get(file, "Confusion")),
                false_alarm=_number(_get(file, "FalseAlarm")),
                miss=_number(_get(file, "Miss")),
                jer=_number(_get(file, "JER")),
                reference_speakers=_count(_get(file, "speakers", "reference")),
                hypothesis_speakers=_count(_get(file, "speakers", "hypothesis")),
                single=_number(_get(scores, "overlap", "single", "files", uri, "DER")),
                overlapped=_number(_get(scores, "overlap", "overlapped", "files", uri, "DER")),
            )
        )
    return rows
