"""The small typed blocks of a record: epoch rows, the identity as stored, the split, git and
a failure (torch-free; typed dicts, so a record's JSON keeps exactly its keys)."""

from __future__ import annotations

from pydantic import ConfigDict
from typing_extensions import TypedDict

# a per-epoch row (bench.training.fit): "epoch", "lr" and the EPOCH_COLUMNS, numbers or null;
# also a throughput row (seconds, samples/s, peak GPU memory)
Row = dict[str, int | float | None]
# a run identity as a record holds it (RunIdentity.as_dict): names, hashes and counts
IdentityData = dict[str, str | int | None]


class SubsetInfo(TypedDict):
    """One subset of the split a record was scored on."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    files: int
    hours: float
    speakers: int


class DatasetInfo(TypedDict, total=False):
    """The split a record was scored on (:meth:`bench.data.Split.describe`; ``demo`` for runs)."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    name: str
    fingerprint: str
    source: str
    subsets: dict[str, SubsetInfo]
    demo: bool


class GitInfo(TypedDict, total=False):
    """The commit of bench's checkout a record was made from, and whether it had changes."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    commit: str | None
    dirty: bool | None


class ErrorInfo(TypedDict, total=False):
    """Why a run failed: the exception's type and message, and its traceback."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    type: str
    message: str
    traceback: str


class Override(TypedDict):
    """A setting a run changed from its recipe: what the recipe declared, what ran."""

    declared: object
    ran: object


class DeviceInfo(TypedDict, total=False):
    """Where a run trained: the accelerator, data loading, precision and the global batch."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]
    accelerator: str
    name: str
    threads: int
    cores: int | None
    num_workers: int
    pin_memory: bool
    precision: str | None
    devices: int
    strategy: str
    world_size: int
    global_batch: int | None


class WandbInfo(TypedDict, total=False):
    """Where a run's W&B logs went."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]
    mode: str
    run_id: str
    project: str | None
    dir: str
    url: str | None


class HypothesisFile(TypedDict):
    """A hypothesis RTTM kept beside a result: its path (relative to the results folder)."""

    path: str
    sha256: str


class Outputs(TypedDict, total=False):
    """The hypothesis files a result lists, by part: ``dev``, ``test`` and each ``also_test``
    split (by fingerprint); an external system's also says what was scored as empty."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]
    format: str
    source: str
    dev: dict[str, HypothesisFile]
    test: dict[str, HypothesisFile]
    also_test: dict[str, dict[str, HypothesisFile]]
    missing_as_empty: list[str]
    ignored_uris: list[str]


class TuningStage(TypedDict, total=False):
    """One stage of the pipeline's dev tuning: what it tuned, from where, to what."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]
    name: str
    clustering: str
    tuned: list[str]
    frozen: dict[str, object]
    trials: int
    start: dict[str, float]
    start_dev_der: float | None
    best: dict[str, dict[str, object]]
    dev_der: float | None
    wall_time_s: float
    skipped: str


class Tuning(TypedDict, total=False):
    """The pipeline's dev tuning: parameters before and after, dev DER before and after, the
    stages (:mod:`bench.evaluation.tuning`)."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]
    trials: dict[str, int]
    trials_requested: list[int]
    seed: int
    sampler: str
    initial_params: dict[str, dict[str, object]]
    params: dict[str, dict[str, object]]
    dev_der_before: float | None
    dev_before_cost: str | None  # what scoring dev at the initial parameters cost
    dev_der_after: float | None
    dev_before: dict[str, object] | None  # dev score reports (bench.results.ScoreReport form)
    dev_after: dict[str, object]
    dev_files: int
    stages: list[TuningStage]
    wall_time_s: float


class PipelineSetup(TypedDict, total=False):
    """A record's ``pipeline``: the embedding, segmentation and clustering the full-file scores
    came from, the tuning, real-time factors and where it ran."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]
    embedding: dict[str, object]
    segmentation: dict[str, object]
    clustering: dict[str, object]
    tuning: Tuning
    plda: dict[str, object]  # VBx: where the PLDA came from (bench.evaluation.vbx.PldaInfo)
    # the test pass at the initial parameters beside the tuned one (test.pipeline_initial): how
    # many test files reused the tuned pass's embeddings, and what it cost
    initial_test: dict[str, object]
    rtf: dict[str, object]
    device: str
    threads: int
    wall_time_s: dict[str, float]
