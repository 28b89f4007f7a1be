"""The NeMo environment: a second venv (``.venv-nemo``, ``bash scripts/setup_nemo.sh``) holding
the locked NeMo (``requirements-nemo.lock``). NeMo 2.7 needs ``lightning<=2.4`` and bench needs
``>=2.5``, so NeMo never runs in bench's process: bench reads this venv's package metadata from
its files (torch-free, NeMo-free, so a finished NeMo run is skipped in milliseconds) and runs
NeMo's code through :mod:`bench.nemo.backend`.

Its numbers-relevant packages, their digest and whether they are exactly the lock's go into every
NeMo record and the NeMo run identity, as :mod:`bench.environment` does for bench's own venv."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from bench import environment
from bench.environment import NEMO_LOCK, ROOT, Environment, LockStatus

SETUP = "bash scripts/setup_nemo.sh"
VENV_ENV = "BENCH_NEMO_VENV"  # another place for the venv (an absolute path)
MARKER = "bench-nemo-lock.sha256"  # written by setup_nemo.sh once the lock is installed
# what can change a NeMo run's numbers
NUMBERS_PACKAGES = (
    "nemo-toolkit",
    "torch",
    "lightning",
    "pytorch-lightning",
    "torchmetrics",
    "numpy",
    "scipy",
    "omegaconf",
    "hydra-core",
    "librosa",
    "soundfile",
    "lhotse",
    "nvidia-cudnn-cu13",
    "nvidia-cublas",
)


class NemoMissing(RuntimeError):
    """The NeMo environment is absent or not the lock's (one line naming the setup command)."""


@dataclass(frozen=True)
class NemoEnvironment:
    """One NeMo venv: where it is, its interpreter and what it holds."""

    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def site_packages(self) -> Path | None:
        found = sorted(self.venv.glob("lib/python3.*/site-packages"))
        return found[0] if found else None

    def installed(self) -> dict[str, str]:
        """``{canonical name: version}`` of the venv's distributions, from their metadata."""
        site = self.site_packages
        if site is None:
            return {}
        found: dict[str, str] = {}
        for dist in metadata.distributions(path=[str(site)]):
            name = dist.metadata["Name"]
            if name:
                found.setdefault(environment.canonical(name), dist.version)
        return found

    def python_version(self) -> str | None:
        """The venv's Python version, from ``pyvenv.cfg`` (no interpreter started)."""
        try:
            text = (self.venv / "pyvenv.cfg").read_text(encoding="utf-8")
        except OSError:
            return None
        match = re.search(r"^version(?:_info)?\s*=\s*([0-9.]+)", text, re.M)
        return match.group(1) if match else None

    def numbers(self) -> Environment:
        """The part of this environment that can change a NeMo run's numbers."""
        have = self.installed()
        site = self.site_packages
        return {
            "python": self.python_version() or "?",
            "implementation": "CPython",
            "system": environment.numbers()["system"],
            "machine": environment.numbers()["machine"],
            "packages": {name: have.get(environment.canonical(name)) for name in NUMBERS_PACKAGES},
            "torch_build": environment.torch_build(site) if site else None,
        }

    def lock_status(self, root: Path = ROOT) -> LockStatus | None:
        """The NeMo lock's digest and whether this venv holds exactly its pins."""
        lock = root / NEMO_LOCK
        if not lock.is_file():
            return None
        pins = environment.read_lock(lock)
        moved = [
            line
            for line in environment.drift(pins, self.installed())
            if line.split()[0] in pins  # what the lock names; pip and setuptools come with venv
        ]
        return {"sha256": lock_sha256(root), "matches": not moved, "differs": moved[:20]}

    def describe(self, root: Path = ROOT) -> Environment:
        """What a NeMo record says about its environment (as :func:`bench.environment.describe`)."""
        part = self.numbers()
        return {**part, "digest": environment.digest(part), "lock": self.lock_status(root)}


def lock_sha256(root: Path = ROOT) -> str:
    """Digest of the NeMo lock file (what setup_nemo.sh writes into the venv's marker)."""
    import hashlib

    return hashlib.sha256((root / NEMO_LOCK).read_bytes()).hexdigest()[:16]


def venv_path(root: Path = ROOT) -> Path:
    """Where the NeMo venv is: ``$BENCH_NEMO_VENV``, else ``.venv-nemo`` in the checkout."""
    return Path(os.environ.get(VENV_ENV) or root / ".venv-nemo")


def nemo_environment(root: Path = ROOT) -> NemoEnvironment:
    """The installed NeMo environment, or :class:`NemoMissing` saying how to make it."""
    env = NemoEnvironment(venv_path(root))
    if not env.python.is_file():
        raise NemoMissing(f"the NeMo environment is missing ({env.venv}): run {SETUP}")
    if "nemo-toolkit" not in env.installed():
        raise NemoMissing(f"{env.venv} holds no nemo-toolkit: run {SETUP}")
    marker = env.venv / MARKER
    made = marker.read_text(encoding="utf-8").strip() if marker.is_file() else None
    if made != lock_sha256(root):
        raise NemoMissing(f"{env.venv} was not made from this checkout's {NEMO_LOCK}: run {SETUP}")
    return env


def main(argv: list[str]) -> int:
    """``check`` (exactly the lock), ``extra`` (installed, not locked: what setup removes),
    ``describe`` (as JSON). Run by ``scripts/setup_nemo.sh`` from bench's own venv."""
    import json

    command = argv[0] if argv else "describe"
    env = NemoEnvironment(venv_path())
    if command == "extra":
        pins = environment.read_lock(ROOT / NEMO_LOCK)
        print(" ".join(sorted(set(env.installed()) - set(pins) - {"pip"})))
        return 0
    if command == "describe":
        print(json.dumps(env.describe(), indent=2))
        return 0
    if command == "check":
        status = env.lock_status()
        for line in (status or {"differs": [f"no {NEMO_LOCK}"]})["differs"]:
            print(f"not the locked version: {line}", file=sys.stderr)
        return 0 if status and status["matches"] else 1
    print(f"usage: python -m bench.nemo.environment [describe|check|extra], not {command!r}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
