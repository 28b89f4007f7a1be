"""The result files a leaderboard shows: read through the results store, newest of each run
identity kept."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from bench.results import (
    DER_KEY,
    EPOCH_COLUMNS,
    DatasetInfo,
    Record,
    RunIdentity,
    Stored,
    load_results,
)
from bench.results import newest as newest_of

# the reference write-up's per-epoch columns
REFERENCE_COLUMNS = EPOCH_COLUMNS
__all__ = [
    "COMPONENTS",
    "DER_KEY",
    "REFERENCE_COLUMNS",
    "ResultFile",
    "assign_slugs",
    "load_runs",
]
COMPONENTS = ("Confusion", "FalseAlarm", "Miss")
# a record's kind -> the toolkit its row names
TOOLKITS = {"recipe": "pyannote", "pipeline": "pyannote", "nemo": "NeMo", "external": "external"}


@dataclass(eq=False)
class ResultFile:
    """One result file on the board: its typed record, where it came from, its page name."""

    record: Record
    source: Path
    slug: str = ""

    @cached_property
    def data(self) -> dict[str, Any]:
        """The record as it is written (what the templates show)."""
        return self.record.as_json()

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def external(self) -> bool:
        """A system bench did not train (``bench score``): outputs scored, no recipe."""
        return self.record.kind == "external"

    @property
    def pretrained(self) -> bool:
        """A pretrained pipeline evaluated here as shipped (or re-tuned), not trained."""
        return self.record.kind == "pipeline"

    @property
    def trained(self) -> bool:
        """A run bench trained (a recipe, or a NeMo recipe): it has epochs and a start."""
        return self.record.kind in ("recipe", "nemo")

    @property
    def oracle_vad(self) -> bool:
        """Diarized with the reference's speech regions (NeMo's MSDD): its Miss and FalseAlarm
        owe nothing to a speech detector, unlike the other rows'."""
        return bool((self.record.pipeline or {}).get("oracle_vad"))

    @property
    def toolkit(self) -> str:
        """What trained and applied the model: pyannote.audio, NeMo, or an external system."""
        return TOOLKITS.get(self.record.kind, self.record.kind)

    @property
    def about(self) -> str:
        """An external system's description: a text or an http(s) URL."""
        return str(self.record.about or "")

    @property
    def recipe(self) -> dict[str, Any]:
        return self.record.recipe or {}

    @property
    def dataset(self) -> DatasetInfo:
        return self.record.dataset

    @property
    def fingerprint(self) -> str | None:
        return self.dataset.get("fingerprint")

    @property
    def name(self) -> str:
        return self.record.name or self.source.stem

    @property
    def identity(self) -> RunIdentity | None:
        return self.record.run_identity

    @property
    def smoke(self) -> bool:
        """A ``--max-batches`` run: never ranked against full runs."""
        return bool(self.identity and self.identity.smoke)

    @property
    def seed(self) -> Any:
        return self.record.seed if self.record.seed is not None else self.recipe.get("seed")

    @property
    def finished(self) -> str:
        return str(self.record.finished or self.record.started or "")

    @property
    def key(self) -> str:
        """Runs with the same key are the same experiment (:class:`RunIdentity`)."""
        identity = self.identity
        return identity.digest if identity else f"unresolved:{self.source.name}"


def from_stored(stored: Stored) -> ResultFile:
    return ResultFile(stored.record, stored.path)


def load_runs(folder: Path) -> tuple[list[ResultFile], list[tuple[str, str]]]:
    """Every ``*.json`` result directly in ``folder``, and the files that could not be read
    (the store's policy: listed as skipped, never stopping the others)."""
    found = load_results(folder) if folder.is_dir() else None
    if found is None:
        return [], []
    runs = [from_stored(s) for s in found.records]
    return runs, [(u.path.name, u.reason) for u in found.unreadable]


def newest(runs: Iterable[ResultFile]) -> tuple[list[ResultFile], int]:
    """The newest run (by ``finished``) of each :attr:`ResultFile.key`, and how many were
    superseded. Call it on good and failed runs separately, so that a failure never hides a good
    result."""
    return newest_of(runs, key=lambda r: r.key, finished=lambda r: r.finished)


def assign_slugs(runs: Sequence[ResultFile]) -> None:
    """A unique, file-name-safe page name per run (its result file's stem)."""
    seen: set[str] = set()
    for run in runs:
        base = re.sub(r"[^A-Za-z0-9_.+-]", "_", run.source.stem) or "run"
        slug, n = base, 1
        while slug.lower() in seen:
            n += 1
            slug = f"{base}-{n}"
        seen.add(slug.lower())
        run.slug = slug
