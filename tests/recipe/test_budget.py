"""The training budget: what a run really gets from pyannote's epoch, recorded and shown, and
the schedules it makes meaningless named with the recipe line at fault."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.recipe import load_recipe
from bench.recipe.budget import budget

ROOT = Path(__file__).resolve().parents[2]

WARMUP = """
from bench.recipe import Cosine, Optimizer, Pretrained, Recipe

recipe = Recipe(
    model=Pretrained(id="pyannote/segmentation-3.0"),
    mode="powerset",
    loss={"kind": "ce"},
    optimizer=Optimizer(name="adamw", lr=1e-4),
    scheduler=Cosine(
        warmup=100,
        interval="step",
    ),
    epochs=20,
    batch_size=64,
    duration=10.0,
)
"""


def test_a_small_corpus_gives_one_step_an_epoch_and_the_warmup_never_ends(tmp_path):
    """The issue's observation: 300 s of train audio, 10 s chunks, batch 64: one batch an
    epoch (pyannote takes at least one), so 20 epochs are 20 optimizer steps."""
    path = tmp_path / "warmup.py"
    path.write_text(WARMUP)
    found = budget(load_recipe(path), 300.0, recipe_file=path)
    assert (found["samples_per_epoch"], found["steps_per_epoch"]) == (64, 1)
    assert (found["optimizer_steps"], found["samples_seen"]) == (20, 1280)
    assert found["audio_hours_seen"] == round(1280 * 10 / 3600, 4)
    warmup, few = found["warnings"]
    assert warmup.startswith(f"{path}:10: field 'scheduler.warmup': a warm-up of 100 steps")
    assert "does not fit the run's 20 steps" in warmup
    assert few.startswith(f"{path}:13: only 20 optimizer steps in the whole run")
    # an hour of audio: 360 chunks, 5 steps an epoch, 100 steps: still too short for the warm-up
    longer = budget(load_recipe(path), 3600.0, recipe_file=path)
    assert longer["steps_per_epoch"] == 5 and len(longer["warnings"]) == 1
    # --max-batches caps the steps of each epoch
    assert budget(load_recipe(path), 3600.0, max_batches=2)["optimizer_steps"] == 40


def test_budget_is_recorded_printed_and_matches_the_steps_run(
    tmp_path, sample_split, tiny_recipe, cache_dir
):
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", str(tiny_recipe), "--data", str(sample_split),
         "--results", str(tmp_path), "--cache", str(cache_dir), "--no-wandb", "--no-progress"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (path,) = tmp_path.glob("*.json")
    record = json.loads(path.read_text())
    found = record["budget"]
    assert found["optimizer_steps"] == found["steps_per_epoch"] * len(record["epochs"])
    assert found["optimizer_steps_run"] == found["optimizer_steps"]
    assert f"budget: {found['optimizer_steps']} optimizer steps" in done.stdout
    assert f"warning: {tiny_recipe}:" in done.stdout and "only" in done.stdout
