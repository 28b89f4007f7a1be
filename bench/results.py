"""One JSON file per run, written atomically, with everything needed to trust and compare it."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import bench

SCHEMA_VERSION = 1
PACKAGES = (
    "torch",
    "torchaudio",
    "pyannote.audio",
    "pyannote.core",
    "pyannote.database",
    "pyannote.metrics",
    "pyannote.pipeline",
    "optuna",
    "lightning",
    "torch-audiomentations",
    "numpy",
    "wandb",
)


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version(), "bench": bench.__version__}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_commit(directory: Path | None = None) -> dict[str, Any]:
    """Commit of the git checkout holding ``directory`` (bench's own by default)."""
    directory = directory or Path(bench.__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=directory,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2, allow_nan=True) + "\n")


def read_result(path: Path) -> dict[str, Any]:
    with open(path) as stream:
        data = json.load(stream)
    if data.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"{path}: unknown result schema {data.get('schema')!r}")
    return data


def result_stem(name: str, recipe_hash: str, fingerprint: str, seed: int, epochs: int) -> str:
    return f"{name}-{recipe_hash}-{fingerprint}-s{seed}-e{epochs}"
