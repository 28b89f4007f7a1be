"""NeMo diarization manifests, in and out: JSON lines with ``audio_filepath``, ``offset``,
``duration``, ``rttm_filepath``, ``uem_filepath`` and ``num_speakers``, one manifest a subset.

Import: a manifest file, or a folder of ``*manifest*.json[l]`` files named after subsets (the
export's ``train_manifest.json``...). Relative paths are relative to the manifest's folder. A line
with a non-zero ``offset`` or a shorter ``duration`` is a crop: its audio is cut, its turns and
UEM regions are clipped to it and shifted to start at 0, and its URI is
``{audio stem}_{start ms}_{end ms}``; a whole-file line keeps the audio stem as its URI and copies
its files unchanged when they are already bench's (so export -> import keeps the fingerprint).
``num_speakers`` is not read: the RTTM has the speakers. Export writes it, and absolute paths."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench.corpora.entry import Entry, FileAudio, Turn, audio_info, check_channel
from bench.corpora.jsonfields import Fields, parse_line
from bench.corpora.rttm import read_rttm_turns, read_uem_regions
from bench.corpora.split import part_subsets
from bench.corpora.writer import staged
from bench.data import (
    SUBSETS,
    DataError,
    Recording,
    Split,
    folder_paths,
    load_folder,
    read_lines,
)
from bench.io import atomic_write_text

DEFAULT_CHANNEL = None
TOLERANCE = 0.01  # seconds: a duration this close to the file's is the whole file


def _file(row: Fields, key: str, manifest: Path, required: bool) -> Path | None:
    if row.get(key, required) is None:
        return None
    path = Path(row.string(key))
    path = path if path.is_absolute() else manifest.parent / path
    if not path.is_file():
        raise row.error(key, f"no such file {path}")
    return path


def _clip(spans: list[tuple[float, float]], start: float, end: float) -> list[tuple[float, float]]:
    """Spans cut to [start, end] and shifted to start at 0 (one outside gets b <= a)."""
    return [(max(a, start) - start, min(b, end) - start) for a, b in spans]


def _own(row: Fields, key: str, by_uri: dict[str, list], uri: str) -> list:
    """What a file holds for ``uri``: its lines of ``uri``, or all its lines when they are of one
    other URI (NeMo reads a file's lines whatever their URI); several others are ambiguous."""
    if uri in by_uri or len(by_uri) <= 1:
        return by_uri.get(uri) or [item for items in by_uri.values() for item in items]
    raise row.error(key, f"has lines of {len(by_uri)} recordings, none of them {uri!r}")


def _entry(row: Fields, manifest: Path, channel: int | None, subset: str | None) -> Entry:
    audio = _file(row, "audio_filepath", manifest, required=True)
    rttm = _file(row, "rttm_filepath", manifest, required=True)
    uem = _file(row, "uem_filepath", manifest, required=False)
    assert audio is not None and rttm is not None
    info = audio_info(audio)
    check_channel(audio, channel, info.channels)
    total = info.frames / info.samplerate
    offset = row.optional_seconds("offset") or 0.0
    if offset >= total:
        raise row.error("offset", f"{offset} s is past the end of {audio} ({total:.3f} s)")
    duration = row.optional_seconds("duration")
    end = total if duration is None else offset + duration
    if end > total + TOLERANCE:
        raise row.error("duration", f"ends at {end:.3f} s, past the end of {audio} ({total:.3f} s)")
    end = min(end, total)
    turns_by_uri = read_rttm_turns(rttm)
    turns = _own(row, "rttm_filepath", turns_by_uri, audio.stem)
    uem_by_uri = None if uem is None else read_uem_regions(uem)
    regions = None if uem_by_uri is None else _own(row, "uem_filepath", uem_by_uri, audio.stem)
    if offset == 0 and end >= total - TOLERANCE:
        uri = audio.stem  # files of this URI alone are copied as they are
        own_rttm = rttm if set(turns_by_uri) <= {uri} else None
        own_uem = uem if uem_by_uri is not None and set(uem_by_uri) == {uri} else None
        source = FileAudio(audio, channel)
        return Entry(uri, source, turns, regions, row.where, subset, own_rttm, own_uem)
    uri = f"{audio.stem}_{round(offset * 1000)}_{round(end * 1000)}"
    spans = _clip([(turn.start, turn.end) for turn in turns], offset, end)
    clipped = [Turn(a, b, t.speaker) for t, (a, b) in zip(turns, spans, strict=True) if b > a]
    if regions is not None:
        regions = [(a, b) for a, b in _clip(regions, offset, end) if b > a]
        if not regions:
            raise row.error("uem_filepath", f"{uem} has no region inside [{offset}, {end}]")
    source = FileAudio(audio, channel, offset, end - offset)
    return Entry(uri, source, clipped, regions, row.where, subset)


def read(src: Path, channel: int | None) -> list[Entry]:
    """The recordings of a NeMo diarization manifest (one JSON line each)."""
    if src.is_dir():
        manifests = sorted(
            p for p in src.iterdir() if "manifest" in p.name and p.suffix in (".json", ".jsonl")
        )
        if not manifests:
            raise DataError(f"{src}: no NeMo manifest (*manifest*.json or .jsonl)")
    else:
        manifests = [src]
    subsets = part_subsets(path.name for path in manifests)
    entries = []
    for manifest in manifests:
        for number, line in enumerate(read_lines(manifest), start=1):
            if line.strip():
                where = f"{manifest}:{number}"
                row = Fields(parse_line(line, where), where)
                entries.append(_entry(row, manifest, channel, subsets[manifest.name]))
    return entries


def _row(recording: Recording, root: Path) -> dict[str, Any]:
    _, rttm, uem = folder_paths(root, recording.subset, recording.uri)
    return {
        "audio_filepath": str(recording.audio),
        "offset": 0.0,
        "duration": recording.duration,
        "label": "infer",
        "text": "-",
        "num_speakers": len(recording.annotation.labels()) or None,
        "rttm_filepath": str(rttm),
        "uem_filepath": str(uem) if uem.is_file() else None,
    }


def windows(duration: float, window: float) -> list[tuple[float, float]]:
    """``(offset, duration)`` of windows of ``window`` s covering a file: one per ``window`` s,
    the last one ending at the file's end (overlapping its neighbour); a shorter file whole."""
    if duration <= window:
        return [(0.0, duration)]
    count = math.ceil(duration / window)
    starts = [min(k * window, duration - window) for k in range(count)]
    return [(round(start, 3), window) for start in starts]


def write_manifests(split: Split, out: Path, window: float | None = None) -> dict[str, Path]:
    """``{subset}_manifest.json`` of each subset of ``split`` in ``out``, with absolute paths
    (what ``bench data export nemo`` writes, and what a NeMo run trains and diarizes from).

    ``window``: train and dev recordings as windows of that many seconds (:func:`windows`):
    Sortformer trains on the first ``session_len_sec`` of each manifest line, so a whole
    long recording would be trained on its first minute and a half only."""
    written = {}
    for subset in SUBSETS:
        rows = [_row(rec, split.root) for rec in split.files(subset)]
        if window is not None and subset != "test":
            rows = [
                {**row, "offset": offset, "duration": length}
                for row in rows
                for offset, length in windows(row["duration"], window)
            ]
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        written[subset] = atomic_write_text(out / f"{subset}_manifest.json", text)
    return written


def export(data: Path, out: Path, force: bool) -> list[Path]:
    """``{subset}_manifest.json`` per subset in ``out``, with absolute paths into ``data``."""
    split = load_folder(data)
    with staged(out, force) as stage:
        write_manifests(split, stage)
    return [out / f"{subset}_manifest.json" for subset in SUBSETS]
