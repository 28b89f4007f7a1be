"""NeMo recipes for real: NeMo's own training and diarization in NeMo's venv (scripts/setup_nemo.sh,
which the README's test command runs first), a small Sortformer from scratch on the demo split.

One recipe diverges while the next one trains; a run killed with Ctrl-C after its first epoch
resumes from its checkpoint; the shipped recipe runs on the offline demo with a small model
standing in for the hub weights (recorded); the NeMo result's DER is what ``bench score`` gives
its RTTMs; the leaderboard ranks it in the table of a pyannote run on the same split; the gate
judges a NeMo candidate that got worse."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, add_to_cache, bench

from bench.demo import ensure_demo
from bench.io import sha256_file
from bench.nemo import SMALL_CONFIGS
from bench.nemo.environment import NemoMissing, nemo_environment

pytestmark = pytest.mark.slow
BENCH = str(Path(sys.executable).with_name("bench"))
# 137 k parameters; learns on the demo in a few epochs of a few seconds each
SMALL = """\"\"\"A small Sortformer from scratch.\"\"\"
from bench.recipe import NemoOptimizer, NemoPostprocessing, NemoRecipe, NemoScratch

recipe = NemoRecipe(
    model="sortformer",
    init=NemoScratch(config={config}),
    optimizer=NemoOptimizer(name="adam", lr={lr}, weight_decay=0.0),
    warmup_steps=10,
    epochs={epochs},
    batch_size=4,
    session_len_sec=30.0,
    postprocessing={post},
)
"""


LOW = "NemoPostprocessing(onset=0.3, offset=0.3)"


def small(folder: Path, name: str, lr: float = 3e-3, epochs: int = 3, post: str = "None") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    config = repr(SMALL_CONFIGS["sortformer"])
    path.write_text(SMALL.format(config=config, lr=lr, epochs=epochs, post=post))
    return path


def records(folder: Path) -> dict[str, dict]:
    found = {}
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        found[f"{data['name']}.{data['status']}"] = data
    return found


@pytest.fixture(scope="module")
def demo(cache_dir) -> Path:
    try:
        nemo_environment()
    except NemoMissing as missing:  # the README's test command installs it: never skipped
        pytest.fail(f"{missing} (the full test command runs it first)")
    return ensure_demo(cache_dir)


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """No hub here: fail fast instead of retrying a connection for half a minute."""
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    yield
    if old is None:
        del os.environ["HF_HUB_OFFLINE"]
    else:
        os.environ["HF_HUB_OFFLINE"] = old


@pytest.fixture(scope="module")
def runs(tmp_path_factory, demo, cache_dir, offline) -> dict[str, Path]:
    """Recipes run through the CLI as a user runs them; the folders they wrote."""
    root = tmp_path_factory.mktemp("nemo")
    recipes, results = root / "recipes", root / "results"
    diverging = small(recipes, "diverging", lr=1e30, epochs=1)
    # after 3 epochs its speaker probabilities stay below NeMo's default onset (0.5)
    trained = small(recipes, "small", epochs=3, post=LOW)
    common = ["--data", str(demo), "--cache", str(cache_dir), "--no-progress", "--no-wandb"]
    # 1. the diverging recipe, then the small one, killed (Ctrl-C) once its first epoch is done
    first = subprocess.Popen(
        [BENCH, "run", str(diverging), str(trained), "--results", str(results), *common],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    for line in first.stdout:
        seen.append(line)
        if line.startswith("epoch   1") and any("small (" in s for s in seen):
            first.send_signal(signal.SIGINT)
            break
    rest, _ = first.communicate(timeout=120)
    (root / "first.log").write_text("".join(seen) + rest)
    # 2. the same command for the small recipe again: it resumes
    again = subprocess.run(
        [BENCH, "run", str(trained), "--results", str(results), *common],
        capture_output=True,
        text=True,
        timeout=600,
    )
    (root / "again.log").write_text(again.stdout + again.stderr)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    return {"root": root, "results": results, "first": first.returncode}


def test_a_diverging_recipe_is_recorded_and_the_next_one_runs(runs):
    found = records(runs["results"])
    diverged = found["diverging.diverged"]
    assert diverged["kind"] == "nemo" and "non-finite" in diverged["error"]["message"]
    log = (runs["root"] / "first.log").read_text()
    assert "diverged:" in log and "small (" in log and "epoch   1" in log


def test_a_killed_nemo_run_resumes_from_its_checkpoint(runs):
    assert runs["first"] == 130
    assert "interrupted (Ctrl-C)" in (runs["root"] / "first.log").read_text()
    found = records(runs["results"])
    assert "small.failed" not in found  # the good result replaces the interrupted attempt's
    log = (runs["root"] / "again.log").read_text()
    assert "resuming from" in log and "checkpoints/last.ckpt" in log
    assert "epoch   1" not in log and "epoch   3" in log  # epoch 1 came from the first attempt
    record = found["small.ok"]
    assert [row["epoch"] for row in record["epochs"]] == [1, 2, 3]
    assert record["initial_validation"]["loss/val"] > record["epochs"][-1]["loss/val"]


def test_a_nemo_result_is_scored_like_every_result(runs, demo, cache_dir):
    record = records(runs["results"])["small.ok"]
    identity = record["identity"]
    assert record["kind"] == "nemo" and identity["nemo_environment"]
    assert identity["environment"] == record["environment"]["digest"]
    nemo = record["pipeline"]
    assert nemo["nemo"]["nemo_version"] == "2.7.3" and nemo["environment"]["lock"]["matches"]
    assert nemo["source"] == {"kind": "scratch", "model": "sortformer", "config": "sortformer.yaml"}
    test = record["test"]["pipeline"]
    assert 0 <= test["DER"] < 10 and test["JER"] is not None and len(test["files"]) == 6
    assert test["FalseAlarm"] > 0  # it says something
    assert Path(record["best_checkpoint"]).is_file()
    hypotheses = runs["results"] / record["outputs"]["test"]["demo_test_000"]["path"]
    scored = runs["root"] / "scored"
    outcome = bench(
        "score", "--hyp", hypotheses.parent, "--name", "rescored", "--data", demo,
        "--results", scored, "--cache", cache_dir, "--missing-as-empty",  # empty RTTMs name no URI
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    (again,) = records(scored).values()
    assert abs(again["test"]["pipeline"]["DER"] - test["DER"]) < 1e-12
    assert abs(again["test"]["pipeline"]["JER"] - test["JER"]) < 1e-12


def test_the_shipped_recipe_runs_on_the_offline_demo_with_a_small_stand_in(runs, cache_dir):
    results = runs["root"] / "shipped"
    outcome = bench(
        "run", ROOT / "recipes" / "nemo_sortformer_finetune.py", "--results", results,
        "--cache", cache_dir, "--no-progress",
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output[-3000:]
    assert "a small sortformer from scratch stands in" in outcome.output.replace("\n", " ")
    (record,) = records(results).values()
    assert record["status"] == "ok" and record["dataset"]["demo"]
    overrides = record["overrides"]
    assert overrides["init"]["declared"]["id"] == "nvidia/diar_sortformer_4spk-v1"
    assert overrides["init"]["ran"] == {"kind": "scratch", "config": SMALL_CONFIGS["sortformer"]}
    assert overrides["epochs"] == {"declared": 20, "ran": 2}
    assert overrides["session_len_sec"] == {"declared": 90.0, "ran": 30.0}
    assert record["wandb"]["mode"] == "offline" and Path(record["wandb"]["dir"]).is_dir()


def test_the_leaderboard_ranks_nemo_beside_pyannote_and_the_gate_judges_it(
    runs, demo, cache_dir, tmp_path
):
    board = tmp_path / "board"
    board.mkdir()
    outcome = bench(
        "run", ROOT / "recipes" / "baseline_segmentation_3_0.py", "--data", demo,
        "--results", board, "--cache", cache_dir, "--tune-trials", "1,1", "--no-wandb",
        "--no-progress",
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output[-3000:]
    nemo = records(runs["results"])["small.ok"]
    (board / "small.json").write_text(json.dumps(nemo))
    outcome = bench("leaderboard", "--results", board, "--out", tmp_path / "site")
    assert outcome.exit_code == 0, outcome.output
    assert "2 results: 2 ranked on 1 split(s)" in outcome.output
    page = (tmp_path / "site" / "LEADERBOARD.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| ") and "DER" not in line]
    ours = [line for line in rows if "| small | NeMo | sortformer |" in line]
    theirs = [line for line in rows if "| baseline_segmentation_3_0 | pyannote |" in line]
    assert ours and theirs and page.count("| # | Recipe | Toolkit |") == 1  # one table
    # the gate: the same recipe, its postprocessing made to mark everyone talking everywhere
    worse = small(tmp_path / "candidate-recipes", "small", post="NemoPostprocessing(onset=0.02, "
                  "offset=0.02)")  # fmt: skip
    candidate = tmp_path / "candidate"
    outcome = bench(
        "run", worse, "--data", demo, "--results", candidate, "--cache", cache_dir, "--no-wandb",
        "--no-progress",
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output[-3000:]
    (after,) = records(candidate).values()
    assert after["test"]["pipeline"]["DER"] > nemo["test"]["pipeline"]["DER"] + 0.1
    baseline = tmp_path / "baseline"
    baseline.mkdir()
    (baseline / "small.json").write_text(json.dumps(nemo))
    outcome = bench("gate", "--baseline", baseline, "--candidate", candidate)
    assert outcome.exit_code == 1, outcome.output
    assert "**regression**" in outcome.output and "full-pipeline DER" in outcome.output
    outcome = bench("gate", "--baseline", baseline, "--candidate", baseline)
    assert outcome.exit_code == 0, outcome.output


def test_a_hub_model_in_the_local_cache_is_fine_tuned_on_the_demo(runs, cache_dir, tmp_path):
    """The real users' path, offline: nvidia/diar_sortformer_4spk-v1 resolved by huggingface_hub
    from its cache (here holding a small Sortformer this module trained) at the commit its ref
    names, fine-tuned from that file instead of the demo's stand-in."""
    trained = Path(records(runs["results"])["small.ok"]["best_checkpoint"])
    commit = hashlib.sha1(b"nemo").hexdigest()
    hub = tmp_path / "hub"
    add_to_cache(hub, "nvidia/diar_sortformer_4spk-v1", commit,
                 {"diar_sortformer_4spk-v1.nemo": trained}, "main")  # fmt: skip
    env = {**os.environ, "HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1"}
    results = tmp_path / "results"
    done = subprocess.run(
        [BENCH, "run", str(ROOT / "recipes" / "nemo_sortformer_finetune.py"), "--epochs", "1",
         "--max-batches", "2", "--results", str(results), "--cache", str(cache_dir),
         "--no-wandb", "--no-progress"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "stands in" not in done.stdout
    (record,) = records(results).values()
    assert "init" not in record["overrides"]
    assert record["identity"]["init_sha256"] == sha256_file(trained)
    source = record["pipeline"]["source"]
    assert source["kind"] == "hub" and source["revision"] == commit
    assert source["ref"] == "nvidia/diar_sortformer_4spk-v1"
