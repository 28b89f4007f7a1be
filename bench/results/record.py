"""The result record: its schema, run identity, file naming, primary metric, loading and writing.

This module owns every decision about what a result file holds and when two results are the same
experiment; the runner, the run summary, the leaderboard and the gate read records through it.
It imports neither torch nor pyannote, so the light half (leaderboard, gate) installs without them.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

import bench
from bench import environment
from bench.environment import Environment
from bench.io import is_number
from bench.recipe.budget import Budget
from bench.results.info import (
    DatasetInfo,
    DeviceInfo,
    ErrorInfo,
    GitInfo,
    IdentityData,
    Outputs,
    Override,
    PipelineSetup,
    Row,
    WandbInfo,
)
from bench.results.scores import AlsoTest, ScoreReport, TestScores

SCHEMA_VERSION = 2
Status = Literal["ok", "failed", "diverged"]
# "pipeline": a pretrained pipeline evaluated as shipped (bench.recipe.PretrainedPipeline);
# "nemo": a NeMo diarizer trained and applied by NeMo (bench.recipe.NemoRecipe, bench.nemo)
Kind = Literal["recipe", "external", "pipeline", "nemo"]
# ``versions`` (kept for readers of older records): the numbers-relevant packages and wandb;
# ``environment`` (bench.environment) is what the identity uses
PACKAGES = (*environment.NUMBERS_PACKAGES, "wandb")
DER_KEY = "DiarizationErrorRate"
# the reference write-up's per-epoch columns, in its order (bench.training.fit records them)
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
    kind: str  # "recipe" | "external" | "pipeline" | "nemo"
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
    # what a VBx pipeline's PLDA is: a local folder's files' sha256, or the estimator that makes
    # it from the split's train embeddings; None without VBx (and in older identities)
    plda: str | None = None
    # a NeMo run's NeMo environment (bench.nemo.environment digest); ``environment`` stays
    # bench's own, so NeMo rows are ranked in the table of the bench environment that scored them
    nemo_environment: str | None = None

    # fields the gate insists on when pairing a candidate with a baseline of the same name+seed
    PAIRED = ("fingerprint", "epochs", "max_batches", "world_size", "global_batch")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("environment", "plda", "nemo_environment"):  # added later: identities
            if data[name] is None:  # without them keep the digest their file names use
                del data[name]
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
        stem = f"{name}-invalid-{fingerprint}"
    else:
        cap = f"-b{identity.max_batches}" if identity.max_batches else ""
        seed = "" if identity.seed is None else f"-s{identity.seed}"
        epochs = "" if identity.epochs is None else f"-e{identity.epochs}"
        stem = f"{identity.name}{seed}{epochs}{cap}-{identity.digest}"
    if not is_file_name(stem):  # names come from records, which are data: never a path
        raise ValueError(f"{stem!r} is not a file name (a path separator, or a leading dot)")
    return stem


def is_file_name(text: str) -> bool:
    """``text`` names a file in its folder: no path separator, NUL or leading dot."""
    return bool(text) and not text.startswith(".") and not set(text) & {"/", "\\", "\0"}


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


def evaluated_epoch(epochs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The one rule for the epoch whose checkpoint is evaluated (training keeps its checkpoint,
    the divergence check judges it): lowest finite validation DER, earliest on ties."""
    finite = [row for row in epochs if is_number(row.get(DER_KEY))]
    if not finite:
        return None
    return min(finite, key=lambda row: (row[DER_KEY], row.get("epoch", 0)))


