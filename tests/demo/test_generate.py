"""The embedded demo split: real espeak-ng synthesis, deterministic layout and content."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import DEMO_FINGERPRINT

from bench.data import SAMPLE_RATE
from bench.demo import (
    DEMO_SIZES,
    DEMO_VERSION,
    FILE_DURATION,
    HELDOUT_SPEAKERS,
    OOD_CROWD,
    OOD_GUESTS,
    OOD_HOSTS,
    OOD_SEED,
    OOD_SIZES,
    OOD_SPEAKERS,
    OOD_VERSION,
    SPEAKERS,
    SUBSETS,
    TRAIN_SPEAKERS,
    ensure_demo,
    ensure_ood_demo,
    generate_demo,
    synthesize_utterance,
    verify_demo,
)

REPO = Path(__file__).resolve().parents[2]
SMALL = {"train": 3, "dev": 2, "test": 2}


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _rttm(path: Path) -> list[tuple[float, float, str]]:
    segments = []
    for line in path.read_text().splitlines():
        fields = line.split()
        assert len(fields) == 10 and fields[0] == "SPEAKER" and fields[2] == "1", line
        assert fields[1] == path.stem and fields[5:7] == ["<NA>", "<NA>"], line
        segments.append((float(fields[3]), float(fields[4]), fields[7]))
    return segments


def _uris(root: Path, subset: str) -> list[str]:
    return (root / f"{subset}.txt").read_text().split()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_demo(tmp_path_factory.mktemp("demo") / "seed0", seed=0, sizes=SMALL)


def test_same_seed_gives_identical_bytes_in_a_fresh_interpreter(demo: Path, tmp_path: Path):
    sizes = ",".join(f"{k}={v}" for k, v in SMALL.items())
    command = [sys.executable, "-m", "bench.demo", str(tmp_path / "again"), "--seed", "0"]
    subprocess.run([*command, "--sizes", sizes], check=True, env=_env(), capture_output=True)
    ours, theirs = _files(demo), _files(tmp_path / "again")
    assert sorted(ours) == sorted(theirs)
    assert [f for f in ours if ours[f] != theirs[f]] == []


def test_different_seed_gives_different_audio(demo: Path, tmp_path: Path):
    other = generate_demo(tmp_path / "seed1", seed=1, sizes=SMALL)
    for subset in SUBSETS:
        for uri in _uris(demo, subset):
            wav = f"{subset}/wav/{uri}.wav"
            assert (demo / wav).read_bytes() != (other / wav).read_bytes(), wav
    manifest = json.loads((other / "MANIFEST.json").read_text())
    assert manifest["seed"] == 1 and manifest["version"] == DEMO_VERSION


def test_layout_follows_pyannote_database_conventions(demo: Path):
    for subset in SUBSETS:
        uris = _uris(demo, subset)
        assert len(uris) == SMALL[subset] and len(set(uris)) == len(uris)
        for uri in uris:
            info = sf.info(demo / subset / "wav" / f"{uri}.wav")
            assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
            assert info.frames == FILE_DURATION * SAMPLE_RATE
            uem = (demo / subset / "uem" / f"{uri}.uem").read_text()
            assert uem == f"{uri} 1 0.000 {FILE_DURATION:.3f}\n"
            segments = _rttm(demo / subset / "rttm" / f"{uri}.rttm")
            assert all(0 <= start and start + d <= FILE_DURATION and d > 0.3
                       for start, d, _ in segments)  # fmt: skip
            assert 2 <= len({speaker for *_, speaker in segments}) <= 4
    for folder in ("noise", "ir"):
        clips = sorted((demo / folder).glob("*.wav"))
        assert len(clips) >= 3
        assert all(sf.info(c).samplerate == SAMPLE_RATE and sf.info(c).channels == 1 for c in clips)
    assert "GPL" in (demo / "README.md").read_text()


def test_manifest_covers_every_file(demo: Path):
    manifest = json.loads((demo / "MANIFEST.json").read_text())
    assert manifest["generator"] == "bench.demo" and manifest["seed"] == 0
    assert manifest["version"] == DEMO_VERSION and manifest["sizes"] == SMALL
    assert set(manifest["files"]) == set(_files(demo)) - {"MANIFEST.json"}
    assert verify_demo(demo) == []
    assert [p.name for p in demo.parent.iterdir()] == [demo.name]  # no temporary leftovers


def test_speaker_sets_are_disjoint_between_train_and_dev_test(demo: Path):
    def speakers(subset: str) -> set[str]:
        return {
            speaker
            for uri in _uris(demo, subset)
            for *_, speaker in _rttm(demo / subset / "rttm" / f"{uri}.rttm")
        }

    assert speakers("train") <= {s.name for s in TRAIN_SPEAKERS}
    assert speakers("dev") | speakers("test") <= {s.name for s in HELDOUT_SPEAKERS}


def test_some_speech_overlaps(demo: Path):
    overlaps = 0
    for subset in SUBSETS:
        for uri in _uris(demo, subset):
            segments = sorted(_rttm(demo / subset / "rttm" / f"{uri}.rttm"))
            ends = np.maximum.accumulate([start + d for start, d, _ in segments])
            overlaps += sum(
                start < end for (start, *_), end in zip(segments[1:], ends[:-1], strict=True)
            )
    assert overlaps >= 1


def test_speech_is_where_the_rttm_says(demo: Path):
    for subset in SUBSETS:
        for uri in _uris(demo, subset):
            x, sr = sf.read(demo / subset / "wav" / f"{uri}.wav")
            speech = np.zeros(len(x), bool)
            for start, d, _ in _rttm(demo / subset / "rttm" / f"{uri}.rttm"):
                speech[round(start * sr) : round((start + d) * sr)] = True
            inside, outside = np.mean(x[speech] ** 2), np.mean(x[~speech] ** 2)
            assert 10 * np.log10(inside / outside) > 10.0, uri  # noise is 15-25 dB below speech
            assert np.max(np.abs(x)) < 0.99  # peak-normalised, no clipping


def _median_f0(x: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Median autocorrelation pitch (Hz) of the clearly voiced 40 ms frames."""
    n, lo, hi, f0 = 640, sr // 400, sr // 60, []
    for i in range(0, len(x) - n, n // 2):
        frame = x[i : i + n] * np.hanning(n)
        if np.sqrt(np.mean(frame**2)) < 0.05:
            continue
        ac = np.correlate(frame, frame, "full")[n - 1 :]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:
            f0.append(sr / lag)
    return float(np.median(f0))


def test_speakers_sound_distinct():
    f0 = {
        s.name: _median_f0(np.concatenate([synthesize_utterance(s, i) for i in (0, 7)]))
        for s in SPEAKERS
    }
    male = [f0[s.name] for s in SPEAKERS if s.variant.startswith("m")]
    female = [f0[s.name] for s in SPEAKERS if s.variant.startswith("f")]
    assert min(female) > max(male), f0
    assert max(f0.values()) > 2 * min(f0.values()), f0
    audio = {s.name: synthesize_utterance(s, 3).tobytes() for s in SPEAKERS}
    assert len(set(audio.values())) == len(SPEAKERS)


def test_an_utterance_does_not_depend_on_what_was_synthesised_before():
    # f3 uses espeak's (time-seeded) breath noise; m3 exercises the static synthesis state
    speakers = [s for s in SPEAKERS if s.variant in ("f3", "m3")]
    first = [synthesize_utterance(s, 5) for s in speakers]
    for i in range(3):
        synthesize_utterance(SPEAKERS[i], i)
    assert all(
        np.array_equal(a, synthesize_utterance(s, 5)) for a, s in zip(first, speakers, strict=True)
    )
    code = (
        "import hashlib, bench.demo as d;"
        "print(*[hashlib.sha256(d.synthesize_utterance(s, 5).tobytes()).hexdigest()"
        " for s in d.SPEAKERS if s.variant in ('f3', 'm3')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, env=_env(), capture_output=True, text=True
    ).stdout.split()
    assert out == [hashlib.sha256(a.tobytes()).hexdigest() for a in first]


def test_generate_demo_replaces_an_existing_folder(tmp_path: Path):
    root = tmp_path / "demo"
    (root / "train").mkdir(parents=True)
    (root / "stale.txt").write_text("old")
    generate_demo(root, seed=3, sizes={"train": 1, "dev": 1, "test": 0}, duration=8.0)
    assert not (root / "stale.txt").exists() and verify_demo(root) == []
    assert _uris(root, "test") == [] and len(_uris(root, "train")) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]


