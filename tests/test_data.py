"""The fixed split: validation errors, fingerprint stability and sensitivity, audio decoding."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SAMPLE_RTTM, SAMPLE_WAV

from bench.audio import GUARD_SAMPLES, AudioCache
from bench.data import DataError, load_folder, load_protocol


def test_loads_sample_split(sample_split):
    split = load_folder(sample_split)
    assert [len(split.files(s)) for s in ("train", "dev", "test")] == [1, 1, 1]
    rec = split.files("test")[0]
    assert rec.uri == "sample_test" and rec.duration == pytest.approx(30.0)
    assert sorted(rec.annotation.labels()) == ["speaker90", "speaker91"]
    assert rec.annotated.duration() == pytest.approx(30.0)


def test_fingerprint_is_stable_and_location_independent(sample_split, tmp_path):
    first = load_folder(sample_split).fingerprint
    assert load_folder(sample_split).fingerprint == first
    copy = shutil.copytree(sample_split, tmp_path / "elsewhere")
    assert load_folder(copy).fingerprint == first


@pytest.mark.parametrize("change", ["rttm", "audio", "uem", "uem_removed", "list"])
def test_fingerprint_changes_with_content(sample_split, change):
    before = load_folder(sample_split).fingerprint
    if change == "rttm":
        path = sample_split / "dev" / "rttm" / "sample_dev.rttm"
        path.write_text(path.read_text().replace("6.690", "6.700"))
    elif change == "audio":
        path = sample_split / "test" / "wav" / "sample_test.wav"
        data, rate = sf.read(path, dtype="int16")
        data[1000] += 1
        sf.write(path, data, rate, subtype="PCM_16")
    elif change == "uem":
        (sample_split / "train" / "uem" / "sample_train.uem").write_text(
            "sample_train 1 0.0 29.0\n"
        )
    elif change == "uem_removed":
        (sample_split / "train" / "uem" / "sample_train.uem").unlink()
    else:
        (sample_split / "train.txt").write_text("sample_train\n\n")  # same URIs: same split
        assert load_folder(sample_split).fingerprint == before
        shutil.copy(
            sample_split / "test" / "wav" / "sample_test.wav",
            sample_split / "test" / "wav" / "extra.wav",
        )
        (sample_split / "test" / "rttm" / "extra.rttm").write_text("")
        (sample_split / "test.txt").write_text("sample_test\nextra\n")
    assert load_folder(sample_split).fingerprint != before


def expect_error(root: Path, *fragments: str) -> None:
    with pytest.raises(DataError) as error:
        load_folder(root)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_bad_rttm_line_names_file_and_line(sample_split):
    path = sample_split / "dev" / "rttm" / "sample_dev.rttm"
    lines = path.read_text().splitlines()
    lines[2] = "SPEAKER sample_dev 1 8.320 oops <NA> <NA> speaker90 <NA> <NA>"
    path.write_text("\n".join(lines))
    expect_error(sample_split, f"{path}:3:", "duration 'oops' is not a number")
    lines[2] = "SPEAKER sample_dev 1 8.3"
    path.write_text("\n".join(lines))
    expect_error(sample_split, f"{path}:3:", "expected at least 8 fields")
    lines[2] = "SPEAKER other 1 8.320 1.0 <NA> <NA> speaker90 <NA> <NA>"
    path.write_text("\n".join(lines))
    expect_error(sample_split, f"{path}:3:", "does not match file 'sample_dev'")


def test_missing_files_and_bad_lists(sample_split):
    (sample_split / "test" / "wav" / "sample_test.wav").unlink()
    expect_error(sample_split, "sample_test.wav", "missing audio", "test.txt")
    shutil.copy(SAMPLE_WAV, sample_split / "test" / "wav" / "sample_test.wav")
    (sample_split / "dev.txt").write_text("sample_dev\nsample_dev\n")
    expect_error(sample_split, "dev.txt:2:", "duplicate URI")
    (sample_split / "dev.txt").write_text("sample_train\n")
    expect_error(sample_split, "dev.txt", "also in train.txt")
    (sample_split / "dev.txt").unlink()
    expect_error(sample_split, "dev.txt", "missing list file")


def test_bad_uem(sample_split):
    path = sample_split / "train" / "uem" / "sample_train.uem"
    path.write_text("sample_train 1 10.0 5.0\n")
    expect_error(sample_split, f"{path}:1:", "end 5.0 is not after start 10.0")
    path.write_text("sample_train 1 40.0 50.0\n")
    expect_error(sample_split, str(path), "outside the audio")


def test_audio_cache_decodes_with_soundfile(tmp_path):
    cache = AudioCache(tmp_path / "cache")
    waveform = cache.waveform(SAMPLE_WAV)
    expected, _ = sf.read(SAMPLE_WAV, dtype="float32")
    assert waveform.shape == (1, len(expected) + GUARD_SAMPLES)
    np.testing.assert_array_equal(waveform[0, : len(expected)].numpy(), expected)
    assert not waveform[0, len(expected) :].any()
    # decoded once: a second cache over the same folder reuses the file
    again = AudioCache(tmp_path / "cache")
    assert again.prepare(SAMPLE_WAV) == cache.prepare(SAMPLE_WAV)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1


def test_audio_cache_resamples_and_downmixes(tmp_path):
    data, rate = sf.read(SAMPLE_WAV, dtype="float32")
    stereo = np.stack([data[::2], data[::2]], axis=1)  # 8 kHz stereo
    path = tmp_path / "stereo8k.wav"
    sf.write(path, stereo, rate // 2)
    waveform = AudioCache(tmp_path / "cache").waveform(path)
    assert waveform.shape[1] == pytest.approx(len(data) + GUARD_SAMPLES, abs=2)


def turns(annotation) -> list[tuple[float, float, str]]:
    tracks = annotation.itertracks(yield_label=True)
    return sorted((s.start, s.end, label) for s, _, label in tracks)


def test_database_yml_protocol_gives_the_same_recordings(sample_split):
    for subset in ("train", "dev", "test"):
        uri = f"sample_{subset}"
        rttm = (sample_split / subset / "rttm" / f"{uri}.rttm").read_text()
        (sample_split / f"{subset}.rttm").write_text(rttm)
        (sample_split / f"{subset}.uem").write_text(f"{uri} 1 0.000 30.000\n")
    yml = sample_split / "database.yml"
    yml.write_text(
        "Databases:\n"
        "  Sample:\n"
        + "".join(f"    - {sample_split}/{s}/wav/{{uri}}.wav\n" for s in ("train", "dev", "test"))
        + "Protocols:\n  Sample:\n    SpeakerDiarization:\n      Mine:\n"
        + "".join(
            f"        {name}:\n          uri: {s}.txt\n          annotation: {s}.rttm\n"
            f"          annotated: {s}.uem\n"
            for name, s in (("train", "train"), ("development", "dev"), ("test", "test"))
        )
    )
    split = load_protocol(yml, "Sample.SpeakerDiarization.Mine")
    folder = load_folder(sample_split)
    for subset in ("train", "dev", "test"):
        (a,), (b,) = split.files(subset), folder.files(subset)
        assert a.uri == b.uri and turns(a.annotation) == turns(b.annotation)
        assert a.annotated == b.annotated
    assert split.fingerprint == load_protocol(yml, "Sample.SpeakerDiarization.Mine").fingerprint
    with pytest.raises(DataError, match=r"Sample\.SpeakerDiarization\.Other"):
        load_protocol(yml, "Sample.SpeakerDiarization.Other")


def add_silent_file(root: Path, subset: str, uri: str = "silent") -> None:
    """Add to ``subset`` a copy of the real sample recording whose RTTM is empty."""
    shutil.copy(SAMPLE_WAV, root / subset / "wav" / f"{uri}.wav")
    (root / subset / "rttm" / f"{uri}.rttm").write_text("")
    listed = (root / f"{subset}.txt").read_text()
    (root / f"{subset}.txt").write_text(f"{listed}{uri}\n")


@pytest.mark.parametrize("subset", ["dev", "test"])
def test_a_subset_without_reference_speech_is_refused(sample_split, subset):
    # every file of the subset has an empty RTTM: DER would divide by zero seconds of speech
    add_silent_file(sample_split, subset)
    (sample_split / subset / "rttm" / f"sample_{subset}.rttm").write_text("")
    expect_error(
        sample_split, f"{sample_split / subset}.txt", f"{subset} subset", "no reference speech"
    )
    # speech outside the annotated regions does not count: the reference is cropped to the UEM
    shutil.copy(SAMPLE_RTTM, sample_split / subset / "rttm" / f"sample_{subset}.rttm")
    path = sample_split / subset / "rttm" / f"sample_{subset}.rttm"
    path.write_text(path.read_text().replace("sample ", f"sample_{subset} "))
    (sample_split / subset / "uem" / f"sample_{subset}.uem").write_text(
        f"sample_{subset} 1 0.000 6.000\n"  # the sample's first speech turn starts at 6.69 s
    )
    expect_error(sample_split, f"{subset} subset", "DER is undefined without reference speech")


def test_a_silent_file_in_a_test_set_with_speech_is_accepted(sample_split):
    add_silent_file(sample_split, "test")
    split = load_folder(sample_split)
    silent = {rec.uri: rec for rec in split.files("test")}["silent"]
    assert not silent.annotation and silent.annotated.duration() == pytest.approx(30.0)


def test_a_protocol_without_test_speech_is_refused(sample_split):
    (sample_split / "test.rttm").write_text("")
    for subset in ("train", "dev"):
        uri = f"sample_{subset}"
        rttm = (sample_split / subset / "rttm" / f"{uri}.rttm").read_text()
        (sample_split / f"{subset}.rttm").write_text(rttm)
    yml = sample_split / "database.yml"
    yml.write_text(
        "Databases:\n"
        "  Sample:\n"
        + "".join(f"    - {sample_split}/{s}/wav/{{uri}}.wav\n" for s in ("train", "dev", "test"))
        + "Protocols:\n  Sample:\n    SpeakerDiarization:\n      Silent:\n"
        + "".join(
            f"        {name}:\n          uri: {s}.txt\n          annotation: {s}.rttm\n"
            for name, s in (("train", "train"), ("development", "dev"), ("test", "test"))
        )
    )
    with pytest.raises(DataError, match=r"test subset.*no reference speech") as error:
        load_protocol(yml, "Sample.SpeakerDiarization.Silent")
    assert "DER is undefined" in str(error.value)
