"""``bench run --dry-run``: the fully resolved setup of a recipe, built but not trained."""

from __future__ import annotations

import json
from pathlib import Path

from lightning.pytorch.utilities.model_summary import ModelSummary

from bench.data import Split
from bench.recipe.text import loss_text
from bench.runner.active import ActiveRun
from bench.runner.console import Reporter, quiet_known_warnings
from bench.runner.options import RunOptions
from bench.runner.stages import assemble, resolve
from bench.training.fit import make_optimizer, make_scheduler


def describe(path: Path, options: RunOptions, split: tuple[Split, bool]) -> str:
    """Build everything a run would (model, optimizer, scheduler, loss, augmentation), through
    the run's own resolve and assemble stages, and describe it without training."""
    quiet_known_warnings()
    data, demo = split
    run = ActiveRun(Path(path), options, data, demo, Reporter(), options.results.resolve())
    resolve(run)
    if run.pretrained:
        return _describe_pipeline(run)
    if run.nemo is not None:
        return _describe_nemo(run)
    task = assemble(run)
    recipe, overrides, model, init = run.recipe, run.overrides, run.model, run.init
    acc = run.accelerator
    augmentation = task.augmentation if recipe.augmentation else None
    budget = run.budget or {}
    steps_per_epoch = budget["steps_per_epoch"]  # bench.recipe.budget: pyannote's rule, one place
    if recipe.epochs == 0:
        optimizer_line, scheduler_line = "none (epochs=0: no fine-tuning)", "none"
    else:
        optimizer = make_optimizer(recipe, model.parameters())
        optimizer_line = f"{optimizer.__class__.__name__}({_params(optimizer)})"
        scheduler_line = _scheduler(
            make_scheduler(recipe, optimizer, steps_per_epoch * recipe.epochs)
        )
    lines = [
        f"recipe      {recipe.name} ({recipe.content_hash()}) from {path}",
        f"identity    {run.stem}",
        f"split       {data.name} ({data.fingerprint}){' [demo]' if demo else ''}",
        f"overrides   {json.dumps(overrides) if overrides else '-'}",
        f"mode        {recipe.mode}, {recipe.max_speakers_per_chunk} speakers per chunk, "
        f"{recipe.duration:g} s chunks, batch {recipe.batch_size}, {steps_per_epoch} steps/epoch",
        f"weights     {init.source.id} ({init.source.origin}): {init.reason}",
        f"optimizer   {optimizer_line}",
        f"scheduler   {scheduler_line}",
        f"loss        {loss_text(recipe.resolved())}",
        f"budget      {budget['optimizer_steps']} optimizer steps, {budget['samples_seen']} "
        f"chunks, {budget['audio_hours_seen']:g} h of audio seen "
        f"({budget['train_hours']:g} h of train audio), about {budget['step_memory_gib']:g} GiB "
        "a training step",
        *(f"warning     {w}" for w in budget["warnings"]),
        f"training    {recipe.epochs} epochs, gradient clip {recipe.gradient_clip}, early stopping "
        f"patience {recipe.early_stopping_patience}, precision {run.precision}, "
        f"{recipe.num_workers} workers, seed {recipe.seed}, {acc}",
        "augmentation "
        + (
            ", ".join(f"{type(t).__name__}(p={t.p:g})" for t in augmentation.transforms)
            if augmentation is not None
            else "-"
        ),
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


def _describe_nemo(run: ActiveRun) -> str:
    """A NeMo run's setup without starting NeMo: identity, environment, initial weights, caps
    and the job its worker would get."""
    from bench.runner.nemo import job_for

    spec, plan = run.recipe, run.nemo
    env = plan.env.describe()
    changes = ", ".join(f"{k} {v['declared']} -> {v['ran']}" for k, v in run.overrides.items())
    folder = run.final_dir / "manifests"
    job = job_for(run, {s: folder / f"{s}_manifest.json" for s in ("train", "dev", "test")})
    demo = " [demo]" if run.demo else ""
    exact = "matches" if (env["lock"] or {}).get("matches") else "differs"
    return "\n".join(
        [
            f"recipe      {spec.name} ({spec.content_hash()}) from {run.path}",
            f"identity    {run.stem}",
            f"split       {run.split.name} ({run.split.fingerprint}){demo}",
            f"nemo        nemo-toolkit {env['packages']['nemo-toolkit']} in {plan.env.venv} "
            f"(environment {env['digest']}, lock {exact})",
            f"init        {plan.init_info.get('ref') or 'scratch'} ({plan.init_sha256[:16]})",
            f"overrides   {changes or 'none'}",
            f"job         {json.dumps(job, default=str)}",
            "run         trained and applied by bench/nemo/worker.py in NeMo's venv, the test "
            "hypotheses scored like every recipe",
        ]
    )


def _describe_pipeline(run: ActiveRun) -> str:
    """A pretrained pipeline's setup: where it comes from, its identity, what the run does."""
    from bench.deploy.load import load_pipeline

    spec = run.recipe
    loaded = load_pipeline(spec.path or spec.id, trust=spec.trust, revision=spec.revision,
                           token_env=spec.token_env)  # fmt: skip
    pipeline = loaded.pipeline
    demo = " [demo]" if run.demo else ""
    if spec.retune:
        trials = f"{spec.tune_trials[0]}+{spec.tune_trials[1]}"
        what = f"re-tuned on dev ({trials} trials, seed {spec.seed}), then applied"
    else:
        what = "applied as shipped"
    return "\n".join(
        [
            f"recipe      {spec.name} ({spec.content_hash()}) from {run.path}",
            f"identity    {run.stem}",
            f"split       {run.split.name} ({run.split.fingerprint}){demo}",
            f"pipeline    {type(pipeline).__module__}.{type(pipeline).__qualname__} from "
            f"{loaded.ref} ({run.identity.init_sha256})",
            f"parameters  {json.dumps(pipeline.parameters(instantiated=True), default=str)}",
            f"run         {what} to the test files, scored like every recipe",
        ]
    )
