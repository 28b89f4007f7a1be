"""Training with pyannote.audio and Lightning: the model, its optimizer and scheduler, the
callbacks that record the reference write-up's per-epoch columns and keep the best checkpoint."""

from __future__ import annotations

import math
import random
import signal
import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import lightning
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from pyannote.audio import Model

from bench.models import heads
from bench.models.weights import Source, load_initial
from bench.recipe import Plateau, Pretrained, Recipe, Step
from bench.results import EPOCH_COLUMNS, Row, evaluated_epoch
from bench.results.identity import precision
from bench.training.task import DER, BenchDiarization

T = TypeVar("T")

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "radam": torch.optim.RAdam,
    "nadam": torch.optim.NAdam,
    "sgd": torch.optim.SGD,
}


def make_optimizer(recipe: Recipe, parameters) -> torch.optim.Optimizer:
    """The recipe's torch optimizer over ``parameters``."""
    spec = recipe.optimizer
    kwargs: dict[str, Any] = {"lr": spec.lr, "weight_decay": spec.weight_decay}
    if spec.name == "sgd":
        kwargs["momentum"] = spec.momentum
    else:
        kwargs["betas"] = spec.betas
    return OPTIMIZERS[spec.name](parameters, **kwargs)


def cosine_factor(step: int, total: int, warmup: int, floor: float) -> float:
    """Learning-rate factor of linear warm-up then cosine annealing down to ``floor``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(
    recipe: Recipe, optimizer: torch.optim.Optimizer, total_steps: int | None = None
) -> dict | None:
    """Lightning's lr_scheduler config for the recipe's scheduler (None when it has none).

    ``total_steps`` (optimizer steps in the whole run) sets a step-wise cosine's default t_max.
    """
    spec = recipe.scheduler
    lr_sched = torch.optim.lr_scheduler
    if spec is None:
        return None
    if isinstance(spec, Plateau):
        scheduler = lr_sched.ReduceLROnPlateau(
            optimizer, mode="min", factor=spec.factor, patience=spec.patience, min_lr=spec.min_lr
        )
        return {"scheduler": scheduler, "interval": "epoch", "monitor": DER, "strict": True}
    if isinstance(spec, Step):
        scheduler = lr_sched.StepLR(optimizer, step_size=spec.step_size, gamma=spec.gamma)
    elif spec.t_max is None and spec.interval == "step" and total_steps is None:
        raise ValueError("a step-wise cosine schedule needs the run's number of steps")
    else:
        t_max = spec.t_max or (recipe.epochs if spec.interval == "epoch" else total_steps)
        if spec.warmup == 0:
            scheduler = lr_sched.CosineAnnealingLR(optimizer, T_max=t_max, eta_min=spec.eta_min)
        else:
            floor = spec.eta_min / recipe.optimizer.lr
            scheduler = lr_sched.LambdaLR(
                optimizer, lambda t: cosine_factor(t, t_max, spec.warmup, floor)
            )
    return {"scheduler": scheduler, "interval": spec.interval, "frequency": 1}


def configure_optimizers_for(recipe: Recipe) -> Callable:
    """A ``configure_optimizers`` method honouring the recipe's optimizer and scheduler."""

    def configure_optimizers(model: Model):
        optimizer = make_optimizer(recipe, model.parameters())
        total = model.trainer.estimated_stepping_batches if model._trainer is not None else None
        scheduler = make_scheduler(recipe, optimizer, total)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    return configure_optimizers


@dataclass
class Initialisation:
    """Where a run's initial weights came from and what happened to the head."""

    source: Source
    head_reinitialised: bool
    reason: str
    task_dependent: list[str] = field(default_factory=list)
    # what became of the checkpoint's classifier: "kept", "reinitialised", "converted" (a
    # powerset head as multilabel, bench.models.heads), "new" (scratch or a headless file)
    head: str = "kept"

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.source.as_dict(),
            "head": self.head,
            "head_reinitialised": self.head_reinitialised,
            "reason": self.reason,
        }


