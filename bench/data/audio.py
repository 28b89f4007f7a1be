"""Decoded audio: each file read once with soundfile, downmixed and resampled to 16 kHz, cached as
``.npy`` and memory-mapped (the torch half of the data layer; bench.data stays torch-free)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from bench.data.split import SAMPLE_RATE
from bench.io import atomic_file, sha256_file

# pyannote.audio 4.0.7's in-memory crop refuses a chunk that ends exactly at the last sample
# (``end_sample >= num_samples``); a few trailing zeros let validation chunks reach the file's end.
GUARD_SAMPLES = 16


class AudioCache:
    """Decodes each audio file once (soundfile, downmix, resample to 16 kHz) into ``.npy`` files
    keyed by content (plus ``GUARD_SAMPLES`` zeros), memory-mapped on read. No FFmpeg involved."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._keys: dict[str, Path] = {}
        self._memory: dict[str, torch.Tensor] = {}

    def _path(self, audio: Path) -> Path:
        key = str(audio)
        if key not in self._keys:
            self._keys[key] = self.directory / f"{sha256_file(audio)}.npy"
        return self._keys[key]

    def prepare(self, audio: Path) -> Path:
        target = self._path(audio)
        if target.is_file():
            return target
        data, sample_rate = sf.read(str(audio), dtype="float32", always_2d=True)
        waveform = torch.from_numpy(data.mean(axis=1))
        if sample_rate != SAMPLE_RATE:
            import torchaudio.functional as F

            waveform = F.resample(waveform, sample_rate, SAMPLE_RATE)
        guarded = np.concatenate([waveform.numpy(), np.zeros(GUARD_SAMPLES)]).astype(np.float32)
        with atomic_file(target, suffix=".npy") as tmp:
            np.save(tmp, guarded)
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
