"""bench.io: atomic writes keep the umask's permissions, folder swaps, the cache folder, the
finiteness check."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import pytest

from bench.io import (
    atomic_write_text,
    cache_root,
    clear_leftovers,
    finite_json,
    is_number,
    staging_dir,
    swap_dir,
    write_json,
)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_keep_the_umasks_permissions(tmp_path, umask_022):
    """``mkstemp`` alone leaves 0600: a team's shared results folder could not read them."""
    text = atomic_write_text(tmp_path / "a" / "r.json", "x")
    data = write_json(tmp_path / "d.json", {"DER": math.nan})
    assert mode(text) == mode(data) == 0o644
    assert json.loads(data.read_text()) == {"DER": None}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "d.json"]  # no temporary left
    os.umask(0o077)
    assert mode(atomic_write_text(tmp_path / "private.txt", "x")) == 0o600


def test_a_staged_folder_replaces_the_old_one_or_nothing(tmp_path, umask_022):
    target = tmp_path / "site"
    target.mkdir()
    (target / "old").write_text("old")
    with staging_dir(target) as stage:
        (stage / "new").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new"] and mode(target) == 0o755
    with pytest.raises(RuntimeError), staging_dir(target) as stage:
        (stage / "half").write_text("half")
        raise RuntimeError("render failed")
    assert [p.name for p in target.iterdir()] == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # no staging folder left
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    swap_dir(fresh, tmp_path / "moved")
    assert (tmp_path / "moved").is_dir() and not fresh.exists()


def test_an_empty_bench_cache_means_unset(monkeypatch, tmp_path):
    """The audio cache and the demo used to disagree: one went to the working folder."""
    monkeypatch.setenv("BENCH_CACHE", "")
    assert cache_root() == Path.home() / ".cache" / "bench"
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    assert cache_root() == tmp_path and cache_root(tmp_path / "x") == tmp_path / "x"


def test_a_number_is_finite_and_not_a_bool():
    assert is_number(0) and is_number(0.5)
    assert not any(map(is_number, (True, None, "0.5", math.nan, math.inf, [0.1])))
    assert finite_json({"a": [1.0, math.inf]}) == ({"a": [1.0, None]}, ["a[1]"])


def test_a_checkpoint_naming_the_old_heads_module_still_imports():
    """bench 0.3.0 checkpoints record ``bench.heads`` as their model's module."""
    import importlib

    import bench.models.weights  # noqa: F401 (what loads checkpoints)

    old = importlib.import_module("bench.heads")
    assert old.PowersetInitialisedPyanNet.__module__ == "bench.models.heads"


def test_what_a_killed_writer_left_is_cleared_by_the_next_one(tmp_path, umask_022):
    """A killed ``bench data import`` left a hidden staging folder (~690 MB on the demo-sized
    probe), a killed ``bench leaderboard`` a ``.site.new-*``: the next writer clears them. A
    live writer's folder and another host's are left alone; a target moved aside by a writer
    killed between its two renames is put back first."""
    import socket
    import subprocess
    import sys

    host = socket.gethostname()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    target = tmp_path / "out"
    killed = tmp_path / f".out.new-{host}-{dead}-abc123"
    (killed / "train").mkdir(parents=True)
    live = tmp_path / f".out.new-{host}-{os.getpid()}-def456"
    elsewhere = tmp_path / f".out.new-otherhost-{dead}-ghi789"
    live.mkdir()
    elsewhere.mkdir()
    moved = tmp_path / f".out.old-{host}-{dead}-0a1b2c3d"
    moved.mkdir()
    (moved / "kept").write_text("the only copy")  # the target itself is missing
    assert clear_leftovers(target) == [killed]
    assert (target / "kept").read_text() == "the only copy"
    with staging_dir(target) as stage:
        (stage / "new").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, elsewhere.name, "out"])
    assert [p.name for p in target.iterdir()] == ["new"]
