"""The fixed split: validation errors, fingerprint stability and sensitivity, audio decoding."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import SAMPLE_RTTM, SAMPLE_WAV, add_silent_file, truncate, write_database_yml

from bench.data import (
    AUDIO_END_TOLERANCE,
    DataError,
    load_folder,
    load_protocol,
    read_rttm_all,
    rttm_text,
)
from bench.data.audio import GUARD_SAMPLES, AudioCache


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
    path.write_text("sample_train 1 30.02 30.08\n")  # past the end, within the tolerance
    expect_error(sample_split, str(path), "outside the audio")


def test_a_uem_beyond_the_end_of_truncated_audio_is_refused(sample_split):
    wav = sample_split / "test" / "wav" / "sample_test.wav"
    uem = sample_split / "test" / "uem" / "sample_test.uem"
    truncate(wav, 12.0)  # the UEM still says 0-30 s: cropping would drop 18 s of reference
    expect_error(sample_split, f"{uem}:1:", "ends at 30.000 s", "audio (12.000 s)")
    # up to the tolerance past the end, the UEM is cropped to the audio
    uem.write_text(f"sample_test 1 0.000 {12.0 + AUDIO_END_TOLERANCE - 0.01:.3f}\n")
    (rec,) = load_folder(sample_split).files("test")
    assert rec.annotated.duration() == pytest.approx(12.0)
    assert rec.annotation.get_timeline().extent().end == pytest.approx(12.0)


def test_a_wav_without_samples_is_refused(sample_split):
    wav = sample_split / "train" / "wav" / "sample_train.wav"
    (sample_split / "train" / "uem" / "sample_train.uem").unlink()  # whole file: 0 s
    sf.write(wav, np.zeros(0, dtype="int16"), 16000, subtype="PCM_16")
    expect_error(sample_split, str(wav), "no samples")


def test_an_unknown_rttm_type_is_refused(sample_split):
    path = sample_split / "dev" / "rttm" / "sample_dev.rttm"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace("SPEAKER", "SPEKER")  # a typo would drop the turn silently
    path.write_text("\n".join(lines))
    expect_error(sample_split, f"{path}:3:", "unknown RTTM type 'SPEKER'")


def test_the_other_rttm_types_are_read_past(sample_split):
    path = sample_split / "dev" / "rttm" / "sample_dev.rttm"
    before = turns(load_folder(sample_split).files("dev")[0].annotation)
    lines = path.read_text().splitlines()
    known = [
        "SPKR-INFO sample_dev 1 <NA> <NA> <NA> unknown speaker90 <NA> <NA>",
        "NOSCORE sample_dev 1 0.000 1.000 <NA> <NA> <NA> <NA> <NA>",
        "NON-SPEECH sample_dev 1 1.000 0.500 <NA> noise <NA> <NA> <NA>",
        "A/P sample_dev 1 2.000 0.500 <NA> <NA> <NA> <NA> <NA>",
        "lexeme sample_dev 1 6.700 0.300 hello lex speaker90 <NA> <NA>",
    ]
    lines[0] = lines[0].replace("SPEAKER", "speaker")  # types are case-insensitive, as in md-eval
    path.write_text("\n".join(known + lines))
    assert turns(load_folder(sample_split).files("dev")[0].annotation) == before


def test_an_rttm_of_many_uris_is_read_per_uri(tmp_path):
    path = tmp_path / "system.rttm"
    path.write_text(
        SAMPLE_RTTM.read_text()
        + "SPKR-INFO other 1 <NA> <NA> <NA> unknown a <NA> <NA>\n"
        + "SPEAKER other 1 1.000 2.000 <NA> <NA> a <NA> <NA>\n"
        + "SPEAKER other 1 4.000 0.000 <NA> <NA> b <NA> <NA>\n"
    )
    found = read_rttm_all(path)
    assert sorted(found) == ["other", "sample"] and len(found["sample"]) == 10
    assert turns(found["other"]) == [(1.0, 3.0, "a")]  # zero duration left out, as for a file
    path.write_text(path.read_text().replace("SPEAKER other 1 1.000", "SPEKER other 1 1.000"))
    with pytest.raises(DataError, match=re.escape(f"{path}:12: unknown RTTM type 'SPEKER'")):
        read_rttm_all(path)


@pytest.mark.parametrize("kind", ["rttm", "uem", "list"])
def test_text_that_is_not_utf8_names_file_and_line(sample_split, kind):
    path = {
        "rttm": sample_split / "dev" / "rttm" / "sample_dev.rttm",
        "uem": sample_split / "dev" / "uem" / "sample_dev.uem",
        "list": sample_split / "dev.txt",
    }[kind]
    path.write_bytes(b"# r\xe9union\n" + path.read_bytes())  # Latin-1, not UTF-8
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([lines[1], lines[0], *lines[2:]]))  # the bad byte on line 2
    expect_error(sample_split, f"{path}:2:", "not UTF-8", "0xe9")


def test_a_list_with_a_byte_order_mark_is_read(sample_split):
    path = sample_split / "train.txt"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # as some Windows editors save it
    assert [rec.uri for rec in load_folder(sample_split).files("train")] == ["sample_train"]


def test_the_same_audio_in_two_subsets_is_refused(sample_split):
    train = sample_split / "train" / "wav" / "sample_train.wav"
    test = sample_split / "test" / "wav" / "sample_test.wav"
    add_silent_file(sample_split, "test", "copy", audio=test)  # twice in one subset: loads
    assert len(load_folder(sample_split).files("test")) == 2
    shutil.copy(train, test)  # a training recording in the test set
    expect_error(sample_split, str(test), f"same audio as {train}", "test and train subsets")


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
    yml = write_database_yml(sample_split, "Mine")
    split = load_protocol(yml, "Sample.SpeakerDiarization.Mine")
    folder = load_folder(sample_split)
    for subset in ("train", "dev", "test"):
        (a,), (b,) = split.files(subset), folder.files(subset)
        assert a.uri == b.uri and turns(a.annotation) == turns(b.annotation)
        assert a.annotated == b.annotated
    assert split.fingerprint == load_protocol(yml, "Sample.SpeakerDiarization.Mine").fingerprint
    with pytest.raises(DataError, match=r"Sample\.SpeakerDiarization\.Other"):
        load_protocol(yml, "Sample.SpeakerDiarization.Other")


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
    yml = write_database_yml(sample_split, "Silent", uem=False)
    (sample_split / "test.rttm").write_text("")
    with pytest.raises(DataError, match=r"test subset.*no reference speech") as error:
        load_protocol(yml, "Sample.SpeakerDiarization.Silent")
    assert "DER is undefined" in str(error.value)


def test_a_protocol_uem_beyond_truncated_audio_is_refused(sample_split):
    yml = write_database_yml(sample_split, "Truncated")
    truncate(sample_split / "dev" / "wav" / "sample_dev.wav", 12.0)
    with pytest.raises(DataError) as error:
        load_protocol(yml, "Sample.SpeakerDiarization.Truncated")
    for fragment in ("'sample_dev'", "sample_dev.wav", "ends at 30.000 s", "audio (12.000 s)"):
        assert fragment in str(error.value)


def test_rttm_text_reads_back_exactly(tmp_path):
    """Hypotheses are written at full precision (numpy floats included), so a system's RTTM
    scores exactly as the annotation it came from."""
    import numpy as np
    from pyannote.core import Annotation, Segment

    step = 0.016875  # frame-aligned boundaries, as the pipeline produces
    hypothesis = Annotation(uri="file")
    hypothesis[Segment(np.float64(step * 37), np.float64(step * 411))] = "A"
    hypothesis[Segment(step * 300, step * 1000.5), "t"] = "B"
    path = tmp_path / "hyp.rttm"
    path.write_text(rttm_text(hypothesis))
    assert "np.float64" not in path.read_text()
    again = read_rttm_all(path)["file"]
    original = sorted((s.start, s.end, label) for s, _, label in hypothesis.itertracks(True))
    read = sorted((s.start, s.end, label) for s, _, label in again.itertracks(True))
    assert [r[0] for r in read] == [o[0] for o in original]  # starts exactly
    assert [r[2] for r in read] == [o[2] for o in original]
    assert all(abs(r[1] - o[1]) < 1e-12 for r, o in zip(read, original, strict=True))
