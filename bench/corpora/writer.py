"""Writing bench's dataset layout: in a temporary folder next to ``--out``, validated by
``bench.data.load_folder``, then renamed into place, so nothing half-written is ever left."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.corpora.entry import Entry
from bench.data import SUBSETS, DataError, folder_paths, load_folder, rttm_line
from bench.io import staging_dir

PROVENANCE = "bench-import.json"


@dataclass(frozen=True)
class Written:
    """A dataset written to ``out``: its fingerprint and per-subset summary."""

    out: Path
    fingerprint: str
    summary: dict[str, dict[str, float]]


def check_out(out: Path, force: bool) -> None:
    """Refuse an ``out`` that is a file, or a non-empty folder unless ``force``."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise DataError(f"{out}: exists and is not empty (pass --force to replace it)")


@contextmanager
def staged(out: Path, force: bool) -> Iterator[Path]:
    """A fresh folder next to ``out`` that replaces ``out`` when the block succeeds and is
    removed when it fails (see :func:`check_out`)."""
    check_out(out, force)
    with staging_dir(out) as stage:
        yield stage


def uem_line(uri: str, start: float, end: float) -> str:
    """One UEM line: the scored region ``start..end`` of ``uri``."""
    return f"{uri} 1 {start:.3f} {end:.3f}\n"


def check_uris(entries: list[Entry]) -> None:
    """URIs bench's lists accept (no spaces or slashes), each once."""
    origin: dict[str, str] = {}
    for entry in entries:
        uri = entry.uri
        if not uri or uri.startswith(".") or any(c.isspace() for c in uri) or "/" in uri:
            raise DataError(f"{entry.origin}: invalid URI {uri!r} (no spaces or slashes)")
        if uri in origin:
            raise DataError(f"{entry.origin}: URI {uri!r} is also {origin[uri]}")
        origin[uri] = entry.origin


def write_entry(root: Path, entry: Entry) -> None:
    """The wav, RTTM and UEM of one entry under ``root/{subset}/``."""
    wav, rttm, uem = folder_paths(root, str(entry.subset), entry.uri)
    entry.audio.write(wav)
    if entry.rttm_file is not None:
        shutil.copyfile(entry.rttm_file, rttm)
    else:
        turns = sorted(entry.turns, key=lambda t: (t.start, t.end, t.speaker))
        kept = [t for t in turns if round(t.end - t.start, 3) > 0]
        if any(not t.speaker.strip() for t in kept):
            raise DataError(f"{entry.origin}: a speaker turn has an empty speaker label")
        rttm.write_text(
            "".join(rttm_line(entry.uri, t.start, t.end - t.start, t.speaker) for t in kept)
        )
    if entry.uem_file is not None:
        shutil.copyfile(entry.uem_file, uem)
    elif entry.uem is not None:
        uem.write_text("".join(uem_line(entry.uri, *region) for region in entry.uem))


def _from_source(error: DataError, root: Path, out: Path, entries: list[Entry]) -> DataError:
    """A validation error with the paths as they would be in ``out`` and, when it is about one
    recording's files, where that recording came from."""
    message = str(error)
    for entry in entries:
        if f"/{entry.subset}/" in message and f"/{entry.uri}." in message:
            message += f" (imported from {entry.origin})"
            break
    return DataError(message.replace(str(root.resolve()), str(out)))


def write_dataset(
    entries: list[Entry], out: Path, force: bool, provenance: dict[str, Any]
) -> Written:
    """Write every entry (its subset set) and the lists; check the result reads as bench's
    dataset; record ``provenance`` with the fingerprint in ``out/bench-import.json``."""
    check_uris(entries)
    with staged(out, force) as root:
        for subset in SUBSETS:
            for folder in ("wav", "rttm", "uem"):
                (root / subset / folder).mkdir(parents=True)
        for entry in entries:
            write_entry(root, entry)
        for subset in SUBSETS:
            uris = [entry.uri for entry in entries if entry.subset == subset]
            (root / f"{subset}.txt").write_text("".join(f"{uri}\n" for uri in uris))
        try:
            split = load_folder(root)
        except DataError as error:
            raise _from_source(error, root, out, entries) from None
        summary = split.summary()
        record = {**provenance, "fingerprint": split.fingerprint, "summary": summary}
        (root / PROVENANCE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return Written(out, split.fingerprint, summary)
