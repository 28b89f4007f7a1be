"""The training budget a run really gets, and the schedules it makes meaningless (torch-free).

pyannote's epoch is the training audio divided by the chunk duration: 300 s of train audio in
10 s chunks is 30 samples, one batch of 64 (at least one batch), so ``epochs=20`` is 20 optimizer
steps, and a 100-step warm-up never ends. Every record holds :func:`budget` and the run prints
its warnings, each naming the recipe line at fault; they do not stop the run (a smoke run is
meant to be short), and they are kept in the record (``budget.warnings``).
"""

from __future__ import annotations

import math
from pathlib import Path

from typing_extensions import TypedDict

from bench.recipe.loading import field_location
from bench.recipe.schema import Cosine, Plateau, Recipe, Scratch, Step


class Budget(TypedDict, total=False):
    """What a run will train on: the record's ``budget`` (``optimizer_steps_run`` is added when
    the run ends: the steps it really took)."""

    train_hours: float
    samples_per_epoch: int
    steps_per_epoch: int
    optimizer_steps: int
    samples_seen: int
    audio_hours_seen: float
    warnings: list[str]
    step_memory_gib: float
    optimizer_steps_run: int


# peak memory of one training step per chunk-second in the batch: PyanNet of segmentation-3.0's
# size (SincNet stride 10), float32 on CPU, measured at 3.7-4.1 MiB from batch 8 x 5 s to 64 x
# 10 s (docs/performance.md); rounded up, and scaled by 10 / stride for a scratch model (SincNet's
# first layers, which dominate, hold one frame per `stride` samples)
STEP_BYTES_PER_CHUNK_SECOND = 4.5 * 2**20


def step_memory(recipe: Recipe) -> int:
    """Bytes one training step of ``recipe`` needs (an estimate: see the constant above)."""
    stride = recipe.model.sincnet_stride if isinstance(recipe.model, Scratch) else 10
    per_chunk_second = STEP_BYTES_PER_CHUNK_SECOND * 10 / stride
    return math.ceil(recipe.batch_size * recipe.duration * per_chunk_second)


# fewer optimizer steps than this in a whole run: any schedule, and fine-tuning itself, means
# little (the reference write-up's smallest run had hundreds)
FEW_STEPS = 50


def budget(
    recipe: Recipe,
    train_seconds: float,
    *,
    max_batches: int | None = None,
    world_size: int = 1,
    recipe_file: Path | None = None,
) -> Budget:
    """Steps per epoch, optimizer steps, samples and hours of audio the run will see, and the
    warnings about schedules that do not fit them."""
    samples = max(recipe.batch_size, math.ceil(train_seconds / recipe.duration))
    steps = samples // recipe.batch_size  # pyannote drops the last partial batch
    if max_batches is not None:
        steps = min(steps, max_batches)
    total = steps * recipe.epochs
    seen = total * recipe.batch_size * world_size
    found: Budget = {
        "train_hours": round(train_seconds / 3600, 4),
        "samples_per_epoch": samples,
        "steps_per_epoch": steps,
        "optimizer_steps": total,
        "samples_seen": seen,
        "audio_hours_seen": round(seen * recipe.duration / 3600, 4),
    }
    found["step_memory_gib"] = round(step_memory(recipe) / 2**30, 3)
    found["warnings"] = warnings(recipe, steps, total, recipe_file)
    return found


def warnings(recipe: Recipe, steps: int, total: int, recipe_file: Path | None) -> list[str]:
    """One line per schedule setting the run's step count makes meaningless."""
    if recipe.epochs == 0:
        return []

    def at(*path: str) -> str:
        return field_location(recipe_file, path) if recipe_file else "recipe"

    found = []
    spec = recipe.scheduler
    unit, length = ("step", total) if getattr(spec, "interval", "epoch") == "step" else (
        "epoch", recipe.epochs
    )  # fmt: skip
    if isinstance(spec, Cosine):
        t_max = spec.t_max or length
        if spec.warmup >= length:
            found.append(
                f"{at('scheduler', 'warmup')}: field 'scheduler.warmup': a warm-up of "
                f"{spec.warmup} {unit}s does not fit the run's {length} {unit}s: the learning "
                f"rate never reaches lr={recipe.optimizer.lr:g}"
            )
        if t_max > length:
            found.append(
                f"{at('scheduler', 't_max')}: field 'scheduler.t_max': cosine over {t_max} "
                f"{unit}s in a run of {length}: it never anneals to eta_min"
            )
    elif isinstance(spec, Step) and spec.step_size >= recipe.epochs:
        found.append(
            f"{at('scheduler', 'step_size')}: field 'scheduler.step_size': {spec.step_size} "
            f"epochs in a run of {recipe.epochs}: the learning rate never decays"
        )
    elif isinstance(spec, Plateau) and spec.patience >= recipe.epochs:
        found.append(
            f"{at('scheduler', 'patience')}: field 'scheduler.patience': {spec.patience} "
            f"epochs in a run of {recipe.epochs}: the learning rate never drops"
        )
    if total < FEW_STEPS:
        found.append(
            f"{at('epochs')}: only {total} optimizer steps in the whole run ({steps} per "
            f"epoch: the train audio / {recipe.duration:g} s chunks / batch "
            f"{recipe.batch_size}); fine-tuning and its schedule mean little at this budget"
        )
    return found
