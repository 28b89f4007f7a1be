"""The result record: its schema, run identity, file naming, primary metric, loading and writing.

This module owns every decision about what a result file holds and when two results are the same
experiment; the runner, the run summary, the leaderboard and the gate read records through it.
It imports neither torch nor pyannote, so the light half (leaderboard, gate) installs without them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import tempfile
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

import bench
from bench import environment

SCHEMA_VERSION = 2
Status = Literal["ok", "failed", "diverged"]
Kind = Literal["recipe", "external"]
# ``versions`` (kept for readers of older records): the numbers-relevant packages and wandb;
# ``environment`` (bench.environment) is what the identity uses
PACKAGES = (*environment.NUMBERS_PACKAGES, "wandb")
DER_KEY = "DiarizationErrorRate"
# the reference write-up's per-epoch columns, in its order (bench.training records them)
EPOCH_COLUMNS = (
    "loss/val/segmentation",
    "loss/val/vad",
    "loss/val",
    DER_KEY,
    f"{DER_KEY}/Confusion",
    f"{DER_KEY}/FalseAlarm",
    f"{DER_KEY}/Miss",
    f"{DER_KEY}/Threshold",
    "loss/train/segmentation",
    "loss/train/vad",
    "loss/train",
)
METRIC_LABELS = {"pipeline": "full-pipeline DER", "chunk": "chunk-level DER"}


class ResultError(ValueError):
    """A result file that cannot be read as a bench result (names the file)."""


# ---------------------------------------------------------------------------------------------
# Run identity


@dataclass(frozen=True)
class RunIdentity:
    """Everything that makes two results the same experiment. Two results are compared (ranked
    in one table, paired by the gate, or one skipped for the other) only when these are equal."""

    name: str  # the recipe's name (or an external system's)
    kind: str  # "recipe" | "external"
    # the resolved recipe after caps and overrides, seed excluded (external systems: outputs)
    recipe_hash: str | None
    fingerprint: str  # the dataset split
    seed: int | None
    epochs: int | None
    max_batches: int | None  # --max-batches: a smoke run, never ranked against full runs
    world_size: int  # devices training one run (DDP)
    global_batch: int | None  # batch x world size
    precision: str | None  # what the recipe's precision resolved to ("32-true", "16-mixed"...)
    init_sha256: str | None  # content of a local initial checkpoint
    augmentation_sha256: str | None  # content of the augmentation folders
    bench_version: str
    # digest of the numbers-relevant environment (bench.environment); None in records made
    # before bench 0.3.0, which did not record it, and in external systems' records
    environment: str | None = None

    # fields the gate insists on when pairing a candidate with a baseline of the same name+seed
    PAIRED = ("fingerprint", "epochs", "max_batches", "world_size", "global_batch")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["environment"] is None:  # older identities keep the digest their file names use
            del data["environment"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunIdentity:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def digest(self) -> str:
        """First 12 hex digits of the sha256 of every field."""
        blob = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    @property
    def family(self) -> str:
        """The digest of every field but the seed: runs of one family differ only in seed."""
        data = {**self.as_dict(), "seed": None}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def smoke(self) -> bool:
        return self.max_batches is not None

    def differences(self, other: RunIdentity, only: tuple[str, ...] | None = None) -> list[str]:
        """``["epochs: 12 != 1", ...]`` for every field (of ``only``) that differs."""
        mine, theirs = asdict(self), asdict(other)
        return [f"{k}: {mine[k]} != {theirs[k]}" for k in only or mine if mine[k] != theirs[k]]


def record_stem(identity: RunIdentity | None, name: str, fingerprint: str) -> str:
    """The one file-naming rule: ``{name}-s{seed}-e{epochs}[-b{N}]-{digest}`` for a run with an
    identity; ``{name}-invalid-{fingerprint}`` for a recipe that could not even be resolved."""
    if identity is None:
        return f"{name}-invalid-{fingerprint}"
    cap = f"-b{identity.max_batches}" if identity.max_batches else ""
    seed = "" if identity.seed is None else f"-s{identity.seed}"
    epochs = "" if identity.epochs is None else f"-e{identity.epochs}"
    return f"{identity.name}{seed}{epochs}{cap}-{identity.digest}"


def record_path(folder: Path, stem: str, status: str) -> Path:
    """``{stem}.json`` for a result; ``{stem}.{status}.json`` for a failed or diverged attempt,
    so that an attempt that fails never replaces a good result of the same identity."""
    return folder / (f"{stem}.json" if status == "ok" else f"{stem}.{status}.json")


def hypothesis_path(stem: str, part: str, uri: str) -> Path:
    """Where a run's pipeline hypothesis for ``uri`` lives, relative to the results folder:
    ``runs/{stem}/hypotheses/{part}/{uri}.rttm``; ``part`` is ``dev``, ``test`` or
    ``also_test/{fingerprint}``."""
    return Path("runs") / stem / "hypotheses" / part / f"{uri}.rttm"


def output_paths(outputs: Any) -> list[str]:
    """The relative paths of every file a record's ``outputs`` lists (dev, test, also_test),
    absolute or escaping ones left out."""
    found: list[str] = []
    if isinstance(outputs, dict):
        path = outputs.get("path")
        if isinstance(path, str):
            relative = Path(path)
            if path and not relative.is_absolute() and ".." not in relative.parts:
                found.append(path)
        for value in outputs.values():
            if isinstance(value, dict):
                found += output_paths(value)
    return found


# ---------------------------------------------------------------------------------------------
# The schema


class Record(BaseModel):
    """One result file. ``test`` holds ``chunk``, ``chunk_before_training`` and ``pipeline``
    score dicts (DER, Confusion, FalseAlarm, Miss, seconds, files)."""

    model_config = ConfigDict(extra="forbid")

    schema_: int = SCHEMA_VERSION
    kind: Kind = "recipe"
    status: Status
    identity: dict[str, Any] | None = None
    name: str
    recipe_file: str | None = None
    recipe: dict[str, Any] | None = None
    recipe_hash: str | None = None
    declared_recipe_hash: str | None = None
    overrides: dict[str, Any] = {}
    dataset: dict[str, Any]
    seed: int | None = None
    initial_weights: dict[str, Any] | None = None
    columns: list[str] = list(EPOCH_COLUMNS)
    initial_validation: dict[str, Any] | None = None
    epochs: list[dict[str, Any]] = []
    # bench.budget: steps per epoch, optimizer steps, samples and hours seen, schedule warnings
    budget: dict[str, Any] | None = None
    best_epoch: int | None = None
    best_validation: dict[str, Any] | None = None
    stopped_early: bool = False
    best_checkpoint: str | None = None
    test: dict[str, Any] = {}
    pipeline: dict[str, Any] | None = None
    # extra test splits (``--also-test``), keyed by their fingerprint: dataset and scores
    also_test: dict[str, dict[str, Any]] = {}
    about: str | None = None  # external systems: a text or URL
    outputs: dict[str, Any] | None = None  # hypothesis RTTM files (relative paths) and sha256
    throughput: list[dict[str, Any]] = []  # per epoch: seconds, samples/s, peak GPU memory
    wall_time: dict[str, float] = {}
    started: str | None = None
    finished: str | None = None
    device: dict[str, Any] | None = None
    versions: dict[str, Any] = {}
    # bench.environment.describe(): versions that change numbers, torch build, digest, lock
    environment: dict[str, Any] | None = None
    git: dict[str, Any] = {}
    wandb: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    non_finite: list[str] = []  # JSON paths of NaN/inf values, written as null

    def as_json(self) -> dict[str, Any]:
        data = self.model_dump()  # python mode: NaN/inf stay visible to write_record
        data["schema"] = data.pop("schema_")
        return {"schema": data.pop("schema"), **data}


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a record of an older schema up to :data:`SCHEMA_VERSION`."""
    if data.get("schema") == 1:
        data = dict(data)
        recipe = data.get("recipe") or {}
        device = data.get("device") or {}
        versions = data.get("versions") or {}
        name = recipe.get("name") or Path(str(data.get("recipe_file") or "unknown")).stem
        data["name"] = name
        max_batches = ((data.get("overrides") or {}).get("max_batches") or {}).get("ran")
        world = int(device.get("devices") or 1)
        batch = recipe.get("batch_size")
        if data.get("recipe_hash"):
            data["identity"] = RunIdentity(
                name=name,
                kind="recipe",
                recipe_hash=data["recipe_hash"],
                fingerprint=(data.get("dataset") or {}).get("fingerprint") or "",
                seed=data.get("seed", recipe.get("seed")),
                epochs=recipe.get("epochs"),
                max_batches=max_batches,
                world_size=world,
                global_batch=batch * world if batch else None,
                precision=device.get("precision"),
                init_sha256=None,
                augmentation_sha256=None,
                bench_version=versions.get("bench") or "unknown",
            ).as_dict()
        data["schema"] = 2
    return data


