"""Waveform augmentation from a recipe, with torch-audiomentations.

torch-audiomentations reads noise and impulse-response files through ``torchaudio.load``, which
needs FFmpeg in torchaudio 2.9+; bench hands its transforms a soundfile-based reader instead.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import soundfile as sf
import torch
from torch_audiomentations import AddBackgroundNoise, ApplyImpulseResponse, Compose, Gain
from torch_audiomentations.utils.file import find_audio_files_in_paths
from torch_audiomentations.utils.io import Audio

from bench.data import SAMPLE_RATE
from bench.recipe import Augmentation, data_path


class AugmentationError(ValueError):
    """An augmentation that cannot be set up (missing or empty folder)."""


@lru_cache(maxsize=256)
def _read(path: str) -> tuple[torch.Tensor, int]:
    data, sample_rate = sf.read(path, dtype="float32", always_2d=True)
    return torch.from_numpy(data.T.copy()), sample_rate


class SoundfileAudio(Audio):
    """torch-audiomentations' Audio reader, decoding with soundfile (files cached in memory)."""

    @staticmethod
    def get_audio_metadata(file_path: str | Path) -> tuple[int, int]:
        info = sf.info(str(file_path))
        return info.frames, info.samplerate

    def __call__(self, file, sample_offset: int = 0, num_samples: int | None = None):
        if isinstance(file, dict) and "samples" in file:
            return super().__call__(file, sample_offset, num_samples)
        path = str(file["audio"] if isinstance(file, dict) else file)
        samples, sample_rate = _read(path)
        return super().__call__(
            {"samples": samples, "sample_rate": sample_rate}, sample_offset, num_samples
        )


def resolve_folder(path: str, data_root: Path | None) -> Path:
    """A recipe's augmentation folder: relative to the split's folder, checked to exist."""
    folder = data_path(path, data_root)
    if not folder.is_dir():
        raise AugmentationError(f"augmentation folder {folder} does not exist")
    if not find_audio_files_in_paths(str(folder)):
        raise AugmentationError(f"augmentation folder {folder} holds no audio files")
    return folder


def build_augmentation(spec: Augmentation | None, data_root: Path | None) -> Compose | None:
    """The torch-audiomentations transform a recipe declares (None when it declares none).

    Folders are checked here, before any training starts.
    """
    if spec is None:
        return None
    transforms = []
    if spec.impulse_response is not None:
        folder = resolve_folder(spec.impulse_response.path, data_root)
        transforms.append(
            ApplyImpulseResponse(
                ir_paths=str(folder),
                p=spec.impulse_response.p,
                sample_rate=SAMPLE_RATE,
                output_type="dict",
            )
        )
    if spec.noise is not None:
        folder = resolve_folder(spec.noise.path, data_root)
        transforms.append(
            AddBackgroundNoise(
                background_paths=str(folder),
                min_snr_in_db=spec.noise.min_snr_db,
                max_snr_in_db=spec.noise.max_snr_db,
                p=spec.noise.p,
                sample_rate=SAMPLE_RATE,
                output_type="dict",
            )
        )
    if spec.gain is not None:
        transforms.append(
            Gain(
                min_gain_in_db=spec.gain.min_gain_db,
                max_gain_in_db=spec.gain.max_gain_db,
                p=spec.gain.p,
                output_type="dict",
            )
        )
    for transform in transforms:
        if hasattr(transform, "audio"):
            transform.audio = SoundfileAudio(sample_rate=SAMPLE_RATE, mono=True)
    return Compose(transforms, output_type="dict")
