"""A results folder: the one place that names its files, reads them, and says which is newest.

- Naming: ``{stem}.json`` for a result, ``{stem}.{status}.json`` for a failed or diverged attempt
  (so a failure never replaces a good result), ``runs/{stem}/`` for the run's files,
  ``runs/{stem}.lock`` while a process runs it, ``runs/{stem}.force`` while ``--force`` re-runs it.
- Reading a folder has one policy: a file that is not a readable bench result never stops the
  others; it is returned as :class:`Unreadable`, naming the file and the problem, and each
  command says what that means for it (the leaderboard lists it as skipped, the gate refuses,
  the runner re-runs, the summary counts the run as failed).
- "Newest" is decided by the record's ``finished`` time, parsed (naive times are UTC).
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from filelock import FileLock, Timeout

from bench.io import clear_leftovers, finite_json, swap_dir, write_json
from bench.results.record import Record, ResultError, parse_record

T = TypeVar("T")


def record_path(folder: Path, stem: str, status: str) -> Path:
    """``{stem}.json`` for a result; ``{stem}.{status}.json`` for a failed or diverged attempt,
    so that an attempt that fails never replaces a good result of the same identity."""
    return folder / (f"{stem}.json" if status == "ok" else f"{stem}.{status}.json")


def hypothesis_path(stem: str, part: str, uri: str) -> Path:
    """Where a run's pipeline hypothesis for ``uri`` lives, relative to the results folder:
    ``runs/{stem}/hypotheses/{part}/{uri}.rttm``; ``part`` is ``dev``, ``test`` or
    ``also_test/{fingerprint}``."""
    return Path("runs") / stem / "hypotheses" / part / f"{uri}.rttm"


def read_record(path: Path) -> Record:
    """The record in ``path``, migrated to the current schema (:class:`ResultError` names the
    file when it is not a readable bench result)."""
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultError(f"{path}: not a readable result: {error}") from None
    except RecursionError:
        raise ResultError(f"{path}: not a readable result: nested too deeply") from None
    return parse_record(data, str(path))


def write_record(folder: Path, record: Record) -> Path:
    """Write ``record`` under its one file name; non-finite numbers become null, listed in
    ``non_finite``. A good result replaces earlier failed attempts of the same identity."""
    data = record.as_json()
    clean, where = finite_json(data)
    clean["non_finite"] = sorted(set(data.get("non_finite") or []) | set(where))
    path = write_json(record_path(folder, record.stem, record.status), clean)
    if record.status == "ok":
        for status in ("failed", "diverged"):
            record_path(folder, record.stem, status).unlink(missing_ok=True)
    return path


@dataclass(frozen=True)
class Stored:
    """A record and the file it was read from."""

    record: Record
    path: Path

    @property
    def finished(self) -> str:
        return self.record.finished or self.record.started or ""


@dataclass(frozen=True)
class Unreadable:
    """A file that is not a readable bench result, and why (the reason names the file)."""

    path: Path
    reason: str


@dataclass
class Loaded:
    """What a folder (or one file) held: the records read, and the files that could not be."""

    records: list[Stored] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)


def load_results(path: Path) -> Loaded:
    """Every ``*.json`` directly in folder ``path`` (or the one file ``path``), read with the
    store's policy: an unreadable file is returned as :class:`Unreadable`, never raised."""
    found = Loaded()
    files = sorted(path.glob("*.json")) if path.is_dir() else [path] if path.exists() else []
    for file in files:
        try:
            found.records.append(Stored(read_record(file), file))
        except ResultError as error:
            found.unreadable.append(Unreadable(file, str(error)))
    return found


def instant(text: str | None) -> float:
    """Seconds since the epoch of an ISO time (naive times are UTC); -inf when unreadable."""
    try:
        moment = datetime.fromisoformat(str(text or ""))
    except ValueError:
        return -math.inf
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def newest(
    items: Iterable[T], key: Callable[[T], Hashable], finished: Callable[[T], str | None]
) -> tuple[list[T], int]:
    """The newest item (by its ``finished`` time) of each ``key``, in first-seen order, and how
    many were superseded. The one rule for "newest" (leaderboard and gate)."""
    kept: dict[Hashable, T] = {}
    count = 0
    for item in items:
        count += 1
        k = key(item)
        current = kept.get(k)
        if current is None or instant(finished(item)) > instant(finished(current)):
            kept[k] = item
    return list(kept.values()), count - len(kept)


class ResultStore:
    """One results folder: where each run's files go, its good result if any, the per-run lock
    and the ``--force`` swap."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @property
    def runs(self) -> Path:
        return self.folder / "runs"

    def path(self, stem: str, status: str = "ok") -> Path:
        return record_path(self.folder, stem, status)

    def run_dir(self, stem: str) -> Path:
        return self.runs / stem

    def staging_dir(self, stem: str) -> Path:
        """Where a ``--force`` run trains, beside the result it replaces (which stays until the
        new one is written)."""
        return self.runs / f"{stem}.force"

    def write(self, record: Record) -> Path:
        return write_record(self.folder, record)

    def load(self) -> Loaded:
        return load_results(self.folder)

    def existing(self, stem: str) -> tuple[Path | None, Unreadable | None]:
        """The good result of ``stem`` if one is recorded; an unreadable one is returned as
        such (the caller names it and runs again)."""
        path = self.path(stem)
        if not path.is_file():
            return None, None
        try:
            record = read_record(path)
        except ResultError as error:
            return None, Unreadable(path, str(error))
        return (path if record.status == "ok" else None), None

    @contextmanager
    def lock(self, stem: str, waiting: Callable[[], None] | None = None) -> Iterator[None]:
        """One process at a time per run: a second one calls ``waiting`` and waits."""
        self.runs.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.runs / f"{stem}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if waiting is not None:
                waiting()
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def clear_leftovers(self, stem: str) -> list[Path]:
        """Remove what a killed or failed run of ``stem`` left: its ``--force`` staging folder
        (``--force`` never resumes) and a run folder moved aside by an unfinished swap (moved
        back when it is the only one). Call it holding the run's lock; returns what was
        removed."""
        removed = clear_leftovers(self.run_dir(stem))
        staging = self.staging_dir(stem)
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
            removed.append(staging)
        return removed

    def swap_in(self, staged: Path, stem: str) -> Path:
        """Put a ``--force`` run's folder in place of the run's earlier one."""
        target = self.run_dir(stem)
        swap_dir(staged, target)
        return target
