"""One run's fault never takes down the others or what is already recorded: exits, markup in
messages, unwritable folders, concurrent runs, corrupt results, forced re-runs that fail."""

from __future__ import annotations

import json
import os
import re
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
    # the forced attempt's folder (34 MB on the demo) is not left behind: --force never resumes
    assert not (results / "runs" / f"{good.stem}.force").exists()
    monkeypatch.undo()
    leftover = results / "runs" / f"{good.stem}.force"  # as a killed forced run leaves it
    (leftover / "checkpoints").mkdir(parents=True)

    good.write_text("{ truncated by a crash")
    outcome = CliRunner().invoke(app, ["run", str(recipe), *common(results, cache_dir, split)])
    assert outcome.exit_code == 0, outcome.output
    assert f"{good}: not a readable result" in outcome.output.replace("\n", "")
    assert f"removed {leftover}" in outcome.output.replace("\n", "") and not leftover.exists()
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


def recipe_line(text: str, field: str) -> int:
    """The line of ``field=`` in a recipe's text (as the file holds it)."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if f"{field}=" in line)


def test_limits_are_checked_before_anything_is_built(tmp_path, split, cache_dir):
    """``batch_size=10**9`` was accepted and the run climbed past 4 GB before anything said no;
    ``duration=0.001`` passed validation and failed inside training (``negative dimensions are
    not allowed``); a ``16-mixed`` refusal on CPU named neither the line nor the field."""
    texts = {
        "huge.py": ONE_EPOCH.replace("batch_size=4", "batch_size=10**9"),
        "short.py": ONE_EPOCH.replace("duration=5.0", "duration=0.001"),
        "half.py": ONE_EPOCH.replace("seed=3,", 'seed=3, precision="16-mixed",'),
    }
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
    results = tmp_path / "results"
    code, output = bench_cli(
        "run", *(str(tmp_path / n) for n in texts), "--device", "cpu",
        *common(results, cache_dir, split),
    )  # fmt: skip
    assert code == 1 and "3 of 3 run(s) failed" in output, output
    output = output.replace("\n", "")
    huge = f"{tmp_path / 'huge.py'}:{recipe_line(texts['huge.py'], 'batch_size')}"
    assert f"{huge}: field 'batch_size': a training step of 1000000000 chunks of 5 s" in output
    short = f"{tmp_path / 'short.py'}:{recipe_line(texts['short.py'], 'duration')}"
    assert (
        f"{short}: field 'duration': 0.001 s chunks are shorter than the model's receptive "
        "field (0.062 s)"
    ) in output
    half = f"{tmp_path / 'half.py'}:{recipe_line(texts['half.py'], 'precision')}"
    assert f"{half}: field 'precision': precision '16-mixed' needs a GPU" in output
    assert "Traceback" not in output and not re.search(r"epoch +1 +DER", output)
    records = [result_json(p) for p in results.glob("*.failed.json")]
    assert len(records) == 3 and all("prepare" not in r["wall_time"] for r in records)
    assert not (results / "runs").exists() or not any((results / "runs").rglob("*.ckpt"))


def test_runs_sharing_a_device_are_each_held_to_their_share_of_its_memory(
    tmp_path, split, cache_dir
):
    """``--jobs`` runs start at once on one device, each checking its memory before it builds
    anything: free memory alone would let each count what the others are about to take. A step
    that fits the machine alone but not half of it is refused when two runs share it."""
    from bench.recipe.budget import STEP_BYTES_PER_CHUNK_SECOND
    from bench.runner.device import _meminfo, available_memory
    from bench.runner.matrix import sharing

    assert [sharing(4, 13, 1), sharing(4, 2, 0), sharing(8, 13, 2), sharing(1, 5, 1)] == [
        4,
        2,
        4,
        1,
    ]
    total = _meminfo()["MemTotal"]
    alone, _ = available_memory("cpu")
    have, where = available_memory("cpu", 3)
    assert have <= total // 3 and have <= alone and "a 1/3 share: 3 runs use it at once" in where
    batch = int(0.6 * total / (STEP_BYTES_PER_CHUNK_SECOND * 5.0)) + 1  # 60 % of the machine
    recipe = tmp_path / "big.py"
    recipe.write_text(ONE_EPOCH.replace("batch_size=4", f"batch_size={batch}"))
    options = RunOptions(
        data=split, results=tmp_path / "results", device="cpu", wandb=False, progress=False,
        cache_dir=cache_dir, sharing=2,
    )  # fmt: skip
    with pytest.raises(RunFailed) as refused:
        run_recipe(recipe, options)
    record = result_json(refused.value.result)
    message = record["error"]["message"]
    assert f"a training step of {batch} chunks of 5 s" in message
    assert (
        "(a 1/2 share: 2 runs use it at once)" in message and "prepare" not in record["wall_time"]
    )


def test_seed_counts_are_refused_before_the_split_is_prepared(tmp_path):
    """``--seeds 1000000000`` climbed past 3.5 GB building the run list; ``--seeds 0`` silently
    ran the recipe's own seed. Both are refused before the demo split would be built."""
    recipe = tmp_path / "tiny.py"
    recipe.write_text(ONE_EPOCH)
    cache = tmp_path / "cache"
    for seeds, why in (
        ("0", "expected a count from 1 to 1000"),
        ("1000000000", "expected a count from 1 to 1000"),
        ("0,7,0", "a seed is listed twice"),
        ("-1,2", "expected seeds >= 0"),
    ):
        code, output = bench_cli("run", str(recipe), "--seeds", seeds, "--cache", str(cache))
        assert code == 2 and why in output and output.strip().count("\n") == 0, output
    assert not cache.exists()  # the demo was never built


