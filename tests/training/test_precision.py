"""Mixed precision: losses run in float32 outside autocast, and every loss kind trains through
Lightning with ``bf16-mixed`` on CPU.

CUDA autocast refuses ``F.binary_cross_entropy``; CPU autocast allows it. :class:`RefuseBCE`
makes a CPU run refuse it the way CUDA does, so these tests catch what only a GPU would show.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from pyannote.audio.utils.powerset import Powerset
from torch.overrides import TorchFunctionMode
from typer.testing import CliRunner

from bench.cli import app
from bench.data import load_folder
from bench.recipe import Loss, NemoRecipe, Optimizer, Recipe, Scratch, VadLoss, load_recipe
from bench.training.assemble import assemble
from bench.training.fit import fit, precision
from bench.training.losses import multilabel_segmentation_loss, powerset_loss, vad_loss
from bench.training.task import DER

ROOT = Path(__file__).resolve().parents[2]
# the message CUDA autocast raises for F.binary_cross_entropy
UNSAFE = "torch.nn.functional.binary_cross_entropy and torch.nn.BCELoss are unsafe to autocast"

MULTILABEL = ("bce", "bce+dice", "bce+tversky", "focal")
POWERSET = ("ce", "ce+dice", "ce+tversky")
KINDS = [("multilabel", k) for k in MULTILABEL] + [("powerset", k) for k in POWERSET]


def autocast_enabled() -> bool:
    return any(torch.is_autocast_enabled(device) for device in ("cpu", "cuda"))


class RefuseBCE(TorchFunctionMode):
    """Raises CUDA's error when ``F.binary_cross_entropy`` runs under an enabled autocast, and
    counts the calls made with autocast disabled (so a test can see BCE really ran)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is F.binary_cross_entropy:
            if autocast_enabled():
                raise RuntimeError(UNSAFE)
            self.calls += 1
        return func(*args, **(kwargs or {}))


