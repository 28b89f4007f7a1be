"""A run's hypothesis RTTM files, copied into the site so that it stays self-contained."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.io import file_name, sha256_file
from bench.leaderboard.select import ResultFile


@dataclass(frozen=True)
class Hypothesis:
    """One hypothesis file: a link relative to the run page, or why there is none."""

    uri: str
    href: str | None
    note: str = ""


@dataclass
class HypothesisSet:
    """The hypotheses of one subset (``test``, ``dev``, or an also-tested split)."""

    title: str
    files: list[Hypothesis] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)  # scored as empty: no hypothesis file

    @property
    def copied(self) -> int:
        return sum(1 for h in self.files if h.href)


def _copy(run: ResultFile, entry: Any, target: Path) -> str:
    """Copy one recorded output to ``target``; '' when done, else why not."""
    path = entry.get("path") if isinstance(entry, dict) else None
    if not isinstance(path, str) or not path:
        return "no path recorded"
    root = run.source.parent.resolve()
    source = (root / path).resolve()
    if Path(path).is_absolute() or not source.is_relative_to(root):
        return "outside the results folder: not copied"
    if not source.is_file():
        return "file not found"
    expected = entry.get("sha256")
    if expected and sha256_file(source) != expected:
        return "changed since it was scored (sha256 differs): not copied"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return ""


def _subset(run: ResultFile, title: str, files: Any, folder: Path, href: str) -> HypothesisSet:
    found = HypothesisSet(title)
    seen: set[str] = set()
    for uri, entry in sorted((files or {}).items()) if isinstance(files, dict) else []:
        name = file_name(uri)
        while name.lower() in seen:  # URIs that differ only in unsafe characters
            name += "_"
        seen.add(name.lower())
        note = _copy(run, entry, folder / f"{name}.rttm")
        found.files.append(Hypothesis(str(uri), None if note else f"{href}/{name}.rttm", note))
    return found


def copy_outputs(run: ResultFile, runs_dir: Path) -> list[HypothesisSet]:
    """Copy the RTTM files of ``record.outputs`` (paths relative to the result file's folder)
    into ``runs_dir/<slug>/rttm/<subset>/<uri>.rttm``; missing or altered files are listed with
    a note, never copied."""
    outputs = run.record.outputs
    if not isinstance(outputs, dict):
        return []
    base = f"{run.slug}/rttm"
    sets = []
    for subset in ("test", "dev"):
        if subset in outputs:
            folder = runs_dir / base / subset
            sets.append(_subset(run, subset, outputs[subset], folder, f"{base}/{subset}"))
    also = run.record.also_test
    for fingerprint, files in sorted((outputs.get("also_test") or {}).items()):
        entry = also.get(fingerprint)
        name = (entry.dataset.get("name") if entry else None) or fingerprint
        where = f"{base}/also_test/{file_name(fingerprint)}"
        sets.append(_subset(run, f"also tested: {name}", files, runs_dir / where, where))
    empty = outputs.get("missing_as_empty")
    if sets and sets[0].title == "test" and isinstance(empty, list):
        sets[0].empty = sorted(str(uri) for uri in empty)
    return sets
