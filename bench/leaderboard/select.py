"""Loading result files and keeping the newest result of each run identity."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.results import (
    DER_KEY,
    EPOCH_COLUMNS,
    ResultError,
    RunIdentity,
    identity_of,
    read_result,
)

# the reference write-up's per-epoch columns
REFERENCE_COLUMNS = EPOCH_COLUMNS
__all__ = ["COMPONENTS", "DER_KEY", "REFERENCE_COLUMNS", "Run", "assign_slugs", "load_runs"]
COMPONENTS = ("Confusion", "FalseAlarm", "Miss")


@dataclass
class Run:
    """One result file."""

    data: dict[str, Any]
    source: Path
    slug: str = ""

    @property
    def status(self) -> str:
        return str(self.data.get("status") or "unknown")

    @property
    def external(self) -> bool:
        """A system bench did not train (``bench score``): outputs scored, no recipe."""
        return self.data.get("kind") == "external"

    @property
    def about(self) -> str:
        """An external system's description: a text or an http(s) URL."""
        return str(self.data.get("about") or "")

    @property
    def recipe(self) -> dict[str, Any]:
        return self.data.get("recipe") or {}

    @property
    def dataset(self) -> dict[str, Any]:
        return self.data.get("dataset") or {}

    @property
    def fingerprint(self) -> str | None:
        return self.dataset.get("fingerprint")

    @property
    def name(self) -> str:
        return str(self.data.get("name") or self.source.stem)

    @property
    def identity(self) -> RunIdentity | None:
        return identity_of(self.data)

    @property
    def smoke(self) -> bool:
        """A ``--max-batches`` run: never ranked against full runs."""
        return bool(self.identity and self.identity.smoke)

    @property
    def seed(self) -> Any:
        return self.data.get("seed", self.recipe.get("seed"))

    @property
    def finished(self) -> str:
        return str(self.data.get("finished") or self.data.get("started") or "")

    @property
    def key(self) -> str:
        """Runs with the same key are the same experiment (:class:`RunIdentity`)."""
        identity = self.identity
        return identity.digest if identity else f"unresolved:{self.source.name}"


def load_runs(folder: Path) -> tuple[list[Run], list[tuple[str, str]]]:
    """Every ``*.json`` result directly in ``folder``, and the files that could not be read."""
    runs, skipped = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            runs.append(Run(read_result(path), path))
        except ResultError as error:  # not JSON, or not a result
            skipped.append((path.name, str(error)))
    return runs, skipped


def _instant(text: str) -> float:
    """Seconds since the epoch of an ISO time (naive times are UTC); -inf when unreadable."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return -math.inf
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def newest(runs: Iterable[Run]) -> tuple[list[Run], int]:
    """The newest run (by ``finished``) of each :attr:`Run.key`, and how many were superseded.
    Call it on good and failed runs separately, so that a failure never hides a good result."""
    kept: dict[str, Run] = {}
    count = 0
    for run in runs:
        count += 1
        current = kept.get(run.key)
        if current is None or _instant(run.finished) > _instant(current.finished):
            kept[run.key] = run
    return list(kept.values()), count - len(kept)


def assign_slugs(runs: Sequence[Run]) -> None:
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