def test_refuse_bce_refuses_under_autocast_only():
    """The check itself: CPU autocast lets BCE through, RefuseBCE does not."""
    p, t = torch.full((4,), 0.3), torch.ones(4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        F.binary_cross_entropy(p, t)  # allowed by CPU autocast
        with RefuseBCE(), pytest.raises(RuntimeError, match="unsafe to autocast"):
            F.binary_cross_entropy(p, t)
    with RefuseBCE() as mode:
        F.binary_cross_entropy(p, t)
    assert mode.calls == 1


def model_outputs(mode: str, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What a model yields under autocast: 16-bit scores, a target, powerset class indices."""
    generator = torch.Generator().manual_seed(0)
    target = (torch.rand(2, 50, 3, generator=generator) > 0.6).float()
    if mode == "multilabel":
        logits = torch.randn(2, 50, 3, generator=generator) * 4
        return torch.sigmoid(logits).to(dtype), target, target
    powerset = Powerset(3, 2)
    logits = torch.randn(2, 50, powerset.num_powerset_classes, generator=generator) * 4
    log_probability = torch.log_softmax(logits, dim=-1).to(dtype)
    target_class = torch.argmax(powerset.to_powerset(target), dim=-1)
    return log_probability, target, target_class


def losses(mode: str, kind: str, scores: torch.Tensor, speakers, target, target_class):
    """Segmentation and VAD loss; ``speakers``: (soft) per-speaker scores for the VAD loss."""
    spec = Loss(kind=kind)
    if mode == "multilabel":
        return multilabel_segmentation_loss(spec, scores, target), vad_loss(speakers, target)
    return powerset_loss(spec, scores, target_class), vad_loss(speakers, target)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize(("mode", "kind"), KINDS)
def test_losses_run_in_float32_outside_autocast(mode, kind, dtype):
    """Each loss and the VAD loss, called under an enabled autocast with 16-bit scores, never
    calls BCE under autocast and gives the float32 value of the same scores."""
    scores, target, target_class = model_outputs(mode, dtype)
    speakers = scores
    if mode == "powerset":
        speakers = Powerset(3, 2).to_multilabel(scores.float(), soft=True).to(dtype)
    with torch.autocast("cpu", dtype=dtype), RefuseBCE() as refuse:
        segmentation, vad = losses(mode, kind, scores, speakers, target, target_class)
    expected = losses(mode, kind, scores.float(), speakers.float(), target, target_class)
    assert refuse.calls == (2 if kind.startswith("bce") else 1)  # the checks ran on real BCE
    for value, reference in zip((segmentation, vad), expected, strict=True):
        assert value.dtype == torch.float32
        assert value.item() == pytest.approx(reference.item(), rel=1e-6)


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    from helpers import make_sample_split

    root = tmp_path_factory.mktemp("precision")
    return load_folder(make_sample_split(root / "data")), root


class Dtypes(Callback):
    """Records the dtypes a training step really used: the classifier's output (bf16 when
    autocast ran), the model's output and the loss."""

    def __init__(self) -> None:
        self.classifier: set[torch.dtype] = set()
        self.output: set[torch.dtype] = set()
        self.loss: set[torch.dtype] = set()

    def on_train_start(self, trainer, pl_module) -> None:
        pl_module.classifier.register_forward_hook(
            lambda module, args, out: self.classifier.add(out.dtype)
        )
        pl_module.register_forward_hook(lambda module, args, out: self.output.add(out.dtype))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.loss.add(outputs["loss"].dtype)


def train(split, mode: str, kind: str, precision: str):
    data, root = split
    recipe = Recipe(
        model=Scratch(lstm_hidden_size=16, lstm_num_layers=1, linear_hidden_size=16),
        optimizer=Optimizer(name="adam", lr=1e-3),
        mode=mode,
        loss=Loss(kind=kind),
        vad_loss=VadLoss(weight=1.0),
        epochs=1,
        batch_size=2,
        duration=5.0,
        precision=precision,
        seed=1,
    )
    name = f"{mode}-{kind}-{precision}"
    model = assemble(recipe, data, root).model
    dtypes = Dtypes()
    with RefuseBCE() as refuse:
        fitted = fit(
            recipe,
            model,
            root / name,
            "cpu",
            [],
            progress=False,
            max_batches=1,
            extra_callbacks=[dtypes],
        )
    return fitted, dtypes, refuse


@pytest.mark.parametrize(("mode", "kind"), KINDS)
def test_every_loss_kind_trains_a_step_in_bf16_mixed(split, mode, kind, one_torch_thread):
    """One bf16-mixed training step and validation per loss kind (with the VAD loss): autocast
    really runs the model in bf16, the losses and DER are finite and float32, BCE never runs
    under autocast, and the initial validation matches a float32 run of the same weights."""
    fitted, dtypes, refuse = train(split, mode, kind, "bf16-mixed")
    assert dtypes.classifier == {torch.bfloat16}  # autocast was on in the training step
    assert dtypes.output == {torch.float32} and dtypes.loss == {torch.float32}
    assert refuse.calls > 0
    (speed,) = fitted.throughput  # one epoch of one batch of 2 chunks, on one process
    assert fitted.world_size == 1 and speed["samples"] == 2 and speed["seconds"] > 0
    assert speed["samples_per_second"] == pytest.approx(2 / speed["seconds"], rel=0.01)
    assert speed["peak_gpu_memory_mib"] is None
    row = fitted.epochs[0]
    for column in ("loss/train", "loss/train/vad", "loss/val", "loss/val/vad", DER):
        assert row[column] is not None and math.isfinite(row[column]), column
    reference, _, _ = train(split, mode, kind, "32")
    for column in ("loss/val/segmentation", "loss/val/vad"):  # within 0.3 % on this split
        assert fitted.initial[column] == pytest.approx(reference.initial[column], rel=0.01)
    assert fitted.initial[DER] == pytest.approx(reference.initial[DER], rel=0.05)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_activation_runs_in_float32_under_autocast(split, dtype):
    """The model's sigmoid sees float32 logits under autocast: probabilities are not rounded to
    16 bits (a bf16 sigmoid is exactly 1 above a logit of about 5.5, an fp16 one above 8)."""
    data, root = split
    recipe = Recipe(
        model=Scratch(lstm_hidden_size=16, lstm_num_layers=1, linear_hidden_size=16),
        optimizer=Optimizer(name="adam", lr=1e-3),
        epochs=1,
        batch_size=2,
        duration=5.0,
    )
    model = assemble(recipe, data, root).model
    logits = []
    model.classifier.register_forward_hook(lambda module, args, out: logits.append(out))
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype):
        probability = model(torch.randn(2, 1, 80000))
    assert logits[0].dtype == dtype and probability.dtype == torch.float32
    assert torch.equal(probability, torch.sigmoid(logits[0].float()))


