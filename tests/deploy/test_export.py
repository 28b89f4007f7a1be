"""bench export / bench diarize / PretrainedPipeline: a run's tuned pipeline as a folder that
plain pyannote.audio loads in a fresh process with the run's own hypotheses, ranked on the
leaderboard with the run's test DER; third-party folders refused unless trusted; hub pushes
that fail in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, bench, make_sample_split, result_json

from bench.results.identity import tree_sha256

# segmentation-3.0, its head converted, one epoch; the pipeline tuned with two trials a stage
RECIPE = """
from bench.recipe import Loss, Optimizer, Pipeline, Pretrained, Recipe, VadLoss
recipe = Recipe(
    model=Pretrained(id="pyannote/segmentation-3.0", head="convert"),
    optimizer=Optimizer(name="adam", lr=1e-5), epochs=1, batch_size=4, duration=5.0,
    loss=Loss(kind="bce"), vad_loss=VadLoss(), pipeline=Pipeline(tune_trials=(2, 2)), seed=0,
)
"""
FRESH = """
import json, sys, torch
from pyannote.audio import Pipeline
from bench.data.audio import decode
pipeline = Pipeline.from_pretrained(sys.argv[1])
out = pipeline({"waveform": torch.from_numpy(decode(sys.argv[2]))[None], "sample_rate": 16000,
                "uri": "sample_test"})
print(json.dumps([[s.start, s.end, label] for s, _, label
                  in out.speaker_diarization.itertracks(yield_label=True)]))
