"""The fixed split: reading a dataset folder (or a pyannote.database protocol), fingerprinting it,
and decoding its audio once into a cache that the training task reads from.

Folder layout (pyannote.database conventions)::

    train.txt dev.txt test.txt                 one URI a line
    {train,dev,test}/wav/{uri}.wav
    {train,dev,test}/rttm/{uri}.rttm
    {train,dev,test}/uem/{uri}.uem             optional: whole file when missing
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from pyannote.core import Annotation, Segment, Timeline

from bench.io import sha256_file

SAMPLE_RATE = 16000
SUBSETS = ("train", "dev", "test")

AUDIO_END_TOLERANCE = 0.1
"""Seconds a UEM region may run past the end of its audio and be cropped to it: UEM ends are
often written from a nominal or rounded duration, and decoding, resampling or MP3 padding shifts
an audio file's length by a few milliseconds. Further than that, the audio is truncated (or the
UEM is another file's), and cropping would silently drop reference speech from scoring."""

RTTM_OTHER_TYPES = frozenset(
    {"SEGMENT", "NOSCORE", "NO_RT_METADATA", "LEXEME", "NON-LEX", "NON-SPEECH", "FILLER"}
    | {"EDIT", "IP", "SU", "CB", "A/P", "SPKR-INFO"}
)
"""RTTM record types other than SPEAKER (NIST RT-09 evaluation plan, appendix A, as md-eval-v21
reads them, case-insensitively): read past. Any other type, such as the typo ``SPEKER``, is
refused rather than skipped, since skipping it would silently drop reference turns."""


class DataError(ValueError):
    """A dataset that cannot be used, with the file (and line) at fault."""


@dataclass(frozen=True)
class Recording:
    """One file of the split: its audio path, reference and annotated region (UEM)."""

    uri: str
    subset: str
    audio: Path
    annotation: Annotation = field(compare=False)
    annotated: Timeline = field(compare=False)
    duration: float
    sha256: str = field(default="", compare=False, repr=False)
    """Content hash of the audio file (the one the fingerprint uses)."""


@dataclass(frozen=True)
class SpeakerRecord:
    """One SPEAKER record of an RTTM file, with its line number."""

    line: int
    start: float
    duration: float
    speaker: str

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass
class Split:
    """A fixed train/dev/test split and its content fingerprint."""

    name: str
    recordings: dict[str, list[Recording]]
    fingerprint: str
    source: str

    @property
    def root(self) -> Path:
        """The dataset folder (for a database.yml, the folder holding it)."""
        source = Path(self.source)
        return source if source.is_dir() else source.parent

    def files(self, subset: str) -> list[Recording]:
        return self.recordings[subset]

    def every_file(self) -> list[Recording]:
        """Every recording, subset by subset."""
        return [rec for subset in self.recordings for rec in self.recordings[subset]]

    def describe(self) -> dict[str, object]:
        """What a result records about the split it was scored on."""
        return {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "source": self.source,
            "subsets": self.summary(),
        }

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            subset: {
                "files": len(recs),
                "hours": round(sum(r.annotated.duration() for r in recs) / 3600, 4),
                "speakers": len({label for r in recs for label in r.annotation.labels()}),
            }
            for subset, recs in self.recordings.items()
        }


def folder_paths(root: Path, subset: str, uri: str) -> tuple[Path, Path, Path]:
    """The wav, RTTM and UEM paths of ``uri`` in a dataset folder (the UEM may not exist)."""
    folder = root / subset
    return (
        folder / "wav" / f"{uri}.wav",
        folder / "rttm" / f"{uri}.rttm",
        folder / "uem" / f"{uri}.uem",
    )


def read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 text file (a leading byte-order mark dropped); other bytes are refused
    with the file and line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x}); "
            "save the file as UTF-8"
        ) from None
    return text.removeprefix("\ufeff").splitlines()


def read_list(path: Path) -> list[str]:
    """URIs of a list file, one a line; blank lines ignored, duplicates refused."""
    if not path.is_file():
        raise DataError(f"{path}: missing list file")
    uris: list[str] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(read_lines(path), start=1):
        uri = raw.strip()
        if not uri:
            continue
        if any(c.isspace() for c in uri) or "/" in uri:
            raise DataError(f"{path}:{number}: invalid URI {uri!r} (no spaces or slashes)")
        if uri in seen:
            raise DataError(f"{path}:{number}: duplicate URI {uri!r} (first on line {seen[uri]})")
        seen[uri] = number
        uris.append(uri)
    if not uris:
        raise DataError(f"{path}: list is empty")
    return uris


