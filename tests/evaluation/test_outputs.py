"""System outputs and other systems: a run's hypothesis RTTMs, ``--also-test`` splits, and
``bench score`` of any system's RTTMs beside the runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from helpers import result_json
from typer.testing import CliRunner

from bench.cli import app
from bench.data import load_folder
from bench.demo import ensure_ood_demo

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "recipes" / "baseline_segmentation_3_0.py"


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def result_path(output: str) -> Path:
    last = output.strip().splitlines()[-1]
    assert last.startswith("result: "), output
    return Path(last.removeprefix("result: "))


def run_baseline(data: Path, results: Path, cache_dir: Path, *more: str) -> tuple[Path, str]:
    output = invoke(
        *("run", str(BASELINE), "--data", str(data), "--results", str(results)),
        *("--cache", str(cache_dir), "--tune-trials", "2,2", "--no-wandb", "--no-progress"),
        *more,
    )
    return result_path(output), output


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory, cache_dir):
    """segmentation-3.0 as shipped (no training) through the tuned pipeline on the sample split,
    also tested on the demo's out-of-domain split."""
    from helpers import make_sample_split

    root = tmp_path_factory.mktemp("outputs")
    data = make_sample_split(root / "data")
    results = root / "results"
    path, output = run_baseline(data, results, cache_dir, "--also-test", "demo-ood")
    return data, results, path, output


@pytest.mark.slow
def test_a_run_writes_its_hypotheses_and_also_tests(baseline_run, cache_dir):
    data, results, path, output = baseline_run
    record = result_json(path)
    outputs = record["outputs"]
    assert outputs["format"] == "rttm"
    split = load_folder(data)
    ood = load_folder(ensure_ood_demo(cache_dir))
    expected = {
        "dev": {r.uri for r in split.files("dev")},
        "test": {r.uri for r in split.files("test")},
    }
    assert {part: set(outputs[part]) for part in expected} == expected
    assert set(outputs["also_test"]) == {ood.fingerprint}
    assert set(outputs["also_test"][ood.fingerprint]) == {r.uri for r in ood.files("test")}
    for entry in [*outputs["dev"].values(), *outputs["test"].values()]:
        file = results / entry["path"]
        assert hashlib.sha256(file.read_bytes()).hexdigest() == entry["sha256"]
        lines = file.read_text().splitlines()
        assert lines and all(line.split()[0] == "SPEAKER" for line in lines)
    # the extra split is scored like the main one, and named in the output
    extra = record["also_test"][ood.fingerprint]
    assert extra["dataset"]["fingerprint"] == ood.fingerprint
    assert set(extra["pipeline"]["files"]) == {r.uri for r in ood.files("test")}
    assert 0.0 < extra["pipeline"]["DER"] < 1.5
    assert f"also tested on {ood.name}" in output
    # --also-test does not change what the run is: same identity as without it
    assert "also_test" not in json.dumps(record["identity"])


@pytest.mark.slow
def test_bench_score_of_a_runs_rttms_gives_the_runs_own_test_der(baseline_run, tmp_path):
    data, results, path, _ = baseline_run
    record = result_json(path)
    folder = results / Path(next(iter(record["outputs"]["test"].values()))["path"]).parent
    scored = tmp_path / "scored"
    output = invoke(
        "score",
        "--data",
        str(data),
        "--hyp",
        str(folder),
        "--name",
        "rescored",
        "--about",
        "https://example.org/system",
        "--results",
        str(scored),
    )
    external = result_json(result_path(output))
    assert external["kind"] == "external" and external["status"] == "ok"
    assert external["about"] == "https://example.org/system"
    assert external["dataset"]["fingerprint"] == record["dataset"]["fingerprint"]
    ours, theirs = record["test"]["pipeline"], external["test"]["pipeline"]
    assert theirs["DER"] == pytest.approx(ours["DER"], abs=1e-12)
    variant = "collar_0.25_no_overlap"
    assert theirs[variant]["DER"] == pytest.approx(ours[variant]["DER"], abs=1e-12)
    for uri, entry in external["outputs"]["test"].items():
        mine = results / record["outputs"]["test"][uri]["path"]
        assert (scored / entry["path"]).read_text() == mine.read_text()
    # the same RTTMs from another folder are the same external system
    copy = tmp_path / "copy"
    copy.mkdir()
    for file in folder.glob("*.rttm"):
        (copy / file.name).write_bytes(file.read_bytes())
    again = result_json(
        result_path(
            invoke(
                *("score", "--data", str(data), "--hyp", str(copy), "--name", "rescored"),
                *("--results", str(scored)),
            )
        )
    )
    assert again["identity"] == external["identity"]