def _signature(spec) -> tuple:
    return (spec.problem, len(spec.classes), spec.powerset_max_classes)


def prepare_model(recipe: Recipe, task: BenchDiarization) -> tuple[Model, Initialisation]:
    """Instantiate the initial model and attach the task.

    When pretrained weights come with a head made for another problem (segmentation-3.0 is a
    powerset model with 7 classes; the reference write-up fine-tuned it as a 3-speaker multilabel
    model), the encoder is kept and the classifier is re-initialised explicitly, even if shapes
    happen to match, unless the recipe asks to convert it (``Pretrained(head="convert")``,
    :mod:`bench.models.heads`) or to re-initialise a head that fits.
    """
    model, source = load_initial(recipe.model)
    choice = recipe.model.head if isinstance(recipe.model, Pretrained) else None
    headless = Path(source.path or "").suffix == ".safetensors"
    before = None if source.origin == "scratch" or headless else _signature(model.specifications)
    pretrained_classifier = None
    if choice == "convert":
        _check_convertible(before, task)
        model, pretrained_classifier = heads.convert(model)
    model.configure_optimizers = types.MethodType(configure_optimizers_for(recipe), model)
    task.prepare_data()
    model.task = task
    model.setup()
    after = _signature(task.specifications)
    if pretrained_classifier is not None:
        heads.load_head(model, pretrained_classifier)
        init = Initialisation(
            source,
            False,
            f"checkpoint head is {_describe(before)}: converted to {_describe(after)} "
            "(the pretrained speaker probabilities, exactly)",
            head="converted",
        )
    elif headless:
        init = Initialisation(
            source,
            True,
            "safetensors carry no task specifications: encoder kept, classifier new",
            head="new",
        )
    elif before is None:
        init = Initialisation(source, False, "scratch: every weight is random", head="new")
    elif before != after or choice == "reinitialise":
        if recipe.epochs == 0:
            raise ValueError(
                f"epochs=0 evaluates the initial weights as they are, but their head is "
                f"{_describe(before)} and the recipe needs {_describe(after)}"
                if before != after
                else "field 'model.head': 'reinitialise' with epochs=0 would evaluate a random head"
            )
        for module in (model.classifier,):
            module.reset_parameters()
        why = (
            "the recipe asks for a new one"
            if before == after
            else f"recipe needs {_describe(after)}"
        )
        init = Initialisation(
            source,
            True,
            f"checkpoint head is {_describe(before)}, {why}: "
            "encoder kept, classifier re-initialised",
            head="reinitialised",
        )
    else:
        init = Initialisation(source, False, f"checkpoint head matches ({_describe(after)})")
    return model, init


def _check_convertible(before: tuple | None, task: BenchDiarization) -> None:
    """``head="convert"`` needs a powerset checkpoint and a multilabel task over as many
    speakers (the conversion is exact only then); anything else is refused, naming the field."""
    if before is None:
        raise ValueError(
            "field 'model.head': 'convert' needs a checkpoint with a head (this one has none)"
        )
    _, speakers, per_frame = before
    if per_frame is None or task.mode != "multilabel" or speakers != task.max_speakers_per_chunk:
        raise ValueError(
            "field 'model.head': 'convert' turns a powerset head into a multilabel one over the "
            f"same speakers, but the checkpoint head is {_describe(before)} and the recipe trains "
            f"{task.mode} over {task.max_speakers_per_chunk} speakers"
        )


def _describe(signature: tuple) -> str:
    problem, classes, per_frame = signature
    if per_frame:
        return f"powerset over {classes} speakers (max {per_frame} per frame)"
    return f"{problem.name.lower().replace('_', '-')} with {classes} outputs"


