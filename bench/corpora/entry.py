"""What a format reader yields: a recording's audio source, speaker turns and annotated regions."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf

from bench.data import DataError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aif", ".aiff", ".au", ".sph")
# the dtype that reads each wav sample format without loss
_DTYPES = {
    "PCM_16": "int16",
    "PCM_24": "int32",
    "PCM_32": "int32",
    "FLOAT": "float32",
    "DOUBLE": "float64",
}


@dataclass(frozen=True)
class Turn:
    """One speaker's stretch of speech, in seconds from the start of the recording."""

    start: float
    end: float
    speaker: str


class Audio(Protocol):
    """A recording's audio, however a format gives it (a file, a channel of one, a cut)."""

    def write(self, target: Path) -> None:
        """Write the recording as a wav file at ``target``."""


@dataclass
class Entry:
    """One recording of a corpus, as a reader found it.

    ``uem`` None means no UEM file (bench then scores the whole file). ``rttm_file`` and
    ``uem_file``, when set, already hold exactly what bench reads for ``uri`` and are copied
    byte for byte (so that a dataset's fingerprint survives a round trip)."""

    uri: str
    audio: Audio
    turns: list[Turn]
    uem: list[tuple[float, float]] | None
    origin: str  # where the reader found it, for error messages
    subset: str | None = None  # the source's own split, if it has one
    rttm_file: Path | None = None
    uem_file: Path | None = None


def audio_info(path: Path) -> sf._SoundFileInfo:
    """soundfile's header of ``path``, or a :class:`DataError` naming the file."""
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as error:
        raise DataError(f"{path}: cannot read audio: {error}") from None


def check_channel(path: Path, channel: int | None, channels: int) -> None:
    """Refuse a ``channel`` the file does not have (naming both)."""
    if channel is not None and not 0 <= channel < channels:
        raise DataError(f"{path}: has {channels} channel(s), no channel {channel} (--channel)")


@dataclass(frozen=True)
class FileAudio:
    """An audio file: copied when it is a whole wav; otherwise decoded (one channel, a region)
    and written as wav in the source's sample format (16-bit PCM where wav has no such format)."""

    path: Path
    channel: int | None = None
    offset: float = 0.0
    duration: float | None = None

    def write(self, target: Path) -> None:
        info = audio_info(self.path)
        whole = self.channel is None and self.offset == 0 and self.duration is None
        if whole and info.format == "WAV":
            shutil.copyfile(self.path, target)
            return
        check_channel(self.path, self.channel, info.channels)
        start = round(self.offset * info.samplerate)
        stop = None if self.duration is None else start + round(self.duration * info.samplerate)
        subtype = info.subtype if sf.check_format("WAV", info.subtype) else "PCM_16"
        try:
            data, rate = sf.read(
                str(self.path),
                start=start,
                stop=stop,
                dtype=_DTYPES.get(subtype, "float32"),
                always_2d=True,
            )
        except (sf.LibsndfileError, RuntimeError) as error:
            raise DataError(f"{self.path}: cannot decode the audio: {error}") from None
        if self.channel is not None:
            data = data[:, self.channel]
        sf.write(str(target), data, rate, subtype=subtype, format="WAV")


@dataclass(frozen=True)
class Samples:
    """Audio a reader decodes itself: ``load()`` gives float samples in [-1, 1], (time,) or
    (time, channel), and the sample rate; written as 16-bit PCM wav, clipped."""

    load: Callable[[], tuple[np.ndarray, int]]

    def write(self, target: Path) -> None:
        data, rate = self.load()
        sf.write(str(target), np.clip(data, -1.0, 1.0), rate, subtype="PCM_16", format="WAV")


def audio_files(root: Path) -> dict[str, list[Path]]:
    """Audio files under ``root`` (recursively) by stem, in path order."""
    index: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file():
            index.setdefault(path.stem, []).append(path)
    return index
