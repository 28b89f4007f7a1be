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
    from helpers import result_json

    (path,) = folder.glob("*.json")
    return result_json(path)


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


def scored(merge_minor: bool, jer: bool = True) -> dict:
    """Full-pipeline scores (bench.evaluation.scoring.Scorer) of eight 30 s files where A talks
    but for B's 1.5 s: the hypothesis finds B 0.1 s late, or (``merge_minor``) gives B's turn to A.
    Merging costs 5% DER but half of JER (B is one speaker of two). Without ``jer``: a record
    scored before JER existed."""
    import numpy as np
    from pyannote.core import Annotation, Segment, Timeline

    from bench.evaluation.scoring import Scorer

    def annotation(turns):
        built = Annotation()
        for label, start, end in turns:
            built[Segment(start, end), len(built)] = label
        return built

    scorer = Scorer({})
    for i, start in enumerate(np.random.default_rng(0).uniform(5, 20, size=8)):
        reference = annotation([("A", 0, start), ("B", start, start + 1.5), ("A", start + 1.5, 30)])
        turns = [("x", 0, 30)] if merge_minor else [
            ("x", 0, start + 0.1), ("y", start + 0.1, start + 1.5), ("x", start + 1.5, 30)
        ]  # fmt: skip
        scorer.add(f"f{i}", reference, annotation(turns), Timeline([Segment(0, 30)]))
    report = scorer.report()
    if not jer:
        del report["JER"], report["jaccard"]
        for file in report["files"].values():
            del file["JER"], file["jaccard"]
    return report


def record(folder, test: dict, name: str = "gated"):
    """A result record of ``name`` (seed 0) with these test scores, alone in ``folder``."""
    from bench.results import RunIdentity, ok_record, write_record

    identity = RunIdentity(
        name, "recipe", "h" * 16, "abc", 0, 1, None, 1, 8, "32-true", None, None, "0.1.0"
    )
    folder.mkdir(parents=True, exist_ok=True)
    write_record(
        folder,
        ok_record(name=name, identity=identity.as_dict(), dataset={"fingerprint": "abc"},
                  test=test, seed=0),
    )  # fmt: skip
    return folder


def test_jer_gate_catches_a_lost_speaker_that_der_tolerates(tmp_path):
    from bench import gate as gating

    good = {"pipeline": scored(merge_minor=False)}
    bad = {"pipeline": scored(merge_minor=True)}
    assert bad["pipeline"]["DER"] - good["pipeline"]["DER"] < 0.05
    assert bad["pipeline"]["JER"] - good["pipeline"]["JER"] > 0.4
    baseline, candidate = record(tmp_path / "b", good), record(tmp_path / "c", bad)
    options = ("--baseline", str(baseline), "--candidate", str(candidate), "--max-increase", "0.1")
    code, output = bench("gate", *options)
    assert code == 0 and "| full-pipeline DER |" in output and "within tolerance" in output
    report = tmp_path / "jer.md"
    code, output = bench("gate", *options, "--metric", "jer", "--markdown", str(report))
    assert code == 1 and "**regression**" in output and report.read_text() == output
    assert "| full-pipeline JER |" in output and "baseline JER | candidate JER" in output
    assert "test JER increase" in output
    (verdict,) = gating.compare(baseline, candidate, 0.1, measure="jer")
    assert verdict.measure == "jer" and verdict.status == "regression"
    assert verdict.baseline == pytest.approx(good["pipeline"]["JER"])
    assert verdict.comparison.difference.estimate == pytest.approx(
        bad["pipeline"]["JER"] - good["pipeline"]["JER"]
    )
    code, output = bench("gate", "--baseline", str(baseline), "--candidate", str(baseline),
                         "--metric", "jer")  # fmt: skip
    assert code == 0 and "no JER regression" in output and "| unchanged |" in output


