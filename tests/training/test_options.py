"""Every recipe option changes what runs: each test would fail if its option were ignored."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from typer.testing import CliRunner

from bench.cli import app
from bench.data import load_folder
from bench.demo import generate_demo
from bench.recipe import (
    Augmentation,
    BackgroundNoise,
    Cosine,
    Gain,
    ImpulseResponse,
    Loss,
    Optimizer,
    Plateau,
    Recipe,
    Scratch,
    Step,
    VadLoss,
)
from bench.training.assemble import assemble
from bench.training.augmentation import AugmentationError, build_augmentation
from bench.training.fit import dataloader_settings, fit, precision
from bench.training.task import DER

ROOT = Path(__file__).resolve().parents[2]


class Spy(Callback):
    """Records what the trainer really does: optimizer, learning rates, batches, grad norms."""

    def __init__(self) -> None:
        self.lrs: list[float] = []
        self.shapes: list[tuple[int, ...]] = []
        self.grad_norms: list[float] = []
        self.optimizer = None
        self.trainer = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.trainer = trainer
        self.optimizer = trainer.optimizers[0]
        self.lrs.append(self.optimizer.param_groups[0]["lr"])
        self.shapes.append(tuple(batch["X"].shape))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # gradients of this step, as the optimizer used them (after clipping)
        grads = [p.grad.norm() for p in pl_module.parameters() if p.grad is not None]
        self.grad_norms.append(torch.norm(torch.stack(grads)).item())


BASE = {
    "model": Scratch(lstm_hidden_size=16, lstm_num_layers=1, linear_hidden_size=16),
    "optimizer": Optimizer(name="adam", lr=1e-3),
    "epochs": 2,
    "batch_size": 2,
    "duration": 5.0,
    "seed": 1,
}


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    from helpers import make_sample_split

    root = tmp_path_factory.mktemp("options")
    return load_folder(make_sample_split(root / "data")), root


def train(split, max_batches: int = 2, **changes):
    data, root = split
    recipe = Recipe(**{**BASE, **changes})
    model = assemble(recipe, data, root).model
    spy = Spy()
    run_dir = root / f"run{id(recipe)}"
    fitted = fit(
        recipe,
        model,
        run_dir,
        "cpu",
        [],
        progress=False,
        max_batches=max_batches,
        extra_callbacks=[spy],
    )
    return fitted, spy


@pytest.mark.parametrize(
    ("optimizer", "cls", "expected"),
    [
        (
            Optimizer(name="adam", lr=2e-3, betas=(0.8, 0.9)),
            torch.optim.Adam,
            {"lr": 2e-3, "betas": (0.8, 0.9), "weight_decay": 0.0},
        ),
        (
            Optimizer(name="adamw", lr=1e-3, weight_decay=0.05),
            torch.optim.AdamW,
            {"weight_decay": 0.05},
        ),
        (Optimizer(name="radam", lr=1e-3), torch.optim.RAdam, {"lr": 1e-3}),
        (
            Optimizer(name="nadam", lr=1e-3, weight_decay=1e-3),
            torch.optim.NAdam,
            {"weight_decay": 1e-3},
        ),
        (
            Optimizer(name="sgd", lr=0.1, momentum=0.9),
            torch.optim.SGD,
            {"lr": 0.1, "momentum": 0.9},
        ),
    ],
)
def test_optimizer_class_and_params_reach_the_trainer(split, optimizer, cls, expected):
    _, spy = train(split, optimizer=optimizer, epochs=1, max_batches=1)
    assert type(spy.optimizer) is cls
    group = spy.optimizer.param_groups[0]
    for key, value in expected.items():
        assert group[key] == pytest.approx(value)


def test_schedulers_shape_the_learning_rate_trace(split):
    lr = 1e-3
    _, none = train(split, epochs=3)
    assert none.lrs == pytest.approx([lr] * 6)

    _, cosine = train(split, epochs=3, scheduler=Cosine())
    per_epoch = [lr * (1 + math.cos(math.pi * e / 3)) / 2 for e in range(3)]
    assert cosine.lrs == pytest.approx([v for v in per_epoch for _ in range(2)])

    _, stepwise = train(split, epochs=3, scheduler=Cosine(warmup=2, interval="step"))
    # linear warm-up over 2 steps, then cosine from the peak over the remaining 4 of 6 steps
    expected = [lr / 2, lr] + [lr * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(4)]
    assert stepwise.lrs == pytest.approx(expected)

    _, step = train(split, epochs=3, scheduler=Step(step_size=2, gamma=0.5, interval="step"))
    assert step.lrs == pytest.approx([lr, lr, lr / 2, lr / 2, lr / 4, lr / 4])


def test_plateau_scheduler_follows_validation_der(split):
    # a learning rate too small to move the DER: no improvement, so the plateau scheduler halves
    fitted, spy = train(
        split,
        epochs=3,
        optimizer=Optimizer(name="sgd", lr=1e-6),
        scheduler=Plateau(factor=0.5, patience=0),
    )
    ders = [row[DER] for row in fitted.epochs]
    assert ders[0] == ders[1]
    assert spy.lrs == pytest.approx([1e-6] * 4 + [5e-7] * 2)


def test_losses_change_the_training_loss(split):
    losses = {}
    for loss in (
        Loss(kind="bce"),
        Loss(kind="bce+dice"),
        Loss(kind="bce+tversky", alpha=0.9, beta=0.1),
        Loss(kind="focal", gamma=2.0),
    ):
        fitted, _ = train(split, epochs=1, max_batches=1, loss=loss)
        losses[loss.kind] = fitted.epochs[0]["loss/train/segmentation"]
    assert len(set(losses.values())) == 4


def test_vad_loss_on_off_and_weight(split):
    off, _ = train(split, epochs=1, max_batches=1)
    row = off.epochs[0]
    assert row["loss/val/vad"] is None and row["loss/val"] == pytest.approx(
        row["loss/val/segmentation"]
    )
    on, _ = train(split, epochs=1, max_batches=1, vad_loss=VadLoss(weight=2.0))
    row = on.epochs[0]
    assert row["loss/val"] == pytest.approx(
        row["loss/val/segmentation"] + 2.0 * row["loss/val/vad"], rel=1e-5
    )


def test_batch_size_duration_and_clipping(split):
    _, spy = train(split, epochs=1, batch_size=3, duration=4.0, gradient_clip=1e-3)
    assert spy.shapes[0] == (3, 1, 64000)
    assert spy.trainer.gradient_clip_val == 1e-3
    assert max(spy.grad_norms) <= 1e-3 * 1.01
    _, unclipped = train(split, epochs=1, batch_size=3, duration=4.0)
    assert max(unclipped.grad_norms) > 1e-3 * 1.01


def test_early_stopping_stops(split):
    fitted, _ = train(
        split, epochs=6, optimizer=Optimizer(name="sgd", lr=1e-12), early_stopping_patience=1
    )
    assert fitted.stopped_early and len(fitted.epochs) < 6


def test_precision_and_workers(split):
    _, spy = train(split, epochs=1, max_batches=1, num_workers=1)
    assert spy.trainer.precision == "32-true"
    assert spy.trainer.train_dataloader.num_workers == 1
    assert spy.trainer.train_dataloader.pin_memory is False  # nothing to pin for on a CPU
    recipe = Recipe(**{**BASE, "num_workers": 3})
    assert dataloader_settings(recipe, "gpu") == {"num_workers": 3, "pin_memory": True}
    assert precision(recipe, "gpu") == "16-mixed"
    with pytest.raises(ValueError, match="16-mixed' needs a GPU"):
        train(split, epochs=1, precision="16-mixed")


def test_powerset_mode_has_no_threshold(split):
    fitted, _ = train(split, epochs=1, max_batches=1, mode="powerset", loss=Loss(kind="ce+dice"))
    row = fitted.epochs[0]
    assert row[f"{DER}/Threshold"] is None and row[DER] is not None
    ce, _ = train(split, epochs=1, max_batches=1, mode="powerset", loss=Loss(kind="ce"))
    assert ce.epochs[0]["loss/train"] != pytest.approx(row["loss/train"])


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    return generate_demo(
        tmp_path_factory.mktemp("aug") / "demo", sizes={"train": 1, "dev": 1, "test": 1}
    )


@pytest.mark.parametrize(
    "spec",
    [
        Augmentation(noise=BackgroundNoise(path="noise", min_snr_db=5, max_snr_db=5, p=1.0)),
        Augmentation(impulse_response=ImpulseResponse(path="ir", p=1.0)),
        Augmentation(gain=Gain(min_gain_db=-6, max_gain_db=-3, p=1.0)),
    ],
)
def test_augmentation_changes_the_training_waveform_only(demo_root, spec):
    transform = build_augmentation(spec, demo_root)
    x = torch.randn(2, 1, 32000) * 0.1
    y = torch.zeros(2, 1, 100, 3)
    transform.train(True)
    augmented = transform(samples=x.clone(), sample_rate=16000, targets=y).samples
    assert augmented.shape == x.shape and not torch.allclose(augmented, x, atol=1e-4)
    transform.train(False)
    assert torch.equal(transform(samples=x.clone(), sample_rate=16000, targets=y).samples, x)
    if spec.gain is not None:
        ratio = (augmented.norm(dim=-1) / x.norm(dim=-1)).flatten()
        assert torch.all((ratio > 10 ** (-6 / 20) - 1e-4) & (ratio < 10 ** (-3 / 20) + 1e-4))


def test_missing_augmentation_folder_fails_before_training(tmp_path, sample_split, tiny_recipe):
    with pytest.raises(AugmentationError, match="does not exist"):
        build_augmentation(Augmentation(noise=BackgroundNoise(path="nowhere")), tmp_path)
    recipe = (
        tiny_recipe.read_text()
        .replace(
            "    seed=3,",
            "    augmentation=Augmentation(noise=BackgroundNoise(path='musan')),\n    seed=3,",
        )
        .replace(
            "from bench.recipe import", "from bench.recipe import Augmentation, BackgroundNoise,"
        )
    )
    tiny_recipe.write_text(recipe)
    outcome = CliRunner().invoke(
        app,
        [
            "run",
            str(tiny_recipe),
            "--data",
            str(sample_split),
            "--results",
            str(tmp_path / "r"),
            "--no-wandb",
        ],
    )
    assert outcome.exit_code == 1
    assert f"{sample_split / 'musan'} does not exist" in outcome.output
    assert "epoch   0" not in outcome.output  # no epoch trained (the budget line names epochs)


def test_dry_run_and_recipe_listing(sample_split, tiny_recipe, tmp_path):
    outcome = CliRunner().invoke(
        app,
        [
            "run",
            str(tiny_recipe),
            "--data",
            str(sample_split),
            "--dry-run",
            "--cache",
            str(tmp_path),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    for fragment in (
        "optimizer   Adam(lr=0.001",
        "CosineAnnealingLR",
        "bce+dice",
        "loss        bce+dice + vad",
        "Trainable params",
        "scratch",
    ):
        assert fragment in outcome.output
    assert not list(tmp_path.rglob("*.ckpt"))
    listing = CliRunner().invoke(app, ["recipes", str(ROOT / "recipes")])
    assert listing.exit_code == 0
    names = sorted(p.stem for p in (ROOT / "recipes").glob("*.py"))
    assert len(names) == 16  # fourteen pyannote recipes, two NeMo ones
    for name in names:
        assert name in listing.output


@pytest.mark.slow
def test_every_recipe_runs_one_epoch_on_the_demo(tmp_path, cache_dir):
    """All sixteen recipes on the demo split (the two NeMo ones in NeMo's venv, small models
    standing in for hub weights), one epoch of two batches each, through the CLI (the full-file
    pipeline is covered by the README demo run and tests/test_pipeline.py; a NeMo run always
    diarizes its test files: --no-pipeline does not apply to it)."""
    import json

    outcome = CliRunner().invoke(
        app,
        [
            "run",
            str(ROOT / "recipes"),
            "--epochs",
            "1",
            "--max-batches",
            "2",
            "--no-wandb",
            "--no-progress",
            "--no-pipeline",
            "--results",
            str(tmp_path),
            "--cache",
            str(cache_dir),
        ],
    )
    results = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert outcome.exit_code == 0, outcome.output[-3000:]
    assert len(results) == 16 and {r["status"] for r in results} == {"ok"}
    by_name = {r["recipe"]["name"]: r for r in results}
    assert by_name["powerset_adamw_cosine"]["initial_weights"]["head_reinitialised"] is False
    assert by_name["adam"]["initial_weights"]["head"] == "converted"
    assert by_name["adam"]["initial_weights"]["head_reinitialised"] is False
    assert by_name["nadam_cosine_dice_aug"]["recipe"]["augmentation"]["noise"]["path"] == "noise"
    assert by_name["adam"]["overrides"]["pipeline"]["ran"] is None
    assert by_name["nemo_msdd"]["kind"] == by_name["nemo_sortformer_finetune"]["kind"] == "nemo"
    assert by_name["nemo_msdd"]["pipeline"]["oracle_vad"] is True  # marked on the leaderboard
    assert by_name["nemo_sortformer_finetune"]["pipeline"]["oracle_vad"] is False
    assert "--no-pipeline do(es) not apply" in outcome.output
    baseline = by_name["baseline_segmentation_3_0"]
    assert baseline["epochs"] == [] and "epochs" not in baseline["overrides"]  # never trained
    assert baseline["test"]["chunk"]["DER"] == baseline["test"]["chunk_before_training"]["DER"]