class EpochRecorder(Callback):
    """Collects one row of the reference write-up's columns per epoch (plus the learning rate).

    Its checkpointed state holds the rows so far and the random generators' states at the end of
    the epoch, so that a run resumed from ``last.ckpt`` goes on exactly as an uninterrupted one.
    """

    def __init__(self, on_epoch: Callable[[Row], None] | None = None):
        self.rows: list[Row] = []
        self.on_epoch = on_epoch

    def state_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "torch": torch.get_rng_state(),
            "numpy": [
                value.tolist() if hasattr(value, "tolist") else value
                for value in np.random.get_state()
            ],
            "python": random.getstate(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = list(state["rows"])
        torch.set_rng_state(state["torch"])
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._lr = trainer.optimizers[0].param_groups[0]["lr"]

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        metrics = trainer.callback_metrics
        row: Row = {"epoch": trainer.current_epoch, "lr": self._lr}
        for column in EPOCH_COLUMNS:
            value = metrics.get(column)
            row[column] = None if value is None else float(value)
        self.rows.append(row)
        if self.on_epoch is not None:
            self.on_epoch(row)


class Throughput(Callback):
    """Training speed per epoch (validation excluded): seconds, samples over all processes,
    samples/s, samples/s after the first batch (no worker start-up), peak GPU memory (MiB).

    Kept apart from the epoch rows, which must be identical between runs and resumed runs.
    """

    def __init__(self) -> None:
        self.epochs: list[Row] = []

    def _now(self, trainer) -> float:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize(trainer.strategy.root_device)
        return time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._batches: list[tuple[float, int]] = []
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(trainer.strategy.root_device)
        self._start = self._now(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._batches.append((self._now(trainer), len(batch["X"]) * trainer.world_size))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not self._batches:
            return
        end = self._batches[-1][0]
        samples = sum(n for _, n in self._batches)
        seconds = end - self._start
        steady = end - self._batches[0][0]
        row: Row = {
            "epoch": trainer.current_epoch,
            "seconds": round(seconds, 4),
            "samples": samples,
            "samples_per_second": round(samples / seconds, 2) if seconds > 0 else None,
            "steady_samples_per_second": (
                round((samples - self._batches[0][1]) / steady, 2) if steady > 0 else None
            ),
            "peak_gpu_memory_mib": None,
        }
        if trainer.strategy.root_device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(trainer.strategy.root_device)
            row["peak_gpu_memory_mib"] = round(peak / 2**20, 1)
        self.epochs.append(row)


def validation_row(metrics: dict[str, Any]) -> Row:
    """A validation epoch's logged metrics as a row in the reference columns."""
    return {
        c: float(metrics[c]) if c in metrics else None for c in EPOCH_COLUMNS if "train" not in c
    }


def dataloader_settings(recipe: Recipe, accelerator: str) -> dict[str, Any]:
    """The DataLoaders' settings: the recipe's ``num_workers``, and page-locked (pinned) host
    memory on a GPU, for faster host-to-device copies (no effect on the numbers).

    Workers are not persistent: pyannote.audio seeds each worker's chunk sampling from the
    epoch, which a persistent worker's copy of the model would not see change.
    """
    return {"num_workers": recipe.num_workers, "pin_memory": accelerator == "gpu"}


@dataclass
class Fitted:
    """A finished fit: the model (best checkpoint loaded), its epoch rows and steps."""

    model: Model
    epochs: list[Row]
    initial: Row
    best_epoch: int | None
    best_checkpoint: Path | None
    stopped_early: bool
    rank: int = 0  # the DDP process this is (only rank 0 goes on to evaluate and record)
    world_size: int = 1  # processes (devices) that trained: global batch = batch x world_size
    throughput: list[Row] = field(default_factory=list)  # Throughput's rows
    steps: int = 0  # optimizer steps the run took (trainer.global_step; a resumed run's too)

    @property
    def best(self) -> Row | None:
        """The evaluated epoch's row (None when no epoch ran, or none has a finite DER)."""
        return next((r for r in self.epochs if r["epoch"] == self.best_epoch), None)


def interruptible(trainer: lightning.Trainer, call: Callable[[], T]) -> T:
    """Run a trainer entry point so that Ctrl-C stays a :class:`KeyboardInterrupt`: Lightning
    turns it into ``sys.exit(1)`` after a graceful shutdown and ignores SIGINT from then on,
    which would make an interrupted run look like a failed one and let the next recipe start."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        return call()
    except SystemExit:
        if trainer.interrupted:
            raise KeyboardInterrupt("interrupted (Ctrl-C)") from None
        raise
    finally:
        if handler is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, handler)


def fit(
    recipe: Recipe,
    model: Model,
    run_dir: Path,
    accelerator: str,
    loggers: list,
    on_epoch: Callable[[Row], None] | None = None,
    on_initial: Callable[[Row], None] | None = None,
    progress: bool = True,
    max_batches: int | None = None,
    extra_callbacks: list[Callback] | None = None,
    initial: Row | None = None,
    devices: int = 1,
    strategy: str = "auto",
) -> Fitted:
    """Validate the initial model (``on_initial`` sees that row before any training), train,
    and reload the best checkpoint by validation DER.

    Given the ``initial`` validation row of an interrupted run and its ``last.ckpt`` in
    ``run_dir``, training resumes from that checkpoint instead.
    """
    recorder = EpochRecorder(on_epoch)
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="epoch{epoch:03d}",
        monitor=DER,
        mode="min",
        save_top_k=1,
        save_last=True,
        auto_insert_metric_name=False,
        save_on_train_epoch_end=True,  # after EpochRecorder has the epoch's row
    )
    throughput = Throughput()
    callbacks: list[Callback] = [recorder, checkpoint, throughput, *(extra_callbacks or [])]
    if recipe.early_stopping_patience is not None:
        callbacks.append(
            EarlyStopping(monitor=DER, mode="min", patience=recipe.early_stopping_patience)
        )
    for name, value in dataloader_settings(recipe, accelerator).items():
        setattr(model.task, name, value)
    if progress:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar(leave=False))
    trainer = lightning.Trainer(
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        max_epochs=recipe.epochs,
        gradient_clip_val=recipe.gradient_clip,
        callbacks=callbacks,
        logger=loggers or False,
        deterministic=accelerator == "cpu",
        precision=precision(recipe, accelerator),
        limit_train_batches=max_batches,
        limit_val_batches=max_batches,
        inference_mode=False,  # metric states created in validate() are updated again in fit()
        num_sanity_val_steps=0,
        enable_progress_bar=progress,
        enable_model_summary=False,
        default_root_dir=run_dir,
        log_every_n_steps=1,
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    # resume: weights, optimizer, scheduler, callbacks and RNG (bench wrote this checkpoint)
    resume = recipe.epochs > 0 and initial is not None and last.is_file()
    if not resume:
        initial = validation_row(
            interruptible(trainer, lambda: trainer.validate(model, verbose=False))[0]
        )
        if on_initial is not None and trainer.is_global_zero:
            on_initial(initial)
    if recipe.epochs == 0:  # no fine-tuning: the initial weights are evaluated as they are
        return Fitted(
            model, [], initial, None, None, False, trainer.global_rank, trainer.world_size
        )
    if resume:
        interruptible(trainer, lambda: trainer.fit(model, ckpt_path=last, weights_only=False))
    else:
        interruptible(trainer, lambda: trainer.fit(model))
    best_path = Path(checkpoint.best_model_path) if checkpoint.best_model_path else None
    best = evaluated_epoch(recorder.rows)
    best_epoch = int(best["epoch"]) if best is not None else None
    if best_path is not None:
        state = torch.load(best_path, map_location="cpu", weights_only=False)["state_dict"]
        model.load_state_dict(state)
    stopped = trainer.current_epoch < recipe.epochs and any(
        isinstance(c, EarlyStopping) and c.stopped_epoch > 0 for c in callbacks
    )
    return Fitted(
        model,
        recorder.rows,
        initial,
        best_epoch,
        best_path,
        stopped,
        trainer.global_rank,
        trainer.world_size,
        throughput.epochs,
        trainer.global_step,
    )
