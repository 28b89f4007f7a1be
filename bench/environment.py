"""The environment a number comes from, and the lock that installs it (torch-free).

A result's numbers depend on more than the recipe and the data: torch and its CUDA build, the
pyannote packages, numpy/scipy, the tuning sampler (optuna), the augmentation library. Every
record holds :func:`describe` (those versions, the torch build and, when the installed packages
are exactly the lock's, the lock's digest); the run identity holds its ``digest``, so a finished
run is re-run, not skipped, after an upgrade that can change its numbers (docs: "Run identity").

Everything here reads package metadata and files, never imports torch, so a finished run is still
skipped without importing it. ``python -m bench.environment stamp|check|diff`` serves
``scripts/lock.sh``, the tests and the drift canary.
"""

from __future__ import annotations

import ast
import hashlib
import json
import platform
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from typing_extensions import TypedDict

# Distributions whose version can change a result's numbers. Absent ones are recorded as None
# (the cuDNN/cuBLAS wheels exist only on CUDA builds; the names differ by CUDA major).
NUMBERS_PACKAGES = (
    "torch",
    "torchaudio",
    "pyannote.audio",
    "pyannote.core",
    "pyannote.database",
    "pyannote.metrics",
    "pyannote.pipeline",
    "lightning",
    "torchmetrics",
    "asteroid-filterbanks",
    "einops",
    "numpy",
    "scipy",
    "scikit-learn",
    "optuna",
    "torch-audiomentations",
    "julius",
    "soundfile",
    "nvidia-cudnn-cu12",
    "nvidia-cudnn-cu13",
    "nvidia-cublas-cu12",
    "nvidia-cublas",
)
ROOT = Path(__file__).resolve().parent.parent  # the checkout, when bench is installed editable
LOCK = "requirements.lock"
ASSETS_LOCK = "requirements-assets.lock"
ASSETS_IN = "scripts/assets.in"
NEMO_LOCK = "requirements-nemo.lock"  # the NeMo environment's (bench.nemo.environment)
NEMO_IN = "scripts/nemo.in"
STAMP = "# pyproject-sha256: "
NEMO_STAMP = "# nemo-in-sha256: "
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def canonical(name: str) -> str:
    """PEP 503 name: ``pyannote.audio`` and ``Pyannote_Audio`` are ``pyannote-audio``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


class TorchBuild(TypedDict):
    """What torch was built against (read from torch/version.py, without importing torch)."""

    cuda: str | None
    hip: str | None
    git: str | None


class LockStatus(TypedDict):
    """The lock's digest, and whether the installed packages are exactly the locked ones."""

    sha256: str
    matches: bool
    differs: list[str]


class Environment(TypedDict, total=False):
    """A record's ``environment``: :func:`numbers`, their ``digest`` and the ``lock``."""

    python: str
    implementation: str
    system: str
    machine: str
    packages: dict[str, str | None]
    torch_build: TorchBuild | None
    digest: str
    lock: LockStatus | None


def torch_build(site: Path | None = None) -> TorchBuild | None:
    """torch's CUDA/HIP build and git revision, read from ``torch/version.py`` without importing
    torch (a CPU wheel and a CUDA wheel of one version compute differently); this interpreter's
    torch, or the one in another environment's ``site`` packages folder."""
    try:
        if site is None:
            file = Path(str(metadata.distribution("torch").locate_file("torch/version.py")))
        else:
            file = site / "torch" / "version.py"
        tree = ast.parse(file.read_text(encoding="utf-8"))
    except (metadata.PackageNotFoundError, OSError, SyntaxError):
        return None
    found: dict[str, str | None] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in ("cuda", "hip", "git_version"):
                    value = node.value.value
                    found[target.id] = value if isinstance(value, str) else None
    return {"cuda": found.get("cuda"), "hip": found.get("hip"), "git": found.get("git_version")}


def numbers() -> Environment:
    """The part of the environment that can change numbers (what :func:`digest` covers)."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": platform.system(),
        "machine": platform.machine(),
        "packages": {name: _version(name) for name in NUMBERS_PACKAGES},
        "torch_build": torch_build(),
    }


def digest(part: Environment) -> str:
    """First 16 hex digits of the sha256 of the numbers-relevant part of an environment."""
    keep = {k: part.get(k) for k in ("python", "implementation", "system", "machine")}
    keep["packages"] = part.get("packages") or {}
    keep["torch_build"] = part.get("torch_build")
    blob = json.dumps(keep, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def describe(root: Path | None = None) -> Environment:
    """What a record says about its environment: :func:`numbers`, its ``digest``, and ``lock``
    (the lock file's digest, whether every installed package matches it, and the first
    differences), or ``lock: None`` when bench does not run from a checkout with a lock."""
    part = numbers()
    return {**part, "digest": digest(part), "lock": lock_status(root or ROOT)}


def changes(old: Environment | None, new: Environment | None) -> list[str]:
    """``["torch 2.11.0 -> 2.12.0", ...]``: what differs between two recorded environments."""
    old, new = old or {}, new or {}
    found = []
    for key in ("python", "implementation", "system", "machine"):
        if old.get(key) != new.get(key):
            found.append(f"{key} {old.get(key) or '?'} -> {new.get(key) or '?'}")
    mine, theirs = old.get("packages") or {}, new.get("packages") or {}
    for name in sorted(set(mine) | set(theirs)):
        if mine.get(name) != theirs.get(name):
            found.append(f"{name} {mine.get(name) or 'absent'} -> {theirs.get(name) or 'absent'}")
    a, b = old.get("torch_build") or {}, new.get("torch_build") or {}
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            found.append(f"torch build {key} {a.get(key) or '-'} -> {b.get(key) or '-'}")
    return found


# ---------------------------------------------------------------------------------------------
# The lock


def read_lock(path: Path) -> dict[str, str]:
    """``{canonical name: version}`` of every ``name==version`` pin in a hashed requirements
    file (the lock files ``scripts/lock.sh`` writes)."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def lock_files(root: Path) -> list[Path]:
    """The lock files of a checkout at ``root`` (the main lock and the assets lock)."""
    return [root / LOCK, root / ASSETS_LOCK]


