"""The embedded demo split: a small Korean speaker-diarization dataset synthesised offline.

Speech comes from libespeak-ng 1.52 (shipped, with its voice data, by the ``espeakng-loader``
wheel) driven through ctypes. Each file is a ~30 s "conversation" between 2-4 synthetic speakers
with pauses, some overlapping turns and low-level coloured background noise. The folder follows
pyannote.database conventions::

    train.txt dev.txt test.txt                 one URI a line
    {train,dev,test}/wav/{uri}.wav             16 kHz mono 16-bit PCM
    {train,dev,test}/rttm/{uri}.rttm           one SPEAKER line per placed utterance
    {train,dev,test}/uem/{uri}.uem             the whole file
    noise/*.wav                                background-noise clips (for augmentation)
    ir/*.wav                                   synthetic room impulse responses (for augmentation)
    README.md  MANIFEST.json                   description; sha256 of every file

Everything is a function of the seed: the same seed gives byte-identical files, in any process.

Determinism of espeak-ng. Several utterances synthesised in one process are not reproducible,
for two reasons. (1) ``espeak_ng_Initialize`` seeds espeak's internal noise generator (used for
breath noise, e.g. the f2/f3/f5 variants) with ``time(NULL)``, so those voices even differ from
run to run; :class:`Espeak` calls ``espeak_ng_SetRandSeed`` with a constant before each synth
(libc ``rand`` state was checked to have no effect). (2) libespeak-ng keeps synthesis state in
static variables that ``espeak_Terminate``/``espeak_Initialize`` do not reset (the pitch-flutter
phase ``Flutter_ix``, the automatic gain ``agc``, cycle counters...), so an utterance depends on
everything synthesised before it in the process (even its length changes by a few samples).
:class:`Espeak` therefore synthesises every utterance in a *fresh instance of the library*: it
loads (``dlopen``) a private copy of ``libespeak-ng.so``, synthesises, then ``espeak_Terminate`` +
``dlclose``, so the next ``dlopen`` maps it again with pristine static data (~5 ms an
utterance). The private copy keeps this independent of any other user of libespeak-ng in the
process; if it is still loaded after ``dlclose`` (unload refused), the next utterance loads a
new copy instead. An utterance is thus a pure function of (voice, parameters, text).

The out-of-domain (OOD) demo split (:func:`ensure_ood_demo`) is a second, much smaller split in
the same layout (1/1/4 files of 30 s, no ``noise/`` or ``ir/``) for checks that need data unlike
the demo's, e.g. forgetting: other voices (espeak variants, pitches and rates that the demo never
uses), other noise (distant Spanish babble over white-to-light-pink hiss at a lower SNR) and, in
every file, a guest speaking another language (Japanese ``ja`` or Scottish English
``en-gb-scotland``) with Korean office-meeting speakers. Its own version, seed and random streams
leave the demo split untouched.

Run ``python -m bench.demo [ROOT] [--seed N]`` to build one (default: the cached demo split), and
``python -m bench.demo [ROOT] --ood`` for the OOD split.
"""

from __future__ import annotations

import _ctypes
import argparse
import ctypes
import fcntl
import json
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.data import SAMPLE_RATE, rttm_line
from bench.io import cache_root, sha256_file, staging_dir

DEMO_VERSION = 1
DEMO_SEED = 0
DEMO_SIZES: Mapping[str, int] = {"train": 24, "dev": 6, "test": 6}
FILE_DURATION = 30.0  # seconds per file
SUBSETS = ("train", "dev", "test")

OVERLAP_PROB = 0.15  # chance that a turn starts before the previous one ends
SNR_DB = (15.0, 25.0)  # background noise level, drawn per file
NOISE_CLIP_DURATION = 10.0
IR_RT60S = (0.25, 0.4, 0.6, 0.9)  # nominal reverberation times of ir/*.wav

ESPEAK_RATE = 22050  # libespeak-ng's native output rate
_UP, _DOWN = 320, 441  # 22050 Hz * 320 / 441 = 16000 Hz
_TRIM_DB = -45.0  # frames this far below an utterance's loudest frame count as silence
_UTTERANCE_RMS = 0.1  # every trimmed utterance is normalised to this RMS before mixing

OOD_VERSION = 1
OOD_SEED = 1
OOD_SIZES: Mapping[str, int] = {"train": 1, "dev": 1, "test": 4}  # only its test files are used
OOD_SNR_DB = (10.0, 16.0)  # background level of the OOD split, drawn per file
OOD_BABBLE_RATE = 1.2  # crowd utterances per second of OOD background
OOD_BABBLE_CUTOFF = 1500.0  # Hz: the crowd is distant, its high frequencies are damped


# ---------------------------------------------------------------------------------------------
# Speakers and sentences


@dataclass(frozen=True)
class Speaker:
    """A fixed synthetic voice: espeak variant plus pitch (0-99), pitch range (0-99), rate (wpm)."""

    name: str
    variant: str
    pitch: int
    pitch_range: int
    rate: int

    def voice(self, lang: str) -> str:
        """The espeak voice name, e.g. ``ko+m3``."""
        return f"{lang}+{self.variant}"


