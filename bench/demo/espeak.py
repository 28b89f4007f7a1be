"""libespeak-ng through ctypes, one fresh instance of the library per utterance (see
:mod:`bench.demo.generate` for why), and the utterance synthesisers built on it."""

from __future__ import annotations

import _ctypes
import ctypes
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np

from bench.data import SAMPLE_RATE
from bench.demo.voices import OOD_SENTENCES, SENTENCES, OodSpeaker, Speaker
from bench.io import cache_root

ESPEAK_RATE = 22050  # libespeak-ng's native output rate
_UP, _DOWN = 320, 441  # 22050 Hz * 320 / 441 = 16000 Hz
_TRIM_DB = -45.0  # frames this far below an utterance's loudest frame count as silence
UTTERANCE_RMS = 0.1  # every trimmed utterance is normalised to this RMS before mixing


# ---------------------------------------------------------------------------------------------
# Speakers and sentences


# ---------------------------------------------------------------------------------------------
# libespeak-ng through ctypes

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _PITCH, _RANGE = 1, 3, 4  # espeak_PARAMETER
_RAND_SEED = 20240601  # for espeak's internal noise generator


class EspeakError(RuntimeError):
    """libespeak-ng refused a call."""


def _is_loaded(path: Path) -> bool:
    """Whether the shared library at ``path`` is (still) loaded in this process."""
    try:
        lib = ctypes.CDLL(str(path), mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return False
    _ctypes.dlclose(lib._handle)
    return True


def _remove_private_dir(path: Path, owner: int) -> None:
    if os.getpid() == owner:  # not from a forked child, whose parent still uses it
        shutil.rmtree(path, ignore_errors=True)


class Espeak:
    """Reproducible libespeak-ng synthesis: every call runs in a freshly loaded library instance.

    See the module docstring for why. Thread-safe (calls are serialised).
    """

    def __init__(self, library: str | None = None, data: str | None = None) -> None:
        import espeakng_loader

        self._source = Path(library or espeakng_loader.get_library_path())
        self._data = (data or espeakng_loader.get_data_path()).encode()
        self._lock = threading.Lock()
        # the private copies live in a temporary folder, or in the cache when /tmp is noexec
        for parent in (None, cache_root()):
            self._start(parent)
            try:
                self.version = str(self._run(lambda lib: lib.espeak_Info(None).decode()))
                return
            except OSError as error:
                self.close()
                failure = error
        raise EspeakError(f"cannot load a private copy of {self._source}: {failure}")

    def _start(self, parent: Path | None) -> None:
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix="bench-espeak-", dir=parent))
        self._finalizer = weakref.finalize(self, _remove_private_dir, self._tmp, os.getpid())
        self._copies = 0
        self._path: Path | None = None

    def close(self) -> None:
        """Delete the private library copies."""
        self._finalizer()

    def _run(self, body: Callable[[ctypes.CDLL], object]) -> object:
        """Load a pristine library instance, initialise it, run ``body`` and unload it again."""
        with self._lock:
            if not self._tmp.is_dir():  # closed (or cleaned up behind our back): start over
                self._start(self._tmp.parent)
            if self._path is None or not self._path.is_file() or _is_loaded(self._path):
                self._copies += 1
                self._path = self._tmp / f"libespeak-ng-{self._copies}.so"
                shutil.copyfile(self._source, self._path)
            lib = ctypes.CDLL(str(self._path))
            try:
                lib.espeak_Initialize.argtypes = [
                    ctypes.c_int,
                    ctypes.c_int,
                    ctypes.c_char_p,
                    ctypes.c_int,
                ]
                lib.espeak_Info.restype = ctypes.c_char_p
                lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
                lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
                lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
                lib.espeak_Synth.argtypes = [
                    ctypes.c_void_p,
                    ctypes.c_size_t,
                    ctypes.c_uint,
                    ctypes.c_int,
                    ctypes.c_uint,
                    ctypes.c_uint,
                    ctypes.c_void_p,
                    ctypes.c_void_p,
                ]
                rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self._data, 0)
                if rate != ESPEAK_RATE:
                    raise EspeakError(f"espeak_Initialize returned {rate} (data: {self._data!r})")
                try:
                    return body(lib)
                finally:
                    lib.espeak_Terminate()
            finally:
                _ctypes.dlclose(lib._handle)

    def synthesize(
        self, text: str, voice: str, *, rate: int = 175, pitch: int = 50, pitch_range: int = 50
    ) -> np.ndarray:
        """``text`` spoken by espeak voice ``voice`` (e.g. ``ko+f2``): int16 samples at 22050 Hz."""
        chunks: list[np.ndarray] = []

        def collect(wav: ctypes._Pointer, n: int, _events: int) -> int:
            if n > 0 and wav:
                chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        def body(lib: ctypes.CDLL) -> None:
            callback = _SynthCallback(collect)
            lib.espeak_SetSynthCallback(callback)
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise EspeakError(f"unknown espeak voice {voice!r}")
            for parameter, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range)):
                if lib.espeak_SetParameter(parameter, value, 0) != 0:
                    raise EspeakError(f"espeak_SetParameter({parameter}, {value}) failed")
            # espeak_ng_Initialize seeds the noise generator (breath, frication) with time(NULL)
            lib.espeak_ng_SetRandSeed(_RAND_SEED)
            encoded = text.encode("utf-8")
            status = lib.espeak_Synth(
                encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            if status != 0 or lib.espeak_Synchronize() != 0:
                raise EspeakError(f"espeak_Synth failed ({status}) for {text!r}")

        self._run(body)
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


@cache
def shared_espeak() -> Espeak:
    """The process's one :class:`Espeak` (its private library copies live in one folder)."""
    return Espeak()


def trim_silence(x: np.ndarray, frame: int = SAMPLE_RATE // 100) -> np.ndarray:
    """``x`` without leading/trailing frames quieter than ``_TRIM_DB`` below its loudest frame."""
    n = len(x) // frame
    if n == 0:
        return x
    rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1))
    loud = np.flatnonzero(rms > max(rms.max() * 10 ** (_TRIM_DB / 20), 1e-5))
    if len(loud) == 0:
        return x[:0]
    return x[loud[0] * frame : min((loud[-1] + 1) * frame, len(x))]


