"""``bench data check``: statistics against an independent reading of the files, warnings, CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import DEMO_FINGERPRINT, SAMPLE_WAV, add_silent_file, truncate, write_database_yml
from typer.testing import CliRunner

from bench.cli import app
from bench.data.check import check_dataset
from bench.demo import ensure_demo

SUBSETS = ("train", "dev", "test")


def expected_stats(root: Path, subset: str) -> dict:
    """A subset's statistics straight from its files, whole-file UEM assumed: turns are the
    SPEAKER lines, speech and overlap counted on a 1 ms grid."""
    uris = (root / f"{subset}.txt").read_text().split()
    hours = annotated = 0.0
    labels: set[str] = set()
    per_file: dict[int, int] = {}
    durations: list[float] = []
    speech = overlap = 0
    for uri in uris:
        info = sf.info(root / subset / "wav" / f"{uri}.wav")
        hours += info.frames / info.samplerate / 3600
        uem = (root / subset / "uem" / f"{uri}.uem").read_text().split()
        assert float(uem[2]) == 0 and float(uem[3]) == pytest.approx(info.duration, abs=1e-3)
        annotated += info.duration
        lines = [
            line.split()
            for line in (root / subset / "rttm" / f"{uri}.rttm").read_text().splitlines()
            if line.startswith("SPEAKER ")
        ]
        speakers = sorted({fields[7] for fields in lines})
        labels |= set(speakers)
        per_file[len(speakers)] = per_file.get(len(speakers), 0) + 1
        active = np.zeros((len(speakers), round(info.duration * 1000)), dtype=bool)
        for fields in lines:
            start, duration = float(fields[3]), float(fields[4])
            durations.append(duration)
            active[
                speakers.index(fields[7]), round(start * 1000) : round((start + duration) * 1000)
            ] = True
        count = active.sum(axis=0)
        speech += int((count >= 1).sum())
        overlap += int((count >= 2).sum())
    return {
        "files": len(uris),
        "audio_hours": hours,
        "annotated_hours": annotated / 3600,
        "speakers": len(labels),
        "speakers_per_file": dict(sorted(per_file.items())),
        "speech_fraction": speech / 1000 / annotated,
        "overlap_fraction": overlap / 1000 / annotated,
        "turns": len(durations),
        "mean_turn": sum(durations) / len(durations),
    }


def assert_matches(root: Path, report) -> None:
    for subset in SUBSETS:
        stats = report.as_dict()["subsets"][subset]
        expected = expected_stats(root, subset)
        assert stats.pop("speakers_per_file") == expected.pop("speakers_per_file"), subset
        assert stats == pytest.approx(expected, rel=1e-4, abs=1e-6), subset


def test_check_describes_the_sample_split(sample_split):
    report = check_dataset(sample_split)
    assert report.ok and report.errors == []
    assert_matches(sample_split, report)
    assert report.subsets["test"].speakers_per_file == {2: 1}
    # the sample's two labels are in every subset: a note, not an error
    assert report.warnings == [
        f"{sample_split}: 2 speaker label(s) of train also in {subset} (speaker90, speaker91): "
        f"fine if labels are per file or the corpus shares its speakers, otherwise {subset} "
        "scores voices seen in training"
        for subset in ("dev", "test")
    ]
    assert json.loads(json.dumps(report.as_dict()))["subsets"]["dev"]["turns"] == 10


def test_check_describes_the_demo(cache_dir):
    demo = ensure_demo(cache_dir)
    report = check_dataset(demo)
    assert report.ok and report.warnings == []  # train and held-out voices are disjoint
    assert report.fingerprint == DEMO_FINGERPRINT
    assert_matches(demo, report)


def test_a_database_yml_gives_the_folder_statistics(sample_split):
    yml = write_database_yml(sample_split, "Check")
    assert check_dataset(yml).errors == [f"{yml}: a database.yml needs --protocol NAME"]
    report = check_dataset(yml, "Sample.SpeakerDiarization.Check")
    assert report.ok and report.source == str(yml)
    assert report.as_dict()["subsets"] == check_dataset(sample_split).as_dict()["subsets"]


def rttm_line(uri: str, start: float, duration: float, speaker: str = "speaker90") -> str:
    return f"SPEAKER {uri} 1 {start:.3f} {duration:.3f} <NA> <NA> {speaker} <NA> <NA>\n"


def test_warnings_name_the_file_and_line(sample_split):
    dev_rttm = sample_split / "dev" / "rttm" / "sample_dev.rttm"
    with dev_rttm.open("a") as stream:  # lines 11 and 12
        stream.write(rttm_line("sample_dev", 12.0, 0.0) + rttm_line("sample_dev", 13.0, 0.0))
    (sample_split / "train" / "uem" / "sample_train.uem").write_text("sample_train 1 0 20\n")
    (sample_split / "test" / "uem" / "sample_test.uem").unlink()
    test_rttm = sample_split / "test" / "rttm" / "sample_test.rttm"
    with test_rttm.open("a") as stream:  # line 11, past the 30 s of audio
        stream.write(rttm_line("sample_test", 29.5, 2.0))
    short = sample_split / "short.wav"
    shutil.copy(SAMPLE_WAV, short)
    truncate(short, 5.0)
    add_silent_file(sample_split, "train", "short", audio=short)
    test_wav = sample_split / "test" / "wav" / "sample_test.wav"
    add_silent_file(sample_split, "test", "copy", audio=test_wav)

    report = check_dataset(sample_split)
    assert report.ok
    train = sample_split / "train"
    expected = [
        f"{dev_rttm}:11: turn of zero duration (ignored) (and 1 more: line 12)",
        f"{train / 'rttm' / 'sample_train.rttm'}:7: turn runs across the edge of an annotated "
        "region (UEM): cropped",  # 18.05-21.49 s; line 9 starts after 20 s: left out, no warning
        f"{test_rttm}:11: turn ends at 31.500 s, past the end of the audio (30.000 s)",
        f"{train / 'rttm' / 'short.rttm'}: no speaker turn inside the annotated regions "
        "(it trains on silence only)",
        f"{train / 'wav' / 'short.wav'}: its longest annotated region lasts 5.0 s, less than a "
        "typical 10 s chunk",
        f"{sample_split / 'test' / 'rttm' / 'copy.rttm'}: no speaker turn inside the annotated "
        "regions (its DER is null, its false alarms still count)",
        f"{sample_split / 'test' / 'wav' / 'copy.wav'}: same audio as {test_wav}, also in test",
    ]
    for fragment in expected:
        assert sum(warning.startswith(fragment) for warning in report.warnings) == 1, fragment
    assert len(report.warnings) == len(expected) + 2  # and the two speaker-label notes
    assert report.subsets["train"].annotated_hours == pytest.approx((20 + 5) / 3600)
    assert report.subsets["train"].speakers_per_file == {0: 1, 2: 1}


def invoke(*args: str):
    return CliRunner().invoke(app, ["data", "check", *args])


def test_the_command_prints_the_table(sample_split):
    outcome = invoke(str(sample_split))
    assert outcome.exit_code == 0, outcome.output
    for text in ("hours annotated (UEM)", "speakers: files", "train", "0 error(s), 2 warning(s)"):
        assert text in outcome.output
    assert re.search(r"turns\s*│\s*10\s*│\s*10\s*│\s*10\s*│", outcome.output), outcome.output


def test_the_command_exits_1_on_an_error_with_its_file_and_line(sample_split):
    path = sample_split / "dev" / "rttm" / "sample_dev.rttm"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace("SPEAKER", "SPEKER")
    path.write_text("\n".join(lines))
    outcome = invoke(str(sample_split))
    assert outcome.exit_code == 1
    assert f"error: {path}:3: unknown RTTM type 'SPEKER'" in outcome.output
    assert "1 error(s), 0 warning(s)" in outcome.output


def test_bench_run_reports_the_checks_warnings_before_training(sample_split, tiny_recipe):
    report = check_dataset(sample_split)
    assert report.warnings  # the sample split reuses its speaker labels in every subset
    outcome = CliRunner().invoke(
        app, ["run", str(tiny_recipe), "--data", str(sample_split), "--dry-run"]
    )
    assert outcome.exit_code == 0, outcome.output
    assert f"data check: {len(report.warnings)} warning(s)" in outcome.output
    assert f"bench data check {sample_split}" in outcome.output