def _float(value: str, path: Path, number: int, what: str) -> float:
    try:
        result = float(value)
    except ValueError:
        raise DataError(f"{path}:{number}: {what} {value!r} is not a number") from None
    if not np.isfinite(result) or result < 0:
        raise DataError(f"{path}:{number}: {what} {value!r} must be a finite number >= 0")
    return result


def speaker_records(path: Path) -> list[tuple[str, SpeakerRecord]]:
    """The URI and turn of each SPEAKER record of an RTTM file, zero durations included; the
    other RTTM types are read past, unknown types refused."""
    records: list[tuple[str, SpeakerRecord]] = []
    for number, raw in enumerate(read_lines(path), start=1):
        fields = raw.split()
        if not fields or fields[0].startswith(("#", ";")):
            continue
        kind = fields[0].upper()
        if kind in RTTM_OTHER_TYPES:
            continue
        if kind != "SPEAKER":
            raise DataError(
                f"{path}:{number}: unknown RTTM type {fields[0]!r} (expected SPEAKER, or one of "
                f"{', '.join(sorted(RTTM_OTHER_TYPES))}, which are ignored)"
            )
        if len(fields) < 8:
            raise DataError(
                f"{path}:{number}: expected at least 8 fields "
                "(SPEAKER uri channel start duration <NA> <NA> speaker), "
                f"got {len(fields)}"
            )
        start = _float(fields[3], path, number, "start")
        duration = _float(fields[4], path, number, "duration")
        records.append((fields[1], SpeakerRecord(number, start, duration, fields[7])))
    return records


def _annotation(uri: str, turns: list[SpeakerRecord]) -> Annotation:
    """The turns as an annotation; turns of zero duration are left out."""
    annotation = Annotation(uri=uri)
    for turn in turns:
        if turn.duration > 0:
            segment = Segment(turn.start, turn.end)
            annotation[segment, annotation.new_track(segment)] = turn.speaker
    return annotation


def read_turns(path: Path, uri: str) -> list[SpeakerRecord]:
    """SPEAKER records of the RTTM file of ``uri`` (``SPEAKER uri 1 start dur <NA> <NA> spk``),
    zero durations included; a record of another URI is refused."""
    if not path.is_file():
        raise DataError(f"{path}: missing RTTM file for {uri!r}")
    turns = []
    for record_uri, turn in speaker_records(path):
        if record_uri != uri:
            raise DataError(f"{path}:{turn.line}: URI {record_uri!r} does not match file {uri!r}")
        turns.append(turn)
    return turns


def read_rttm(path: Path, uri: str) -> Annotation:
    """Speaker turns of ``uri`` from its RTTM file; turns of zero duration are left out."""
    return _annotation(uri, read_turns(path, uri))


def read_rttm_all(path: Path) -> dict[str, Annotation]:
    """Speaker turns of every URI of an RTTM file (a system's output for many files, say)."""
    if not path.is_file():
        raise DataError(f"{path}: missing RTTM file")
    by_uri: dict[str, list[SpeakerRecord]] = {}
    for uri, turn in speaker_records(path):
        by_uri.setdefault(uri, []).append(turn)
    return {uri: _annotation(uri, turns) for uri, turns in by_uri.items()}


def rttm_line(
    uri: str, start: float, duration: float, speaker: str, decimals: int | None = 3
) -> str:
    """One RTTM SPEAKER line (with its newline), the one writer of the format. Times have
    ``decimals`` places, or full float precision with ``None``; spaces in a speaker name
    (which would split the field) become underscores."""
    speaker = "_".join(str(speaker).split())
    if decimals is None:
        times = f"{float(start)!r} {float(duration)!r}"
    else:
        times = f"{start:.{decimals}f} {duration:.{decimals}f}"
    return f"SPEAKER {uri} 1 {times} <NA> <NA> {speaker} <NA> <NA>\n"


