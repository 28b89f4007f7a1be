"""The result record: run identity, file naming, schema and migration, strict JSON, and the light
half (results, stats, gate, leaderboard) importing without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import result_json

from bench.recipe import load_recipe
from bench.results import (
    SCHEMA_VERSION,
    Record,
    ResultError,
    RunIdentity,
    failed_record,
    parse_record,
    primary_metric,
    record_stem,
    write_record,
)
from bench.results.identity import identify
from bench.runner import RunOptions, effective_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPE = """
from bench.recipe import Augmentation, BackgroundNoise, Optimizer, Pretrained, Recipe
recipe = Recipe(
    model=Pretrained(id={checkpoint!r}), optimizer=Optimizer(name="adam", lr=1e-4),
    epochs=2, batch_size=4, duration=5.0, pipeline=None,
    augmentation=Augmentation(noise=BackgroundNoise(path="noise")),
)
"""


def identity_of_recipe(path: Path, root: Path, **options) -> RunIdentity:
    recipe = load_recipe(path)
    kwargs = {"max_batches": None, "world_size": 1, "precision": "32-true", **options}
    return identify(recipe, "f" * 16, root, **kwargs)


def test_demo_caps_keep_batch_size_recipes_distinct():
    """On the demo, batch 64/128/256 recipes used to collapse to batch 8 and one recipe hash."""
    recipes = ["nadam_cosine", "nadam_cosine_bs128", "nadam_cosine_bs256"]
    ran = {}
    for name in recipes:
        recipe, overrides = effective_recipe(
            load_recipe(ROOT / "recipes" / f"{name}.py"), RunOptions(), demo=True
        )
        ran[name] = recipe
        assert overrides["batch_size"]["declared"] == overrides["batch_size"]["ran"] * 8
    assert [ran[n].batch_size for n in recipes] == [8, 16, 32]
    assert len({ran[n].content_hash() for n in recipes}) == 3


def test_identity_covers_checkpoint_and_augmentation_content(tmp_path):
    """Skip ignored a local checkpoint's content and the noise folder's content."""
    checkpoint, noise = tmp_path / "init.ckpt", tmp_path / "noise"
    noise.mkdir()
    checkpoint.write_bytes(b"first")
    (noise / "a.wav").write_bytes(b"noise 1")
    recipe = tmp_path / "r.py"
    recipe.write_text(RECIPE.format(checkpoint=str(checkpoint)))
    first = identity_of_recipe(recipe, tmp_path)
    assert first == identity_of_recipe(recipe, tmp_path)
    checkpoint.write_bytes(b"second")  # same path, other weights
    second = identity_of_recipe(recipe, tmp_path)
    assert second.init_sha256 != first.init_sha256 and second.digest != first.digest
    (noise / "a.wav").write_bytes(b"noise 2")
    third = identity_of_recipe(recipe, tmp_path)
    assert third.augmentation_sha256 != second.augmentation_sha256
    assert third.digest != second.digest


def test_identity_covers_devices_precision_caps_and_version(tmp_path):
    recipe = tmp_path / "r.py"
    (tmp_path / "noise").mkdir()
    (tmp_path / "noise" / "a.wav").write_bytes(b"x")
    recipe.write_text(RECIPE.format(checkpoint="pyannote/segmentation-3.0"))
    base = identity_of_recipe(recipe, tmp_path)
    ddp = identity_of_recipe(recipe, tmp_path, world_size=2)
    assert (base.global_batch, ddp.global_batch) == (4, 8)
    gpu = identity_of_recipe(recipe, tmp_path, precision="16-mixed")
    smoke = identity_of_recipe(recipe, tmp_path, max_batches=2)
    other_version = replace(base, bench_version="9.9.9")
    digests = {i.digest for i in (base, ddp, gpu, smoke, other_version)}
    assert len(digests) == 5
    assert smoke.smoke and not base.smoke
    assert base.differences(ddp, RunIdentity.PAIRED) == [
        "world_size: 1 != 2",
        "global_batch: 4 != 8",
    ]


def test_one_file_naming_rule(tmp_path):
    recipe = tmp_path / "r.py"
    (tmp_path / "noise").mkdir()
    (tmp_path / "noise" / "a.wav").write_bytes(b"x")
    recipe.write_text(RECIPE.format(checkpoint="pyannote/segmentation-3.0"))
    identity = identity_of_recipe(recipe, tmp_path, max_batches=3)
    assert record_stem(identity, "r", "f" * 16) == f"r-s0-e2-b3-{identity.digest}"
    assert record_stem(None, "broken", "abc") == "broken-invalid-abc"


def _failure(name: str = "x") -> object:
    try:
        raise RuntimeError("boom")
    except RuntimeError as error:
        return failed_record(
            error, "traceback", False, name=name, dataset={"fingerprint": "abc"}, recipe_file="x.py"
        )


def test_records_are_strict_json_with_non_finite_values_named(tmp_path):
    record = _failure().model_copy(update={"epochs": [{"epoch": 0, "loss/val": float("inf")}]})
    path = write_record(tmp_path, record)
    text = path.read_text()
    assert "Infinity" not in text and "NaN" not in text
    data = json.loads(text)  # strict JSON
    assert data["epochs"][0]["loss/val"] is None
    assert data["non_finite"] == ["epochs[0].loss/val"]
    assert data["schema"] == SCHEMA_VERSION and data["status"] == "failed"
    assert path.name == "x-invalid-abc.failed.json"


def test_reading_migrates_schema_1_and_names_bad_files(tmp_path):
    old = {
        "schema": 1,
        "status": "ok",
        "recipe": {"name": "old", "epochs": 3, "batch_size": 8, "seed": 1},
        "recipe_hash": "h" * 16,
        "recipe_file": "recipes/old.py",
        "overrides": {"max_batches": {"declared": None, "ran": 2}},
        "dataset": {"fingerprint": "abc"},
        "seed": 1,
        "test": {},
        "device": {"precision": "32-true", "devices": 2},
        "versions": {"bench": "0.1.0"},
    }
    (tmp_path / "old.json").write_text(json.dumps(old))
    record = result_json(tmp_path / "old.json")
    assert record["schema"] == SCHEMA_VERSION and record["name"] == "old"
    assert record["identity"]["max_batches"] == 2 and record["identity"]["global_batch"] == 16
    (tmp_path / "bad.json").write_text("{ not json")
    with pytest.raises(ResultError, match=r"bad\.json"):
        result_json(tmp_path / "bad.json")
    (tmp_path / "future.json").write_text(json.dumps({**old, "schema": 99}))
    with pytest.raises(ResultError, match=r"future\.json: unknown result schema 99"):
        result_json(tmp_path / "future.json")


def scored(der: float) -> dict:
    seconds = {"confusion": der, "false_alarm": 0.0, "missed_detection": 0.0, "total": 1.0}
    return {"DER": der, "seconds": seconds, "files": {"f": {"DER": der, "seconds": seconds}}}


def record_with(test: dict) -> Record:
    data = {"schema": SCHEMA_VERSION, "status": "ok", "name": "r", "dataset": {}, "test": test}
    return parse_record(data)


def test_primary_metric_is_pipeline_only_when_every_record_has_it():
    pipeline = record_with({"chunk": scored(0.3), "pipeline": scored(0.2)})
    chunk = record_with({"chunk": scored(0.1)})
    assert primary_metric(pipeline) == "pipeline"
    assert primary_metric(pipeline, chunk) == "chunk"
    assert primary_metric(chunk) == "chunk"


def test_light_half_imports_without_torch():
    """The Pages workflow installs only what the light half needs, and a finished run is skipped
    without torch: every module of recipe, results, gate, leaderboard (and stats, environment,
    io) imports without torch, pyannote or Lightning."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import bench.stats, bench.environment, bench.io\n"
        "for name in ('recipe', 'results', 'gate', 'leaderboard'):\n"
        "    package = importlib.import_module('bench.' + name)\n"
        "    for info in pkgutil.iter_modules(package.__path__, package.__name__ + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'pyannote', 'lightning', 'torchaudio'})\n"
        "assert not heavy, heavy\n"
        "print(len([m for m in sys.modules if m.startswith('bench.')]))\n"
    )
    outcome = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert outcome.returncode == 0, outcome.stderr
    assert int(outcome.stdout) >= 20  # the modules were imported


