"""Decoded audio: each file read once with soundfile, downmixed and resampled to 16 kHz, cached as
``.npy`` and memory-mapped (the torch half of the data layer; bench.data stays torch-free)."""

from __future__ import annotations

import json
import warnings
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from bench.data.split import SAMPLE_RATE, Recording
from bench.io import atomic_file, atomic_write_text, sha256_file

# pyannote.audio 4.0.7's in-memory crop refuses a chunk that ends exactly at the last sample
# (``end_sample >= num_samples``); a few trailing zeros let validation chunks reach the file's end.
GUARD_SAMPLES = 16


def decode(audio: Path) -> np.ndarray:
    """The samples every bench stage reads of ``audio``: soundfile, downmixed, resampled to
    16 kHz, float32, with ``GUARD_SAMPLES`` zeros appended (``bench diarize`` uses it too, so an
    exported pipeline gives a run's own hypotheses).

    A 16 kHz mono file (the usual case) is read straight into its result, so decoding an hour
    peaks at its 220 MB of samples instead of five times that."""
    with sf.SoundFile(str(audio)) as stream:
        if stream.channels == 1 and stream.samplerate == SAMPLE_RATE:
            out = np.zeros(stream.frames + GUARD_SAMPLES, dtype=np.float32)
            read = stream.read(out=out[: stream.frames])
            if len(read) != stream.frames:
                raise OSError(f"{audio}: read {len(read)} of its {stream.frames} frames")
            return out
        data = stream.read(dtype="float32", always_2d=True)
        sample_rate = stream.samplerate
    waveform = torch.from_numpy(data.mean(axis=1))
    del data
    if sample_rate != SAMPLE_RATE:
        import torchaudio.functional as F

        waveform = F.resample(waveform, sample_rate, SAMPLE_RATE)
    return np.concatenate([waveform.numpy(), np.zeros(GUARD_SAMPLES, dtype=np.float32)])


class AudioCache:
    """Decodes each audio file once (soundfile, downmix, resample to 16 kHz) into ``.npy`` files
    keyed by content (plus ``GUARD_SAMPLES`` zeros), memory-mapped on read. No FFmpeg involved.

    Each entry has a ``.json`` beside it with its sample count and CRC-32; an entry whose file
    is short, unreadable or altered (zeroed samples) is decoded again, once per process, and
    named in :attr:`repaired`, never used as it is.

    ``known``: recordings whose sha256 the split has just computed (``Split.every_file()``):
    their entries are found without reading the audio a second time (a 100 h corpus is 11 GB).
    """

    def __init__(self, directory: Path, known: Iterable[Recording] = ()):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._keys: dict[str, Path] = {
            str(rec.audio): directory / f"{rec.sha256}.npy" for rec in known if rec.sha256
        }
        self._memory: dict[str, torch.Tensor] = {}
        self._verified: set[Path] = set()
        self.repaired: list[str] = []  # one line per damaged entry decoded again

    def _path(self, audio: Path) -> Path:
        key = str(audio)
        if key not in self._keys:
            self._keys[key] = self.directory / f"{sha256_file(audio)}.npy"
        return self._keys[key]

    @staticmethod
    def _damage(target: Path) -> str | None:
        """Why the entry at ``target`` cannot be used (None: it is intact)."""
        try:
            expected = json.loads(target.with_suffix(".json").read_text())
            array = np.load(target, mmap_mode="r")
        except (OSError, ValueError) as error:
            return f"unreadable ({error})"
        if array.dtype != np.float32 or array.shape != (expected.get("samples"),):
            return f"{array.shape} {array.dtype}, expected ({expected.get('samples')},) float32"
        if zlib.crc32(array) != expected.get("crc32"):
            return "its samples changed since they were decoded (CRC-32 differs)"
        return None

    def prepare(self, audio: Path) -> Path:
        """The verified cache entry of ``audio``, decoded when missing or damaged."""
        target = self._path(audio)
        if target in self._verified:
            return target
        if target.is_file() or target.with_suffix(".json").is_file():
            damage = self._damage(target)
            if damage is None:
                self._verified.add(target)
                return target
            self.repaired.append(
                f"{target}: damaged cache entry of {audio}: {damage}; decoded again"
            )
        guarded = decode(audio)
        check = {"samples": len(guarded), "crc32": zlib.crc32(guarded)}
        with atomic_file(target, suffix=".npy") as tmp:
            np.save(tmp, guarded)
        atomic_write_text(target.with_suffix(".json"), json.dumps(check) + "\n")
        self._verified.add(target)
        return target

    def waveform(self, audio: Path | str) -> torch.Tensor:
        """(1, time) float32 tensor at 16 kHz."""
        key = str(audio)
        if key not in self._memory:
            array = np.load(self.prepare(Path(audio)), mmap_mode="r")
            with warnings.catch_warnings():  # read-only memory map: bench never writes to it
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                self._memory[key] = torch.from_numpy(array).unsqueeze(0)
        return self._memory[key]
