"""A folder of audio with RTTM and optional UEM files, each file covering any number of
recordings (lines grouped by URI); ``*.txt`` lists named after subsets give the split."""

from __future__ import annotations

from pathlib import Path

from bench.corpora.entry import Entry, FileAudio, Turn, audio_files
from bench.corpora.split import subset_of
from bench.data import DataError, read_list, speaker_records, uem_records

DEFAULT_CHANNEL = None


def read_rttm_turns(path: Path) -> dict[str, list[Turn]]:
    """SPEAKER lines of an RTTM file by URI, in file order (bench.data's RTTM reading)."""
    turns: dict[str, list[Turn]] = {}
    for uri, turn in speaker_records(path):
        turns.setdefault(uri, []).append(Turn(turn.start, turn.end, turn.speaker))
    return turns


def read_uem_regions(path: Path) -> dict[str, list[tuple[float, float]]]:
    """Annotated regions of a UEM file by URI, in file order (bench.data's UEM reading)."""
    regions: dict[str, list[tuple[float, float]]] = {}
    for uri, _, start, end in uem_records(path):
        regions.setdefault(uri, []).append((start, end))
    return regions


def _by_uri(paths: list[Path], reader, what: str) -> tuple[dict, dict[str, Path]]:
    """Merge per-URI content of several files; a URI found in two files is refused."""
    merged: dict = {}
    owner: dict[str, Path] = {}
    for path in paths:
        for uri, items in reader(path).items():
            if uri in owner:
                raise DataError(f"{path}: {what} of {uri!r} are also in {owner[uri]}")
            merged[uri], owner[uri] = items, path
    return merged, owner


def _lists(src: Path) -> dict[str, tuple[str, str]]:
    """URI -> (subset, list file) from the ``*.txt`` files named after a subset."""
    listed: dict[str, tuple[str, str]] = {}
    for path in sorted(src.rglob("*.txt")):
        subset = subset_of(path.stem)
        if subset is None:
            continue
        for uri in read_list(path):
            if uri in listed:
                raise DataError(f"{path}: URI {uri!r} is also in {listed[uri][1]}")
            listed[uri] = (subset, str(path))
    return listed


def _audio(uri: str, index: dict[str, list[Path]], prefixed: dict[str, list[Path]]) -> Path:
    """``{uri}.wav`` (any audio suffix), else ``{uri}.*.wav`` (``ES2002a.Mix-Headset.wav``)."""
    found = index.get(uri) or prefixed.get(uri) or []
    if len(found) != 1:
        problem = "no audio file" if not found else f"several audio files ({found[0]}, {found[1]})"
        raise DataError(f"{problem} for {uri!r} (expected {uri}.wav or {uri}.*.wav)")
    return found[0]


def read(src: Path, channel: int | None) -> list[Entry]:
    """The recordings of a folder of audio with RTTM (and UEM) files beside it."""
    if not src.is_dir():
        raise DataError(f"{src}: expected a folder of audio and RTTM files")
    rttms = sorted(src.rglob("*.rttm"))
    if not rttms:
        raise DataError(f"{src}: no *.rttm file")
    turns, rttm_owner = _by_uri(rttms, read_rttm_turns, "turns")
    uems, _ = _by_uri(sorted(src.rglob("*.uem")), read_uem_regions, "regions")
    listed = _lists(src)
    index = audio_files(src)
    prefixed: dict[str, list[Path]] = {}
    for stem, paths in index.items():
        if "." in stem:
            prefixed.setdefault(stem.split(".")[0], []).extend(paths)
    entries = []
    for uri in listed or turns:
        subset, origin = listed[uri] if listed else (None, str(rttm_owner[uri]))
        try:
            audio = _audio(uri, index, prefixed)
        except DataError as error:
            raise DataError(f"{origin}: {error} under {src}") from None
        entries.append(
            Entry(uri, FileAudio(audio, channel), turns.get(uri, []), uems.get(uri), origin, subset)
        )
    return entries
