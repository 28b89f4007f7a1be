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

import argparse
import fcntl
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.data import SAMPLE_RATE, rttm_line
from bench.demo.espeak import shared_espeak, synthesize_ood_utterance, synthesize_utterance
from bench.demo.mix import (
    IR_RT60S,
    OOD_SNR_DB,
    OVERLAP_PROB,
    SNR_DB,
    PlacedUtterance,
    Utterances,
    mix_conversation,
    mix_ood_conversation,
    noise_clips,
    room_impulse_response,
)
from bench.demo.voices import (
    OOD_CROWD,
    OOD_GUESTS,
    OOD_HOSTS,
    OOD_LANGUAGES,
    OOD_SPEAKERS,
    SPEAKERS,
    SUBSET_SPEAKERS,
    TRAIN_SPEAKERS,
    Speaker,
)
from bench.io import cache_root, sha256_file, staging_dir

DEMO_VERSION = 1
DEMO_SEED = 0
DEMO_SIZES: Mapping[str, int] = {"train": 24, "dev": 6, "test": 6}
FILE_DURATION = 30.0  # seconds per file
SUBSETS = ("train", "dev", "test")

OOD_VERSION = 1
OOD_SEED = 1
OOD_SIZES: Mapping[str, int] = {"train": 1, "dev": 1, "test": 4}  # only its test files are used


# ---------------------------------------------------------------------------------------------
# Speakers and sentences


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
    stats: dict = {"espeak": shared_espeak().version}
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
    stats: dict = {"espeak": shared_espeak().version, "files": {s.name: 0 for s in OOD_SPEAKERS}}
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


def scaled_sizes(hours: float, file_minutes: float) -> dict[str, int]:
    """Files per subset for a corpus of about ``hours`` of ``file_minutes``-minute files, in the
    demo's proportions (4 : 1 : 1), at least one file a subset."""
    if hours <= 0 or file_minutes <= 0:
        raise ValueError(f"--hours and --file-minutes must be > 0, got {hours} and {file_minutes}")
    total = max(3, round(hours * 60 / file_minutes))
    held_out = max(1, round(total * DEMO_SIZES["dev"] / sum(DEMO_SIZES.values())))
    return {"train": total - 2 * held_out, "dev": held_out, "test": held_out}


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.demo [ROOT] [--ood] [--seed N] [--sizes train=2,dev=1,test=1]
    [--hours H --file-minutes M]``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("root", nargs="?", type=Path, help="output folder (default: the cache)")
    parser.add_argument(
        "--ood", action="store_true", help="the out-of-domain demo split instead of the demo split"
    )
    parser.add_argument("--seed", type=int, help=f"default: {DEMO_SEED} ({OOD_SEED} with --ood)")
    parser.add_argument("--sizes", help="files per subset, e.g. train=2,dev=1,test=1")
    parser.add_argument("--duration", type=float, default=FILE_DURATION, help="seconds per file")
    parser.add_argument(
        "--hours", type=float, help="a corpus of about this many hours (4 : 1 : 1 files)"
    )
    parser.add_argument("--file-minutes", type=float, help="minutes per file (sets --duration)")
    args = parser.parse_args(argv)
    if args.file_minutes is not None:
        if args.duration != FILE_DURATION:
            parser.error("--file-minutes and --duration both set the file length: give one")
        if args.file_minutes <= 0:
            parser.error(f"--file-minutes must be > 0, got {args.file_minutes}")
        args.duration = args.file_minutes * 60
    if args.hours is not None:
        if args.sizes:
            parser.error("--hours and --sizes both set the number of files: give one")
        if args.hours <= 0:
            parser.error(f"--hours must be > 0, got {args.hours}")
        sizes_ = scaled_sizes(args.hours, args.duration / 60)
        args.sizes = ",".join(f"{k}={v}" for k, v in sizes_.items())
    seed = args.seed if args.seed is not None else OOD_SEED if args.ood else DEMO_SEED
    if args.root is None:
        if args.sizes or args.duration != FILE_DURATION:
            parser.error("--sizes/--duration/--hours/--file-minutes need an explicit ROOT")
        print(ensure_ood_demo(seed=seed) if args.ood else ensure_demo(seed=seed))
        return 0
    sizes = None
    if args.sizes:
        sizes = {k: int(v) for k, v in (item.split("=") for item in args.sizes.split(","))}
    generate = generate_ood_demo if args.ood else generate_demo
    print(generate(args.root, seed, sizes, args.duration))
    return 0