def parse_record(data: Any, where: str = "result") -> Record:
    """Validate (and migrate) a record read from JSON."""
    if not isinstance(data, dict):
        raise ResultError(f"{where}: not a bench result (a JSON object is expected)")
    schema = data.get("schema")
    if schema not in (1, SCHEMA_VERSION):
        raise ResultError(f"{where}: unknown result schema {schema!r}")
    data = dict(_migrate(data))
    data["schema_"] = data.pop("schema")
    try:
        return Record.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        raise ResultError(f"{where}: field '{path}': {first['msg']}") from None


def read_result(path: Path) -> dict[str, Any]:
    """The record in ``path`` as plain JSON data (migrated to the current schema)."""
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultError(f"{path}: not a readable result: {error}") from None
    return parse_record(data, str(path)).as_json()


def identity_of(record: dict[str, Any]) -> RunIdentity | None:
    data = record.get("identity")
    return RunIdentity.from_dict(data) if data else None


# ---------------------------------------------------------------------------------------------
# The primary metric


def has_scores(record: dict[str, Any], metric: str) -> bool:
    test = (record.get("test") or {}).get(metric)
    return isinstance(test, dict) and test.get("DER") is not None


def primary_metric(*records: dict[str, Any]) -> str:
    """The one rule for which test number a result is judged by: ``pipeline`` (full-file DER of
    the tuned pipeline) when every record compared has it, else ``chunk`` (chunk-level DER).
    Mixing the two would compare unlike numbers."""
    if records and all(has_scores(r, "pipeline") for r in records):
        return "pipeline"
    return "chunk"


