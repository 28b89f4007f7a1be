"""Head transfer: a multilabel model initialised from segmentation-3.0's powerset head gives the
pretrained speaker probabilities before any step, trains, and its checkpoints load back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import make_sample_split
from pyannote.audio.utils.powerset import Powerset
from typer.testing import CliRunner

from bench.cli import app
from bench.data import load_folder
from bench.data.audio import AudioCache
from bench.models.heads import PowersetInitialisedPyanNet
from bench.models.weights import load_initial
from bench.recipe import Loss, Optimizer, Pretrained, Recipe
from bench.training.fit import prepare_model
from bench.training.task import BenchDiarization, BenchProtocol

SEGMENTATION = "pyannote/segmentation-3.0"


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    root = tmp_path_factory.mktemp("heads")
    return load_folder(make_sample_split(root / "data")), root


def model_for(split, **fields):
    data, root = split
    recipe = Recipe(
        **{
            "model": Pretrained(id=SEGMENTATION, head="convert"),
            "mode": "multilabel",
            "max_speakers_per_chunk": 3,
            "optimizer": Optimizer(name="adam", lr=1e-4),
            "epochs": 1,
            "batch_size": 2,
            "duration": 5.0,
            **fields,
        }
    )
    index = root / f"{recipe.mode}-{recipe.max_speakers_per_chunk}.npz"
    task = BenchDiarization(BenchProtocol(data), recipe, AudioCache(root / "audio"), index)
    return prepare_model(recipe, task)


def test_converted_head_gives_the_pretrained_speaker_probabilities(split):
    model, init = model_for(split)
    assert isinstance(model, PowersetInitialisedPyanNet) and init.head == "converted"
    assert not init.head_reinitialised and "converted to multi-label" in init.reason
    pretrained, _ = load_initial(Pretrained(id=SEGMENTATION))
    spec = pretrained.specifications
    powerset = Powerset(len(spec.classes), spec.powerset_max_classes)
    torch.manual_seed(0)
    audio = torch.randn(3, 1, 80000) * 0.1
    model.eval(), pretrained.eval()
    with torch.no_grad():
        expected = powerset.to_multilabel(pretrained(audio), soft=True)
        got = model(audio)
    assert got.shape == expected.shape == (3, expected.shape[1], 3)
    assert (got - expected).abs().max().item() < 1e-6
    # and the gradient reaches the pretrained powerset layer (it trains)
    model.train()
    model(audio).sum().backward()
    assert model.classifier.powerset.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "fields, problem",
    [
        ({"mode": "powerset", "loss": Loss(kind="ce")}, "the recipe trains powerset over 3"),
        ({"max_speakers_per_chunk": 4}, "the recipe trains multilabel over 4 speakers"),
    ],
)
def test_convert_is_refused_where_it_is_not_exact(split, fields, problem):
    with pytest.raises(ValueError, match=r"field 'model\.head'") as error:
        model_for(split, **fields)
    assert problem in str(error.value)


def test_reinitialise_makes_a_new_head_even_when_it_fits(split):
    powerset = {"mode": "powerset", "loss": Loss(kind="ce")}
    model, init = model_for(
        split, **powerset, model=Pretrained(id=SEGMENTATION, head="reinitialise")
    )
    assert init.head == "reinitialised" and init.head_reinitialised
    kept, same = model_for(split, **powerset, model=Pretrained(id=SEGMENTATION))
    assert same.head == "kept"
    assert not torch.equal(model.classifier.weight, kept.classifier.weight)


RECIPE = """
from bench.recipe import Optimizer, Pretrained, Recipe

recipe = Recipe(
    model=Pretrained(id="pyannote/segmentation-3.0"{head}),
    mode="multilabel",
    max_speakers_per_chunk=3,
    optimizer=Optimizer(name="adam", lr=1e-4),
    epochs={epochs},
    batch_size=4,
    duration=5.0,
    seed=0,
)
"""


def run(tmp_path: Path, data: Path, cache: Path, name: str, head: str, epochs: int) -> dict:
    recipe = tmp_path / f"{name}.py"
    recipe.write_text(RECIPE.format(head=head, epochs=epochs))
    outcome = CliRunner().invoke(
        app,
        ["run", str(recipe), "--data", str(data), "--results", str(tmp_path / "results"),
         "--cache", str(cache), "--no-wandb", "--no-progress"],
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    (path,) = (tmp_path / "results").glob(f"{name}-*.json")
    return json.loads(path.read_text())


@pytest.mark.slow
def test_a_converted_run_starts_where_the_checkpoint_is_and_its_checkpoint_loads(
    tmp_path, cache_dir, one_torch_thread
):
    """Before training, the converted model scores at least as well on dev as the pretrained
    one re-initialised would (the old default), and the trained checkpoint goes through the
    tuned pipeline (``Model.from_pretrained`` on bench's head)."""
    data = make_sample_split(tmp_path / "data")
    converted = run(tmp_path, data, cache_dir, "converted", ', head="convert"', 1)
    fresh = run(tmp_path, data, cache_dir, "fresh", "", 1)
    assert converted["initial_weights"]["head"] == "converted"
    assert fresh["initial_weights"]["head"] == "reinitialised"
    der = "DiarizationErrorRate"
    assert converted["initial_validation"][der] < fresh["initial_validation"][der] - 0.1
    assert converted["test"]["pipeline"]["DER"] is not None
