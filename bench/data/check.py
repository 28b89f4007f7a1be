"""``bench data check``: what a split holds per subset, and its errors and warnings."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pyannote.core import Segment
from rich.console import Console
from rich.table import Table

from bench.data.split import (
    AUDIO_END_TOLERANCE,
    SCORED_SUBSETS,
    SUBSETS,
    DataError,
    Recording,
    SpeakerRecord,
    Split,
    folder_paths,
    load_split,
    read_turns,
    reference_speech,
)

TYPICAL_CHUNK = 10.0
"""Seconds of a typical training chunk: pyannote trains and validates only on annotated regions
at least one chunk long, so a file whose regions are all shorter is never used there."""

SHOWN_WARNINGS = 50
"""Warnings printed by ``bench data check`` (all of them are in :meth:`Report.as_dict`)."""

_EPSILON = 1e-6  # seconds: float noise of start + duration, not a real excursion


@dataclass
class SubsetStats:
    """What one subset holds; fractions are of its annotated (UEM) time."""

    files: int
    audio_hours: float
    annotated_hours: float
    speakers: int
    speakers_per_file: dict[int, int]
    """Number of distinct speakers in a file -> number of files with that many."""
    speech_fraction: float
    overlap_fraction: float
    turns: int
    mean_turn: float
    """Seconds."""


@dataclass
class Report:
    """The outcome of checking a split: its statistics, errors (none when it loads) and
    warnings, each error and warning starting with its file (and line)."""

    source: str
    fingerprint: str | None = None
    subsets: dict[str, SubsetStats] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        """A JSON-able copy."""
        return asdict(self)


def subset_stats(recordings: list[Recording]) -> SubsetStats:
    """Statistics of one subset's recordings (references already cropped to their UEM)."""
    annotated = sum(rec.annotated.duration() for rec in recordings)
    turns = [segment.duration for rec in recordings for segment, _ in rec.annotation.itertracks()]
    overlap = sum(rec.annotation.get_overlap().duration() for rec in recordings)
    return SubsetStats(
        files=len(recordings),
        audio_hours=sum(rec.duration for rec in recordings) / 3600,
        annotated_hours=annotated / 3600,
        speakers=len({label for rec in recordings for label in rec.annotation.labels()}),
        speakers_per_file=dict(
            sorted(Counter(len(r.annotation.labels()) for r in recordings).items())
        ),
        speech_fraction=reference_speech(recordings) / annotated if annotated else 0.0,
        overlap_fraction=overlap / annotated if annotated else 0.0,
        turns=len(turns),
        mean_turn=sum(turns) / len(turns) if turns else 0.0,
    )


def _at(path: Path, turns: list[SpeakerRecord], what: str) -> str:
    """One warning for the ``turns`` of a file that share a problem, at the first one's line."""
    more = ""
    if len(turns) > 1:
        lines = ", ".join(str(turn.line) for turn in turns[1:6])
        more = f" (and {len(turns) - 1} more: line {lines}{', ...' if len(turns) > 6 else ''})"
    return f"{path}:{turns[0].line}: {what}{more}"


def _across(turn: SpeakerRecord, rec: Recording) -> bool:
    """Whether a turn is partly inside the annotated regions (so cropped)."""
    kept = rec.annotated.crop(Segment(turn.start, turn.end), mode="intersection").duration()
    return 0 < kept < turn.duration - _EPSILON


def rttm_warnings(root: Path, rec: Recording) -> list[str]:
    """Turns of a folder's RTTM file that are cropped or ignored: of zero duration, running past
    the end of the audio, or across the edge of an annotated region of its UEM file."""
    _, rttm, uem = folder_paths(root, rec.subset, rec.uri)
    turns = read_turns(rttm, rec.uri)
    zero = [turn for turn in turns if turn.duration == 0]
    beyond = [turn for turn in turns if turn.end > rec.duration + AUDIO_END_TOLERANCE]
    across = [turn for turn in turns if uem.is_file() and turn not in beyond and _across(turn, rec)]
    warnings = []
    if zero:
        warnings.append(_at(rttm, zero, "turn of zero duration (ignored)"))
    if beyond:
        warnings.append(
            _at(
                rttm,
                beyond,
                f"turn ends at {beyond[0].end:.3f} s, past the end of the audio "
                f"({rec.duration:.3f} s): cropped; is the audio truncated?",
            )
        )
    if across:
        warnings.append(
            _at(rttm, across, "turn runs across the edge of an annotated region (UEM): cropped")
        )
    return warnings