def rttm_text(annotation: Annotation) -> str:
    """``annotation`` as RTTM SPEAKER lines, times at full float precision (pyannote writes
    3 decimals, which moves frame-aligned boundaries and the DER re-scored from the file)."""
    uri = annotation.uri or "unknown"
    return "".join(
        rttm_line(uri, segment.start, segment.duration, label, decimals=None)
        for segment, _, label in annotation.itertracks(yield_label=True)
    )


def check_within_audio(end: float, duration: float, where: str) -> None:
    """Refuse annotated time ending more than :data:`AUDIO_END_TOLERANCE` after the audio."""
    if end > duration + AUDIO_END_TOLERANCE:
        raise DataError(
            f"{where}: annotated region ends at {end:.3f} s, beyond the end of the audio "
            f"({duration:.3f} s) by more than {AUDIO_END_TOLERANCE} s: the audio is truncated "
            "or the UEM belongs to another file"
        )


def uem_records(path: Path) -> list[tuple[str, int, float, float]]:
    """``(uri, line, start, end)`` of each region of a UEM file (``uri channel start end``), any
    number of URIs."""
    records = []
    for number, raw in enumerate(read_lines(path), start=1):
        fields = raw.split()
        if not fields or fields[0].startswith(("#", ";")):
            continue
        if len(fields) != 4:
            raise DataError(f"{path}:{number}: expected 4 fields (uri channel start end)")
        start = _float(fields[2], path, number, "start")
        end = _float(fields[3], path, number, "end")
        if end <= start:
            raise DataError(f"{path}:{number}: end {end} is not after start {start}")
        records.append((fields[0], number, start, end))
    return records


def read_uem(path: Path, uri: str, duration: float | None = None) -> Timeline:
    """Annotated regions of ``uri`` from a UEM file; with the audio's ``duration``, a region
    running past its end is refused (see :func:`check_within_audio`)."""
    regions = []
    for record_uri, number, start, end in uem_records(path):
        if record_uri != uri:
            raise DataError(f"{path}:{number}: URI {record_uri!r} does not match file {uri!r}")
        if duration is not None:
            check_within_audio(end, duration, f"{path}:{number}")
        regions.append(Segment(start, end))
    if not regions:
        raise DataError(f"{path}: no annotated region")
    return Timeline(regions, uri=uri).support()