def test_ensure_demo_generates_the_default_split_once_even_when_racing(tmp_path: Path):
    cache = tmp_path / "cache"
    code = "from bench.demo import ensure_demo; print(ensure_demo())"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=_env(BENCH_CACHE=str(cache)),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0].strip() for p in racers]
    assert [p.returncode for p in racers] == [0, 0]
    root = cache / f"demo-v{DEMO_VERSION}-seed0"
    assert outputs == [str(root)] * 2
    for subset in SUBSETS:
        assert len(_uris(root, subset)) == DEMO_SIZES[subset]
    assert verify_demo(root) == []
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == [root.name]

    stamp = (root / "MANIFEST.json").stat().st_mtime_ns
    started = time.perf_counter()
    assert ensure_demo(cache) == root  # reused, not regenerated
    assert time.perf_counter() - started < 1.0
    assert (root / "MANIFEST.json").stat().st_mtime_ns == stamp


# The default demo split's dataset fingerprint (bench.data.load_folder): the committed gate
# baseline (leaderboard/baseline/*.json) was run on it, so a machine that generates other bytes
# gets every gate pair refused. Regenerating it anywhere must give this value.
# What no build of numpy may dispatch to when the CPU is restricted (numpy's own list), and
# glibc's libm/string variants for newer CPUs switched off: a CPU without AVX, AVX2, FMA, AVX-512.
_OLD_CPU_GLIBC = "glibc.cpu.hwcaps=-AVX512F,-AVX512DQ,-AVX512VL,-AVX512BW,-AVX2,-FMA,-FMA4,-AVX"
_REGENERATE = """
import sys
try:
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
except ImportError:  # numpy 1.x
    from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
if sys.argv[2] == "old-cpu":
    assert not any(__cpu_features__.get(f) for f in __cpu_dispatch__), __cpu_features__
from bench.demo import main
main([sys.argv[1]])
"""


