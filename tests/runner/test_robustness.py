"""One run's fault never takes down the others or what is already recorded: exits, markup in
messages, unwritable folders, concurrent runs, corrupt results, forced re-runs that fail."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import TINY_RECIPE, make_sample_split, result_json
from typer.testing import CliRunner

import bench.runner.stages
from bench.cli import app
from bench.runner import RunFailed, RunOptions, run_recipe

ONE_EPOCH = TINY_RECIPE.replace("epochs=2", "epochs=1")


def bench_cli(*args: str) -> tuple[int, str]:
    outcome = CliRunner().invoke(app, list(args))
    return outcome.exit_code, outcome.output


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    return make_sample_split(tmp_path_factory.mktemp("robust") / "data")


def common(results: Path, cache_dir: Path, split: Path) -> list[str]:
    return [
        "--data", str(split), "--results", str(results), "--no-wandb", "--no-progress",
        "--cache", str(cache_dir),
    ]  # fmt: skip


def test_an_exiting_recipe_and_markup_in_errors_do_not_stop_the_others(tmp_path, split, cache_dir):
    """``sys.exit(3)`` in a recipe ended the whole command; a message holding Rich markup
    raised MarkupError while being printed. Both are recorded, and the next recipe runs."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "a_exits.py").write_text("import sys\nsys.exit(3)\n")
    (recipes / "b_markup.py").write_text('raise RuntimeError("[/bold] no [red]markup")\n')
    (recipes / "c_fine.py").write_text(ONE_EPOCH)
    results = tmp_path / "results"
    code, output = bench_cli("run", str(recipes), *common(results, cache_dir, split))
    assert code == 1, output
    assert "[/bold] no [red]markup" in output
    records = {result_json(p)["name"]: result_json(p) for p in results.glob("*.json")}
    assert {n: r["status"] for n, r in records.items()} == {
        "a_exits": "failed",
        "b_markup": "failed",
        "c_fine": "ok",
    }
    assert "sys.exit(3)" in records["a_exits"]["error"]["message"]
    assert "2 of 3 run(s) failed" in output


def test_an_unwritable_results_folder_is_one_line_before_training(tmp_path, split, cache_dir):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    recipe = tmp_path / "tiny.py"
    recipe.write_text(ONE_EPOCH)
    code, output = bench_cli("run", str(recipe), *common(blocker / "results", cache_dir, split))
    assert code == 2
    assert output.strip().count("\n") == 0 and "is not writable" in output, output
    assert "Traceback" not in output


def test_a_second_process_waits_for_the_first_then_skips(tmp_path, split, cache_dir):
    """Two ``bench run``s of one recipe into one folder both trained, and the second could
    resume from the first one's live checkpoint. Here this test is the first process: it holds
    the run's lock while a real second ``bench run`` starts, then records the result."""
    from filelock import FileLock

    recipe = tmp_path / "tiny.py"
    recipe.write_text(ONE_EPOCH)
    elsewhere = run_recipe(
        recipe,
        RunOptions(
            data=split, results=tmp_path / "a", wandb=False, progress=False, cache_dir=cache_dir
        ),
    )
    results = tmp_path / "b"
    (results / "runs").mkdir(parents=True)
    lock = FileLock(str(results / "runs" / f"{elsewhere.stem}.lock"))
    command = [sys.executable, "-m", "bench.cli", "run", str(recipe)]
    command += common(results, cache_dir, split)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with lock:
        second = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        watchdog = threading.Timer(300, second.kill)
        watchdog.start()
        seen = []
        for line in second.stdout:
            seen.append(line)
            if "waiting for it" in line:
                break
        assert "another bench process is running it; waiting" in "".join(seen), seen
        time.sleep(0.5)
        assert second.poll() is None  # still waiting on the lock
        shutil.copy(elsewhere, results / elsewhere.name)  # "the first process" records it
    rest = second.stdout.read()
    second.wait()
    watchdog.cancel()
    assert second.returncode == 0, "".join(seen) + rest
    assert "skipped, another process recorded it" in rest
    assert "epoch" not in "".join(seen) + rest  # it never trained
    assert [p.name for p in results.glob("*.json")] == [elsewhere.name]
    assert not [p for p in (results / "runs").iterdir() if p.suffix != ".lock"]


