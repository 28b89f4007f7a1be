"""scripts/scale.py: the synthetic metadata it indexes, and its index part end to end (its train
and pipeline parts run in the GPU check's dry run, tests/training/test_precision.py)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch

from bench.data import load_folder

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "scale.py"


def scale():
    if "scale" not in sys.modules:
        spec = importlib.util.spec_from_file_location("scale", SCRIPT)
        sys.modules["scale"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["scale"])
    return sys.modules["scale"]


def test_synthetic_metadata_loads_as_a_split_of_distinct_sparse_files(tmp_path):
    """Files of the right length that take no disk, each its own audio (the split's leak check
    compares audio hashes), turns planned as the demo plans them."""
    root = scale().synthetic_folder(tmp_path / "s", hours=0.5, file_seconds=120.0)
    split = load_folder(root)
    recordings = [r for s in ("train", "dev", "test") for r in split.files(s)]
    assert len(recordings) == 15  # 0.5 h of 2-minute files, 4 : 1 : 1
    assert {r.duration for r in recordings} == {120.0}
    assert len({r.sha256 for r in recordings}) == 15
    wav = recordings[0].audio
    assert sf.info(str(wav)).frames == 120 * 16000
    assert wav.stat().st_blocks * 512 < 64 * 1024  # sparse: ~3.8 MB of samples, no disk
    assert all(len(r.annotation) > 10 for r in recordings)
    again = scale().synthetic_folder(tmp_path / "t", hours=0.5, file_seconds=120.0)
    assert load_folder(again).fingerprint == split.fingerprint  # deterministic


def test_index_part_measures_each_size_in_its_own_process(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "index", "--hours", "0.5,1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads((tmp_path / "scale-index.json").read_text())
    assert [r["hours"] for r in rows] == [0.5, 1.0] and [r["files"] for r in rows] == [3, 6]
    assert 1.5 < rows[1]["turns"] / rows[0]["turns"] < 2.5
    for row in rows:
        assert row["read_fingerprint_s"] > 0 and row["index_s"] > 0
        assert row["peak_rss_mib"] >= row["rss_before_mib"] > 0
    assert "| 1.0 | 6 |" in (tmp_path / "scale-index.md").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without a GPU")
def test_cuda_without_a_gpu_and_bad_numbers_are_refused(tmp_path):
    for argv, message in (
        (["pipeline", "--device", "cuda"], "no CUDA device is visible"),
        (["index", "--hours", "1,x"], "expected comma-separated numbers"),
    ):
        done = subprocess.run(
            [sys.executable, str(SCRIPT), *argv, "--out", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not list(tmp_path.iterdir())