@pytest.mark.parametrize("cpu", ["this-cpu", "old-cpu"])
def test_the_default_demo_regenerates_to_the_committed_fingerprint(tmp_path: Path, cpu: str):
    """A clean process builds the default demo (seed 0, full size) from scratch; "old-cpu" also
    keeps numpy's SIMD dispatch at its baseline and glibc off its AVX/FMA code paths."""
    from bench.data import load_folder

    env = _env()
    if cpu == "old-cpu":
        try:
            from numpy._core._multiarray_umath import __cpu_dispatch__
        except ImportError:  # numpy 1.x
            from numpy.core._multiarray_umath import __cpu_dispatch__
        env = _env(
            NPY_DISABLE_CPU_FEATURES=" ".join(__cpu_dispatch__), GLIBC_TUNABLES=_OLD_CPU_GLIBC
        )
    root = tmp_path / "demo"
    subprocess.run(
        [sys.executable, "-c", _REGENERATE, str(root), cpu],
        check=True,
        env=env,
        capture_output=True,
    )
    assert verify_demo(root) == []
    assert load_folder(root).fingerprint == DEMO_FINGERPRINT
    baseline = REPO / "leaderboard" / "baseline"
    recorded = {
        json.loads(p.read_text())["dataset"]["fingerprint"] for p in baseline.glob("*.json")
    }
    assert recorded == {DEMO_FINGERPRINT}


# The out-of-domain demo split (ensure_ood_demo): a second, different split for checks such as
# forgetting. Pinned like the demo's so that a change of its bytes is a deliberate one.
OOD_FINGERPRINT = "a00e0ce330469854"


