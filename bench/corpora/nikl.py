"""NIKL daily-conversation corpus: one JSON per dialogue (``document[0].utterance[]`` with
``id``, ``speaker_id``, ``start`` and ``end`` in seconds) and one wav per utterance, named by its
id and placed on one track at its start (overlaps add); a ``{dialogue id}.wav`` is used instead
when present."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.corpora.entry import (
    Entry,
    FileAudio,
    Samples,
    Turn,
    audio_files,
    audio_info,
    check_channel,
)
from bench.corpora.jsonfields import Fields, load_json
from bench.data import DataError

DEFAULT_CHANNEL = None


def _one(index: dict[str, list[Path]], stem: str) -> Path | None:
    found = [path for path in index.get(stem, []) if path.suffix.lower() == ".wav"]
    if len(found) > 1:
        raise DataError(f"{found[1]}: several {stem}.wav files (also {found[0]})")
    return found[0] if found else None


def _mix(pieces: tuple[tuple[Path, float], ...], channel: int | None) -> tuple[np.ndarray, int]:
    """The dialogue track: every utterance wav added at its start (16-bit PCM, clipped later)."""
    rate = audio_info(pieces[0][0]).samplerate
    clips = []
    for path, start in pieces:
        data, _ = sf.read(str(path), dtype="float32", always_2d=True)
        clips.append(
            (round(start * rate), data.mean(axis=1) if channel is None else data[:, channel])
        )
    track = np.zeros(max(at + len(clip) for at, clip in clips), dtype=np.float32)
    for at, clip in clips:
        track[at : at + len(clip)] += clip
    return track, rate


def _dialogue(path: Path, index: dict[str, list[Path]], channel: int | None) -> Entry:
    top = Fields(load_json(path), str(path))
    uri = top.string("id")
    documents = top.objects("document")
    if len(documents) != 1:
        raise top.error("document", f"{len(documents)} documents, expected 1")
    turns, pieces = [], []
    for utterance in documents[0].objects("utterance"):
        start, end = utterance.seconds("start"), utterance.seconds("end")
        if end < start:
            raise utterance.error("end", f"{end} is before start {start}")
        speaker = utterance.string("speaker_id")
        if end > start:
            turns.append(Turn(start, end, speaker))
        pieces.append((utterance, utterance.string("id"), start))
    dialogue_wav = _one(index, uri)
    if dialogue_wav is not None:
        info = audio_info(dialogue_wav)
        check_channel(dialogue_wav, channel, info.channels)
        duration = info.frames / info.samplerate
        return Entry(uri, FileAudio(dialogue_wav, channel), turns, [(0.0, duration)], str(path))
    if not pieces:
        raise documents[0].error("utterance", f"empty, and no {uri}.wav (no audio to place)")
    placed, duration, rate = [], 0.0, None
    for utterance, name, start in pieces:
        wav = _one(index, name)
        if wav is None:
            raise utterance.error("id", f"no audio {name}.wav (nor a dialogue {uri}.wav)")
        info = audio_info(wav)
        check_channel(wav, channel, info.channels)
        if rate is not None and info.samplerate != rate:
            raise DataError(f"{wav}: {info.samplerate} Hz, other utterances of {uri} are {rate} Hz")
        rate = info.samplerate
        placed.append((wav, start))
        duration = max(duration, round(start * rate) / rate + info.frames / rate)
    audio = Samples(partial(_mix, tuple(placed), channel))
    return Entry(uri, audio, turns, [(0.0, duration)], str(path))


def read(src: Path, channel: int | None) -> list[Entry]:
    """Every ``*.json`` under ``src`` (or ``src`` itself) is a dialogue; wavs are looked up
    anywhere under ``src`` (the JSON's folder when ``src`` is a file)."""
    files = sorted(src.rglob("*.json")) if src.is_dir() else [src]
    if not files:
        raise DataError(f"{src}: no NIKL dialogue JSON (*.json)")
    index = audio_files(src if src.is_dir() else src.parent)
    return [_dialogue(path, index, channel) for path in files]
