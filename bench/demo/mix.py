"""Conversations from utterances: turns planned with pauses and overlap, mixed at 16 kHz with
coloured background noise; the OOD split's babble and room responses; noise clips."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.data import SAMPLE_RATE
from bench.demo.espeak import UTTERANCE_RMS
from bench.demo.voices import (
    OOD_CROWD,
    OOD_HOSTS,
    OOD_SENTENCES,
    SENTENCES,
    TRAIN_SPEAKERS,
    OodSpeaker,
    Speaker,
)

OVERLAP_PROB = 0.15  # chance that a turn starts before the previous one ends
SNR_DB = (15.0, 25.0)  # background noise level, drawn per file
NOISE_CLIP_DURATION = 10.0
IR_RT60S = (0.25, 0.4, 0.6, 0.9)  # nominal reverberation times of ir/*.wav

OOD_SNR_DB = (10.0, 16.0)  # background level of the OOD split, drawn per file
OOD_BABBLE_RATE = 1.2  # crowd utterances per second of OOD background
OOD_BABBLE_CUTOFF = 1500.0  # Hz: the crowd is distant, its high frequencies are damped


# ---------------------------------------------------------------------------------------------
# Speakers and sentences


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
    speech_rms = np.sqrt(np.mean(speech[active] ** 2)) if active.any() else UTTERANCE_RMS
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