def locked_pins(root: Path) -> dict[str, str]:
    """Every pin of both lock files (:func:`read_lock`)."""
    pins: dict[str, str] = {}
    for path in lock_files(root):
        pins.update(read_lock(path))
    return pins


def lock_sha256(root: Path) -> str:
    """Digest of the lock files' contents (the stamp line included)."""
    blob = hashlib.sha256()
    for path in lock_files(root):
        blob.update(path.name.encode() + b"\0" + path.read_bytes())
    return blob.hexdigest()[:16]


def installed() -> dict[str, str]:
    """``{canonical name: version}`` of every distribution importable in this interpreter."""
    found = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonical(name), dist.version)
    return found


def drift(pins: dict[str, str], have: dict[str, str]) -> list[str]:
    """``["torch 2.11.0 -> 2.12.0", "rich absent -> 14.0"...]``: how ``have`` differs from the
    lock's ``pins`` (bench itself and the installers are not in the lock and not compared)."""
    skip = {"bench", "pip", "setuptools", "wheel"}
    moved = []
    for name in sorted(set(pins) | set(have)):
        if name in skip and name not in pins:
            continue
        if pins.get(name) != have.get(name):
            moved.append(f"{name} {pins.get(name) or 'absent'} -> {have.get(name) or 'absent'}")
    return moved


def lock_status(root: Path) -> LockStatus | None:
    """The lock's digest and whether the installed packages are exactly the locked ones."""
    if not all(path.is_file() for path in lock_files(root)):
        return None
    pins = locked_pins(root)
    have = installed()
    # only what the lock names: extras left out of an install are not a difference
    moved = [line for line in drift(pins, have) if not line.endswith(" -> absent")]
    moved = [line for line in moved if line.split()[0] in pins]
    return {"sha256": lock_sha256(root), "matches": not moved, "differs": moved[:20]}


def pyproject_stamp(root: Path) -> str:
    """sha256 of everything the lock is made from: pyproject's dependencies, extras, Python
    range and build requirements, and the assets list."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    source = {
        "dependencies": project["project"].get("dependencies", []),
        "optional": project["project"].get("optional-dependencies", {}),
        "python": project["project"].get("requires-python"),
        "build": project["build-system"].get("requires", []),
        "assets": [
            line.strip()
            for line in (root / ASSETS_IN).read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ],
    }
    return hashlib.sha256(json.dumps(source, sort_keys=True).encode()).hexdigest()


def nemo_stamp(root: Path) -> str:
    """sha256 of what the NeMo lock is made from (``scripts/nemo.in``)."""
    return hashlib.sha256((root / NEMO_IN).read_bytes()).hexdigest()


def _stamps(root: Path) -> dict[str, tuple[str, str, str]]:
    """Each lock made here: its stamp line's prefix, what it is made from and that digest."""
    return {
        LOCK: (STAMP, "pyproject.toml", pyproject_stamp(root)),
        NEMO_LOCK: (NEMO_STAMP, NEMO_IN, nemo_stamp(root)),
    }


def stamp(root: Path) -> None:
    """Write each lock's source digest as its first line (``scripts/lock.sh``)."""
    note = "  (written by bash scripts/lock.sh; the tests check it)"
    for name, (prefix, _, value) in _stamps(root).items():
        path = root / name
        lines = path.read_text(encoding="utf-8").splitlines()
        lines = [ln for ln in lines if not ln.startswith(prefix)]
        path.write_text("\n".join([prefix + value + note, *lines]) + "\n")


def check_stamp(root: Path) -> str | None:
    """None when each lock was made from today's sources, else the one-line problem."""
    for name, (prefix, source, value) in _stamps(root).items():
        text = (root / name).read_text(encoding="utf-8")
        found = next((ln for ln in text.splitlines() if ln.startswith(prefix)), None)
        if found is None:
            return f"{name}: no '{prefix.strip()}' line: run bash scripts/lock.sh"
        if found[len(prefix) :].split()[0] != value:
            return f"{name}: made from another {source}: run bash scripts/lock.sh"
    return None


def main(argv: list[str]) -> int:
    """``stamp`` (after locking), ``check`` (stamp and installed packages), ``diff`` (what moved
    from the lock: the drift canary's report), ``extra`` (installed, not locked), ``describe``
    (this environment as JSON)."""
    command = argv[0] if argv else "describe"
    if command == "stamp":
        stamp(ROOT)
        return 0
    if command == "describe":
        print(json.dumps(describe(), indent=2))
        return 0
    pins = locked_pins(ROOT)
    moved = [line for line in drift(pins, installed()) if not line.endswith(" -> absent")]
    if command == "extra":  # installed but not locked: what setup.sh removes for an exact .venv
        print(" ".join(sorted(set(installed()) - set(pins) - {"bench", "pip"})))
        return 0
    if command == "diff":
        print(f"{len(moved)} package(s) differ from the lock" + (":" if moved else ""))
        for line in moved:
            print(f"  {line}")
        return 0
    if command == "check":
        problem = check_stamp(ROOT)
        for line in [problem] if problem else []:
            print(line, file=sys.stderr)
        for line in moved:
            print(f"not the locked version: {line}", file=sys.stderr)
        return 1 if problem or moved else 0
    print(f"usage: python -m bench.environment [describe|stamp|check|diff|extra], not {command!r}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
