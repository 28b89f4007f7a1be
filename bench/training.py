"""Training with pyannote.audio and Lightning: the model, its optimizer and scheduler, the
callbacks that record the seed's per-epoch columns and keep the best checkpoint."""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from pyannote.audio import Model

from bench.recipe import Recipe
from bench.task import DER, BenchDiarization
from bench.weights import Source, load_initial

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "radam": torch.optim.RAdam,
    "nadam": torch.optim.NAdam,
    "sgd": torch.optim.SGD,
}

# the seed's per-epoch columns, in its order
EPOCH_COLUMNS = (
    "loss/val/segmentation",
    "loss/val/vad",
    "loss/val",
    DER,
    f"{DER}/Confusion",
    f"{DER}/FalseAlarm",
    f"{DER}/Miss",
    f"{DER}/Threshold",
    "loss/train/segmentation",
    "loss/train/vad",
    "loss/train",
)


def make_optimizer(recipe: Recipe, parameters) -> torch.optim.Optimizer:
    spec = recipe.optimizer
    kwargs: dict[str, Any] = {"lr": spec.lr, "weight_decay": spec.weight_decay}
    if spec.name == "sgd":
        kwargs["momentum"] = spec.momentum
    else:
        kwargs["betas"] = spec.betas
    return OPTIMIZERS[spec.name](parameters, **kwargs)


def make_scheduler(recipe: Recipe, optimizer: torch.optim.Optimizer) -> dict | None:
    spec = recipe.scheduler
    if spec is None:
        return None
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=spec.t_max or recipe.epochs, eta_min=spec.eta_min
    )
    return {"scheduler": scheduler, "interval": "epoch", "frequency": 1}


def configure_optimizers_for(recipe: Recipe) -> Callable:
    """A ``configure_optimizers`` method honouring the recipe's optimizer and scheduler."""

    def configure_optimizers(model: Model):
        optimizer = make_optimizer(recipe, model.parameters())
        scheduler = make_scheduler(recipe, optimizer)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    return configure_optimizers


@dataclass
class Initialisation:
    source: Source
    head_reinitialised: bool
    reason: str
    task_dependent: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.source.id,
            "origin": self.source.origin,
            "path": self.source.path,
            "sha256": self.source.sha256,
            "head_reinitialised": self.head_reinitialised,
            "reason": self.reason,
        }


def _signature(spec) -> tuple:
    return (spec.problem, len(spec.classes), spec.powerset_max_classes)


def prepare_model(recipe: Recipe, task: BenchDiarization) -> tuple[Model, Initialisation]:
    """Instantiate the initial model and attach the task.

    When pretrained weights come with a head made for another problem (segmentation-3.0 is a
    powerset model with 7 classes; the seed fine-tuned it as a 3-speaker multilabel model), the
    encoder is kept and the classifier is re-initialised explicitly, even if shapes happen to match.
    """
    model, source = load_initial(recipe.model)
    before = None if source.origin == "scratch" else _signature(model.specifications)
    model.configure_optimizers = types.MethodType(configure_optimizers_for(recipe), model)
    task.prepare_data()
    model.task = task
    model.setup()
    after = _signature(task.specifications)
    if before is None:
        init = Initialisation(source, False, "scratch: every weight is random")
    elif before != after:
        for module in (model.classifier,):
            module.reset_parameters()
        init = Initialisation(
            source,
            True,
            f"checkpoint head is {_describe(before)}, recipe needs {_describe(after)}: "
            "encoder kept, classifier re-initialised",
        )
    else:
        init = Initialisation(source, False, f"checkpoint head matches ({_describe(after)})")
    return model, init


def _describe(signature: tuple) -> str:
    problem, classes, per_frame = signature
    if per_frame:
        return f"powerset over {classes} speakers (max {per_frame} per frame)"
    return f"{problem.name.lower().replace('_', '-')} with {classes} outputs"


class EpochRecorder(Callback):
    """Collects one row of the seed's columns per epoch (plus the learning rate)."""

    def __init__(self, on_epoch: Callable[[dict[str, Any]], None] | None = None):
        self.rows: list[dict[str, Any]] = []
        self.on_epoch = on_epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._lr = trainer.optimizers[0].param_groups[0]["lr"]

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        metrics = trainer.callback_metrics
        row: dict[str, Any] = {"epoch": trainer.current_epoch, "lr": self._lr}
        for column in EPOCH_COLUMNS:
            value = metrics.get(column)
            row[column] = None if value is None else float(value)
        self.rows.append(row)
        if self.on_epoch is not None:
            self.on_epoch(row)


def validation_row(metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        c: float(metrics[c]) if c in metrics else None for c in EPOCH_COLUMNS if "train" not in c
    }


@dataclass
class Fitted:
    model: Model
    epochs: list[dict[str, Any]]
    initial: dict[str, Any]
    best_epoch: int | None
    best_checkpoint: Path | None
    stopped_early: bool


def fit(
    recipe: Recipe,
    model: Model,
    run_dir: Path,
    accelerator: str,
    loggers: list,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    on_initial: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = True,
) -> Fitted:
    """Validate the initial model (``on_initial`` sees that row before any training), train,
    and reload the best checkpoint by validation DER."""
    recorder = EpochRecorder(on_epoch)
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="epoch{epoch:03d}",
        monitor=DER,
        mode="min",
        save_top_k=1,
        save_last=True,
        auto_insert_metric_name=False,
    )
    callbacks: list[Callback] = [recorder, checkpoint]
    if recipe.early_stopping_patience is not None:
        callbacks.append(
            EarlyStopping(monitor=DER, mode="min", patience=recipe.early_stopping_patience)
        )
    if progress:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar(leave=False))
    trainer = lightning.Trainer(
        accelerator=accelerator,
        devices=1,
        max_epochs=recipe.epochs,
        gradient_clip_val=recipe.gradient_clip,
        callbacks=callbacks,
        logger=loggers or False,
        deterministic=accelerator == "cpu",
        precision="32-true",
        inference_mode=False,  # metric states created in validate() are updated again in fit()
        num_sanity_val_steps=0,
        enable_progress_bar=progress,
        enable_model_summary=False,
        default_root_dir=run_dir,
        log_every_n_steps=1,
    )
    initial = validation_row(trainer.validate(model, verbose=False)[0])
    if on_initial is not None:
        on_initial(initial)
    trainer.fit(model)
    best_path = Path(checkpoint.best_model_path) if checkpoint.best_model_path else None
    best_epoch = None
    if recorder.rows:
        finite = [r for r in recorder.rows if r[DER] is not None and math.isfinite(r[DER])]
        if finite:
            best_epoch = min(finite, key=lambda r: (r[DER], r["epoch"]))["epoch"]
    if best_path is not None:
        state = torch.load(best_path, map_location="cpu", weights_only=False)["state_dict"]
        model.load_state_dict(state)
    stopped = trainer.current_epoch < recipe.epochs and any(
        isinstance(c, EarlyStopping) and c.stopped_epoch > 0 for c in callbacks
    )
    return Fitted(model, recorder.rows, initial, best_epoch, best_path, stopped)
