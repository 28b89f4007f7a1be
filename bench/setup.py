"""``bench run --dry-run``: the fully resolved setup of a recipe, built but not trained."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import lightning
from lightning.pytorch.utilities.model_summary import ModelSummary

from bench.augmentation import build_augmentation
from bench.data import AudioCache, BenchProtocol, Split
from bench.recipe import load_recipe
from bench.runner import RunOptions, accelerator, default_cache_dir, effective_recipe
from bench.task import BenchDiarization
from bench.training import make_optimizer, make_scheduler, precision, prepare_model


def describe(path: Path, options: RunOptions, split: tuple[Split, bool]) -> str:
    """Build everything a run would (model, optimizer, scheduler, loss, augmentation) and
    describe it, without training."""
    data, demo = split
    recipe, overrides = effective_recipe(load_recipe(path), options, demo)
    acc = accelerator(options.device)
    augmentation = build_augmentation(recipe.augmentation, data.root)
    audio = AudioCache((options.cache_dir or default_cache_dir()) / "audio")
    lightning.seed_everything(recipe.seed, workers=True, verbose=False)
    with tempfile.TemporaryDirectory() as tmp:
        task = BenchDiarization(
            BenchProtocol(data), recipe, audio, Path(tmp) / "task.npz", augmentation
        )
        model, init = prepare_model(recipe, task)
        steps_per_epoch = task.train__len__() // recipe.batch_size
    if options.max_batches is not None:
        steps_per_epoch = min(steps_per_epoch, options.max_batches)
    if recipe.epochs == 0:
        optimizer_line, scheduler_line = "none (epochs=0: no fine-tuning)", "none"
    else:
        optimizer = make_optimizer(recipe, model.parameters())
        optimizer_line = f"{optimizer.__class__.__name__}({_params(optimizer)})"
        scheduler_line = _scheduler(
            make_scheduler(recipe, optimizer, steps_per_epoch * recipe.epochs)
        )
    loss = recipe.loss.kind
    if "+" in loss:
        loss += f" (weight {recipe.loss.weight:g}"
        loss += (
            f", alpha {recipe.loss.alpha:g}, beta {recipe.loss.beta:g})"
            if "tversky" in loss
            else ")"
        )
    elif loss == "focal":
        loss += f" (gamma {recipe.loss.gamma:g})"
    lines = [
        f"recipe      {recipe.name} ({recipe.content_hash()}) from {path}",
        f"split       {data.name} ({data.fingerprint}){' [demo]' if demo else ''}",
        f"overrides   {json.dumps(overrides) if overrides else '-'}",
        f"mode        {recipe.mode}, {recipe.max_speakers_per_chunk} speakers per chunk, "
        f"{recipe.duration:g} s chunks, batch {recipe.batch_size}, {steps_per_epoch} steps/epoch",
        f"weights     {init.source.id} ({init.source.origin}): {init.reason}",
        f"optimizer   {optimizer_line}",
        f"scheduler   {scheduler_line}",
        f"loss        {loss}; VAD loss "
        + (
            "off"
            if recipe.vad_loss is None
            else f"{recipe.vad_loss.kind} x {recipe.vad_loss.weight:g}"
        ),
        f"training    {recipe.epochs} epochs, gradient clip {recipe.gradient_clip}, early stopping "
        f"patience {recipe.early_stopping_patience}, precision {precision(recipe, acc)}, "
        f"{recipe.num_workers} workers, seed {recipe.seed}, {acc}",
        f"augmentation {augmentation!r}" if augmentation is not None else "augmentation -",
        "pipeline    "
        + (
            "off"
            if recipe.pipeline is None
            else f"{recipe.pipeline.embedding} embedding, tuned on dev with "
            f"{recipe.pipeline.tune_trials[0]}+{recipe.pipeline.tune_trials[1]} trials"
        ),
        "model",
        str(ModelSummary(model, max_depth=1)),
    ]
    return "\n".join(lines)


def _params(optimizer) -> str:
    group = optimizer.param_groups[0]
    keys = ("lr", "betas", "momentum", "weight_decay")
    return ", ".join(f"{k}={group[k]}" for k in keys if k in group)


def _scheduler(config: dict | None) -> str:
    if config is None:
        return "none (constant learning rate)"
    scheduler = config["scheduler"]
    state = {
        k: v
        for k, v in vars(scheduler).items()
        if k in {"T_max", "eta_min", "step_size", "gamma", "factor", "patience", "min_lrs"}
    }
    return f"{scheduler.__class__.__name__} {state}, stepped per {config['interval']}"
