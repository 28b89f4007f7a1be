"""The gate on real runs: a sabotaged recipe regresses, equal and slightly worse ones pass,
mismatched splits are refused."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.demo import generate_demo

RECIPE = """
from bench.recipe import Loss, Optimizer, Pretrained, Recipe, Scratch
recipe = Recipe(
    name="gated", model={model}, mode="powerset", loss=Loss(kind="ce"),
    optimizer=Optimizer(name="adam", lr={lr}), epochs=1, batch_size=4, duration=5.0, seed=0,
    pipeline=None,
)
"""
PRETRAINED = 'Pretrained(id="pyannote/segmentation-3.0")'


def bench(*args: str) -> tuple[int, str]:
    outcome = CliRunner().invoke(app, list(args))
    return outcome.exit_code, outcome.output


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cache_dir):
    root = tmp_path_factory.mktemp("gate")
    data = generate_demo(root / "demo", sizes={"train": 2, "dev": 1, "test": 4})
    variants = {
        "baseline": (PRETRAINED, "1e-6", data),
        "sabotaged": ("Scratch()", "1e-6", data),  # the pretrained weights dropped
        "slightly": (PRETRAINED, "1e-5", data),
        "other_split": (
            PRETRAINED,
            "1e-6",
            generate_demo(root / "other", seed=1, sizes={"train": 2, "dev": 1, "test": 2}),
        ),
    }
    folders = {}
    for name, (model, lr, split) in variants.items():
        recipe = root / f"{name}.py"
        recipe.write_text(RECIPE.format(model=model, lr=lr))
        folders[name] = root / name
        code, output = bench(
            "run",
            str(recipe),
            "--data",
            str(split),
            "--results",
            str(folders[name]),
            "--no-wandb",
            "--no-progress",
            "--max-batches",
            "2",
            "--cache",
            str(cache_dir),
        )
        assert code == 0, output
    return folders


def gate(runs, candidate: str, *extra: str) -> tuple[int, str]:
    return bench(
        "gate", "--baseline", str(runs["baseline"]), "--candidate", str(runs[candidate]), *extra
    )


def test_sabotaged_recipe_is_a_regression(runs, tmp_path):
    report = tmp_path / "report.md"
    code, output = gate(runs, "sabotaged", "--markdown", str(report))
    assert code == 1
    assert "**regression**" in output and "1 regression(s)" in output
    assert report.read_text() == output


def test_equal_candidate_passes(runs):
    code, output = gate(runs, "baseline")
    assert code == 0 and "| unchanged |" in output and "no DER regression" in output


def test_slightly_worse_candidate_passes(runs):
    from bench import gate as gating

    (verdict,) = gating.compare(runs["slightly"], runs["baseline"])  # baseline as candidate
    assert verdict.candidate > verdict.baseline  # really worse...
    assert verdict.status in {"within tolerance", "not significant"}  # ...but not beyond doubt
    code, output = bench(
        "gate", "--baseline", str(runs["slightly"]), "--candidate", str(runs["baseline"])
    )
    assert code == 0 and "no DER regression" in output


def test_mismatched_fingerprint_is_refused(runs):
    code, output = gate(runs, "other_split")
    assert code == 2 and "dataset fingerprints differ" in output


def test_update_baseline_copies_the_candidate(runs, tmp_path):
    baseline = tmp_path / "baseline"

    def update(source: str) -> None:
        code, output = bench(
            "gate",
            "--update-baseline",
            "--candidate",
            str(runs[source]),
            "--baseline",
            str(baseline),
        )
        assert code == 0 and "baseline: " in output
        assert len(list(baseline.glob("*.json"))) == 1  # one file a recipe, replaced in place

    update("sabotaged")
    assert bench("gate", "--baseline", str(baseline), "--candidate", str(runs["sabotaged"]))[0] == 0
    update("baseline")
    assert bench("gate", "--baseline", str(baseline), "--candidate", str(runs["sabotaged"]))[0] == 1
