"""bench.data.audio: the decoded-audio cache verifies its entries and decodes damaged ones
again (a zeroed entry was used silently: test DER 0.794 instead of 0.638; a truncated one
failed with ``mmap length is greater than file size``)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from helpers import SAMPLE_WAV

from bench.data.audio import GUARD_SAMPLES, AudioCache


@pytest.fixture
def decoded(tmp_path):
    cache = AudioCache(tmp_path / "audio")
    entry = cache.prepare(SAMPLE_WAV)
    expected = np.load(entry).copy()
    data, _ = sf.read(SAMPLE_WAV, dtype="float32")
    assert np.allclose(expected[: len(data)], data) and len(expected) == len(data) + GUARD_SAMPLES
    return tmp_path / "audio", entry, expected


def zero_samples(entry):
    array = np.load(entry, mmap_mode="r+")
    array[1000:50000] = 0.0
    array.flush()


def truncate(entry):
    entry.write_bytes(entry.read_bytes()[:-4000])


def drop_check(entry):
    entry.with_suffix(".json").unlink()  # an entry written before the check existed


@pytest.mark.parametrize("damage", [zero_samples, truncate, drop_check])
def test_a_damaged_entry_is_decoded_again_and_named(decoded, damage):
    folder, entry, expected = decoded
    damage(entry)
    cache = AudioCache(folder)  # another process: nothing verified yet
    waveform = cache.waveform(SAMPLE_WAV)
    assert np.array_equal(waveform.numpy()[0], expected)
    (note,) = cache.repaired
    assert note.startswith(f"{entry}: damaged cache entry of {SAMPLE_WAV}")


def test_an_intact_entry_is_verified_once_and_not_decoded_again(decoded):
    folder, entry, expected = decoded
    stamp = entry.stat().st_mtime_ns
    cache = AudioCache(folder)
    assert np.array_equal(cache.waveform(SAMPLE_WAV).numpy()[0], expected)
    assert cache.prepare(SAMPLE_WAV) == entry and cache.repaired == []
    assert entry.stat().st_mtime_ns == stamp


def test_recordings_hashed_by_the_split_are_not_read_again_to_find_their_entry(
    sample_split, tmp_path, monkeypatch
):
    """``AudioCache(dir, split.every_file())`` keys each entry by the sha256 ``load_folder``
    just computed: the audio is read once more only to decode it, never to hash it again."""
    import bench.data.audio as audio_module
    from bench.data import load_folder

    split = load_folder(sample_split)
    plain = AudioCache(tmp_path / "cache")
    expected = {str(r.audio): plain.waveform(r.audio).clone() for r in split.every_file()}
    hashed: list[str] = []
    real = audio_module.sha256_file
    monkeypatch.setattr(audio_module, "sha256_file", lambda p: hashed.append(str(p)) or real(p))
    known = AudioCache(tmp_path / "cache", split.every_file())
    for rec in split.every_file():
        assert known.waveform(rec.audio).equal(expected[str(rec.audio)])
        assert known.prepare(rec.audio).name == f"{rec.sha256}.npy"
    assert hashed == []
    AudioCache(tmp_path / "cache").prepare(split.every_file()[0].audio)  # unknown: hashed
    assert hashed == [str(split.every_file()[0].audio)]