def synthesize_utterance(speaker: Speaker, sentence: int) -> np.ndarray:
    """``SENTENCES[sentence]`` said by ``speaker``: float32 at 16 kHz, trimmed, RMS-normalised.

    A pure function of its arguments (and the espeak-ng build).
    """
    lang, text = SENTENCES[sentence]
    return synthesize_text(speaker, lang, text)


def synthesize_ood_utterance(speaker: Speaker, sentence: int) -> np.ndarray:
    """``OOD_SENTENCES[speaker.lang][sentence]`` said by ``speaker`` (an :class:`OodSpeaker`), as
    :func:`synthesize_text`."""
    if not isinstance(speaker, OodSpeaker):
        raise TypeError(f"{speaker.name} has no language: OOD utterances need an OodSpeaker")
    return synthesize_text(speaker, speaker.lang, OOD_SENTENCES[speaker.lang][sentence])


def synthesize_text(speaker: Speaker, lang: str, text: str) -> np.ndarray:
    """``text`` said by ``speaker`` in espeak language ``lang``: float32 at 16 kHz, trimmed,
    RMS-normalised. A pure function of its arguments (and the espeak-ng build)."""
    from scipy.signal import resample_poly  # scipy.signal takes ~1 s to import

    raw = shared_espeak().synthesize(
        text,
        speaker.voice(lang),
        rate=speaker.rate,
        pitch=speaker.pitch,
        pitch_range=speaker.pitch_range,
    )
    x = resample_poly(raw.astype(np.float64) / 32768.0, _UP, _DOWN)
    x = trim_silence(x)
    rms = float(np.sqrt(np.mean(x**2))) if len(x) else 0.0
    if rms == 0.0:
        raise EspeakError(f"espeak produced no audio for {speaker.voice(lang)}: {text!r}")
    return (x * (UTTERANCE_RMS / rms)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Mixing
