"""lhotse manifests: RecordingSet + SupervisionSet pairs (``*recordings*.jsonl[.gz]`` beside
``*supervisions*.jsonl[.gz]``), as lhotse prepares every corpus it knows. Supervisions with a
``speaker`` become turns (on any channel); several pairs named after subsets give the split."""

from __future__ import annotations

import gzip
import json
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.corpora.entry import Entry, FileAudio, Samples, Turn, audio_info
from bench.corpora.split import part_subsets
from bench.data import DataError

DEFAULT_CHANNEL = None
MANIFEST_SUFFIXES = (".jsonl", ".jsonl.gz")


def _lhotse() -> Any:
    try:
        import lhotse
    except ImportError:
        raise DataError(
            "the lhotse format needs lhotse, an optional extra: pip install 'bench[corpora]'"
        ) from None
    return lhotse


def _manifest(path: Path, kind: Any) -> list[tuple[int, Any]]:
    """(line, item) of a JSON-lines manifest, each line read by lhotse's ``kind.from_dict``."""
    items = []
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    items.append((number, kind.from_dict(json.loads(line))))
                except json.JSONDecodeError as error:
                    raise DataError(f"{path}:{number}: not valid JSON: {error.msg}") from None
                except (KeyError, TypeError, ValueError, AssertionError) as error:
                    raise DataError(
                        f"{path}:{number}: not a lhotse {kind.__name__}: {error!r}"
                    ) from None
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read: {error}") from None
    return items


def _load(recording: Any, channel: int | None) -> tuple[np.ndarray, int]:
    try:
        samples = recording.load_audio(channels=channel)
    except Exception as error:  # lhotse's audio backends raise many kinds
        raise DataError(
            f"recording {recording.id!r}: lhotse cannot load its audio: {error}"
        ) from None
    return samples.T, recording.sampling_rate


def _audio(recording: Any, channel: int | None) -> FileAudio | Samples:
    """A plain wav file that is the whole recording is copied; anything else lhotse decodes."""
    sources = recording.sources
    if (
        channel is None
        and len(sources) == 1
        and sources[0].type == "file"
        and not recording.transforms
    ):
        path = Path(sources[0].source)
        if path.suffix.lower() == ".wav" and path.is_file():
            info = audio_info(path)
            shape = (recording.num_channels, recording.sampling_rate, recording.num_samples)
            if (info.channels, info.samplerate, info.frames) == shape:
                return FileAudio(path)
    return Samples(partial(_load, recording, channel))


def _pair(
    recordings_path: Path, channel: int | None, subset: str | None, lhotse: Any
) -> list[Entry]:
    supervisions_path = recordings_path.with_name(
        recordings_path.name.replace("recordings", "supervisions")
    )
    if not supervisions_path.is_file():
        raise DataError(f"{recordings_path}: no {supervisions_path.name} beside it")
    recordings = {}
    for number, recording in _manifest(recordings_path, lhotse.Recording):
        where = f"{recordings_path}:{number}"
        if channel is not None and channel not in recording.channel_ids:
            raise DataError(
                f"{where}: recording {recording.id!r} has no channel {channel} (--channel)"
            )
        recordings[recording.id] = (where, recording)
    turns: dict[str, list[Turn]] = {rid: [] for rid in recordings}
    for number, supervision in _manifest(supervisions_path, lhotse.SupervisionSegment):
        where = f"{supervisions_path}:{number}"
        if supervision.recording_id not in recordings:
            raise DataError(
                f"{where}: recording_id {supervision.recording_id!r} is not in "
                f"{recordings_path.name}"
            )
        if supervision.start < 0 or supervision.duration < 0:
            raise DataError(f"{where}: negative start or duration")
        if supervision.speaker:
            turns[supervision.recording_id].append(
                Turn(supervision.start, supervision.end, supervision.speaker)
            )
    return [
        Entry(rid, _audio(rec, channel), turns[rid], [(0.0, rec.duration)], where, subset)
        for rid, (where, rec) in recordings.items()
    ]


def read(src: Path, channel: int | None) -> list[Entry]:
    """The recordings of a lhotse manifest folder (recordings + supervisions)."""
    lhotse = _lhotse()
    if not src.is_dir():
        raise DataError(f"{src}: expected a folder of lhotse manifests")
    manifests = sorted(p for p in src.glob("*recordings*") if p.name.endswith(MANIFEST_SUFFIXES))
    if not manifests:
        raise DataError(f"{src}: no lhotse recordings manifest (*recordings*.jsonl or .jsonl.gz)")
    subsets = part_subsets(p.name.replace("recordings", "") for p in manifests)
    entries = []
    for path in manifests:
        entries += _pair(path, channel, subsets[path.name.replace("recordings", "")], lhotse)
    return entries
