"""Which subset each recording goes to: the source's own split, or a seeded hash of its group.

Hash split: a recording's group key is hashed with the seed into [0, 1) and the shares cut that
interval (80/10/10: train below 0.8, dev below 0.9, test above), so a recording's subset never
depends on the other recordings: adding files moves none. Groups (``--disjoint``):

- none: each recording alone (key: its URI);
- ``session``: recordings whose URIs share the first match of the session pattern (its first
  group, if it has one; the whole URI when it does not match). The default, the leading letters
  and digits, groups AMI's ES2002a..ES2002d as ES2002 and AliMeeting's R8001_M8004 by room R8001;
- ``speaker``: recordings linked by a shared speaker label, transitively (connected components;
  key: the component's first URI in sorted order). Labels must name the same person across
  recordings. A new file that shares a speaker with two groups merges them, so that group may move.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from bench.corpora import DISJOINT
from bench.corpora.entry import Entry
from bench.data import SUBSETS, DataError

DEFAULT_SHARES = "80/10/10"
# words in a source's file or folder names that name a subset
_WORDS = {
    "train": "train",
    "training": "train",
    "dev": "dev",
    "eval": "dev",
    "valid": "dev",
    "validation": "dev",
    "test": "test",
}


def subset_of(name: str) -> str | None:
    """The subset a file or folder name stands for, by its words (``Eval_Ali_far`` -> dev);
    None when it names none, or several."""
    found = {_WORDS[word] for word in re.split(r"[^a-z0-9]+", name.lower()) if word in _WORDS}
    return found.pop() if len(found) == 1 else None


def part_subsets(names: Iterable[str]) -> dict[str, str | None]:
    """Subsets of a source's parts (manifests, folders): only a source of several parts has a
    split of its own; a single part is all the data, whatever its name."""
    names = list(names)
    return {name: subset_of(name) if len(names) > 1 else None for name in names}


def parse_shares(text: str) -> list[float]:
    """``80/10/10`` -> cumulative bounds [0.8, 0.9, 1.0] for train, dev, test."""
    parts = text.split("/")
    try:
        shares = [float(part) for part in parts]
    except ValueError:
        shares = []
    if len(shares) != len(SUBSETS) or any(not share > 0 for share in shares):
        raise DataError(
            f"--split {text!r}: expected three positive shares train/dev/test, e.g. 80/10/10"
        )
    total, bounds, running = sum(shares), [], 0.0
    for share in shares:
        running += share
        bounds.append(running / total)
    return bounds


def fraction(key: str, seed: int) -> float:
    """Where ``key`` falls in [0, 1) for ``seed``: the first 8 bytes of a SHA-256."""
    digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def group_keys(entries: list[Entry], disjoint: str | None, pattern: str) -> dict[str, str]:
    """Each URI's group key (see the module docstring)."""
    if disjoint is None:
        return {entry.uri: entry.uri for entry in entries}
    if disjoint == "session":
        try:
            regex = re.compile(pattern)
        except re.error as error:
            raise DataError(f"--session-pattern {pattern!r}: {error}") from None
        matches = {entry.uri: regex.search(entry.uri) for entry in entries}
        return {
            uri: (match and match.group(1 if regex.groups else 0)) or uri
            for uri, match in matches.items()
        }
    if disjoint != "speaker":
        raise DataError(f"--disjoint {disjoint!r}: expected one of {', '.join(DISJOINT)}")
    parent = {entry.uri: entry.uri for entry in entries}

    def root(uri: str) -> str:
        while parent[uri] != uri:
            parent[uri] = parent[parent[uri]]
            uri = parent[uri]
        return uri

    first_with: dict[str, str] = {}
    for entry in entries:
        for speaker in {turn.speaker for turn in entry.turns}:
            other = first_with.setdefault(speaker, entry.uri)
            a, b = sorted((root(entry.uri), root(other)))
            parent[b] = a
    first_of: dict[str, str] = {}
    for uri in sorted(parent):
        first_of.setdefault(root(uri), uri)
    return {uri: first_of[root(uri)] for uri in parent}


def assign(
    entries: list[Entry],
    shares: str | None,
    seed: int,
    disjoint: str | None,
    pattern: str,
) -> tuple[list[Entry], dict[str, Any]]:
    """Entries with their subset set, and the split's provenance. Without ``shares``, a source
    with its own split keeps it (``disjoint`` is then checked, not enforced)."""
    keys = group_keys(entries, disjoint, pattern)
    if shares is None and any(entry.subset for entry in entries):
        _check_source_split(entries, keys, disjoint)
        return entries, {"from": "source", "disjoint": disjoint}
    bounds = parse_shares(shares or DEFAULT_SHARES)
    subset_of_key = {}
    for key in dict.fromkeys(keys.values()):
        where = fraction(key, seed)
        subset_of_key[key] = next(s for s, b in zip(SUBSETS, bounds, strict=True) if where < b)
    assigned = [replace(entry, subset=subset_of_key[keys[entry.uri]]) for entry in entries]
    for subset in SUBSETS:
        if not any(entry.subset == subset for entry in assigned):
            raise DataError(
                f"--split {shares or DEFAULT_SHARES} --split-seed {seed}: the {subset} subset "
                f"is empty ({len(entries)} recordings in {len(subset_of_key)} groups); use more "
                "recordings, other shares or another seed"
            )
    provenance = {
        "from": "hash",
        "shares": shares or DEFAULT_SHARES,
        "seed": seed,
        "disjoint": disjoint,
    }
    if disjoint == "session":
        provenance["session_pattern"] = pattern
    return assigned, provenance


def _check_source_split(entries: list[Entry], keys: dict[str, str], disjoint: str | None) -> None:
    for entry in entries:
        if entry.subset is None:
            raise DataError(
                f"{entry.origin}: names no subset (train, dev/eval/valid, test) while other "
                "parts of the source do; pass --split to split by hash instead"
            )
    missing = [s for s in SUBSETS if not any(entry.subset == s for entry in entries)]
    if missing:
        raise DataError(
            f"{entries[0].origin}: the source's own split has no {' or '.join(missing)} part; "
            "pass --split to split by hash instead"
        )
    seen: dict[str, Entry] = {}
    for entry in entries:
        other = seen.setdefault(keys[entry.uri], entry)
        if disjoint and other.subset != entry.subset:
            raise DataError(
                f"--disjoint {disjoint}: the source's split puts {other.uri!r} in {other.subset} "
                f"and {entry.uri!r}, of the same group {keys[entry.uri]!r}, in {entry.subset}"
            )
