"""``bench data import`` and ``export``: read a corpus format, split it, write bench's layout."""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

from bench.corpora import EXPORTERS, IMPORTERS, SESSION_PATTERN
from bench.corpora.split import assign
from bench.corpora.writer import Written, check_out, write_dataset
from bench.data import DataError


@dataclass(frozen=True)
class ImportOptions:
    """How to split (``split`` None: the source's own split, else 80/10/10) and which channel
    to keep (None: the format's default, see each module's ``DEFAULT_CHANNEL``)."""

    split: str | None = None
    split_seed: int = 0
    disjoint: str | None = None
    session_pattern: str = SESSION_PATTERN
    channel: int | None = None
    force: bool = False


def _module(registry: dict[str, str], name: str, what: str) -> ModuleType:
    if name not in registry:
        raise DataError(f"unknown {what} format {name!r}: expected one of {', '.join(registry)}")
    return importlib.import_module(registry[name])


def _check_places(src: Path, out: Path, force: bool, inside: bool) -> None:
    """Before any work: ``out`` is writable (:func:`check_out`), and may never be or hold the
    source (``--force`` would delete it); nor, unless ``inside``, lie in it (a later import
    would read its files as the corpus's)."""
    check_out(out, force)
    if not src.exists():
        raise DataError(f"{src}: no such file or folder")
    src, out = src.resolve(), out.resolve()
    if src == out or out in src.parents or (not inside and src in out.parents):
        where = "outside" if not inside else "apart from"
        raise DataError(f"{out}: --out must lie {where} the source {src} and not contain it")


def import_corpus(fmt: str, src: Path, out: Path, options: ImportOptions) -> Written:
    """Read ``src`` in format ``fmt``, split it, and write bench's layout to ``out``."""
    module = _module(IMPORTERS, fmt, "import")
    _check_places(src, out, options.force, inside=False)
    channel = module.DEFAULT_CHANNEL if options.channel is None else options.channel
    entries = module.read(src, channel)
    if not entries:
        raise DataError(f"{src}: no recordings found (format {fmt})")
    entries, split = assign(
        entries, options.split, options.split_seed, options.disjoint, options.session_pattern
    )
    provenance = {
        "format": fmt,
        "source": str(src.resolve()),
        "options": {**asdict(options), "channel": channel},
        "split": split,
    }
    return write_dataset(entries, out, options.force, provenance)


def export_corpus(fmt: str, data: Path, out: Path, force: bool) -> list[Path]:
    """Write the bench dataset folder ``data`` in format ``fmt`` to ``out``; the files written."""
    module = _module(EXPORTERS, fmt, "export")
    _check_places(data, out, force, inside=True)
    return module.export(data, out, force)