TRAIN_SPEAKERS: tuple[Speaker, ...] = (
    Speaker("spk01", "m1", 35, 40, 160),
    Speaker("spk02", "m3", 55, 65, 185),
    Speaker("spk03", "m6", 42, 30, 150),
    Speaker("spk04", "klatt4", 62, 55, 175),
    Speaker("spk05", "f1", 45, 55, 170),
    Speaker("spk06", "f2", 62, 80, 195),
    Speaker("spk07", "f4", 35, 40, 155),
    Speaker("spk08", "grandma", 50, 60, 140),
)
"""Voices of the train subset."""

HELDOUT_SPEAKERS: tuple[Speaker, ...] = (
    Speaker("spk09", "m7", 50, 55, 175),
    Speaker("spk10", "m2", 28, 35, 160),
    Speaker("spk11", "f5", 55, 65, 180),
    Speaker("spk12", "f3", 40, 70, 165),
)
"""Voices of dev and test (shared by both, disjoint from train)."""

SPEAKERS: tuple[Speaker, ...] = TRAIN_SPEAKERS + HELDOUT_SPEAKERS
SUBSET_SPEAKERS: Mapping[str, tuple[Speaker, ...]] = {
    "train": TRAIN_SPEAKERS,
    "dev": HELDOUT_SPEAKERS,
    "test": HELDOUT_SPEAKERS,
}

# (espeak language, text): Korean daily conversation, with a little English.
SENTENCES: tuple[tuple[str, str], ...] = (
    ("ko", "안녕하세요, 오늘 날씨가 정말 좋네요."),
    ("ko", "점심 뭐 먹을까요?"),
    ("ko", "어제 그 드라마 봤어요? 진짜 재미있던데요."),
    ("ko", "저는 김치찌개가 먹고 싶어요."),
    ("ko", "주말에 뭐 할 거예요?"),
    ("ko", "지하철이 너무 붐벼서 힘들었어요."),
    ("ko", "커피 한잔 하실래요?"),
    ("ko", "요즘 회사 일이 너무 많아서 피곤해요."),
    ("ko", "내일 아침 아홉 시에 만나요."),
    ("ko", "그거 어디서 샀어요? 예쁘네요."),
    ("ko", "아, 맞다. 엄마한테 전화해야 돼."),
    ("ko", "비가 올 것 같으니까 우산 챙기세요."),
    ("ko", "이번 여름 휴가는 제주도로 가려고요."),
    ("ko", "강아지 산책시키러 공원에 갔다 왔어요."),
    ("ko", "시험 공부는 잘 되고 있어?"),
    ("ko", "그 식당 진짜 맛있어. 다음에 같이 가자."),
    ("ko", "잠깐만요, 지갑을 집에 두고 왔어요."),
    ("ko", "요즘 운동을 시작했는데 생각보다 재밌어요."),
    ("ko", "오늘은 일찍 자야겠다."),
    ("ko", "버스 몇 번 타면 돼요?"),
    ("ko", "생일 축하해! 선물은 마음에 들어?"),
    ("ko", "냉장고에 우유가 다 떨어졌어."),
    ("ko", "아이들이 학교에서 돌아올 시간이에요."),
    ("ko", "이 노래 제목이 뭐였지?"),
    ("ko", "괜찮아요, 천천히 하세요."),
    ("ko", "택시 불러 줄까요?"),
    ("ko", "그래서 결국 어떻게 됐어?"),
    ("ko", "다음 주 월요일까지 보고서를 내야 해요."),
    ("ko", "배고프다. 라면이라도 끓여 먹을까?"),
    ("ko", "감기 조심하세요. 요즘 날씨가 추워요."),
    ("ko", "진짜? 나 그 얘기 처음 들어."),
    ("ko", "오랜만이에요! 그동안 잘 지냈어요?"),
    ("ko", "영화 시작하기 전에 팝콘 사 올게."),
    ("ko", "길이 많이 막혀서 조금 늦을 것 같아요."),
    ("ko", "할머니 댁에 언제 갈 거야?"),
    ("ko", "이 옷 좀 입어 봐도 될까요?"),
    ("ko", "저녁에 같이 장 보러 가요."),
    ("ko", "음, 글쎄요. 잘 모르겠어요."),
    ("ko", "고마워요. 덕분에 살았어요."),
    ("ko", "네, 알겠습니다. 그렇게 할게요."),
    ("ko", "휴대폰 배터리가 거의 다 됐어."),
    ("ko", "방 청소는 내가 할게, 설거지는 네가 해."),
    ("en-us", "Okay, sounds good to me."),
    ("en-us", "Wait, what did you say?"),
    ("en-us", "Let's grab some coffee later."),
)


@dataclass(frozen=True)
class OodSpeaker(Speaker):
    """A voice of the OOD split, speaking one language: the sentences ``OOD_SENTENCES[lang]``."""

    lang: str = "ko"

    @property
    def espeak_voice(self) -> str:
        """The espeak voice name, e.g. ``ja+m8``."""
        return self.voice(self.lang)


