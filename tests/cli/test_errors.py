"""Every command's user-facing failure is one line naming the file and a non-zero exit, never a
traceback: a read-only or full results folder, site or report (the gate's report is still
printed), and Ctrl-C (tests/runner/test_robustness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import ROOT, SAMPLE_RTTM, bench, make_sample_split

BASELINE = ROOT / "leaderboard" / "baseline"
WHY = {"read_only_dir": "Read-only file system", "full_dir": "No space left on device"}


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


@pytest.mark.parametrize("where", ["read_only_dir", "full_dir"])
def test_the_gate_report_is_printed_when_its_file_cannot_be_written(where, request):
    """``bench gate --markdown`` into a read-only folder or onto a full disk ended in an
    ``OSError`` traceback with exit 1 (read by CI as a regression) and no report at all."""
    folder: Path = request.getfixturevalue(where)
    target = folder / "gate.md"
    outcome = bench("gate", "--baseline", BASELINE, "--candidate", BASELINE, "--markdown", target)
    assert outcome.exit_code == 2, outcome.output
    assert "### bench gate" in outcome.output and "Traceback" not in outcome.output
    assert last_line(outcome.output).startswith("error: ") and WHY[where] in outcome.output
    assert str(folder) in last_line(outcome.output)


@pytest.mark.parametrize("where", ["read_only_dir", "full_dir"])
def test_the_leaderboard_says_in_one_line_that_its_site_cannot_be_written(where, request):
    folder: Path = request.getfixturevalue(where)
    outcome = bench("leaderboard", "--results", BASELINE, "--out", folder / "site")
    assert outcome.exit_code == 2, outcome.output
    line = last_line(outcome.output)
    assert line.startswith("error: ") and WHY[where] in line and str(folder) in line
    assert "Traceback" not in outcome.output
    assert not (folder / "site").exists() and not list(folder.glob(".site.new-*"))


def test_bench_score_on_a_full_disk_is_one_line(full_dir, tmp_path):
    split = make_sample_split(tmp_path / "data")
    hypotheses = tmp_path / "hyp"
    hypotheses.mkdir()
    (hypotheses / "sample_test.rttm").write_text(
        SAMPLE_RTTM.read_text().replace("sample ", "sample_test ")
    )
    outcome = bench(
        "score", "--hyp", hypotheses, "--name", "vendor", "--data", split,
        "--results", full_dir, "--cache", tmp_path / "cache",
    )  # fmt: skip
    assert outcome.exit_code == 2, outcome.output
    line = last_line(outcome.output)
    assert line.startswith("error: ") and WHY["full_dir"] in line and str(full_dir) in line
    assert "Traceback" not in outcome.output and not list(full_dir.glob("*.json"))
