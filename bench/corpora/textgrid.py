"""Praat TextGrid per recording, one interval tier per speaker, non-empty intervals = speech
(AliMeeting's shape: multi-channel ``audio_dir/{meeting}_*.wav`` and
``textgrid_dir/{meeting}.TextGrid``).

``src`` holds ``textgrid_dir/`` and ``audio_dir/``, or is a folder of such parts whose names give
the split (``Train_Ali_far``, ``Eval_Ali_far``, ``Test_Ali_far``). One channel is kept: 0 unless
``--channel`` says otherwise."""

from __future__ import annotations

from pathlib import Path

from praatio import textgrid
from praatio.data_classes.interval_tier import IntervalTier

from bench.corpora.entry import Entry, FileAudio, Turn, audio_info, check_channel
from bench.corpora.split import part_subsets
from bench.data import DataError

DEFAULT_CHANNEL = 0


def _audio(audio_dir: Path, meeting: str) -> Path:
    found = sorted({*audio_dir.glob(f"{meeting}.wav"), *audio_dir.glob(f"{meeting}_*.wav")})
    if len(found) != 1:
        problem = "no" if not found else f"{len(found)} ({', '.join(p.name for p in found)})"
        raise DataError(f"{audio_dir}: {problem} audio for {meeting} ({meeting}[_*].wav)")
    return found[0]


def read_turns(path: Path) -> tuple[list[Turn], tuple[float, float]]:
    """Speaker turns (tier name = speaker) and the grid's time span."""
    try:
        grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    except Exception as error:  # praatio raises its own errors, and IndexError on garbage
        problem = " ".join(str(error).split()) or type(error).__name__
        raise DataError(f"{path}: not a valid TextGrid: {problem}") from None
    if not grid.tiers:
        raise DataError(f"{path}: no tiers; expected one interval tier per speaker")
    turns = []
    for tier in grid.tiers:
        if not isinstance(tier, IntervalTier):
            raise DataError(
                f"{path}: tier {tier.name!r} is a point tier; "
                "expected one interval tier per speaker"
            )
        if not tier.name.strip():
            raise DataError(f"{path}: a tier has no name; tier names are the speakers")
        turns += [Turn(i.start, i.end, tier.name) for i in tier.entries if i.label.strip()]
    return turns, (grid.minTimestamp, grid.maxTimestamp)


def _recording(grid: Path, audio_dir: Path, channel: int, subset: str | None) -> Entry:
    audio = _audio(audio_dir, grid.stem)
    info = audio_info(audio)
    check_channel(audio, channel, info.channels)
    turns, span = read_turns(grid)
    source = FileAudio(audio) if info.channels == 1 else FileAudio(audio, channel)
    return Entry(grid.stem, source, turns, [span], str(grid), subset)


def _parts(src: Path) -> list[Path]:
    """``src`` when it holds ``textgrid_dir/``, else its folders that do."""
    if (src / "textgrid_dir").is_dir():
        return [src]
    if not src.is_dir():
        return []
    return sorted(path for path in src.iterdir() if (path / "textgrid_dir").is_dir())


def read(src: Path, channel: int) -> list[Entry]:
    """The recordings of an AliMeeting-style folder: audio and Praat TextGrids."""
    parts = _parts(src)
    if not parts:
        raise DataError(
            f"{src}: no textgrid_dir/ (expected textgrid_dir/*.TextGrid and audio_dir/*.wav "
            "here, or in each of its folders)"
        )
    subsets = part_subsets(part.name for part in parts)
    entries = []
    for part in parts:
        grids = sorted(
            p for p in (part / "textgrid_dir").iterdir() if p.suffix.lower() == ".textgrid"
        )
        entries += [_recording(g, part / "audio_dir", channel, subsets[part.name]) for g in grids]
    return entries