@pytest.fixture(scope="module")
def ood(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_ood_demo(tmp_path_factory.mktemp("ood-cache"))


def _speakers(root: Path, subset: str) -> dict[str, set[str]]:
    return {
        uri: {speaker for *_, speaker in _rttm(root / subset / "rttm" / f"{uri}.rttm")}
        for uri in _uris(root, subset)
    }


def _snr_db(root: Path, subset: str) -> list[float]:
    """Power inside the RTTM segments over power outside them, per file (dB)."""
    ratios = []
    for uri in _uris(root, subset):
        x, sr = sf.read(root / subset / "wav" / f"{uri}.wav")
        speech = np.zeros(len(x), bool)
        for start, d, _ in _rttm(root / subset / "rttm" / f"{uri}.rttm"):
            speech[round(start * sr) : round((start + d) * sr)] = True
        ratios.append(10 * np.log10(np.mean(x[speech] ** 2) / np.mean(x[~speech] ** 2)))
    return ratios


def test_ood_demo_is_deterministic_cached_and_loads_as_a_split(ood: Path, tmp_path: Path):
    from bench.data import load_folder

    assert ood.name == f"demo-ood-v{OOD_VERSION}-seed{OOD_SEED}"
    assert verify_demo(ood) == []
    assert sorted(p.name for p in ood.parent.iterdir()) == sorted([ood.name, f".{ood.name}.lock"])
    manifest = json.loads((ood / "MANIFEST.json").read_text())
    assert (manifest["split"], manifest["version"], manifest["seed"]) == ("ood", OOD_VERSION, 1)
    assert manifest["sizes"] == OOD_SIZES and set(manifest["files"]) == set(_files(ood)) - {
        "MANIFEST.json"
    }
    stamp = (ood / "MANIFEST.json").stat().st_mtime_ns
    assert ensure_ood_demo(ood.parent) == ood  # reused, not regenerated
    assert (ood / "MANIFEST.json").stat().st_mtime_ns == stamp

    # again, in a fresh interpreter through the command line: the same bytes
    again = tmp_path / "again"
    command = [sys.executable, "-m", "bench.demo", str(again), "--ood"]
    subprocess.run(command, check=True, env=_env(), capture_output=True)
    ours, theirs = _files(ood), _files(again)
    assert sorted(ours) == sorted(theirs)
    assert [f for f in ours if ours[f] != theirs[f]] == []
    split = load_folder(ood)
    assert split.fingerprint == load_folder(again).fingerprint == OOD_FINGERPRINT
    assert {k: len(v) for k, v in split.recordings.items()} == OOD_SIZES
    for subset in SUBSETS:
        for uri in _uris(ood, subset):
            info = sf.info(ood / subset / "wav" / f"{uri}.wav")
            assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
            assert info.frames == FILE_DURATION * SAMPLE_RATE
    assert not (ood / "noise").exists() and not (ood / "ir").exists()


def test_ood_demo_differs_from_the_demo(ood: Path, demo: Path):
    from bench.data import load_folder

    assert load_folder(ood).fingerprint != DEMO_FINGERPRINT
    assert load_folder(ood).fingerprint != load_folder(demo).fingerprint
    labels = {s for subset in SUBSETS for spk in _speakers(ood, subset).values() for s in spk}
    assert labels == {s.name for s in OOD_SPEAKERS}  # every OOD voice is used
    assert labels.isdisjoint(s.name for s in SPEAKERS)
    demo_labels = {s for subset in SUBSETS for spk in _speakers(demo, subset).values() for s in spk}
    assert labels.isdisjoint(demo_labels)
    # other voices: no espeak variant of the demo, neither for speakers nor for the babble
    assert {s.variant for s in OOD_SPEAKERS + OOD_CROWD}.isdisjoint(s.variant for s in SPEAKERS)
    assert {(s.pitch, s.rate) for s in OOD_SPEAKERS}.isdisjoint((s.pitch, s.rate) for s in SPEAKERS)
    assert set(_uris(ood, "test")).isdisjoint(_uris(demo, "test"))
    # other noise: louder under the speech (10-16 dB SNR against 15-25 dB), and made of babble
    assert np.mean(_snr_db(ood, "test")) < np.mean(_snr_db(demo, "test")) - 3.0
    manifest = json.loads((ood / "MANIFEST.json").read_text())
    assert manifest["babble_voices"] == ["es+klatt", "es+linda", "es+adam"]


def test_ood_demo_has_overlap_and_a_guest_speaking_another_language_in_every_file(ood: Path):
    guests = {s.name: s for s in OOD_GUESTS}
    hosts = {s.name for s in OOD_HOSTS}
    for subset in SUBSETS:
        for uri, speakers in _speakers(ood, subset).items():
            assert 2 <= len(speakers) <= 4, uri
            assert len(speakers & set(guests)) == 1 and speakers - set(guests) <= hosts, uri
    # the test files take the guests (Japanese, Scottish English) in turn
    in_test = set().union(*_speakers(ood, "test").values())
    assert {guests[g].lang for g in in_test & set(guests)} == {"ja", "en-gb-scotland"}
    overlaps = 0
    for uri in _uris(ood, "test"):
        segments = sorted(_rttm(ood / "test" / "rttm" / f"{uri}.rttm"))
        ends = np.maximum.accumulate([start + d for start, d, _ in segments])
        overlaps += sum(
            start < end for (start, *_), end in zip(segments[1:], ends[:-1], strict=True)
        )
    assert overlaps >= 2
    readme = (ood / "README.md").read_text()
    for words in ("`ja+m8`", "Japanese", "`en-gb-scotland+belinda`", "Scottish English", "GPL"):
        assert words in readme
    manifest = json.loads((ood / "MANIFEST.json").read_text())
    assert manifest["speakers"]["ood05"] == {
        "role": "guest",
        "language": "Japanese",
        "voice": "ja+m8",
        "pitch": 52,
        "pitch_range": 60,
        "rate": 160,
    }
    assert {v["language"] for v in manifest["speakers"].values()} == {
        "Korean",
        "Japanese",
        "Scottish English",
    }


_BOTH = """
import sys
from bench.data import load_folder
from bench.demo import ensure_demo, ensure_ood_demo
ood = ensure_ood_demo(sys.argv[1])
print(load_folder(ood).fingerprint, load_folder(ensure_demo(sys.argv[1])).fingerprint)
"""


def test_building_the_ood_demo_first_leaves_the_demo_unchanged(tmp_path: Path):
    """One process builds the OOD split, then the default demo (full size) from scratch: same
    cache, and the demo still has the committed fingerprint."""
    out = subprocess.run(
        [sys.executable, "-c", _BOTH, str(tmp_path / "cache")],
        check=True,
        env=_env(),
        capture_output=True,
        text=True,
    ).stdout.split()
    assert out == [OOD_FINGERPRINT, DEMO_FINGERPRINT]
    names = sorted(p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock"))
    assert names == [f"demo-ood-v{OOD_VERSION}-seed{OOD_SEED}", f"demo-v{DEMO_VERSION}-seed0"]


# --- a corpus at scale: the same generator, long files --------------------------------------


def test_scaled_sizes_keep_the_demo_proportions():
    from bench.demo.generate import scaled_sizes

    assert scaled_sizes(10, 10) == {"train": 40, "dev": 10, "test": 10}  # 60 files, 4 : 1 : 1
    assert scaled_sizes(100, 60) == {"train": 66, "dev": 17, "test": 17}
    assert scaled_sizes(0.1, 10) == {"train": 1, "dev": 1, "test": 1}  # never an empty subset
    with pytest.raises(ValueError, match="must be > 0"):
        scaled_sizes(0, 10)


def test_hours_and_file_minutes_write_long_files_with_the_demo_voices(tmp_path: Path):
    """``python -m bench.demo DIR --hours H --file-minutes M``: long files, the demo's voices,
    overlap and noise, deterministic; conflicting options refused by argparse (exit 2)."""
    from bench.data import load_folder
    from bench.demo.generate import main

    assert main([str(tmp_path / "a"), "--hours", "0.05", "--file-minutes", "1.5"]) == 0
    split = load_folder(tmp_path / "a")
    assert {s: len(split.files(s)) for s in ("train", "dev", "test")} == {
        "train": 1,
        "dev": 1,
        "test": 1,
    }
    for subset in ("train", "dev", "test"):
        (rec,) = split.files(subset)
        assert rec.duration == pytest.approx(90.0)
        turns = list(rec.annotation.itertracks(yield_label=True))
        assert rec.annotation.get_timeline().extent().end > 80.0  # speech to the end of the file
        assert len(turns) > 20 and {label for _, _, label in turns} <= {s.name for s in SPEAKERS}
        overlap = rec.annotation.get_overlap()
        assert overlap.duration() > 0.0
    main([str(tmp_path / "b"), "--hours", "0.05", "--file-minutes", "1.5"])
    manifests = [json.loads((tmp_path / x / "MANIFEST.json").read_text()) for x in "ab"]
    assert manifests[0] == manifests[1] and manifests[0]["duration"] == 90.0
    for bad in (["--hours", "1", "--sizes", "train=1,dev=1,test=1"], ["--file-minutes", "0"],
                ["--file-minutes", "1", "--duration", "60"], ["--hours", "-1"]):  # fmt: skip
        with pytest.raises(SystemExit) as refused:
            main([str(tmp_path / "c"), *bad])
        assert refused.value.code == 2
    assert not (tmp_path / "c").exists()
