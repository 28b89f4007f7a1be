"""Typed score reports: what :mod:`bench.evaluation.scoring` writes and every reader reads.

A report holds DER and its components over a set of files and for each file. Rates are ``None``
where DER is undefined (no reference speech; ``undefined`` says so) and the seconds are kept
either way, so the bootstrap (:mod:`bench.stats`) reads each file's errors and total from
``seconds``. A chunk-level report has rates only; the full pipeline's adds JER, speaker counts,
the overlap breakdown and the collar variant. Unknown keys and values of the wrong type (a
string DER) are refused: a damaged block is named when its file is read, not met later as a
``KeyError`` in the gate or the leaderboard.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from bench.io import is_number
from bench.results.info import DatasetInfo

# the full-file variant bench scores beside the primary setting (bench.evaluation.scoring)
VARIANT = "collar_0.25_no_overlap"


def _integral(value: Any) -> Any:
    """A float holding a whole number (``2.0``) as the int it is; anything else unchanged."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# a count: an int (or a whole float, as JSON writers may give it); never a string or a bool
Count = Annotated[int, BeforeValidator(_integral)]


class _Block(BaseModel):
    # strict: a damaged value ("0.5" for a DER, 2.0 for a count) is refused, never coerced
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)

    def as_json(self) -> dict[str, Any]:
        """The block as it is written: aliases as keys, fields never set left out."""
        return self.model_dump(by_alias=True, exclude_unset=True)


class Seconds(_Block):
    """pyannote.metrics' components, in seconds; ``total`` is the reference speech."""

    confusion: float
    false_alarm: float
    missed_detection: float
    total: float

    @property
    def errors(self) -> float:
        return self.confusion + self.false_alarm + self.missed_detection


class Rates(_Block):
    """DER and its components over one file or a set of them."""

    DER: float | None
    Confusion: float | None = None
    FalseAlarm: float | None = None
    Miss: float | None = None
    speech: float | None = None
    seconds: Seconds
    undefined: str | None = None  # why the rates are None (no reference speech)


class Jaccard(_Block):
    """JER's components: summed speaker error over the reference speakers."""

    speaker_error: float
    speaker_count: Count


class Speakers(_Block):
    """Distinct speakers in a file's reference and in its hypothesis."""

    reference: Count
    hypothesis: Count


class FileScores(Rates):
    """One test file: its rates and, from the full pipeline, its JER and speaker counts."""

    JER: float | None = None
    jaccard: Jaccard | None = None
    speakers: Speakers | None = None


class SpeakerCount(_Block):
    """SDBench's speaker-count accuracy and mean absolute error over the files."""

    accuracy: float | None
    mae: float | None
    files: Count


class Region(Rates):
    """The primary DER inside one overlap region (non-speech, one speaker, two or more)."""

    files: dict[str, Rates] = {}


class Variant(Rates):
    """The collar variant (md-eval's ``-c 0.25``, overlap skipped)."""

    files: dict[str, Rates] = {}
    collar: float
    skip_overlap: bool
    collar_each_side: float
    mapping: str


class ScoreReport(Rates):
    """A test set's scores: over the set, and per file under ``files``."""

    files: dict[str, FileScores]
    # chunk-level
    threshold: float | None = None
    chunk_duration: float | None = None
    # full pipeline
    collar: float | None = None
    skip_overlap: bool | None = None
    JER: float | None = None
    jaccard: Jaccard | None = None
    speaker_count: SpeakerCount | None = None
    overlap: dict[str, Region] | None = None
    variant: Variant | None = Field(default=None, alias=VARIANT)

    @property
    def defined(self) -> bool:
        """DER is a number (a report without reference speech has none to rank)."""
        return is_number(self.DER)

    def components(self) -> dict[str, tuple[float, float]]:
        """Each file's (errors, reference speech) in seconds: the bootstrap's input."""
        return {uri: (f.seconds.errors, f.seconds.total) for uri, f in self.files.items()}

    def jer_components(self) -> dict[str, tuple[float, float]] | None:
        """Each file's (speaker error, reference speakers), or None when a file lacks them."""
        if self.JER is None or not self.files:
            return None
        if any(f.jaccard is None for f in self.files.values()):
            return None
        return {
            uri: (f.jaccard.speaker_error, float(f.jaccard.speaker_count))
            for uri, f in self.files.items()
            if f.jaccard is not None
        }


class TestScores(_Block):
    """A run's test scores: chunk-level (before and after training) and full pipeline (tuned,
    and at its initial parameters)."""

    __test__ = False  # not a pytest class

    chunk: ScoreReport | None = None
    chunk_before_training: ScoreReport | None = None
    pipeline: ScoreReport | None = None
    # the same pipeline at its initial (untuned) parameters: does tuning carry over to test?
    pipeline_initial: ScoreReport | None = None

    def metric(self, name: str) -> ScoreReport | None:
        """The report of ``name`` (``chunk`` or ``pipeline``) when its DER is defined."""
        report = getattr(self, name, None) if name in ("chunk", "pipeline") else None
        return report if report is not None and report.defined else None


class AlsoTest(_Block):
    """An ``--also-test`` split: what it is and the tuned pipeline's scores on its test files."""

    dataset: DatasetInfo
    pipeline: ScoreReport