def test_bf16_mixed_is_refused_on_a_gpu_without_bfloat16(monkeypatch):
    """A GPU without bfloat16 (before Ampere) is refused before training, by name. The GPU is
    the one thing a CPU machine lacks: its capability query is the seam replaced here."""
    recipe = Recipe(
        model=Scratch(), optimizer=Optimizer(name="adam", lr=1e-3), epochs=1, batch_size=2
    )
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Tesla T4")
    with pytest.raises(ValueError, match=r"needs a GPU with bfloat16 \(Tesla T4 has none\)"):
        precision(recipe.with_overrides(precision="bf16-mixed"), "gpu")
    assert precision(recipe.with_overrides(precision="bf16-mixed"), "cpu") == "bf16-mixed"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation: True)
    assert precision(recipe.with_overrides(precision="bf16-mixed"), "gpu") == "bf16-mixed"


@pytest.mark.slow
def test_bf16_mixed_recipe_runs_on_the_demo(tmp_path, cache_dir):
    """The issue's run: nadam_cosine_tversky in bf16-mixed, one epoch of two batches."""
    source = (ROOT / "recipes" / "nadam_cosine_tversky.py").read_text()
    recipe = tmp_path / "nadam_cosine_tversky_bf16.py"
    recipe.write_text(source.replace("    seed=0,", '    precision="bf16-mixed",\n    seed=0,'))
    assert "bf16-mixed" in recipe.read_text()
    results = tmp_path / "results"
    outcome = CliRunner().invoke(
        app,
        [
            "run",
            str(recipe),
            "--epochs",
            "1",
            "--max-batches",
            "2",
            "--no-pipeline",
            "--no-wandb",
            "--no-progress",
            "--results",
            str(results),
            "--cache",
            str(cache_dir),
        ],
    )
    (result,) = [json.loads(p.read_text()) for p in results.glob("*.json")]
    assert result["status"] == "ok", result.get("error")
    assert outcome.exit_code == 0, outcome.output[-3000:]
    assert result["device"]["precision"] == "bf16-mixed"
    assert math.isfinite(result["epochs"][0][DER]) and math.isfinite(result["test"]["chunk"]["DER"])


def gpu_check():
    """scripts/gpu_check.py as a module."""
    if "gpu_check" not in sys.modules:
        path = ROOT / "scripts" / "gpu_check.py"
        spec = importlib.util.spec_from_file_location("gpu_check", path)
        sys.modules["gpu_check"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["gpu_check"])
    return sys.modules["gpu_check"]


@pytest.mark.parametrize("precision", ["32", "16-mixed", "bf16-mixed"])
def test_run_precision_overrides_every_recipe_and_is_recorded(precision):
    """``bench run --precision`` (what the GPU check runs each recipe with) sets the precision
    and nothing else, and records it under ``overrides`` like ``--epochs``."""
    from bench.runner import RunOptions, effective_recipe

    files = sorted((ROOT / "recipes").glob("*.py"))
    assert files
    for path in files:
        original = load_recipe(path)
        if isinstance(original, NemoRecipe):  # NeMo trains in 32 bits: --precision does not apply
            continue
        ran, overrides = effective_recipe(original, RunOptions(precision=precision), demo=False)
        assert ran.precision == precision
        assert ran.with_overrides(precision=original.precision) == original
        if original.precision != precision:
            assert overrides == {"precision": {"declared": original.precision, "ran": precision}}
    source = (ROOT / "scripts" / "gpu_check.py").read_text()
    assert '"--precision",' in source and "with_precision" not in source