def recording_warnings(rec: Recording, where: str) -> list[str]:
    """A file without speech in its annotated regions, or too short for a training chunk."""
    warnings = []
    if not rec.annotation:
        effect = (
            "it trains on silence only"
            if rec.subset not in SCORED_SUBSETS
            else "its DER is null, its false alarms still count"
        )
        warnings.append(f"{where}: no speaker turn inside the annotated regions ({effect})")
    longest = max((region.duration for region in rec.annotated), default=0.0)
    if rec.subset != "test" and longest < TYPICAL_CHUNK:
        warnings.append(
            f"{rec.audio}: its longest annotated region lasts {longest:.1f} s, less than a "
            f"typical {TYPICAL_CHUNK:.0f} s chunk: pyannote does not train or validate on it"
        )
    return warnings


def split_warnings(split: Split, folder: bool) -> list[str]:
    """Every warning of a loaded split; RTTM lines are only known for a dataset folder."""
    warnings = []
    for subset in SUBSETS:
        by_audio: dict[str, list[Recording]] = defaultdict(list)
        for rec in split.files(subset):
            by_audio[rec.sha256].append(rec)
            if folder:
                warnings += rttm_warnings(split.root, rec)
                where = str(folder_paths(split.root, subset, rec.uri)[1])
            else:
                where = f"{split.source}: {rec.uri!r}"
            warnings += recording_warnings(rec, where)
        for first, *copies in (recs for recs in by_audio.values() if len(recs) > 1):
            warnings += [
                f"{copy.audio}: same audio as {first.audio}, also in {subset}: it counts twice"
                for copy in copies
            ]
    train = {label for rec in split.files("train") for label in rec.annotation.labels()}
    for subset in SCORED_SUBSETS:
        shared = sorted(
            train & {label for r in split.files(subset) for label in r.annotation.labels()}
        )
        if shared:
            names = ", ".join(shared[:5]) + (", ..." if len(shared) > 5 else "")
            warnings.append(
                f"{split.source}: {len(shared)} speaker label(s) of train also in {subset} "
                f"({names}): fine if labels are per file or the corpus shares its speakers, "
                f"otherwise {subset} scores voices seen in training"
            )
    return warnings


def check_dataset(data: Path, protocol: str | None = None) -> Report:
    """Load and describe a split; what loading refuses (it stops at the first) is the error."""
    try:
        split = load_split(Path(data), protocol)
    except DataError as error:
        return Report(str(data), errors=[str(error)])
    return Report(
        split.source,
        split.fingerprint,
        {subset: subset_stats(split.files(subset)) for subset in SUBSETS},
        warnings=split_warnings(split, folder=protocol is None),
    )


def _table(report: Report) -> Table:
    table = Table(
        title=f"{report.source} (fingerprint {report.fingerprint})",
        caption="speakers: files = how many files have that many speakers; "
        "speech and overlap: fractions of the annotated time",
    )
    table.add_column("")
    for subset in report.subsets:
        table.add_column(subset, justify="right")
    rows = {
        "files": lambda s: str(s.files),
        "hours of audio": lambda s: f"{s.audio_hours:.3f}",
        "hours annotated (UEM)": lambda s: f"{s.annotated_hours:.3f}",
        "speakers": lambda s: str(s.speakers),
        "speakers: files": lambda s: " ".join(f"{k}:{v}" for k, v in s.speakers_per_file.items()),
        "speech": lambda s: f"{s.speech_fraction:.1%}",
        "overlap": lambda s: f"{s.overlap_fraction:.1%}",
        "turns": lambda s: str(s.turns),
        "mean turn (s)": lambda s: f"{s.mean_turn:.2f}",
    }
    for name, cell in rows.items():
        table.add_row(name, *(cell(stats) for stats in report.subsets.values()))
    return table


def check_command(data: Path, protocol: str | None, console: Console) -> int:
    """Print the report of :func:`check_dataset`; the exit code is 1 on errors, else 0."""
    report = check_dataset(data, protocol)
    if report.subsets:
        console.print(_table(report))
    for error in report.errors:
        console.print(f"error: {error}", style="red", markup=False, highlight=False)
    for warning in report.warnings[:SHOWN_WARNINGS]:
        console.print(f"warning: {warning}", style="yellow", markup=False, highlight=False)
    if len(report.warnings) > SHOWN_WARNINGS:
        console.print(f"... and {len(report.warnings) - SHOWN_WARNINGS} more warnings")
    console.print(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    return 0 if report.ok else 1
