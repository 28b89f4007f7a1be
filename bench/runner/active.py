"""One run's inputs and what its stages produce (:class:`ActiveRun`), shared by the stages of a
recipe (:mod:`bench.runner.stages`) and of a pretrained pipeline (:mod:`bench.runner.pipelines`)."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.data import Split
from bench.io import file_name
from bench.recipe import AnyRecipe, PretrainedPipeline
from bench.recipe.budget import Budget
from bench.results import (
    AlsoTest,
    DatasetInfo,
    Outputs,
    Override,
    PipelineSetup,
    ResultStore,
    Row,
    RunIdentity,
    TestScores,
    now,
)
from bench.runner.console import Reporter
from bench.runner.options import RunOptions
from bench.runner.state import RunState

if TYPE_CHECKING:  # the stages import torch on use, so that a finished run skips without it
    from lightning.pytorch.loggers import WandbLogger
    from pyannote.audio import Model

    from bench.data.audio import AudioCache
    from bench.runner.nemo import NemoPlan
    from bench.training.fit import Fitted, Initialisation


def _ddp_child() -> bool:
    """True in the extra processes Lightning's DDP launcher starts (they re-run this command)."""
    return int(os.environ.get("LOCAL_RANK", "0")) > 0 or int(os.environ.get("NODE_RANK", "0")) > 0


@dataclass
class ActiveRun:
    """One run's inputs and what its stages produce."""

    path: Path
    options: RunOptions
    split: Split
    demo: bool
    report: Reporter
    results_dir: Path
    started: str = field(default_factory=now)
    stages: dict[str, float] = field(default_factory=dict)
    declared: AnyRecipe | None = None
    recipe: AnyRecipe | None = None  # after caps and overrides
    overrides: dict[str, Override] = field(default_factory=dict)
    accelerator: str = "cpu"  # "gpu" or "cpu" (bench.runner.device)
    precision: str | None = None
    identity: RunIdentity | None = None
    stem: str = ""
    run_dir: Path | None = None  # where this attempt writes (a staging folder under --force)
    audio: AudioCache | None = None
    model: Model | None = None
    init: Initialisation | None = None
    resume: RunState | None = None
    logger: WandbLogger | None = None
    initial_test: dict[str, Any] = field(default_factory=dict)
    initial_validation: Row | None = None
    epochs: list[Row] = field(default_factory=list)
    fitted: Fitted | None = None
    scores: TestScores = field(default_factory=TestScores)
    pipeline: PipelineSetup | None = None
    also_test: dict[str, AlsoTest] = field(default_factory=dict)
    outputs: Outputs | None = None
    budget: Budget | None = None  # steps, samples and hours the run sees; schedule warnings
    ddp_child_done: bool = False
    nemo: NemoPlan | None = None  # a NeMo run's environment and initial weights

    @property
    def pretrained(self) -> bool:
        """A pretrained pipeline evaluated as shipped (or re-tuned), not a recipe to train."""
        return isinstance(self.recipe, PretrainedPipeline)

    @property
    def store(self) -> ResultStore:
        return ResultStore(self.results_dir)

    @property
    def final_dir(self) -> Path:
        return self.store.run_dir(self.stem)

    @property
    def dataset(self) -> DatasetInfo:
        return {**self.split.describe(), "demo": self.demo}

    @contextmanager
    def timed(self, stage: str):
        clock = time.perf_counter()
        yield
        self.stages[stage] = time.perf_counter() - clock

    def record_fields(self) -> dict[str, Any]:
        """The fields every record of this run carries, whatever its status."""
        recipe = self.recipe
        return {
            # a recipe that did not load is named by its file (as a file name: see Recipe.name)
            "name": recipe.name if recipe else file_name(Path(self.path).stem),
            # what ran it ("recipe", "pipeline", "nemo"), failures included
            "kind": getattr(self.declared, "kind", "recipe"),
            "identity": self.identity.as_dict() if self.identity else None,
            "recipe_file": str(self.path),
            "recipe": recipe.resolved() if recipe else None,
            "recipe_hash": recipe.content_hash() if recipe else None,
            "declared_recipe_hash": self.declared.content_hash() if self.declared else None,
            "overrides": self.overrides,
            "dataset": self.dataset,
            "seed": recipe.seed if recipe else None,
            "initial_weights": self.init.as_dict() if self.init else None,
            "initial_validation": self.fitted.initial if self.fitted else self.initial_validation,
            "epochs": self.epochs,
            "budget": self.budget,
            "started": self.started,
            "wall_time": {k: round(v, 3) for k, v in self.stages.items()},
        }