def primary_scores(record: dict[str, Any], metric: str | None = None) -> dict[str, Any] | None:
    """The test scores of ``metric`` (default: the record's own primary metric)."""
    metric = metric or primary_metric(record)
    return (record.get("test") or {}).get(metric) if has_scores(record, metric) else None


def no_better_than_start(record: dict[str, Any]) -> str | None:
    """Why a run that trained ended no better on dev than where it started (None when it
    improved, or did not train): its best validation DER is not below its initial one."""
    first = (record.get("initial_validation") or {}).get(DER_KEY)
    best = (record.get("best_validation") or {}).get(DER_KEY)
    if not record.get("epochs") or not isinstance(first, int | float):
        return None
    if isinstance(best, int | float) and best < first:
        return None
    shown = "none" if best is None else f"{best:.4f}"
    return f"best dev DER {shown} is no better than the initial {first:.4f}: training did not help"


def progress_notes(record: dict[str, Any]) -> list[str]:
    """What the run summary and the leaderboard say about a run that ended worse than its start
    (the leaderboard adds the comparison with its split's baseline row)."""
    note = no_better_than_start(record)
    return [note] if note else []


# ---------------------------------------------------------------------------------------------
# Building records


def now() -> str:
    return datetime.now(UTC).isoformat()


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version(), "bench": bench.__version__}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if not name.startswith("nvidia-"):  # CUDA wheels: named only where installed
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


def provenance() -> dict[str, Any]:
    """What every record says about where it was made."""
    return {
        "finished": now(),
        "versions": versions(),
        "environment": environment.describe(),
        "git": git_commit(),
    }


def ok_record(**fields_: Any) -> Record:
    """A successful run's record."""
    return Record(status="ok", **{**provenance(), **fields_})


def failed_record(error: BaseException, traceback_text: str, diverged: bool, **fields_: Any):
    """A failed (or diverged) attempt's record, with the reason and traceback."""
    return Record(
        status="diverged" if diverged else "failed",
        error={"type": type(error).__name__, "message": str(error), "traceback": traceback_text},
        **{**provenance(), **fields_},
    )


def external_record(
    name: str,
    dataset: dict[str, Any],
    test: dict[str, Any],
    outputs: dict[str, Any],
    content: dict[str, Any],
    **more: Any,
) -> Record:
    """A record of a system bench did not train: its outputs scored on the split's test set.
    ``content`` (what was scored: each file's sha256, the files scored as empty) is its
    identity's hash, so the same outputs under another path are the same experiment."""
    blob = json.dumps(content, sort_keys=True).encode()
    identity = RunIdentity(
        name=name,
        kind="external",
        recipe_hash=hashlib.sha256(blob).hexdigest()[:16],
        fingerprint=dataset["fingerprint"],
        seed=None,
        epochs=None,
        max_batches=None,
        world_size=1,
        global_batch=None,
        precision=None,
        init_sha256=None,
        augmentation_sha256=None,
        bench_version=bench.__version__,
    )
    return Record(
        kind="external",
        status="ok",
        name=name,
        identity=identity.as_dict(),
        dataset=dataset,
        test=test,
        outputs=outputs,
        **{**provenance(), **more},
    )


# ---------------------------------------------------------------------------------------------
# Writing


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def finite_json(data: Any, path: str = "") -> tuple[Any, list[str]]:
    """``data`` with every NaN/inf replaced by None, and the JSON paths where that happened."""
    if isinstance(data, float) and not math.isfinite(data):
        return None, [path or "."]
    if isinstance(data, dict):
        out, where = {}, []
        for key, value in data.items():
            out[key], found = finite_json(value, f"{path}.{key}" if path else str(key))
            where += found
        return out, where
    if isinstance(data, list | tuple):
        items = [finite_json(v, f"{path}[{i}]") for i, v in enumerate(data)]
        return [v for v, _ in items], [w for _, found in items for w in found]
    return data, []


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as strict JSON to ``path`` atomically (NaN/inf become null)."""
    clean, _ = finite_json(data)
    return atomic_write_text(path, json.dumps(clean, indent=2, allow_nan=False) + "\n")


def write_record(folder: Path, record: Record) -> Path:
    """Write ``record`` under its one file name; non-finite numbers become null, listed in
    ``non_finite``. A good result replaces earlier failed attempts of the same identity."""
    data = record.as_json()
    clean, where = finite_json(data)
    clean["non_finite"] = sorted(set(data.get("non_finite") or []) | set(where))
    identity = identity_of(clean)
    stem = record_stem(identity, record.name, record.dataset.get("fingerprint", "unknown"))
    path = write_json(record_path(folder, stem, record.status), clean)
    if record.status == "ok":
        for status in ("failed", "diverged"):
            record_path(folder, stem, status).unlink(missing_ok=True)
    return path