def test_runs_differing_only_in_seed_share_a_family(tmp_path):
    recipe = tmp_path / "r.py"
    (tmp_path / "noise").mkdir()
    (tmp_path / "noise" / "a.wav").write_bytes(b"x")
    recipe.write_text(RECIPE.format(checkpoint="pyannote/segmentation-3.0"))
    declared = load_recipe(recipe)
    ids = [
        identify(declared.with_overrides(seed=s), "f" * 16, tmp_path, max_batches=None,
                 world_size=1, precision="32-true")
        for s in (0, 1)
    ]  # fmt: skip
    assert ids[0].digest != ids[1].digest and ids[0].family == ids[1].family


def test_the_run_summary_shows_the_primary_metric(tmp_path):
    """The summary used to show chunk-level DER while the leaderboard ranked full-pipeline DER."""
    from bench.results import ok_record
    from bench.runner.matrix import summary

    def record(name: str, chunk: float, pipeline: float | None):
        identity = RunIdentity(
            name, "recipe", "h" * 16, "abc", 0, 1, None, 1, 8, "32-true", None, None, "0.1.0"
        )
        test = {"chunk": scored(chunk)} | ({"pipeline": scored(pipeline)} if pipeline else {})
        return write_record(
            tmp_path,
            ok_record(name=name, identity=identity.as_dict(), dataset={"fingerprint": "abc"},
                      test=test, seed=0),
        )  # fmt: skip

    both = [record("a", 0.30, 0.20), record("b", 0.40, 0.10)]
    table, failed = summary(both)
    headers = [str(column.header) for column in table.columns]
    assert failed == 0 and "test full-pipeline DER" in headers
    values = list(table.columns[headers.index("test full-pipeline DER")].cells)
    assert values == ["0.2000", "0.1000"]
    table, _ = summary([*both, record("c", 0.5, None)])  # one run without the pipeline
    assert "test chunk-level DER" in [str(column.header) for column in table.columns]
