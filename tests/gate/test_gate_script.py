"""scripts/gate.sh, the gate workflow's own steps, on real runs against the committed baseline:
an unchanged recipe passes, a sabotaged (lr=1e3, diverging) copy fails, a run on another split
is refused with its reason. Plus the baseline and the workflows that use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.data import load_folder
from bench.demo import ensure_demo

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "leaderboard" / "baseline"
WORKFLOWS = ROOT / ".github" / "workflows"


def gate_sh(
    tmp_path: Path,
    cache_dir: Path,
    *changed: str,
    recipes: Path | None = None,
    data: Path | None = None,
) -> tuple[int, str, str]:
    """Run ``bash scripts/gate.sh`` from the repository root, as the workflow does."""
    env = {**os.environ, "BENCH": f"{sys.executable} -m bench.cli", "BENCH_CACHE": str(cache_dir)}
    env.pop("BENCH_DATA", None)
    if data is not None:
        env["BENCH_DATA"] = str(data)
    report = tmp_path / "gate.md"
    command = ["bash", "scripts/gate.sh", "--candidate", str(tmp_path / "candidate")]
    command += ["--report", str(report)]
    if recipes is not None:
        command += ["--recipes", str(recipes)]
    done = subprocess.run(
        [*command, "--", *changed], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200
    )
    return done.returncode, report.read_text(), done.stdout + done.stderr


def baseline_records() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(BASELINE.glob("*.json"))]


def test_the_committed_baseline_is_every_recipe_on_the_demo_at_the_gate_budget(cache_dir):
    records = baseline_records()
    assert sorted(r["name"] for r in records) == sorted(
        p.stem for p in (ROOT / "recipes").glob("*.py")
    )
    demo = load_folder(ensure_demo(cache_dir)).fingerprint
    script = (ROOT / "scripts" / "gate.sh").read_text()
    assert "BUDGET=(--epochs 1 --max-batches 4 --no-pipeline)" in script
    for record in records:
        identity = record["identity"]
        assert record["status"] == "ok", record["name"]
        assert identity["fingerprint"] == demo, record["name"]
        assert identity["max_batches"] == 4 and identity["seed"] == 0, record["name"]
        baseline = record["name"].startswith("baseline_segmentation_3_0")
        assert identity["epochs"] == (0 if baseline else 1), record["name"]


@pytest.mark.slow
def test_an_unchanged_recipe_passes(tmp_path, cache_dir):
    code, report, log = gate_sh(tmp_path, cache_dir, "recipes/adam.py", "README.md")
    assert code == 0, log
    assert "no DER regression" in report and "| adam | 0 |" in report
    assert "new recipe" not in report and "refused" not in report  # really compared
    (row,) = [line for line in report.splitlines() if line.startswith("| adam |")]
    assert row.split("|")[-2].strip() in {
        "unchanged",  # on this machine; another CPU may differ in the last bits
        "within tolerance",
        "not significant",
        "improvement",
    }


@pytest.mark.slow
def test_a_sabotaged_recipe_fails_with_the_reason(tmp_path, cache_dir):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    source = (ROOT / "recipes" / "adam.py").read_text()
    sabotaged = source.replace('Optimizer(name="adam", lr=1e-4)', 'Optimizer(name="adam", lr=1e3)')
    assert sabotaged != source
    (recipes / "adam.py").write_text(sabotaged)
    code, report, log = gate_sh(tmp_path, cache_dir, "recipes/adam.py", recipes=recipes)
    assert code == 1, log
    assert "1 regression(s)" in report
    assert "| adam | 0 |" in report and "**failed**: candidate diverged" in report


def test_a_mismatched_split_is_refused_with_the_reason(tmp_path, cache_dir):
    """A run on another split (here pyannote's sample, with a tiny recipe of the same name)."""
    from helpers import TINY_RECIPE, make_sample_split

    recipes = tmp_path / "recipes"
    recipes.mkdir()
    tiny = TINY_RECIPE.replace("seed=3", "seed=0")  # the baseline's seed: paired, then refused
    assert tiny != TINY_RECIPE
    (recipes / "adam.py").write_text(tiny)
    split = make_sample_split(tmp_path / "other_split")
    code, report, log = gate_sh(tmp_path, cache_dir, "recipes/adam.py", recipes=recipes, data=split)
    assert code == 2, log
    assert "refused" in report and "dataset fingerprints differ" in report
    assert str(split) in report  # the report says where the candidate ran


def test_nothing_to_run_passes_and_says_so(tmp_path, cache_dir):
    code, report, log = gate_sh(tmp_path, cache_dir, "README.md", "recipes/deleted_recipe.py")
    assert code == 0, log
    assert "nothing to run" in report
    assert not (tmp_path / "candidate").exists()


def test_the_workflow_runs_the_script_with_a_read_only_token_and_keeps_forks_off_the_data(
    tmp_path,
):
    gate = yaml.safe_load((WORKFLOWS / "gate.yml").read_text())
    on = gate[True]  # YAML 1.1 reads the key `on` as True
    paths = on["pull_request"]["paths"]
    for path in ("recipes/**", "bench/**", "scripts/**", "pyproject.toml"):
        assert path in paths
    assert gate["permissions"] == {"contents": "read"}
    job = gate["jobs"]["gate"]
    assert job["permissions"] == {"contents": "read"}
    assert "BENCH_RUNNER" not in json.dumps(job)  # only the route job reads it
    steps = "\n".join(step.get("run", "") for step in job["steps"])
    assert "bash scripts/gate.sh" in steps and "gh " not in steps
    route = gate["jobs"]["route"]["steps"][0]
    assert route["env"]["HEAD_REPO"] == "${{ github.event.pull_request.head.repo.full_name }}"

    def runner(head_repo: str, action: str = "synchronize", label: str = "") -> str:
        out = tmp_path / f"output-{head_repo.replace('/', '-')}-{action}-{label}"
        env = {
            "BENCH_RUNNER": "self-hosted",
            "BENCH_DATA": "/data",
            "HEAD_REPO": head_repo,
            "REPO": "owner/bench",
            "ACTION": action,
            "LABEL": label,
            "GITHUB_OUTPUT": str(out),
            "PATH": os.environ["PATH"],
        }
        subprocess.run(["bash", "-c", route["run"]], env=env, check=True, capture_output=True)
        return out.read_text()

    assert "runner=self-hosted" in runner("owner/bench") and "data=/data" in runner("owner/bench")
    fork = runner("someone/bench")
    assert "runner=ubuntu-latest" in fork and "/data" not in fork
    assert "runner=ubuntu-latest" in runner("someone/bench", "labeled", "other-label")
    assert "runner=self-hosted" in runner("someone/bench", "labeled", "gate-on-data")

    comment = yaml.safe_load((WORKFLOWS / "gate-comment.yml").read_text())
    assert comment[True]["workflow_run"]["workflows"] == [gate["name"]]
    assert comment["permissions"]["pull-requests"] == "write"
    text = json.dumps(comment)
    assert "actions/checkout" not in text and "gh pr comment" in text