OOD_HOSTS: tuple[OodSpeaker, ...] = (
    OodSpeaker("ood01", "m4", 44, 50, 168),
    OodSpeaker("ood02", "klatt3", 58, 45, 190),
    OodSpeaker("ood03", "Annie", 48, 60, 172),
    OodSpeaker("ood04", "aunty", 38, 35, 150),
)
"""Korean speakers of the OOD split: variants, pitches and rates that the demo split never uses."""

OOD_GUESTS: tuple[OodSpeaker, ...] = (
    OodSpeaker("ood05", "m8", 52, 60, 160, lang="ja"),
    OodSpeaker("ood06", "belinda", 55, 70, 178, lang="en-gb-scotland"),
)
"""Other-language speakers of the OOD split: one of them joins every OOD conversation."""

OOD_SPEAKERS: tuple[OodSpeaker, ...] = OOD_HOSTS + OOD_GUESTS

OOD_CROWD: tuple[OodSpeaker, ...] = (
    OodSpeaker("crowd1", "klatt", 45, 50, 180, lang="es"),
    OodSpeaker("crowd2", "linda", 50, 55, 175, lang="es"),
    OodSpeaker("crowd3", "adam", 40, 45, 185, lang="es"),
)
"""The distant crowd of the OOD background noise (never annotated)."""

OOD_LANGUAGES: Mapping[str, str] = {
    "ko": "Korean",
    "ja": "Japanese",
    "en-gb-scotland": "Scottish English",
    "es": "Spanish",
}