def test_gpu_check_window_mean_utilisation_and_peak_memory():
    rows = gpu_check().parse_smi("0, 10, 500\n1, 0, 400\n[N/A], 3, 1\n", 1.0)
    assert rows == [(1.0, 0, 10.0, 500.0), (1.0, 1, 0.0, 400.0)]
    rows += [(2.0, 0, 90.0, 4500.0), (3.0, 0, 80.0, 2500.0), (2.5, 1, 60.0, 1400.0)]
    window = gpu_check().gpu_window
    assert window(rows, 1.5, 3.0) == {"util": 85.0, "memory": 4000.0}
    assert window(rows, 1.5, 3.0, gpus=2) == {"util": 76.7, "memory": 4000.0}  # 230 / 3
    assert window(rows, 5.0, 6.0) == {"util": None, "memory": None}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without a GPU")
def test_gpu_check_refuses_without_cuda(tmp_path):
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "no CUDA device is visible" in done.stderr and "--device cpu" in done.stderr
    assert not list(tmp_path.iterdir())  # refused before running anything


@pytest.mark.slow
def test_gpu_check_dry_run_on_cpu(tmp_path, sample_split, tiny_recipe, cache_dir):
    """``--device cpu``: the same code paths as on a GPU, on a tiny recipe and split: recipes,
    training in (a small version of) the real shape against its floor and pyannote's data path,
    the pipeline on one long file against the plain path, the matrix with ``--jobs``."""
    done = subprocess.run(
        [
            "bash", str(ROOT / "scripts" / "gpu_check.sh"), "--device", "cpu",
            "--recipes", str(tiny_recipe), "--precisions", "32,16-mixed", "--max-batches", "1",
            "--data", str(sample_split), "--cache", str(cache_dir),
            "--workers", "0", "--train-batches", "2", "--train-batch-size", "2",
            "--train-duration", "5", "--pipeline-minutes", "0.5", "--embedding-batches", "8",
            "--matrix-jobs", "1", "--out", str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    status = {(r["part"], r["recipe"], r["precision"]): r["status"] for r in rows}
    assert status == {
        ("recipes", "tiny", "32"): "ok",
        ("recipes", "tiny", "16-mixed"): "skipped",
        ("train", "nadam_cosine_tversky", "32-true"): "ok",
        ("pipeline", "plain (batch 1)", "32"): "ok",
        ("pipeline", "bench (batch 8)", "32"): "ok",
        ("matrix", "1 recipes", "auto"): "ok",
    }
    recipe, _, train, plain, padded, matrix = rows
    assert recipe["batch"] == 4 and recipe["seconds_per_epoch"] > 0
    measured = train["extra"]
    assert measured["batch"] == 2 and measured["workers"] == 0 and measured["pin_memory"] is False
    assert measured["floor_samples_per_second"] > 0 and measured["loop_samples_per_second"] > 0
    assert measured["loop_batches"] == 3  # the measured batches and the first
    if measured["data_speedup"] is not None:  # pyannote's reader needs FFmpeg's libraries
        assert measured["data_same_targets"] and measured["data_max_abs_diff"] < 1e-6
    else:
        assert measured["data_pyannote_unavailable"]
    for row in (plain, padded):
        assert row["extra"]["audio_s"] == 30.0 and row["extra"]["peak_rss_mib"] > 0
        assert set(row["extra"]["stages_s"]) == {"segmentation", "embedding", "clustering"}
    assert padded["extra"]["same_output"], padded["detail"]  # same embeddings to 1e-7 cosine
    assert matrix["extra"]["jobs"] == 1 and matrix["extra"]["exit"] == 0  # --jobs N: test_resume
    report = (tmp_path / "out" / "gpu_check.md").read_text()
    assert report.startswith("# GPU check: CPU only")
    assert "| recipes | tiny | 32 |" in report and "## One long file" in report