class Record(BaseModel):
    """One result file. ``test`` holds the typed score reports (:mod:`bench.results.scores`):
    ``chunk``, ``chunk_before_training`` and ``pipeline``."""

    model_config = ConfigDict(extra="forbid")

    schema_: int = SCHEMA_VERSION
    kind: Kind = "recipe"
    status: Status
    identity: IdentityData | None = None
    name: str
    recipe_file: str | None = None
    recipe: dict[str, Any] | None = None
    recipe_hash: str | None = None
    declared_recipe_hash: str | None = None
    overrides: dict[str, Override] = {}
    dataset: DatasetInfo
    seed: int | None = None
    initial_weights: dict[str, Any] | None = None
    columns: list[str] = list(EPOCH_COLUMNS)
    initial_validation: Row | None = None
    epochs: list[Row] = []
    # bench.recipe.budget: steps per epoch, optimizer steps, samples and hours seen, warnings
    budget: Budget | None = None
    best_epoch: int | None = None
    best_validation: Row | None = None
    stopped_early: bool = False
    best_checkpoint: str | None = None
    test: TestScores = TestScores()
    pipeline: PipelineSetup | None = None
    # extra test splits (``--also-test``), keyed by their fingerprint: dataset and scores
    also_test: dict[str, AlsoTest] = {}
    about: str | None = None  # external systems: a text or URL
    outputs: Outputs | None = None  # hypothesis RTTM files (relative paths) and sha256
    throughput: list[Row] = []  # per epoch: seconds, samples/s, peak GPU memory
    wall_time: dict[str, float] = {}
    started: str | None = None
    finished: str | None = None
    device: DeviceInfo | None = None
    versions: dict[str, str | None] = {}
    # bench.environment.describe(): versions that change numbers, torch build, digest, lock
    environment: Environment | None = None
    git: GitInfo = {}
    wandb: WandbInfo | None = None
    error: ErrorInfo | None = None
    non_finite: list[str] = []  # JSON paths of NaN/inf values, written as null

    def as_json(self) -> dict[str, Any]:
        """The record as it is written (python mode: NaN/inf stay visible to write_record);
        score blocks keep their own keys, unset ones left out."""
        data = self.model_dump(exclude={"test", "also_test"})
        data["test"] = self.test.as_json()
        data["also_test"] = {k: v.as_json() for k, v in self.also_test.items()}
        data["schema"] = data.pop("schema_")
        return {"schema": data.pop("schema"), **data}

    @model_validator(mode="after")
    def _names_files(self) -> Record:
        if not is_file_name(self.name):  # names are data, never paths
            raise ValueError(f"name {self.name!r} is not a file name")
        self.stem  # noqa: B018 (raises when the identity's names would make a path)
        return self

    @property
    def run_identity(self) -> RunIdentity | None:
        """The run identity (None for a recipe that could not be resolved)."""
        return RunIdentity.from_dict(self.identity) if self.identity else None

    @property
    def stem(self) -> str:
        """The file stem every file of this run is named by (:func:`record_stem`; always a
        plain file name: a record whose names would make a path is refused when read)."""
        return record_stem(self.run_identity, self.name, self.dataset.get("fingerprint", "unknown"))

    def scores(self, metric: str | None = None) -> ScoreReport | None:
        """The test report of ``metric`` (default: the record's own primary metric), when its
        DER is defined."""
        return self.test.metric(metric or primary_metric(self))


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


# ---------------------------------------------------------------------------------------------
# The primary metric


def has_scores(record: Record, metric: str) -> bool:
    """The record's ``metric`` report has a defined DER (it can be ranked)."""
    return record.test.metric(metric) is not None


def primary_metric(*records: Record) -> str:
    """The one rule for which test number a result is judged by: ``pipeline`` (full-file DER of
    the tuned pipeline) when every record compared has it, else ``chunk`` (chunk-level DER).
    Mixing the two would compare unlike numbers."""
    if records and all(has_scores(r, "pipeline") for r in records):
        return "pipeline"
    return "chunk"


def primary_scores(record: Record, metric: str | None = None) -> ScoreReport | None:
    """The test scores of ``metric`` (default: the record's own primary metric)."""
    return record.scores(metric)


def no_better_than_start(record: Record) -> str | None:
    """Why a run that trained ended no better on dev than where it started (None when it
    improved, or did not train): its best validation DER is not below its initial one."""
    first = (record.initial_validation or {}).get(DER_KEY)
    best = (record.best_validation or {}).get(DER_KEY)
    if not record.epochs or not is_number(first):
        return None
    if is_number(best) and best < first:
        return None
    shown = "none" if best is None else f"{best:.4f}"
    return f"best dev DER {shown} is no better than the initial {first:.4f}: training did not help"


def progress_notes(record: Record) -> list[str]:
    """What the run summary and the leaderboard say about a run that ended worse than its start
    (the leaderboard adds the comparison with its split's baseline row)."""
    note = no_better_than_start(record)
    return [note] if note else []


# ---------------------------------------------------------------------------------------------
# Building records


def now() -> str:
    """The current time as an ISO string in UTC (what records hold)."""
    return datetime.now(UTC).isoformat()


def versions() -> dict[str, str | None]:
    """Versions of Python, bench and the packages that change numbers (and wandb)."""
    found: dict[str, str | None] = {"python": platform.python_version(), "bench": bench.__version__}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if not name.startswith("nvidia-"):  # CUDA wheels: named only where installed
                found[name] = None
    return found


def git_commit(directory: Path | None = None) -> GitInfo:
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
    dataset: DatasetInfo,
    test: dict[str, Any],
    outputs: Outputs,
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
