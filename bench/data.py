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

from bench.hashing import sha256_file

SAMPLE_RATE = 16000
SUBSETS = ("train", "dev", "test")


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

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            subset: {
                "files": len(recs),
                "hours": round(sum(r.annotated.duration() for r in recs) / 3600, 4),
                "speakers": len({label for r in recs for label in r.annotation.labels()}),
            }
            for subset, recs in self.recordings.items()
        }


def read_list(path: Path) -> list[str]:
    """URIs of a list file, one a line; blank lines ignored, duplicates refused."""
    if not path.is_file():
        raise DataError(f"{path}: missing list file")
    uris: list[str] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
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


def read_rttm(path: Path, uri: str) -> Annotation:
    """Speaker turns of ``uri`` from an RTTM file (``SPEAKER uri 1 start dur <NA> <NA> spk``)."""
    if not path.is_file():
        raise DataError(f"{path}: missing RTTM file for {uri!r}")
    annotation = Annotation(uri=uri)
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        fields = raw.split()
        if not fields or fields[0].startswith(("#", ";")):
            continue
        if fields[0] != "SPEAKER":
            continue
        if len(fields) < 8:
            raise DataError(
                f"{path}:{number}: expected at least 8 fields "
                "(SPEAKER uri channel start duration <NA> <NA> speaker), "
                f"got {len(fields)}"
            )
        if fields[1] != uri:
            raise DataError(f"{path}:{number}: URI {fields[1]!r} does not match file {uri!r}")
        start = _float(fields[3], path, number, "start")
        duration = _float(fields[4], path, number, "duration")
        if duration > 0:
            segment = Segment(start, start + duration)
            annotation[segment, annotation.new_track(segment)] = fields[7]
    return annotation


def read_uem(path: Path, uri: str) -> Timeline:
    """Annotated regions of ``uri`` from a UEM file (``uri channel start end``)."""
    regions = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        fields = raw.split()
        if not fields or fields[0].startswith(("#", ";")):
            continue
        if len(fields) != 4:
            raise DataError(f"{path}:{number}: expected 4 fields (uri channel start end)")
        if fields[0] != uri:
            raise DataError(f"{path}:{number}: URI {fields[0]!r} does not match file {uri!r}")
        start = _float(fields[2], path, number, "start")
        end = _float(fields[3], path, number, "end")
        if end <= start:
            raise DataError(f"{path}:{number}: end {end} is not after start {start}")
        regions.append(Segment(start, end))
    if not regions:
        raise DataError(f"{path}: no annotated region")
    return Timeline(regions, uri=uri).support()


def audio_duration(path: Path) -> float:
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as error:
        raise DataError(f"{path}: cannot read audio: {error}") from None
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


def load_folder(root: str | Path) -> Split:
    """Read and validate a dataset folder; fingerprint its lists, RTTM, UEM and audio."""
    if not Path(root).is_dir():
        raise DataError(f"{root}: dataset folder does not exist")
    root = Path(root).resolve()  # recordings carry absolute paths (worker processes, Ray tasks)
    recordings: dict[str, list[Recording]] = {}
    digest = hashlib.sha256()
    owner: dict[str, str] = {}
    for subset in SUBSETS:
        list_path = root / f"{subset}.txt"
        uris = read_list(list_path)
        digest.update(f"list:{subset}:{','.join(uris)}\n".encode())
        recordings[subset] = []
        for uri in uris:
            if uri in owner:
                raise DataError(f"{list_path}: URI {uri!r} is also in {owner[uri]}.txt")
            owner[uri] = subset
            wav = root / subset / "wav" / f"{uri}.wav"
            if not wav.is_file():
                raise DataError(f"{wav}: missing audio for {uri!r} (listed in {list_path})")
            rttm = root / subset / "rttm" / f"{uri}.rttm"
            annotation = read_rttm(rttm, uri)
            duration = audio_duration(wav)
            uem = root / subset / "uem" / f"{uri}.uem"
            if uem.is_file():
                annotated = read_uem(uem, uri).crop(Segment(0.0, duration), mode="intersection")
                if not annotated:
                    raise DataError(
                        f"{uem}: annotated regions lie outside the audio ({duration:.3f} s)"
                    )
                uem_hash = sha256_file(uem)
            else:
                annotated = Timeline([Segment(0.0, duration)], uri=uri)
                uem_hash = "whole-file"
            digest.update(
                f"{subset}:{uri}:{sha256_file(wav)}:{sha256_file(rttm)}:{uem_hash}\n".encode()
            )
            annotation = annotation.crop(annotated, mode="intersection")
            recordings[subset].append(Recording(uri, subset, wav, annotation, annotated, duration))
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
    digest = hashlib.sha256(f"protocol:{protocol_name}\n".encode())
    recordings: dict[str, list[Recording]] = {}
    for subset, method in zip(SUBSETS, ("train", "development", "test"), strict=True):
        recordings[subset] = []
        for file in getattr(protocol, method)():
            uri = file["uri"]
            wav = Path(file["audio"])
            duration = audio_duration(wav)
            annotated = file.get("annotated") or Timeline([Segment(0, duration)], uri=uri)
            annotation = file["annotation"].crop(annotated, mode="intersection")
            digest.update(
                f"{subset}:{uri}:{sha256_file(wav)}:{annotation.to_rttm()}:"
                f"{annotated.to_uem()}\n".encode()
            )
            recordings[subset].append(Recording(uri, subset, wav, annotation, annotated, duration))
        if not recordings[subset]:
            raise DataError(f"{database_yml}: protocol {protocol_name!r} has no {subset} files")
    check_reference_speech(recordings, f"{database_yml}: protocol {protocol_name!r}")
    return Split(protocol_name, recordings, digest.hexdigest()[:16], str(database_yml.resolve()))
