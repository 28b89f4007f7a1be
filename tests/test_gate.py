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


def copies(folder, results: list[dict]):
    """Write result records (copies of real ones, relabelled) into a fresh folder."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    for i, result in enumerate(results):
        (folder / f"r{i}.json").write_text(json.dumps(result))
    return folder


def relabel(result: dict, **identity) -> dict:
    import json

    copy = json.loads(json.dumps(result))
    copy["identity"].update(identity)
    copy["seed"] = copy["identity"]["seed"]
    return copy


def only(folder) -> dict:
    from bench.results import read_result

    (path,) = folder.glob("*.json")
    return read_result(path)


def test_pairs_by_recipe_and_seed(runs, tmp_path):
    """The gate used to compare whichever seed finished last."""
    base = only(runs["baseline"])
    candidate = copies(tmp_path / "cand", [relabel(only(runs["sabotaged"]), seed=1)])
    code, output = bench("gate", "--baseline", str(runs["baseline"]), "--candidate", str(candidate))
    assert code == 2 and "no common seed (baseline [0], candidate [1])" in output
    assert base["seed"] == 0


def test_refuses_pairs_that_are_different_experiments(runs, tmp_path):
    """Epochs, batch caps and world size must match; the report names the difference."""
    sabotaged = only(runs["sabotaged"])
    for change, named in (
        ({"epochs": 2}, "epochs: 1 != 2"),
        ({"max_batches": None}, "max_batches: 2 != None"),
        ({"world_size": 2, "global_batch": 8}, "world_size: 1 != 2; global_batch: 4 != 8"),
    ):
        candidate = copies(tmp_path / str(change), [relabel(sabotaged, **change)])
        report = tmp_path / f"{change}.md"
        code, output = bench(
            "gate",
            "--baseline",
            str(runs["baseline"]),
            "--candidate",
            str(candidate),
            "--markdown",
            str(report),
        )
        assert code == 2 and named in output, output
        assert report.read_text() == output  # the report is written for refusals too


def test_several_seeds_compare_the_mean_over_seeds(runs, tmp_path):
    from bench import gate as gating

    base, bad = only(runs["baseline"]), only(runs["sabotaged"])
    baseline = copies(tmp_path / "b", [relabel(base, seed=s) for s in (0, 1, 2)])
    candidate = copies(tmp_path / "c", [relabel(bad, seed=s) for s in (0, 1, 2)])
    (verdict,) = gating.compare(baseline, candidate)
    assert verdict.seeds == (0, 1, 2) and verdict.status == "regression"
    assert verdict.comparison.difference.estimate == pytest.approx(
        bad["test"]["chunk"]["DER"] - base["test"]["chunk"]["DER"]
    )
    (same,) = gating.compare(baseline, baseline)
    assert same.status == "unchanged"


def test_a_failed_candidate_is_a_regression(runs, tmp_path, cache_dir):
    """A recipe that failed in the candidate used to be left out of the report silently."""
    broken = tmp_path / "gated.py"
    broken.write_text(RECIPE.format(model='Pretrained(id="/nonexistent/model.ckpt")', lr="1e-6"))
    data = only(runs["baseline"])["dataset"]["source"]
    candidate = tmp_path / "candidate"
    code, output = bench(
        "run",
        str(broken),
        "--data",
        data,
        "--results",
        str(candidate),
        "--no-wandb",
        "--no-progress",
        "--max-batches",
        "2",
        "--cache",
        str(cache_dir),
    )
    assert code == 1, output
    code, output = bench("gate", "--baseline", str(runs["baseline"]), "--candidate", str(candidate))
    assert code == 1 and "1 regression(s)" in output
    assert "**failed**: candidate failed" in output and "nonexistent" in output


def test_a_new_recipe_passes_with_its_line_and_an_unreadable_file_is_refused(runs, tmp_path):
    new = copies(tmp_path / "new", [dict(only(runs["baseline"]), name="brand_new")])
    code, output = bench("gate", "--baseline", str(runs["baseline"]), "--candidate", str(new))
    assert code == 0 and "new recipe, no baseline yet" in output
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "x.json").write_text("{ truncated")
    report = tmp_path / "report.md"
    code, output = bench(
        "gate",
        "--baseline",
        str(runs["baseline"]),
        "--candidate",
        str(corrupt),
        "--markdown",
        str(report),
    )
    assert code == 2 and "x.json" in report.read_text() and "refused" in report.read_text()


def test_an_empty_baseline_makes_every_recipe_new(runs, tmp_path):
    empty = tmp_path / "baseline"
    empty.mkdir()
    code, output = bench("gate", "--baseline", str(empty), "--candidate", str(runs["baseline"]))
    assert code == 0 and "| gated | 0 |" in output and "new recipe, no baseline yet" in output