def test_jer_gate_refuses_records_without_jer(tmp_path):
    """A record scored before JER, or without the pipeline, is refused by name; the DER gate
    still compares the same pair. A record without the compared DER is refused too (it used to
    crash the gate)."""
    scores = scored(merge_minor=False)
    candidate = record(tmp_path / "c", {"chunk": scores, "pipeline": scores})
    for kind, test in (
        ("older", {"pipeline": scored(merge_minor=False, jer=False)}),
        ("chunk", {"chunk": scored(merge_minor=False, jer=False)}),
    ):
        baseline = record(tmp_path / kind, test)
        options = ("--baseline", str(baseline), "--candidate", str(candidate))
        code, output = bench("gate", *options, "--metric", "jer")
        assert code == 2 and "**refused**" in output, output
        assert "no full-pipeline JER" in output and "baseline gated (seed 0)" in output
        assert "candidate gated" not in output
        code, output = bench("gate", *options)
        assert code == 0 and "| unchanged |" in output
    pipeline_only = record(tmp_path / "p", {"pipeline": scores})
    code, output = bench("gate", "--baseline", str(baseline), "--candidate", str(pipeline_only))
    assert code == 2 and "no chunk-level DER in candidate gated (seed 0)" in output
    code, output = bench("gate", "--baseline", str(candidate), "--candidate", str(candidate),
                         "--metric", "wer")  # fmt: skip
    assert code == 2 and "metric 'wer': expected one of der, jer" in output


def _damaged(data: dict, path: str, value: object) -> dict:
    """A deep copy of a record's JSON with the value at a dotted path replaced (``...`` drops
    the key)."""
    import copy

    data = copy.deepcopy(data)
    *parents, key = path.split(".")
    node = data
    for part in parents:
        node = node[part]
    if value is ...:
        del node[key]
    else:
        node[key] = value(node[key]) if callable(value) else value
    return data


DAMAGES = {
    "seconds_null": ("test.chunk.seconds", None, "field 'test.chunk.seconds'"),
    "seconds_missing": ("test.chunk.seconds", ..., "field 'test.chunk.seconds': Field required"),
    "files_list": ("test.chunk.files", lambda files: list(files.values()), "'test.chunk.files'"),
    "der_string": ("test.chunk.DER", "0.5", "field 'test.chunk.DER'"),
    "no_common_file": (
        "test.chunk.files",
        lambda files: {f"renamed_{uri}": scores for uri, scores in files.items()},
        "baseline and candidate share no test file",
    ),
    "name_as_path": ("name", "../../x", "is not a file name"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_record_is_refused_with_its_report_written(damage, tmp_path):
    """Malformed score blocks (null or missing ``seconds``, ``files`` as a list, no file in
    common) ended in TypeError/KeyError/AttributeError/ValueError tracebacks with exit 1, which
    CI reads as a regression, and no report; a string DER was compared as a number."""
    import json

    from helpers import ROOT

    baseline = ROOT / "leaderboard" / "baseline"
    source = next(baseline.glob("adam-*.json"))
    path, value, why = DAMAGES[damage]
    candidate = tmp_path / "candidate"
    candidate.mkdir()
    (candidate / source.name).write_text(json.dumps(_damaged(json.loads(source.read_text()),
                                                             path, value)))  # fmt: skip
    report = tmp_path / "gate.md"
    code, output = bench(
        "gate", "--baseline", str(baseline), "--candidate", str(candidate),
        "--markdown", str(report),
    )  # fmt: skip
    assert code == 2, output
    assert why in output and "Traceback" not in output
    assert report.read_text() == output


def test_update_baseline_never_writes_outside_it(tmp_path):
    """A candidate whose recipe name is ``../../x`` was written outside ``--baseline``: names
    from records are data, never paths."""
    import json

    from helpers import ROOT

    source = next((ROOT / "leaderboard" / "baseline").glob("adam-*.json"))
    candidate, baseline = tmp_path / "a" / "candidate", tmp_path / "a" / "baseline"
    candidate.mkdir(parents=True)
    data = _damaged(json.loads(source.read_text()), "name", "../../x")
    data = _damaged(data, "identity.name", "../../x")
    (candidate / "evil.json").write_text(json.dumps(data))
    code, output = bench(
        "gate", "--baseline", str(baseline), "--candidate", str(candidate), "--update-baseline"
    )
    assert code == 2 and "is not a file name" in output, output
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "a", "a/candidate", "a/candidate/evil.json",
    ]  # fmt: skip