OOD_SENTENCES: Mapping[str, tuple[str, ...]] = {
    "ko": (  # an office meeting
        "자, 그럼 회의를 시작하겠습니다.",
        "지난주에 말씀드린 자료 보셨어요?",
        "이 부분은 다시 한번 확인해 볼게요.",
        "예산이 조금 부족할 것 같은데요.",
        "다음 일정은 언제로 잡을까요?",
        "저도 그 의견에 동의합니다.",
        "발표 자료는 제가 준비하겠습니다.",
        "혹시 질문 있으신 분 계세요?",
        "오늘 회의는 여기까지 하겠습니다.",
        "고객 반응이 생각보다 좋았어요.",
        "잠깐 쉬었다가 다시 할까요?",
        "메일로 정리해서 보내 드릴게요.",
    ),
    "ja": (  # kana only: espeak-ng spells kanji out
        "おはようございます、きょうもよろしくおねがいします。",
        "すみません、もういちどいってもらえますか。",
        "それはいいアイデアですね。",
        "ちょっとまってください、いましりょうをみています。",
        "あしたのかいぎはなんじからですか。",
        "わたしもそうおもいます。",
        "コーヒーをのみにいきませんか。",
        "えきまでどのくらいかかりますか。",
        "ありがとうございます、たすかりました。",
        "そのけんについてはあとでれんらくします。",
        "きのうはあめがすごかったですね。",
        "なるほど、よくわかりました。",
    ),
    "en-gb-scotland": (
        "Right, shall we get started then?",
        "Sorry, could you say that again?",
        "I think the numbers look fine to me.",
        "Let me check the schedule for next week.",
        "That sounds like a good plan.",
        "Hang on, I'm just opening the document.",
        "Who is taking the notes today?",
        "We should send them an update by Friday.",
        "I'm not sure that will work, to be honest.",
        "Thanks, that's really helpful.",
        "Can we come back to that point later?",
        "The train was late again this morning.",
    ),
    "es": (  # the crowd
        "¿Has visto el partido de anoche?",
        "Yo creo que va a llover esta tarde.",
        "Mañana tengo que trabajar temprano.",
        "¡Qué bonito está el parque hoy!",
        "Vamos a pedir otra ronda de cafés.",
        "No me acuerdo de su nombre.",
        "Mi hermana vive cerca de la playa.",
        "Claro que sí, no hay problema.",
    ),
}


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
def _espeak() -> Espeak:
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

    raw = _espeak().synthesize(
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
    return (x * (_UTTERANCE_RMS / rms)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Mixing


@dataclass(frozen=True)
class PlacedUtterance:
    """One placed utterance: where it sits in the file (samples) and who says what."""

    speaker: str
    sentence: int
    start: int
    end: int


Utterances = Callable[[Speaker, int], np.ndarray]


def colored_noise(rng: np.random.Generator, n: int, alpha: float) -> np.ndarray:
    """Unit-RMS noise with a 1/f**alpha power spectrum (1: pink, 2: brown), without DC."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    shape = np.zeros_like(f)
    shape[f >= 20.0] = f[f >= 20.0] ** (-alpha / 2)
    x = np.fft.irfft(spectrum * shape, n)
    return x / np.sqrt(np.mean(x**2))


def plan_conversation(
    rng: np.random.Generator,
    speakers: tuple[Speaker, ...],
    n_samples: int,
    lengths: Callable[[Speaker, int], int],
    sentences: int = len(SENTENCES),
) -> list[PlacedUtterance]:
    """Turns of a conversation between ``speakers`` filling ``n_samples``; a turn says sentence
    ``i``, drawn from ``range(sentences)``, and lasts ``lengths(speaker, i)`` samples.

    Each speaker talks first once (in random order), then turns go to anyone but the current
    holder of the floor. A turn follows a pause of 0.15-1.2 s (sometimes up to 2.5 s), or with
    probability ``OVERLAP_PROB`` starts 0.3-1.2 s before the floor is released. Never more than
    two people talk at once and nobody overlaps themself.
    """
    sr = SAMPLE_RATE
    turns: list[PlacedUtterance] = []
    order = [speakers[i] for i in rng.permutation(len(speakers))]
    free = {s.name: 0 for s in speakers}  # when each speaker has finished talking
    floor: PlacedUtterance | None = None  # the turn that ends last so far
    t = int(rng.uniform(0.2, 1.5) * sr)  # where it ends
    failures = 0
    while failures < 8 and t < n_samples - sr:
        if order:
            speaker = order.pop(0)
        else:
            others = [s for s in speakers if floor is None or s.name != floor.speaker]
            speaker = others[int(rng.integers(len(others)))]
        sentence = int(rng.integers(sentences))
        length = lengths(speaker, sentence)
        if floor is not None and rng.random() < OVERLAP_PROB:
            overlap = min(rng.uniform(0.3, 1.2) * sr, 0.5 * length, 0.5 * (t - floor.start))
            start = t - int(overlap)
        else:
            pause = rng.uniform(1.2, 2.5) if rng.random() < 0.15 else rng.uniform(0.15, 1.2)
            start = t + int(pause * sr)
        ends = sorted(turn.end for turn in turns)
        start = max(start, ends[-2] if len(ends) > 1 else 0, free[speaker.name] + sr // 10)
        if start + length > n_samples - sr // 5:
            failures += 1
            continue
        turn = PlacedUtterance(speaker.name, sentence, start, start + length)
        turns.append(turn)
        free[speaker.name] = turn.end
        if turn.end > t:
            t, floor = turn.end, turn
    return sorted(turns, key=lambda turn: (turn.start, turn.speaker))


def mix_conversation(
    rng: np.random.Generator,
    pool: tuple[Speaker, ...],
    n_samples: int,
    utterance: Utterances,
) -> tuple[np.ndarray, list[PlacedUtterance]]:
    """A conversation file: float audio in [-1, 1] at 16 kHz and its turns.

    2-4 speakers from ``pool``; per speaker and per turn level changes; coloured noise at a
    random SNR; peak-normalised.
    """
    n_speakers = int(rng.integers(2, min(4, len(pool)) + 1))
    speakers = tuple(pool[i] for i in sorted(rng.choice(len(pool), n_speakers, replace=False)))
    return _mix(
        rng,
        speakers,
        n_samples,
        utterance,
        len(SENTENCES),
        SNR_DB,
        lambda rng, n: colored_noise(rng, n, rng.uniform(1.0, 2.0)),
    )


def _mix(
    rng: np.random.Generator,
    speakers: tuple[Speaker, ...],
    n_samples: int,
    utterance: Utterances,
    sentences: int,
    snr_db: tuple[float, float],
    background: Callable[[np.random.Generator, int], np.ndarray],
) -> tuple[np.ndarray, list[PlacedUtterance]]:
    """A conversation between ``speakers`` over unit-RMS ``background`` noise: see
    :func:`mix_conversation` (whose random numbers it goes on drawing, in the same order)."""
    by_name = {s.name: s for s in speakers}
    turns = plan_conversation(
        rng, speakers, n_samples, lambda s, i: len(utterance(s, i)), sentences
    )
    gain_db = {s.name: rng.uniform(-4.0, 2.0) for s in speakers}
    speech = np.zeros(n_samples)
    active = np.zeros(n_samples, bool)
    for turn in turns:
        gain = 10 ** ((gain_db[turn.speaker] + rng.uniform(-1.0, 1.0)) / 20)
        speech[turn.start : turn.end] += gain * utterance(by_name[turn.speaker], turn.sentence)
        active[turn.start : turn.end] = True
    snr = rng.uniform(*snr_db)
    speech_rms = np.sqrt(np.mean(speech[active] ** 2)) if active.any() else _UTTERANCE_RMS
    noise = background(rng, n_samples)
    mix = speech + noise * speech_rms * 10 ** (-snr / 20)
    mix *= rng.uniform(0.5, 0.9) / np.max(np.abs(mix))
    return mix, turns


def mix_ood_conversation(
    rng: np.random.Generator, guest: OodSpeaker, n_samples: int, utterance: Utterances
) -> tuple[np.ndarray, list[PlacedUtterance]]:
    """An OOD conversation: 1-3 of ``OOD_HOSTS`` and ``guest``, over :func:`ood_background` at
    ``OOD_SNR_DB``; otherwise as :func:`mix_conversation`."""
    n_hosts = int(rng.integers(1, min(3, len(OOD_HOSTS)) + 1))
    picked = sorted(rng.choice(len(OOD_HOSTS), n_hosts, replace=False))
    speakers = (*(OOD_HOSTS[i] for i in picked), guest)
    sentences = min(len(OOD_SENTENCES[s.lang]) for s in speakers)
    return _mix(
        rng,
        speakers,
        n_samples,
        utterance,
        sentences,
        OOD_SNR_DB,
        lambda rng, n: ood_background(rng, n, utterance),
    )


def ood_background(rng: np.random.Generator, n_samples: int, utterance: Utterances) -> np.ndarray:
    """Unit-RMS background of the OOD split: distant (low-passed) Spanish babble of
    ``OOD_CROWD`` over white-to-light-pink hiss, the babble holding 50-80 % of the power."""
    x = np.zeros(n_samples)
    for _ in range(int(n_samples / SAMPLE_RATE * OOD_BABBLE_RATE)):
        speaker = OOD_CROWD[int(rng.integers(len(OOD_CROWD)))]
        u = utterance(speaker, int(rng.integers(len(OOD_SENTENCES[speaker.lang]))))[:n_samples]
        start = int(rng.integers(0, n_samples - len(u) + 1))
        x[start : start + len(u)] += u * rng.uniform(0.4, 1.0)
    f = np.fft.rfftfreq(n_samples, 1.0 / SAMPLE_RATE)
    x = np.fft.irfft(np.fft.rfft(x) / (1.0 + (f / OOD_BABBLE_CUTOFF) ** 2), n_samples)
    rms = np.sqrt(np.mean(x**2))
    babble = x / rms if rms > 0 else x
    hiss = colored_noise(rng, n_samples, rng.uniform(0.0, 0.5))
    share = rng.uniform(0.5, 0.8)
    return np.sqrt(share) * babble + np.sqrt(1.0 - share) * hiss


def room_impulse_response(rng: np.random.Generator, rt60: float) -> np.ndarray:
    """Direct path plus exponentially decaying (60 dB in ``rt60`` s), darkening noise; peak 1."""
    n = int(rt60 * 1.2 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-3 * np.log(10) * t / rt60)
    # one-pole low-pass whose cut-off falls with time: air/wall absorption of high frequencies
    smooth = np.empty(n)
    state = 0.0
    a = np.clip(0.2 + 0.7 * t / rt60, 0.0, 0.95)
    for i in range(n):
        state = a[i] * state + (1 - a[i]) * tail[i]
        smooth[i] = state
    delay = int(rng.uniform(0.002, 0.008) * SAMPLE_RATE)
    h = np.zeros(n)
    h[delay:] = smooth[: n - delay] * rng.uniform(0.3, 0.6) / np.max(np.abs(smooth))
    h[0] = 1.0
    return h / np.max(np.abs(h))


def _babble(rng: np.random.Generator, n_samples: int, utterance: Utterances) -> np.ndarray:
    """Distant chatter: many overlapping train-speaker utterances."""
    x = np.zeros(n_samples)
    for _ in range(int(n_samples / SAMPLE_RATE * 2.5)):
        speaker = TRAIN_SPEAKERS[int(rng.integers(len(TRAIN_SPEAKERS)))]
        u = utterance(speaker, int(rng.integers(len(SENTENCES))))[:n_samples]
        start = int(rng.integers(0, n_samples - len(u) + 1))
        x[start : start + len(u)] += u * rng.uniform(0.5, 1.0)
    return x + 0.1 * np.sqrt(np.mean(x**2)) * colored_noise(rng, n_samples, 1.0)


def noise_clips(rng: np.random.Generator, utterance: Utterances) -> dict[str, np.ndarray]:
    """Background-noise clips for augmentation, peak 0.5."""
    n = int(NOISE_CLIP_DURATION * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    mains = 50.0 if rng.random() < 0.5 else 60.0
    hum = sum(np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
    clips = {
        "pink": colored_noise(rng, n, 1.0),
        "brown": colored_noise(rng, n, 2.0),
        "hum": hum + 0.3 * colored_noise(rng, n, 1.0),
        "babble": _babble(rng, n, utterance),
    }
    return {name: 0.5 * x / np.max(np.abs(x)) for name, x in clips.items()}


# ---------------------------------------------------------------------------------------------
# Writing


def _write_wav(path: Path, x: np.ndarray) -> None:
    pcm = np.clip(np.round(np.asarray(x) * 32767.0), -32768, 32767).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, pcm, SAMPLE_RATE, subtype="PCM_16", format="WAV")


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def rttm_lines(uri: str, turns: list[PlacedUtterance]) -> list[str]:
    """RTTM SPEAKER lines (with newlines) for ``turns``, times in 3 decimals."""
    return [
        rttm_line(uri, t.start / SAMPLE_RATE, (t.end - t.start) / SAMPLE_RATE, t.speaker)
        for t in turns
    ]


def _readme(seed: int, sizes: Mapping[str, int], duration: float, stats: dict) -> str:
    speakers = "\n".join(
        f"- `{s.name}`: espeak variant `{s.variant}`, pitch {s.pitch}, range {s.pitch_range}, "
        f"rate {s.rate} wpm ({'train' if s in TRAIN_SPEAKERS else 'dev + test'})"
        for s in SPEAKERS
    )
    rows = "\n".join(
        f"| {k} | {sizes[k]} | {stats[k]['speech']:.1f} | {stats[k]['overlap']:.1f} |"
        for k in SUBSETS
    )
    return f"""# bench demo split (v{DEMO_VERSION}, seed {seed})

A small synthetic speaker-diarization dataset, generated offline and deterministically by
`bench.demo` (`python -m bench.demo ROOT --seed {seed}`). Korean daily-conversation sentences
(and a few English ones) are spoken by libespeak-ng {stats["espeak"]} voices and mixed into
{duration:g} s files with 2-4 speakers, pauses, ~{OVERLAP_PROB:.0%} overlapping turns and
coloured background noise at {SNR_DB[0]:g}-{SNR_DB[1]:g} dB SNR. RTTM segments are exactly the
placed (silence-trimmed) utterances. It is a smoke-test set for the pipeline, not a measure of
real-world accuracy.

Layout (pyannote.database): `train.txt dev.txt test.txt` (URIs), `{{subset}}/wav/{{uri}}.wav`
(16 kHz mono PCM16), `{{subset}}/rttm/{{uri}}.rttm`, `{{subset}}/uem/{{uri}}.uem`, plus `noise/`
(background clips) and `ir/` (synthetic room impulse responses) for augmentation.
`MANIFEST.json` lists the sha256 of every other file.

| subset | files | speech (s) | overlapped speech (s) |
|---|---|---|---|
{rows}

Speakers (train and dev/test voices are disjoint; dev and test share theirs):

{speakers}

Licence: the speech is output of eSpeak NG (GPL-3.0-or-later) and its voice data; the sentences,
annotations and noise were written or generated by bench and may be used freely.
"""


def _overlap_seconds(turns: list[PlacedUtterance], n_samples: int) -> tuple[float, float]:
    count = np.zeros(n_samples, np.int8)
    for turn in turns:
        count[turn.start : turn.end] += 1
    return float(np.sum(count > 0)) / SAMPLE_RATE, float(np.sum(count > 1)) / SAMPLE_RATE


def _memoised(synthesize: Utterances) -> Utterances:
    """``synthesize`` with its results kept, by speaker name and sentence, for one build."""
    cache_: dict[tuple[str, int], np.ndarray] = {}

    def utterance(speaker: Speaker, sentence: int) -> np.ndarray:
        key = (speaker.name, sentence)
        if key not in cache_:
            cache_[key] = synthesize(speaker, sentence)
        return cache_[key]

    return utterance


def _write_recording(
    root: Path,
    subset: str,
    uri: str,
    audio: np.ndarray,
    turns: list[PlacedUtterance],
    duration: float,
) -> None:
    """``{subset}/wav|rttm|uem/{uri}.*`` of one file."""
    _write_wav(root / subset / "wav" / f"{uri}.wav", audio)
    _write_text(
        root / subset / "rttm" / f"{uri}.rttm",
        "".join(rttm_lines(uri, turns)),
    )
    _write_text(root / subset / "uem" / f"{uri}.uem", f"{uri} 1 0.000 {duration:.3f}\n")


def _write_manifest(root: Path, fields: Mapping[str, object]) -> None:
    """``MANIFEST.json``: ``fields`` plus the sha256 of every other file under ``root``."""
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    manifest = {**fields, "files": {f: sha256_file(root / f) for f in files}}
    _write_text(root / "MANIFEST.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _build(root: Path, seed: int, sizes: Mapping[str, int], duration: float) -> None:
    utterance = _memoised(synthesize_utterance)
    n_samples = round(duration * SAMPLE_RATE)
    stats: dict = {"espeak": _espeak().version}
    for k, subset in enumerate(SUBSETS):
        uris = [f"demo_{subset}_{i:03d}" for i in range(sizes[subset])]
        speech = overlap = 0.0
        for i, uri in enumerate(uris):
            rng = np.random.default_rng([seed, k, i])
            audio, turns = mix_conversation(rng, SUBSET_SPEAKERS[subset], n_samples, utterance)
            _write_recording(root, subset, uri, audio, turns, duration)
            s, o = _overlap_seconds(turns, n_samples)
            speech, overlap = speech + s, overlap + o
        _write_text(root / f"{subset}.txt", "".join(uri + "\n" for uri in uris))
        stats[subset] = {"speech": speech, "overlap": overlap}

    for name, clip in noise_clips(np.random.default_rng([seed, 100]), utterance).items():
        _write_wav(root / "noise" / f"{name}.wav", clip)
    ir_rng = np.random.default_rng([seed, 101])
    for j, rt60 in enumerate(IR_RT60S):
        _write_wav(root / "ir" / f"rir_{j:02d}.wav", room_impulse_response(ir_rng, rt60))
    _write_text(root / "README.md", _readme(seed, sizes, duration, stats))
    _write_manifest(
        root,
        {
            "generator": "bench.demo",
            "version": DEMO_VERSION,
            "seed": seed,
            "sizes": dict(sizes),
            "duration": duration,
            "sample_rate": SAMPLE_RATE,
            "espeak_ng": stats["espeak"],
            "ir_rt60": {f"ir/rir_{j:02d}.wav": rt60 for j, rt60 in enumerate(IR_RT60S)},
        },
    )


def _ood_readme(seed: int, sizes: Mapping[str, int], duration: float, stats: dict) -> str:
    speakers = "\n".join(
        f"- `{s.name}`: {OOD_LANGUAGES[s.lang]}, espeak voice `{s.espeak_voice}`, pitch {s.pitch},"
        f"\n  range {s.pitch_range}, rate {s.rate} wpm "
        f"({'host' if s in OOD_HOSTS else 'guest'}; in {stats['files'][s.name]} file(s))"
        for s in OOD_SPEAKERS
    )
    crowd = ", ".join(f"`{s.espeak_voice}`" for s in OOD_CROWD)
    rows = "\n".join(
        f"| {k} | {sizes[k]} | {stats[k]['speech']:.1f} | {stats[k]['overlap']:.1f} |"
        for k in SUBSETS
    )
    languages = sorted({OOD_LANGUAGES[s.lang] for s in OOD_GUESTS})
    return f"""# bench out-of-domain demo split (v{OOD_VERSION}, seed {seed})

A second, small synthetic speaker-diarization split, unlike the bench demo split on purpose,
for checks such as forgetting (score a fine-tuned model on data it was not tuned for). Generated
offline and deterministically by `bench.demo` (`python -m bench.demo ROOT --ood --seed {seed}`).
Only its {sizes["test"]} test files are meant to be scored; train and dev
({sizes["train"]} and {sizes["dev"]} file(s)) are there so that the folder loads like any split.

What differs from the demo split:

- **voices**: libespeak-ng {stats["espeak"]} variants, pitches and rates that the demo never
  uses; no speaker label is shared with it;
- **languages**: every file is a Korean office meeting of 1-3 hosts joined by one guest who
  speaks another language ({" or ".join(languages)}, in turn), so each file has 2-4 speakers;
- **noise**: distant, low-passed Spanish babble
  ({crowd})
  over white-to-light-pink hiss, at {OOD_SNR_DB[0]:g}-{OOD_SNR_DB[1]:g} dB SNR
  (the demo: pink-to-brown noise at {SNR_DB[0]:g}-{SNR_DB[1]:g} dB).

Files are {duration:g} s with pauses and ~{OVERLAP_PROB:.0%} overlapping turns. RTTM segments are
exactly the placed (silence-trimmed) utterances; the babble is noise and is not annotated.

Layout (pyannote.database): `train.txt dev.txt test.txt` (URIs), `{{subset}}/wav/{{uri}}.wav`
(16 kHz mono PCM16), `{{subset}}/rttm/{{uri}}.rttm`, `{{subset}}/uem/{{uri}}.uem`.
`MANIFEST.json` lists the speakers and the sha256 of every other file.

| subset | files | speech (s) | overlapped speech (s) |
|---|---|---|---|
{rows}

Speakers:

{speakers}

Licence: the speech is output of eSpeak NG (GPL-3.0-or-later) and its voice data; the sentences,
annotations and noise were written or generated by bench and may be used freely.
"""


def _build_ood(root: Path, seed: int, sizes: Mapping[str, int], duration: float) -> None:
    utterance = _memoised(synthesize_ood_utterance)
    n_samples = round(duration * SAMPLE_RATE)
    stats: dict = {"espeak": _espeak().version, "files": {s.name: 0 for s in OOD_SPEAKERS}}
    for k, subset in enumerate(SUBSETS):
        uris = [f"ood_{subset}_{i:03d}" for i in range(sizes[subset])]
        speech = overlap = 0.0
        for i, uri in enumerate(uris):
            # streams 200+: never those of a demo split (seed, k, i) / (seed, 100|101)
            rng = np.random.default_rng([seed, 200 + k, i])
            guest = OOD_GUESTS[i % len(OOD_GUESTS)]  # the languages take turns
            audio, turns = mix_ood_conversation(rng, guest, n_samples, utterance)
            _write_recording(root, subset, uri, audio, turns, duration)
            for name in {turn.speaker for turn in turns}:
                stats["files"][name] += 1
            s, o = _overlap_seconds(turns, n_samples)
            speech, overlap = speech + s, overlap + o
        _write_text(root / f"{subset}.txt", "".join(uri + "\n" for uri in uris))
        stats[subset] = {"speech": speech, "overlap": overlap}
    _write_text(root / "README.md", _ood_readme(seed, sizes, duration, stats))
    _write_manifest(
        root,
        {
            "generator": "bench.demo",
            "split": "ood",
            "version": OOD_VERSION,
            "seed": seed,
            "sizes": dict(sizes),
            "duration": duration,
            "sample_rate": SAMPLE_RATE,
            "espeak_ng": stats["espeak"],
            "snr_db": list(OOD_SNR_DB),
            "speakers": {
                s.name: {
                    "role": "host" if s in OOD_HOSTS else "guest",
                    "language": OOD_LANGUAGES[s.lang],
                    "voice": s.espeak_voice,
                    "pitch": s.pitch,
                    "pitch_range": s.pitch_range,
                    "rate": s.rate,
                }
                for s in OOD_SPEAKERS
            },
            "babble_voices": [s.espeak_voice for s in OOD_CROWD],
        },
    )


def _checked_sizes(
    seed: int, sizes: Mapping[str, int] | None, default: Mapping[str, int]
) -> dict[str, int]:
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    sizes = dict(default if sizes is None else sizes)
    if set(sizes) != set(SUBSETS) or min(sizes.values()) < 0:
        raise ValueError(f"sizes needs a count >= 0 for each of {SUBSETS}, got {sizes}")
    return sizes


def _build_atomically(root: Path, build: Callable[[Path], None]) -> Path:
    """``build(folder)`` in a temporary sibling of ``root``, then renamed into place."""
    root = Path(root)
    with staging_dir(root) as tmp:
        build(tmp)
    return root


def generate_demo(
    root: Path,
    seed: int = DEMO_SEED,
    sizes: Mapping[str, int] | None = None,
    duration: float = FILE_DURATION,
) -> Path:
    """Write the demo split to ``root`` (replacing it) and return ``root``.

    Built in a temporary sibling folder, then renamed into place, so a half-written split is
    never visible. ``sizes`` (files per subset, default ``DEMO_SIZES``) and ``duration`` (seconds
    per file) shrink it for tests. Same arguments, same bytes.
    """
    sizes = _checked_sizes(seed, sizes, DEMO_SIZES)
    return _build_atomically(root, lambda tmp: _build(tmp, seed, sizes, duration))


def generate_ood_demo(
    root: Path,
    seed: int = OOD_SEED,
    sizes: Mapping[str, int] | None = None,
    duration: float = FILE_DURATION,
) -> Path:
    """Write the out-of-domain demo split to ``root`` (replacing it) and return ``root``.

    As :func:`generate_demo` (atomic, same arguments give the same bytes), with ``OOD_SIZES``
    files by default and no ``noise/`` or ``ir/`` folders.
    """
    sizes = _checked_sizes(seed, sizes, OOD_SIZES)
    return _build_atomically(root, lambda tmp: _build_ood(tmp, seed, sizes, duration))


def _ensure(cache_dir: Path | None, name: str, generate: Callable[[Path], object]) -> Path:
    """``{cache_dir}/{name}``, made by ``generate(folder)`` unless it has a ``MANIFEST.json``."""
    cache_dir = cache_root(cache_dir)
    root = cache_dir / name
    if (root / "MANIFEST.json").is_file():
        return root
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f".{root.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "MANIFEST.json").is_file():
            generate(root)
    return root


def ensure_demo(cache_dir: Path | None = None, seed: int = DEMO_SEED) -> Path:
    """The demo split under ``cache_dir``, generated on first use.

    Lives in ``{cache_dir}/demo-v{DEMO_VERSION}-seed{seed}``; a folder with a ``MANIFEST.json``
    is reused as is. Concurrent callers serialise on a lock file, so it is generated once.
    """
    return _ensure(cache_dir, f"demo-v{DEMO_VERSION}-seed{seed}", lambda r: generate_demo(r, seed))


def ensure_ood_demo(cache_dir: Path | None = None, seed: int = OOD_SEED) -> Path:
    """The out-of-domain demo split under ``cache_dir``, generated on first use (~2 s).

    Lives in ``{cache_dir}/demo-ood-v{OOD_VERSION}-seed{seed}``; cached, locked and reused as
    :func:`ensure_demo`.
    """
    return _ensure(
        cache_dir, f"demo-ood-v{OOD_VERSION}-seed{seed}", lambda r: generate_ood_demo(r, seed)
    )


def verify_demo(root: Path) -> list[str]:
    """Files of ``root`` whose sha256 differs from ``MANIFEST.json`` (or that are missing).

    For the demo and the out-of-domain demo splits alike."""
    manifest = json.loads((Path(root) / "MANIFEST.json").read_text(encoding="utf-8"))
    return [
        f
        for f, digest in manifest["files"].items()
        if not (Path(root) / f).is_file() or sha256_file(Path(root) / f) != digest
    ]


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.demo [ROOT] [--ood] [--seed N] [--sizes train=2,dev=1,test=1]``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("root", nargs="?", type=Path, help="output folder (default: the cache)")
    parser.add_argument(
        "--ood", action="store_true", help="the out-of-domain demo split instead of the demo split"
    )
    parser.add_argument("--seed", type=int, help=f"default: {DEMO_SEED} ({OOD_SEED} with --ood)")
    parser.add_argument("--sizes", help="files per subset, e.g. train=2,dev=1,test=1")
    parser.add_argument("--duration", type=float, default=FILE_DURATION)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else OOD_SEED if args.ood else DEMO_SEED
    if args.root is None:
        if args.sizes or args.duration != FILE_DURATION:
            parser.error("--sizes/--duration need an explicit ROOT")
        print(ensure_ood_demo(seed=seed) if args.ood else ensure_demo(seed=seed))
        return 0
    sizes = None
    if args.sizes:
        sizes = {k: int(v) for k, v in (item.split("=") for item in args.sizes.split(","))}
    generate = generate_ood_demo if args.ood else generate_demo
    print(generate(args.root, seed, sizes, args.duration))
    return 0
