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