def test_forced_rerun_that_fails_keeps_the_good_result(tmp_path, split, cache_dir, monkeypatch):
    """``--force`` deleted the run folder and overwrote the result before the new run had
    succeeded; a corrupt result was reported as the recipe's failure, naming no file."""
    recipe = tmp_path / "tiny.py"
    recipe.write_text(ONE_EPOCH)
    results = tmp_path / "results"
    options = RunOptions(
        data=split, results=results, wandb=False, progress=False, cache_dir=cache_dir
    )
    good = run_recipe(recipe, options)
    before = good.read_bytes()
    checkpoint = Path(result_json(good)["best_checkpoint"])
    assert checkpoint.is_file()

    def broken(run):
        raise RuntimeError("injected evaluation failure")

    monkeypatch.setattr(bench.runner.stages, "evaluate", broken)
    forced = RunOptions(**{**options.__dict__, "force": True})
    with pytest.raises(RunFailed) as failure:
        run_recipe(recipe, forced)
    assert good.read_bytes() == before and checkpoint.is_file()  # nothing recorded was lost
    assert failure.value.result.name == good.name.replace(".json", ".failed.json")
    assert result_json(failure.value.result)["status"] == "failed"
    monkeypatch.undo()

    good.write_text("{ truncated by a crash")
    outcome = CliRunner().invoke(app, ["run", str(recipe), *common(results, cache_dir, split)])
    assert outcome.exit_code == 0, outcome.output
    assert f"{good}: not a readable result" in outcome.output.replace("\n", "")
    rerun = result_json(good)
    assert rerun["status"] == "ok" and Path(rerun["best_checkpoint"]).is_file()
    assert not failure.value.result.exists()  # the good result supersedes the failed attempt
    assert json.loads(good.read_text())["non_finite"] == []

    code, output = bench_cli("run", str(recipe), "--force", *common(results, cache_dir, split))
    assert code == 0, output
    forced_result = result_json(good)
    assert forced_result["finished"] > rerun["finished"]
    assert Path(forced_result["best_checkpoint"]).is_file()
    assert Path(forced_result["best_checkpoint"]).is_relative_to(results / "runs" / good.stem)
    leftovers = [p.name for p in (results / "runs").iterdir() if p.suffix in (".force", ".old")]
    assert leftovers == []


@pytest.mark.slow
def test_a_diverged_recipe_is_flagged_never_ranked_and_the_next_one_runs(tmp_path, cache_dir):
    """Adam at lr=1e3 used to be recorded ``ok`` (the clamped BCE stays finite) and ranked
    first. Both recipes here are the reference adam recipe, one sabotaged."""
    from bench.demo import generate_demo

    data = generate_demo(tmp_path / "demo", sizes={"train": 4, "dev": 2, "test": 2})
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    sane = (Path(__file__).parents[2] / "recipes" / "adam.py").read_text()
    sane = sane.replace("batch_size=64", "batch_size=8").replace("duration=10.0", "duration=5.0")
    (recipes / "a_adam_lr1e3.py").write_text(sane.replace("lr=1e-4", "lr=1e3"))
    (recipes / "b_adam.py").write_text(sane)
    results = tmp_path / "results"
    code, output = bench_cli(
        "run", str(recipes), "--data", str(data), "--results", str(results), "--epochs", "2",
        "--max-batches", "4", "--no-pipeline", "--no-wandb", "--no-progress",
        "--cache", str(cache_dir),
    )  # fmt: skip
    assert code == 1, output
    records = {result_json(p)["name"]: result_json(p) for p in results.glob("*.json")}
    diverged = records["a_adam_lr1e3"]
    assert diverged["status"] == "diverged", diverged.get("error")
    assert "initial" in diverged["error"]["message"]  # the reason names its evidence
    assert records["b_adam"]["status"] == "ok"
    from bench import leaderboard

    board = leaderboard.build_board(*leaderboard.load_runs(results))
    assert [r.run.name for g in board.groups for r in g.ranked] == ["b_adam"]
    assert [run.name for run in board.failed] == ["a_adam_lr1e3"]