"""


def pipeline_recipe(folder: Path) -> str:
    head = "from bench.recipe import PretrainedPipeline\n"
    return head + f'recipe = PretrainedPipeline(path="{folder}")\n'


def same_segments(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> bool:
    """Every segment within 1e-6 s."""
    return len(a) == len(b) and all(
        abs(x - y) < 1e-6 for p, q in zip(a, b, strict=True) for x, y in zip(p, q, strict=True)
    )


def segments(rttm: Path) -> list[tuple[float, float]]:
    rows = [line.split() for line in rttm.read_text().splitlines() if line.strip()]
    return sorted((float(r[3]), float(r[3]) + float(r[4])) for r in rows)


def run(*args: object) -> str:
    outcome = bench(*args)
    assert outcome.exit_code == 0, outcome.output
    return outcome.output


@pytest.mark.slow
def test_an_exported_run_is_the_run_everywhere_it_goes(tmp_path, cache_dir):
    data = make_sample_split(tmp_path / "data")
    (tmp_path / "tuned.py").write_text(RECIPE)
    results = tmp_path / "results"
    common = ["--data", data, "--results", results, "--no-wandb", "--no-progress",
              "--cache", cache_dir]  # fmt: skip
    run("run", tmp_path / "tuned.py", *common)
    (result,) = results.glob("tuned-*.json")
    record = result_json(result)
    before = tree_sha256(results)

    # bench export: config, stripped checkpoint, CAM++, card, provenance
    exported = tmp_path / "exported"
    run("export", result, "--out", exported)
    files = sorted(p.relative_to(exported).as_posix() for p in exported.rglob("*") if p.is_file())
    assert files == [
        "README.md", "bench.json", "config.yaml", "embedding/campplus_cn_en_common.pt",
        "segmentation/pytorch_model.bin",
    ]  # fmt: skip
    card = (exported / "README.md").read_text()
    der = round(100 * record["test"]["pipeline"]["DER"], 2)
    assert card.startswith("---\nlibrary_name: pyannote-audio\n")
    assert 'base_model: "pyannote/segmentation-3.0"' in card and 'license: "mit"' in card
    assert f"      value: {der}\n" in card and record["dataset"]["fingerprint"] in card
    assert "| epoch | loss/val/segmentation |" in card  # the reference write-up's columns
    provenance = json.loads((exported / "bench.json").read_text())
    assert provenance["record"]["identity"] == record["identity"]
    assert tree_sha256(results) == before  # exporting changes nothing recorded

    # plain pyannote.audio, a fresh process, offline: the run's own test hypotheses
    wav = data / "test" / "wav" / "sample_test.wav"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    fresh = subprocess.run([sys.executable, "-c", FRESH, str(exported), str(wav)], env=env,
                           capture_output=True, text=True, check=True)  # fmt: skip
    loaded = sorted((start, end) for start, end, _ in json.loads(fresh.stdout.splitlines()[-1]))
    test_rttm = results / record["outputs"]["test"]["sample_test"]["path"]
    recorded = segments(test_rttm)
    assert loaded and same_segments(loaded, recorded)

    # the export as a recipe: same split, same scorer, the run's test DER, ranked beside it
    (tmp_path / "shipped.py").write_text(pipeline_recipe(exported))
    run("run", tmp_path / "shipped.py", *common)
    (shipped,) = [result_json(p) for p in results.glob("shipped-*.json")]
    assert shipped["kind"] == "pipeline" and shipped["identity"]["init_sha256"] == tree_sha256(
        exported
    )
    ours, theirs = shipped["test"]["pipeline"], record["test"]["pipeline"]
    assert abs(ours["DER"] - theirs["DER"]) < 1e-9
    for uri, scores in theirs["files"].items():
        assert abs(ours["files"][uri]["DER"] - scores["DER"]) < 1e-9
    output = run("leaderboard", "--results", results, "--out", tmp_path / "site")
    assert "2 results: 2 ranked on 1 split(s)" in output
    board = (tmp_path / "site" / "LEADERBOARD.md").read_text()
    assert "| shipped | pyannote | pipeline |" in board
    assert "| tuned | pyannote | multilabel |" in board
    page = (tmp_path / "site" / "runs" / f"{result.stem}.html").read_text()
    assert "Model card" in page and f"<h1>{record['name']}</h1>" in page

    # bench diarize: RTTMs that bench score accepts, with the run's DER
    run("diarize", exported, wav, "--out", tmp_path / "rttm", "--no-progress")
    assert same_segments(segments(tmp_path / "rttm" / "sample_test.rttm"), recorded)
    run("score", "--hyp", tmp_path / "rttm", "--name", "diarized", *common[:4])
    (scored,) = [result_json(p) for p in results.glob("diarized-*.json")]
    assert abs(scored["test"]["pipeline"]["DER"] - theirs["DER"]) < 1e-9

    # a push that cannot reach the hub: one line, exit 2, nothing local changed
    recorded_now = tree_sha256(results)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_HUB_OFFLINE")}
    env.update(HF_TOKEN="hf_test", HF_ENDPOINT="http://127.0.0.1:9")
    pushed = subprocess.run(
        [sys.executable, "-m", "bench.cli", "export", str(result), "--out",
         str(tmp_path / "pushed"), "--push-to-hub", "me/tuned"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert pushed.returncode == 2, pushed.stdout + pushed.stderr
    last = pushed.stdout.strip().splitlines()[-1]
    assert last.startswith("error: --push-to-hub me/tuned: cannot reach the hub at "
                           "http://127.0.0.1:9")  # fmt: skip
    assert "Traceback" not in pushed.stdout + pushed.stderr
    assert tree_sha256(results) == recorded_now


def test_a_push_without_a_token_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    result = next((ROOT / "leaderboard" / "baseline").glob("adam-*.json"))
    outcome = bench("export", result, "--out", tmp_path / "out", "--push-to-hub", "me/x")
    assert outcome.exit_code == 2
    assert outcome.output.startswith("error: --push-to-hub me/x: no token in $HF_TOKEN")
    assert not (tmp_path / "out").exists()


def test_a_run_without_a_tuned_pipeline_is_not_exported(tmp_path):
    result = next((ROOT / "leaderboard" / "baseline").glob("adam-*.json"))
    outcome = bench("export", result, "--out", tmp_path / "out")
    assert outcome.exit_code == 2 and "no tuned pipeline" in outcome.output
    assert outcome.output.count("\n") == 1 and not (tmp_path / "out").exists()


def foreign_folder(path: Path) -> Path:
    """A pipeline folder whose config.yaml names code outside pyannote and bench."""
    path.mkdir()
    marker = path / "ran"
    (path / "config.yaml").write_text(
        "pipeline:\n  name: os.system\n  params:\n    command: touch " + str(marker) + "\n"
    )
    return path


def test_a_folder_naming_foreign_code_is_refused_before_it_is_loaded(tmp_path, sample_split):
    folder = foreign_folder(tmp_path / "evil")
    wav = sample_split / "test" / "wav" / "sample_test.wav"
    outcome = bench("diarize", folder, wav, "--out", tmp_path / "rttm")
    assert outcome.exit_code == 2
    assert outcome.output == (
        f"error: {folder}: config.yaml names 'os.system', outside pyannote.audio and bench: "
        "loading it would import and run it (pass --trust if you trust this pipeline)\n"
    )
    (tmp_path / "evil.py").write_text(pipeline_recipe(folder))
    outcome = bench("run", tmp_path / "evil.py", "--data", sample_split, "--results",
                    tmp_path / "results", "--no-wandb")  # fmt: skip
    assert outcome.exit_code == 1 and "outside pyannote.audio and bench" in outcome.output
    (failed,) = [result_json(p) for p in (tmp_path / "results").glob("*.failed.json")]
    assert "pass --trust" in failed["error"]["message"]
    assert not (folder / "ran").exists()


def test_unreadable_audio_is_one_line_before_any_model_loads(tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really")
    outcome = bench("diarize", "pyannote/speaker-diarization-3.1", broken, "--out", tmp_path)
    assert outcome.exit_code == 2 and outcome.output.startswith(f"error: {broken}: not readable")
    assert outcome.output.count("\n") == 1
