"""The detail metrics of a full-pipeline score report: JER, speaker counting, DER by overlap."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench import stats
from bench.io import is_number
from bench.results import Region, ScoreReport


def _number(value: Any) -> float | None:
    return float(value) if is_number(value) else None


def report(scores: ScoreReport | Mapping[str, Any] | None) -> ScoreReport | None:
    """``scores`` as a typed report: the templates hand over the record's JSON view, which was
    validated when its file was read (None for an absent or empty one)."""
    if scores is None or isinstance(scores, ScoreReport):
        return scores
    return ScoreReport.model_validate(scores) if scores else None


def detailed(scores: ScoreReport | Mapping[str, Any] | None) -> bool:
    """The report carries the detail metrics (JER, overlap, speaker counting): newer results."""
    found = report(scores)
    return found is not None and any(
        x is not None for x in (found.JER, found.overlap, found.speaker_count)
    )


def jer_interval(scores: ScoreReport | None) -> stats.Interval | None:
    """The recorded JER with a 95% bootstrap interval over files (the same resampling as DER:
    JER pools speaker error over speaker count); None when no JER is recorded. No interval when
    any file lacks its components, rather than one over some of the files."""
    estimate = _number(scores.JER) if scores is not None else None
    if scores is None or estimate is None:
        return None
    files = scores.jer_components()
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


def _region(scores: ScoreReport, name: str) -> Region | None:
    return (scores.overlap or {}).get(name)


def details(scores: ScoreReport | None) -> Details:
    """The detail metrics of a full-pipeline report (None gives an empty one)."""
    if scores is None:
        return Details()
    count = scores.speaker_count
    single, overlapped = _region(scores, "single"), _region(scores, "overlapped")
    return Details(
        jer=jer_interval(scores),
        sca=_number(count.accuracy) if count else None,
        mae=_number(count.mae) if count else None,
        single=_number(single.DER) if single else None,
        overlapped=_number(overlapped.DER) if overlapped else None,
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


def _file_der(region: Region | None, uri: str) -> float | None:
    file = region.files.get(uri) if region is not None else None
    return _number(file.DER) if file is not None else None


def file_rows(scores: ScoreReport | Mapping[str, Any] | None) -> list[FileRow]:
    """The per-file table of a score report (chunk-level or full-pipeline), sorted by URI."""
    found = report(scores)
    if found is None:
        return []
    single, overlapped = _region(found, "single"), _region(found, "overlapped")
    return [
        FileRow(
            uri=str(uri),
            speech=_number(file.speech),
            der=_number(file.DER),
            confusion=_number(file.Confusion),
            false_alarm=_number(file.FalseAlarm),
            miss=_number(file.Miss),
            jer=_number(file.JER),
            reference_speakers=file.speakers.reference if file.speakers else None,
            hypothesis_speakers=file.speakers.hypothesis if file.speakers else None,
            single=_file_der(single, uri),
            overlapped=_file_der(overlapped, uri),
        )
        for uri, file in sorted(found.files.items())
    ]
