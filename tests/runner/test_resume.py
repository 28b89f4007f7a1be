"""Interrupted runs resume to the same numbers; finished ones are skipped unless forced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import result_json

ROOT = Path(__file__).resolve().parents[2]


def command(recipe: Path, data: Path, results: Path, cache: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.cli",
        "run",
        str(recipe),
        "--data",
        str(data),
        "--results",
        str(results),
        "--cache",
        str(cache),
        "--no-wandb",
        "--no-progress",
        *extra,
    ]


def run(args: list[str]) -> tuple[str, Path]:
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    # the closing line (forwarded worker output may come after it)
    last = [line for line in done.stdout.splitlines() if line.startswith("result")][-1]
    return done.stdout, Path(last.removeprefix("result: "))


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, sample_split, cache_dir):
    from helpers import TINY_RECIPE

    recipe = tmp_path / "tiny.py"
    recipe.write_text(TINY_RECIPE.replace("epochs=2", "epochs=4"))
    _, reference = run(command(recipe, sample_split, tmp_path / "straight", cache_dir))

    results = tmp_path / "killed"
    process = subprocess.Popen(
        command(recipe, sample_split, results, cache_dir),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    checkpoints = results / "runs"
    while time.monotonic() < deadline and process.poll() is None:
        if list(checkpoints.glob("*/checkpoints/last.ckpt")):
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not list(results.glob("*.json")), "a killed run must leave no result"

    output, resumed = run(command(recipe, sample_split, results, cache_dir))
    assert "resuming from" in output
    a, b = result_json(reference), result_json(resumed)
    assert [row["epoch"] for row in b["epochs"]] == [0, 1, 2, 3]
    assert b["epochs"] == a["epochs"]
    assert b["initial_validation"] == a["initial_validation"]
    assert b["test"] == a["test"]


def test_existing_result_is_skipped_unless_forced(tmp_path, sample_split, tiny_recipe, cache_dir):
    args = command(tiny_recipe, sample_split, tmp_path, cache_dir, "--epochs", "1")
    _, first = run(args)
    before = result_json(first)
    output, again = run(args)
    assert "skipped" in output and again == first
    assert result_json(again)["finished"] == before["finished"]
    output, forced = run([*args, "--force"])
    assert "skipped" not in output and forced == first
    after = result_json(forced)
    assert after["finished"] != before["finished"]
    assert after["epochs"] == before["epochs"] and after["test"] == before["test"]


@pytest.mark.slow
def test_parallel_jobs_and_seeds_match_sequential_runs(tmp_path, sample_split, cache_dir):
    from helpers import TINY_RECIPE

    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "one.py").write_text(TINY_RECIPE.replace("epochs=2", "epochs=1"))
    (folder / "two.py").write_text(
        TINY_RECIPE.replace("epochs=2", "epochs=1").replace("lr=1e-3", "lr=3e-3")
    )
    serial_out, _ = run(
        command(folder, sample_split, tmp_path / "serial", cache_dir, "--seeds", "0,5")
    )
    parallel_out, _ = run(
        command(
            folder, sample_split, tmp_path / "parallel", cache_dir, "--seeds", "0,5", "--jobs", "2"
        )
    )
    assert "bench run summary" in serial_out and "±" in serial_out
    assert "[one s5] " in parallel_out  # each job's lines say which job printed them
    serial = {p.name: result_json(p) for p in (tmp_path / "serial").glob("*.json")}
    parallel = {p.name: result_json(p) for p in (tmp_path / "parallel").glob("*.json")}
    assert len(serial) == 4 and serial.keys() == parallel.keys()
    assert {r["seed"] for r in serial.values()} == {0, 5}
    for name, result in serial.items():
        other = parallel[name]
        # one thread per job instead of two: the same numbers up to float summation order
        assert other["test"]["chunk"]["DER"] == pytest.approx(
            result["test"]["chunk"]["DER"], abs=1e-4
        )
        for a, b in zip(result["epochs"], other["epochs"], strict=True):
            assert b["loss/train"] == pytest.approx(a["loss/train"], rel=1e-4)


@pytest.mark.slow
def test_ray_executor_matches_local_runs(tmp_path, sample_split, cache_dir):
    """Each run as a task on a local Ray instance; results come back to the results folder."""
    from helpers import TINY_RECIPE

    recipe = tmp_path / "tiny.py"
    recipe.write_text(TINY_RECIPE.replace("epochs=2", "epochs=1"))
    _, local = run(command(recipe, sample_split, tmp_path / "local", cache_dir))
    output, remote = run(
        command(recipe, sample_split, tmp_path / "ray", cache_dir, "--executor", "ray")
    )
    assert "ray: 1 task(s)" in output
    a, b = result_json(local), result_json(remote)
    assert remote.parent == (tmp_path / "ray").resolve()
    assert b["test"]["chunk"]["DER"] == pytest.approx(a["test"]["chunk"]["DER"], abs=1e-4)
    assert [r["epoch"] for r in b["epochs"]] == [r["epoch"] for r in a["epochs"]]


@pytest.mark.slow
def test_one_run_on_two_ddp_processes(tmp_path, sample_split, tiny_recipe, cache_dir):
    """Lightning's DDP strategy from the run options (two CPU processes, gloo): one result."""
    args = command(
        tiny_recipe,
        sample_split,
        tmp_path,
        cache_dir,
        "--device",
        "cpu",
        "--devices",
        "2",
        "--strategy",
        "ddp",
    )
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    log = done.stdout + done.stderr
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in log and "GLOBAL_RANK: 1, MEMBER: 2/2" in log
    (path,) = tmp_path.glob("*.json")
    result = result_json(path)
    assert result["status"] == "ok" and result["device"]["devices"] == 2
    assert [row["epoch"] for row in result["epochs"]] == [0, 1]
    assert all(row["loss/train"] is not None for row in result["epochs"])
    # --force: every process re-runs (none skips), and only the first clears the run folder
    forced = subprocess.run(
        [*args, "--force"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert forced.returncode == 0, forced.stdout[-2000:] + forced.stderr[-2000:]
    assert "skipped" not in forced.stdout + forced.stderr
    assert result_json(path)["finished"] != result["finished"]
    assert Path(result_json(path)["best_checkpoint"]).is_file()


def test_a_ray_task_hands_back_the_hypotheses_its_result_lists(tmp_path):
    """A Ray worker's disk may not be the driver's: the result comes back with the RTTMs its
    ``outputs`` list, and the driver writes both into its own results folder."""
    from pyannote.core import Annotation, Segment

    from bench.results import external_record, write_record
    from bench.runner import write_hypotheses
    from bench.runner.matrix import pack_result, unpack_result

    worker, driver = tmp_path / "worker", tmp_path / "driver"
    speech = Annotation(uri="a")
    speech[Segment(0.5, 2.0)] = "spk1"
    found = {"dev": {"d": speech}, "test": {"a": speech}, "also_test": {"beef": {"x": speech}}}
    outputs = write_hypotheses(worker / "runs" / "sys", "sys", found)
    outputs["test"]["leak"] = {"path": "../secret.rttm", "sha256": "0" * 64}  # never packed
    (tmp_path / "secret.rttm").write_text("not the worker's to send\n")
    dataset = {"name": "hand", "fingerprint": "f00dcafe0001", "subsets": {}}
    record = external_record("sys", dataset, {}, outputs, content={"a": "0"})
    path = write_record(worker, record)
    returned = pack_result(worker, path)
    assert sorted(returned[2]) == [
        "runs/sys/hypotheses/also_test/beef/x.rttm",
        "runs/sys/hypotheses/dev/d.rttm",
        "runs/sys/hypotheses/test/a.rttm",
    ]
    back = unpack_result(driver, returned)
    assert back == driver / path.name and back.read_text() == path.read_text()
    for relative, text in returned[2].items():
        assert (driver / relative).read_text() == text == (worker / relative).read_text()
    assert "SPEAKER a 1 0.5 1.5" in (driver / "runs/sys/hypotheses/test/a.rttm").read_text()