def test_bench_score_refuses_missing_files_unless_told(sample_split, tmp_path, cache_dir):
    split = load_folder(sample_split)
    uri = split.files("test")[0].uri
    hyp = tmp_path / "hyp.rttm"
    hyp.write_text("SPEAKER other_file 1 0.0 5.0 <NA> <NA> A <NA> <NA>\n")
    args = ("score", "--data", str(sample_split), "--hyp", str(hyp), "--name", "sys")
    refused = CliRunner().invoke(app, [*args, "--results", str(tmp_path / "r")])
    assert refused.exit_code == 2
    assert str(hyp) in refused.output and uri in refused.output
    assert not list((tmp_path / "r").glob("*.json"))
    empty = result_json(
        result_path(invoke(*args, "--results", str(tmp_path / "r"), "--missing-as-empty"))
    )
    assert empty["outputs"]["missing_as_empty"] == [uri]
    assert empty["outputs"]["ignored_uris"] == ["other_file"]
    scores = empty["test"]["pipeline"]
    assert scores["DER"] == pytest.approx(1.0) and scores["Miss"] == pytest.approx(1.0)


def test_bench_score_names_the_bad_line(sample_split, tmp_path):
    hyp = tmp_path / "hyp.rttm"
    hyp.write_text("SPEAKER a 1 0.0 5.0 <NA> <NA> A <NA> <NA>\nSPEAKER a 1 zero 5.0 <NA> <NA> B\n")
    refused = CliRunner().invoke(
        app, ["score", "--data", str(sample_split), "--hyp", str(hyp), "--name", "s"]
    )
    assert refused.exit_code == 2
    assert f"{hyp}:2:" in refused.output


@pytest.mark.slow
def test_also_test_is_added_to_a_finished_run(baseline_run, cache_dir, tmp_path):
    """A finished run asked for --also-test later is not retrained: its tuned pipeline is
    applied to the new split, with the same numbers as a run that had it from the start."""
    data, _, fresh_path, _ = baseline_run
    fresh = result_json(fresh_path)
    results = tmp_path / "results"
    first, _ = run_baseline(data, results, cache_dir)
    assert result_json(first)["also_test"] == {}
    again, output = run_baseline(data, results, cache_dir, "--also-test", "demo-ood")
    assert again == first and "skipped, its result exists" in output
    assert "adding --also-test" in output
    added = result_json(again)
    (fingerprint,) = fresh["also_test"]
    ours, theirs = added["also_test"][fingerprint]["pipeline"], fresh["also_test"][fingerprint]
    assert ours["DER"] == theirs["pipeline"]["DER"] and ours["JER"] == theirs["pipeline"]["JER"]
    assert {uri: e["sha256"] for uri, e in added["outputs"]["also_test"][fingerprint].items()} == {
        uri: e["sha256"] for uri, e in fresh["outputs"]["also_test"][fingerprint].items()
    }
    for entry in added["outputs"]["also_test"][fingerprint].values():
        assert (results / entry["path"]).is_file()
    # the test scores are untouched, and asking again does nothing more
    assert added["test"] == result_json(first)["test"]
    _, output = run_baseline(data, results, cache_dir, "--also-test", "demo-ood")
    assert "adding --also-test" not in output


def test_a_bad_also_test_split_fails_before_training(sample_split, tiny_recipe, tmp_path):
    results = tmp_path / "results"
    base = ["run", str(tiny_recipe), "--data", str(sample_split), "--results", str(results)]
    outcome = CliRunner().invoke(app, [*base, "--also-test", str(tmp_path / "nowhere")])
    assert outcome.exit_code == 2
    assert str(tmp_path / "nowhere") in outcome.output
    assert not list(results.glob("*.json"))
    outcome = CliRunner().invoke(app, [*base, "--also-test", str(sample_split)])
    assert outcome.exit_code == 2 and "the split the runs are tested on" in outcome.output


def test_also_test_that_cannot_be_added_leaves_the_result_alone(
    sample_split, tiny_recipe, tmp_path, cache_dir
):
    """A finished run without a pipeline cannot be also-tested: a warning, never a failure
    record beside the good result (the gate would read it as a failed candidate)."""
    results = tmp_path / "results"
    base = ["run", str(tiny_recipe), "--data", str(sample_split), "--results", str(results)]
    base += ["--cache", str(cache_dir), "--no-wandb", "--no-progress"]
    path = result_path(invoke(*base))
    before = path.read_bytes()
    output = invoke(*base, "--also-test", "demo-ood")
    assert "--also-test not added" in output and "no pipeline scores" in output
    assert path.read_bytes() == before
    assert not list(results.glob("*.failed.json"))