def test_an_unreadable_resume_checkpoint_is_set_aside_and_the_run_restarts(
    tmp_path, split, cache_dir
):
    """A truncated ``last.ckpt`` made every later run of that identity fail with
    ``PytorchStreamReader failed reading zip archive``, forever, until ``--force``."""
    recipe = tmp_path / "tiny.py"
    recipe.write_text(ONE_EPOCH)
    results = tmp_path / "results"
    args = ["run", str(recipe), *common(results, cache_dir, split)]
    code, output = bench_cli(*args)
    assert code == 0, output
    (result,) = results.glob("*.json")
    first = result_json(result)
    result.unlink()  # as if the run had been killed after its last checkpoint
    last = results / "runs" / result.stem / "checkpoints" / "last.ckpt"
    truncated = last.read_bytes()[: last.stat().st_size // 2]
    last.write_bytes(truncated)
    code, output = bench_cli(*args)
    assert code == 0, output
    flat = output.replace("\n", "")
    assert f"{last}: not a readable checkpoint" in flat and "the run starts again" in flat
    (aside,) = (results / "runs" / result.stem).glob("unreadable-*")
    assert (aside / "checkpoints" / "last.ckpt").read_bytes() == truncated  # set aside, kept
    again = result_json(result)
    assert again["status"] == "ok" and len(again["epochs"]) == 1
    assert again["best_validation"] == first["best_validation"]  # a clean restart, same numbers


@pytest.mark.slow
def test_ctrl_c_records_the_run_and_stops_the_command(tmp_path, split, cache_dir):
    """SIGINT during training was recorded as ``sys.exit(1) was called during the run`` and
    the next recipe started; a second Ctrl-C was needed."""
    import signal

    long = ONE_EPOCH.replace("epochs=1", "epochs=200")
    (tmp_path / "a_long.py").write_text(long)
    (tmp_path / "b_next.py").write_text(ONE_EPOCH)
    results = tmp_path / "results"
    command = [sys.executable, "-m", "bench.cli", "run", str(tmp_path / "a_long.py")]
    command += [str(tmp_path / "b_next.py"), *common(results, cache_dir, split)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    watchdog = threading.Timer(300, child.kill)
    watchdog.start()
    seen = []
    for line in child.stdout:
        seen.append(line)
        if re.match(r"epoch +1 +DER", line):  # the first epoch's row: training is under way
            child.send_signal(signal.SIGINT)
            break
    rest = child.stdout.read()
    child.wait()
    watchdog.cancel()
    output = "".join(seen) + rest
    assert child.returncode == 130, output
    assert "interrupted (Ctrl-C)" in output and "Traceback" not in output
    assert "b_next" not in output  # the next recipe never started
    (record,) = [result_json(p) for p in results.glob("*.json")]
    assert record["name"] == "a_long" and record["status"] == "failed"
    assert record["error"]["type"] == "KeyboardInterrupt"
    assert "sys.exit" not in record["error"]["message"]