def audio_duration(path: Path) -> float:
    """The duration of an audio file in seconds, from its header."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as error:
        raise DataError(f"{path}: cannot read audio: {error}") from None
    if info.frames == 0:
        raise DataError(f"{path}: audio has no samples (0 frames)")
    return info.frames / info.samplerate


SCORED_SUBSETS = ("dev", "test")


def reference_speech(recordings: list[Recording]) -> float:
    """Seconds of reference speech (overlap counted once) inside the annotated regions."""
    return sum(rec.annotation.get_timeline().support().duration() for rec in recordings)


def check_reference_speech(recordings: dict[str, list[Recording]], where: str) -> None:
    """Refuse a dev or test subset without reference speech: DER divides by its seconds, so it
    is undefined there (a set of silent files would otherwise score a perfect 0)."""
    for subset in SCORED_SUBSETS:
        if subset in recordings and reference_speech(recordings[subset]) == 0.0:
            raise DataError(
                f"{where}: the {subset} subset has no reference speech (none of its "
                f"{len(recordings[subset])} file(s) has a speaker turn inside its annotated "
                "regions): DER is undefined without reference speech"
            )


def check_no_leak(first: dict[str, Recording], recording: Recording) -> None:
    """Refuse audio found byte for byte in two subsets (a test file seen in training, say);
    ``first`` maps each audio hash to the first recording that had it. Twice within one subset
    is left to ``bench data check``, which warns."""
    other = first.setdefault(recording.sha256, recording)
    if other.subset != recording.subset:
        raise DataError(
            f"{recording.audio}: same audio as {other.audio} ({recording.subset} and "
            f"{other.subset} subsets): a recording must not leak from one subset into another"
        )


def load_folder(root: str | Path) -> Split:
    """Read and validate a dataset folder; fingerprint its lists, RTTM, UEM and audio."""
    if not Path(root).is_dir():
        raise DataError(f"{root}: dataset folder does not exist")
    root = Path(root).resolve()  # recordings carry absolute paths (worker processes, Ray tasks)
    recordings: dict[str, list[Recording]] = {}
    digest = hashlib.sha256()
    owner: dict[str, str] = {}
    audio_owner: dict[str, Recording] = {}
    for subset in SUBSETS:
        list_path = root / f"{subset}.txt"
        uris = read_list(list_path)
        digest.update(f"list:{subset}:{','.join(uris)}\n".encode())
        recordings[subset] = []
        for uri in uris:
            if uri in owner:
                raise DataError(f"{list_path}: URI {uri!r} is also in {owner[uri]}.txt")
            owner[uri] = subset
            wav, rttm, uem = folder_paths(root, subset, uri)
            if not wav.is_file():
                raise DataError(f"{wav}: missing audio for {uri!r} (listed in {list_path})")
            annotation = read_rttm(rttm, uri)
            duration = audio_duration(wav)
            if uem.is_file():
                annotated = read_uem(uem, uri, duration).crop(
                    Segment(0.0, duration), mode="intersection"
                )
                if not annotated:
                    raise DataError(
                        f"{uem}: annotated regions lie outside the audio ({duration:.3f} s)"
                    )
                uem_hash = sha256_file(uem)
            else:
                annotated = Timeline([Segment(0.0, duration)], uri=uri)
                uem_hash = "whole-file"
            wav_hash = sha256_file(wav)
            digest.update(f"{subset}:{uri}:{wav_hash}:{sha256_file(rttm)}:{uem_hash}\n".encode())
            annotation = annotation.crop(annotated, mode="intersection")
            recording = Recording(uri, subset, wav, annotation, annotated, duration, wav_hash)
            check_no_leak(audio_owner, recording)
            recordings[subset].append(recording)
        if subset in SCORED_SUBSETS:
            check_reference_speech({subset: recordings[subset]}, str(list_path))
    return Split(root.name, recordings, digest.hexdigest()[:16], str(root.resolve()))


def load_protocol(database_yml: str | Path, protocol_name: str) -> Split:
    """Read a pyannote.database protocol (``database.yml`` + name) into a :class:`Split`."""
    from pyannote.database import FileFinder, registry

    database_yml = Path(database_yml)
    if not database_yml.is_file():
        raise DataError(f"{database_yml}: no such database.yml")
    registry.load_database(str(database_yml))
    try:
        protocol = registry.get_protocol(
            protocol_name, preprocessors={"audio": FileFinder(registry=registry)}
        )
    except Exception as error:
        raise DataError(f"{database_yml}: protocol {protocol_name!r}: {error}") from None
    where = f"{database_yml}: protocol {protocol_name!r}"
    digest = hashlib.sha256(f"protocol:{protocol_name}\n".encode())
    recordings: dict[str, list[Recording]] = {}
    audio_owner: dict[str, Recording] = {}
    for subset, method in zip(SUBSETS, ("train", "development", "test"), strict=True):
        recordings[subset] = []
        for file in getattr(protocol, method)():
            uri = file["uri"]
            wav = Path(file["audio"])
            duration = audio_duration(wav)
            annotated = file.get("annotated") or Timeline([Segment(0, duration)], uri=uri)
            check_within_audio(annotated.extent().end, duration, f"{where}: {uri!r} ({wav})")
            annotation = file["annotation"].crop(annotated, mode="intersection")
            wav_hash = sha256_file(wav)
            digest.update(
                f"{subset}:{uri}:{wav_hash}:{annotation.to_rttm()}:{annotated.to_uem()}\n".encode()
            )
            recording = Recording(uri, subset, wav, annotation, annotated, duration, wav_hash)
            check_no_leak(audio_owner, recording)
            recordings[subset].append(recording)
        if not recordings[subset]:
            raise DataError(f"{where} has no {subset} files")
    check_reference_speech(recordings, where)
    return Split(protocol_name, recordings, digest.hexdigest()[:16], str(database_yml.resolve()))


def load_split(data: Path, protocol: str | None = None) -> Split:
    """The split of a dataset folder, or of a database.yml with a protocol name."""
    if protocol is not None:
        return load_protocol(data, protocol)
    if Path(data).suffix in {".yml", ".yaml"}:
        raise DataError(f"{data}: a database.yml needs --protocol NAME")
    return load_folder(data)
