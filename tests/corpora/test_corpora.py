"""Corpus import and export: each format on small synthetic corpora, the split, errors, the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from praatio import textgrid as praat
from typer.testing import CliRunner

from bench.cli import app
from bench.corpora import lhotse as lhotse_format
from bench.corpora import nemo, nikl, textgrid
from bench.corpora.convert import ImportOptions, import_corpus
from bench.corpora.entry import Entry, Turn
from bench.corpora.split import assign
from bench.data import SUBSETS, DataError, load_folder

RATE = 16000


def noise(seconds: float, seed: int, channels: int = 1) -> np.ndarray:
    """Distinct audio per seed (bench refuses the same audio in two subsets)."""
    shape = (round(seconds * RATE), channels) if channels > 1 else round(seconds * RATE)
    return np.random.default_rng(seed).uniform(-0.2, 0.2, shape)


def write_wav(path: Path, seconds: float, seed: int, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, noise(seconds, seed, channels), RATE, subtype="PCM_16")
    return path


def lists(root: Path) -> dict[str, list[str]]:
    return {subset: (root / f"{subset}.txt").read_text().split() for subset in SUBSETS}


def subset_of(root: Path, uri: str) -> str:
    return next(subset for subset, uris in lists(root).items() if uri in uris)


def rttm(root: Path, uri: str) -> list[str]:
    return (root / subset_of(root, uri) / "rttm" / f"{uri}.rttm").read_text().splitlines()


def uem(root: Path, uri: str) -> str:
    return (root / subset_of(root, uri) / "uem" / f"{uri}.uem").read_text()


def wav(root: Path, uri: str) -> Path:
    return root / subset_of(root, uri) / "wav" / f"{uri}.wav"


def invoke(*args: str):
    return CliRunner().invoke(app, [str(arg) for arg in args])


def leftovers(folder: Path) -> list[str]:
    return [path.name for path in folder.iterdir() if path.name.startswith(".")]


# --- NIKL ------------------------------------------------------------------------------------

UTTERANCES = [("A", 0.0, 1.5), ("B", 1.0, 2.5), ("A", 3.0, 4.0)]  # B overlaps A on [1.0, 1.5]


def nikl_uri(d: int) -> str:
    return f"SDRW23{d:08d}"


def nikl_dialogue(root: Path, d: int, utterances=UTTERANCES) -> Path:
    """One dialogue JSON in NIKL's shape and its utterance wavs (speaker B{d%3} recurs)."""
    uri = nikl_uri(d)
    rows = []
    for i, (who, start, end) in enumerate(utterances, start=1):
        uid = f"{uri}.1.1.{i}"
        write_wav(root / "wav" / f"{uid}.wav", max(end - start, 0.1), seed=100 * d + i)
        speaker = f"SD23{who}{d}" if who == "A" else f"SD23{who}{d % 3}"
        rows.append({"id": uid, "form": "네", "speaker_id": speaker, "start": start, "end": end})
    document = {"id": uri, "document": [{"id": f"{uri}.1", "utterance": rows}]}
    path = root / "json" / f"{uri}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1))
    return path


def nikl_corpus(root: Path, dialogues: int = 6) -> Path:
    for d in range(dialogues):
        nikl_dialogue(root, d)
    return root


def test_nikl_places_utterances_on_one_track(tmp_path):
    src, out = nikl_corpus(tmp_path / "nikl"), tmp_path / "out"
    written = import_corpus("nikl", src, out, ImportOptions(split="34/33/33"))
    uri = nikl_uri(0)
    assert rttm(out, uri) == [
        f"SPEAKER {uri} 1 0.000 1.500 <NA> <NA> SD23A0 <NA> <NA>",
        f"SPEAKER {uri} 1 1.000 1.500 <NA> <NA> SD23B0 <NA> <NA>",
        f"SPEAKER {uri} 1 3.000 1.000 <NA> <NA> SD23A0 <NA> <NA>",
    ]
    assert uem(out, uri) == f"{uri} 1 0.000 4.000\n"
    track, rate = sf.read(wav(out, uri))
    pieces = [sf.read(src / "wav" / f"{uri}.1.1.{i}.wav")[0] for i in (1, 2, 3)]
    assert rate == RATE and len(track) == 4 * RATE
    expected = np.zeros(4 * RATE)
    for piece, (_, start, _) in zip(pieces, UTTERANCES, strict=True):
        expected[round(start * RATE) : round(start * RATE) + len(piece)] += piece
    assert np.abs(track - expected).max() < 1e-3  # the overlap [1.0, 1.5] is the sum
    assert np.abs(track[RATE : RATE + RATE // 2]).max() > 0.25  # louder than either piece
    record = json.loads((out / "bench-import.json").read_text())
    assert record["format"] == "nikl" and record["source"] == str(src.resolve())
    assert record["split"] == {"from": "hash", "shares": "34/33/33", "seed": 0, "disjoint": None}
    assert record["fingerprint"] == written.fingerprint == load_folder(out).fingerprint


def test_nikl_dialogue_wav_wins_over_utterance_wavs(tmp_path):
    nikl_dialogue(tmp_path, 0)
    dialogue_wav = write_wav(tmp_path / "wav" / f"{nikl_uri(0)}.wav", 5.0, seed=7)
    (entry,) = nikl.read(tmp_path, None)
    assert entry.audio.path == dialogue_wav and entry.uem == [(0.0, 5.0)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["document"][0]["utterance"][1].update(start=2.0, end=1.25),
            "document[0].utterance[1].end: 1.25 is before start 2.0",
        ),
        (
            lambda d: d["document"][0]["utterance"][2].pop("speaker_id"),
            "document[0].utterance[2].speaker_id: missing",
        ),
        (
            lambda d: d["document"][0]["utterance"][0].update(start="0.5"),
            "document[0].utterance[0].start: expected a number of seconds, got '0.5'",
        ),
        (lambda d: d["document"].append({}), "document: 2 documents, expected 1"),
    ],
    ids=["end-before-start", "no-speaker", "string-start", "two-documents"],
)
def test_nikl_errors_name_the_file_and_json_path(tmp_path, change, message):
    path = nikl_dialogue(tmp_path, 0)
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    with pytest.raises(DataError) as error:
        nikl.read(tmp_path, None)
    assert str(error.value) == f"{path}: {message}"


def test_nikl_missing_audio_and_bad_json(tmp_path):
    path = nikl_dialogue(tmp_path, 0)
    (tmp_path / "wav" / f"{nikl_uri(0)}.1.1.2.wav").unlink()
    with pytest.raises(DataError, match=r"utterance\[1\]\.id: no audio SDRW2300000000\.1\.1\.2"):
        nikl.read(tmp_path, None)
    path.write_text('{"id": "x",\n "document": [}')
    with pytest.raises(DataError, match=rf"^{path}:2: not valid JSON"):
        nikl.read(tmp_path, None)


# --- the split -------------------------------------------------------------------------------


def entries(uris, speakers=None) -> list[Entry]:
    speakers = speakers or {}
    return [
        Entry(uri, None, [Turn(0, 1, s) for s in speakers.get(uri, [])], None, f"{uri}.src")
        for uri in uris
    ]


def subsets(assigned: list[Entry]) -> dict[str, str]:
    return {entry.uri: str(entry.subset) for entry in assigned}


def test_hash_split_is_seeded_stable_and_near_its_shares():
    uris = [f"rec{i:03d}" for i in range(400)]
    first = subsets(assign(entries(uris), "80/10/10", 0, None, "")[0])
    assert first == subsets(assign(entries(uris), "80/10/10", 0, None, "")[0])
    other = subsets(assign(entries(uris), "80/10/10", 1, None, "")[0])
    assert sum(first[u] != other[u] for u in uris) > 40
    grown = subsets(
        assign(entries([*uris, *(f"new{i}" for i in range(100))]), "80/10/10", 0, None, "")[0]
    )
    assert all(grown[u] == first[u] for u in uris)  # adding files moves none
    share = sum(s == "train" for s in first.values()) / len(uris)
    assert 0.74 < share < 0.86


def test_disjoint_session_and_speaker_groups():
    uris = [f"ES{2000 + i}{part}" for i in range(30) for part in "abcd"]
    assigned = subsets(assign(entries(uris), "50/25/25", 3, "session", r"^[A-Za-z]*\d+")[0])
    for i in range(30):
        assert len({assigned[f"ES{2000 + i}{part}"] for part in "abcd"}) == 1
    assert len(set(assigned.values())) == 3
    # speakers chain recordings: r0-r1 share s0, r1-r2 share s1 ... in runs of 4
    uris = [f"r{i:03d}" for i in range(120)]
    speakers = {u: [f"s{i}", f"s{i - 1}" if i % 4 else f"x{i}"] for i, u in enumerate(uris)}
    assigned_entries = assign(entries(uris, speakers), "50/25/25", 0, "speaker", "")[0]
    where: dict[str, set[str]] = {}
    for entry in assigned_entries:
        for turn in entry.turns:
            where.setdefault(turn.speaker, set()).add(str(entry.subset))
    assert all(len(found) == 1 for found in where.values())
    assert len(set(subsets(assigned_entries).values())) == 3
    plain = subsets(assign(entries(uris, speakers), "50/25/25", 0, None, "")[0])
    assert any(len({plain[f"r{4 * g + k:03d}"] for k in range(4)}) > 1 for g in range(30))


def test_empty_subset_and_bad_shares_are_refused():
    with pytest.raises(DataError, match=r"subset is empty .*another seed"):
        assign(entries(["a", "b"]), "80/10/10", 0, None, "")
    with pytest.raises(DataError, match="three positive shares"):
        assign(entries(["a", "b", "c"]), "80/20", 0, None, "")


def test_import_split_follows_the_seed(tmp_path):
    src = nikl_corpus(tmp_path / "nikl")
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        import_corpus("nikl", src, tmp_path / name, ImportOptions("34/33/33", seed))
    assert lists(tmp_path / "a") == lists(tmp_path / "b")
    assert lists(tmp_path / "a") != lists(tmp_path / "c")


# --- TextGrid (AliMeeting) -------------------------------------------------------------------


def alimeeting(root: Path) -> Path:
    """Train/Eval/Test_Ali_far parts, 4-channel audio, one interval tier per speaker."""
    for p, part in enumerate(("Train_Ali_far", "Eval_Ali_far", "Test_Ali_far")):
        for m in range(2):
            meeting = f"R80{p}{m}_M80{p}{m}"
            write_wav(root / part / "audio_dir" / f"{meeting}_MS80{m}.wav", 3.0, 10 * p + m, 4)
            grid = praat.Textgrid()
            for s, intervals in enumerate(
                ([(0.5, 1.5, "안녕"), (2.0, 2.5, "  ")], [(1.0, 2.8, "네")])
            ):
                grid.addTier(praat.IntervalTier(f"SPK{p}{m}{s}", intervals, 0, 3.0))
            (root / part / "textgrid_dir").mkdir(exist_ok=True)
            grid.save(
                str(root / part / "textgrid_dir" / f"{meeting}.TextGrid"), "long_textgrid", True
            )
    return root


def test_textgrid_keeps_one_channel_and_the_source_split(tmp_path):
    src, out = alimeeting(tmp_path / "ali"), tmp_path / "out"
    import_corpus("textgrid", src, out, ImportOptions(channel=2))
    assert lists(out) == {
        "train": ["R8000_M8000", "R8001_M8001"],
        "dev": ["R8010_M8010", "R8011_M8011"],
        "test": ["R8020_M8020", "R8021_M8021"],
    }
    assert rttm(out, "R8010_M8010") == [
        "SPEAKER R8010_M8010 1 0.500 1.000 <NA> <NA> SPK100 <NA> <NA>",  # "  " is no speech
        "SPEAKER R8010_M8010 1 1.000 1.800 <NA> <NA> SPK101 <NA> <NA>",
    ]
    assert uem(out, "R8010_M8010") == "R8010_M8010 1 0.000 3.000\n"
    source, _ = sf.read(src / "Eval_Ali_far" / "audio_dir" / "R8010_M8010_MS800.wav", dtype="int16")
    kept, _ = sf.read(wav(out, "R8010_M8010"), dtype="int16")
    assert kept.ndim == 1 and np.array_equal(kept, source[:, 2])
    record = json.loads((out / "bench-import.json").read_text())
    assert record["options"]["channel"] == 2 and record["split"]["from"] == "source"
    import_corpus("textgrid", src, tmp_path / "default", ImportOptions())
    record = json.loads((tmp_path / "default" / "bench-import.json").read_text())
    assert record["options"]["channel"] == 0


OVERLAPPING = """File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 3
tiers? <exists>
size = 1
item []:
    item [1]:
        class = "IntervalTier"
        name = "SPK1"
        xmin = 0
        xmax = 3
        intervals: size = 2
        intervals [1]:
            xmin = 0
            xmax = 2
            text = "a"
        intervals [2]:
            xmin = 1.5
            xmax = 3
            text = "b"
"""


def test_textgrid_errors_name_the_file(tmp_path):
    write_wav(tmp_path / "audio_dir" / "m1_MS1.wav", 3.0, 0, 2)
    grid = tmp_path / "textgrid_dir" / "m1.TextGrid"
    grid.parent.mkdir()
    grid.write_text(OVERLAPPING)
    with pytest.raises(
        DataError, match=rf"^{grid}: not a valid TextGrid: .*overlap.*\(1\.5, 3\.0, b\)"
    ):
        textgrid.read(tmp_path, 0)
    points = praat.Textgrid()
    points.addTier(praat.IntervalTier("SPK1", [(0.5, 1.0, "a")], 0, 3.0))
    points.addTier(praat.PointTier("events", [(1.0, "cough")], 0, 3.0))
    points.save(str(grid), "long_textgrid", True)
    with pytest.raises(DataError, match=rf"^{grid}: tier 'events' is a point tier"):
        textgrid.read(tmp_path, 0)
    with pytest.raises(DataError, match="has 2 channel\\(s\\), no channel 5"):
        textgrid.read(tmp_path, 5)


# --- lhotse ----------------------------------------------------------------------------------


def lhotse_corpus(root: Path) -> Path:
    """Three manifest pairs named after subsets; one recording is FLAC (lhotse decodes it)."""
    from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet

    root.mkdir(parents=True)
    for p, subset in enumerate(("train", "dev", "test")):
        recordings, supervisions = [], []
        for r in range(2):
            rid = f"{subset}{r}"
            suffix = ".flac" if subset == "dev" and r == 1 else ".wav"
            path = root / "audio" / f"{rid}{suffix}"
            path.parent.mkdir(exist_ok=True)
            sf.write(path, noise(2.0, 10 * p + r), RATE, subtype="PCM_16")
            recordings.append(Recording.from_file(path, recording_id=rid))
            supervisions += [
                SupervisionSegment(f"{rid}-0", rid, 0.25, 1.0, speaker=f"spk{p}a"),
                SupervisionSegment(f"{rid}-1", rid, 0.75, 1.0, speaker=f"spk{p}b"),
                SupervisionSegment(f"{rid}-2", rid, 1.8, 0.1),  # no speaker: not a turn
            ]
        RecordingSet.from_recordings(recordings).to_file(root / f"toy_recordings_{subset}.jsonl.gz")
        SupervisionSet.from_segments(supervisions).to_file(
            root / f"toy_supervisions_{subset}.jsonl.gz"
        )
    return root


def test_lhotse_manifests(tmp_path):
    src, out = lhotse_corpus(tmp_path / "lhotse"), tmp_path / "out"
    import_corpus("lhotse", src, out, ImportOptions())
    assert lists(out) == {
        "train": ["train0", "train1"],
        "dev": ["dev0", "dev1"],
        "test": ["test0", "test1"],
    }
    assert rttm(out, "dev1") == [
        "SPEAKER dev1 1 0.250 1.000 <NA> <NA> spk1a <NA> <NA>",
        "SPEAKER dev1 1 0.750 1.000 <NA> <NA> spk1b <NA> <NA>",
    ]
    assert uem(out, "dev1") == "dev1 1 0.000 2.000\n"
    assert wav(out, "dev0").read_bytes() == (src / "audio" / "dev0.wav").read_bytes()  # copied
    decoded, rate = sf.read(wav(out, "dev1"), dtype="int16")  # the FLAC, decoded by lhotse
    original, _ = sf.read(src / "audio" / "dev1.flac", dtype="int16")
    assert rate == RATE and np.abs(decoded.astype(int) - original).max() <= 1


def test_lhotse_errors(tmp_path, monkeypatch):
    src = lhotse_corpus(tmp_path / "lhotse")
    manifest = src / "toy_recordings_dev.jsonl"
    manifest.write_text('{"id": "x", "sources": []}\nnot json\n')
    (src / "toy_supervisions_dev.jsonl").write_text("")
    (src / "toy_recordings_dev.jsonl.gz").unlink()
    with pytest.raises(DataError, match=rf"^{manifest}:1: not a lhotse Recording"):
        lhotse_format.read(src, None)
    monkeypatch.setitem(sys.modules, "lhotse", None)  # as if the extra were not installed
    with pytest.raises(DataError, match=r"pip install 'bench\[corpora\]'"):
        lhotse_format.read(src, None)


# --- NeMo ------------------------------------------------------------------------------------


def hand_made_dataset(root: Path) -> Path:
    """A bench dataset whose RTTM and UEM are not in the importers' own number format, and whose
    first file has no UEM, so only a byte-for-byte round trip keeps its fingerprint."""
    for i, subset in enumerate(("train", "train", "dev", "test")):
        uri = f"{subset}_{i}"
        write_wav(root / subset / "wav" / f"{uri}.wav", 3.0, i)
        (root / subset / "rttm").mkdir(parents=True, exist_ok=True)
        (root / subset / "rttm" / f"{uri}.rttm").write_text(
            f"SPEAKER {uri} 1 0.5 1.25 <NA> <NA> alice <NA> <NA>\n"
            f"SPEAKER {uri} 1 1.0 1 <NA> <NA> bob <NA> <NA>\n"
        )
        if i:
            (root / subset / "uem").mkdir(exist_ok=True)
            (root / subset / "uem" / f"{uri}.uem").write_text(f"{uri} 1 0.0 2.9\n")
        with (root / f"{subset}.txt").open("a") as listed:
            listed.write(f"{uri}\n")
    return root


@pytest.mark.parametrize("source", ["hand_made", "imported"])
def test_nemo_export_import_round_trip_keeps_the_fingerprint(tmp_path, source):
    if source == "hand_made":
        data = hand_made_dataset(tmp_path / "data")
    else:
        data = tmp_path / "data"
        import_corpus("nikl", nikl_corpus(tmp_path / "nikl"), data, ImportOptions("34/33/33"))
    outcome = invoke("data", "export", "nemo", data, "--out", tmp_path / "nemo")
    assert outcome.exit_code == 0, outcome.output
    row = json.loads((tmp_path / "nemo" / "dev_manifest.json").read_text().splitlines()[0])
    assert row["offset"] == 0.0 and row["label"] == "infer" and row["num_speakers"] == 2
    assert Path(row["rttm_filepath"]).is_file() and Path(row["audio_filepath"]).is_absolute()
    outcome = invoke("data", "import", "nemo", tmp_path / "nemo", "--out", tmp_path / "back")
    assert outcome.exit_code == 0, outcome.output
    assert lists(tmp_path / "back") == lists(data)
    assert load_folder(tmp_path / "back").fingerprint == load_folder(data).fingerprint


def test_nemo_crop_cuts_audio_and_shifts_turns(tmp_path):
    audio = write_wav(tmp_path / "talk.wav", 4.0, 3)
    (tmp_path / "talk.rttm").write_text(
        "SPEAKER talk 1 0.5 1.0 <NA> <NA> a <NA> <NA>\n"  # [0.5, 1.5] -> [0.0, 0.5]
        "SPEAKER talk 1 2.0 1.5 <NA> <NA> b <NA> <NA>\n"  # [2.0, 3.5] -> [1.0, 2.0]
        "SPEAKER talk 1 3.6 0.3 <NA> <NA> c <NA> <NA>\n"  # after the crop: dropped
    )
    manifest = tmp_path / "m.json"
    line = {
        "audio_filepath": "talk.wav",
        "offset": 1.0,
        "duration": 2.0,
        "rttm_filepath": "talk.rttm",
    }
    manifest.write_text(json.dumps(line) + "\n")
    (entry,) = nemo.read(manifest, None)
    assert entry.uri == "talk_1000_3000" and entry.uem is None and entry.rttm_file is None
    assert entry.turns == [Turn(0.0, 0.5, "a"), Turn(1.0, 2.0, "b")]
    entry.audio.write(tmp_path / "cut.wav")
    cut, _ = sf.read(tmp_path / "cut.wav", dtype="int16")
    whole, _ = sf.read(audio, dtype="int16")
    assert np.array_equal(cut, whole[RATE : 3 * RATE])


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ['{"audio_filepath": "a.wav", "rttm_filepath": "a.rttm"}', "{oops"],
            "m.json:2: not valid JSON",
        ),
        (['{"offset": 0}'], "m.json:1: audio_filepath: missing"),
        (['{"audio_filepath": "nope.wav"}'], "m.json:1: audio_filepath: no such file"),
        (
            ['{"audio_filepath": "a.wav", "rttm_filepath": "a.rttm", "offset": 9}'],
            "m.json:1: offset: 9.0 s is past",
        ),
        (
            ['{"audio_filepath": "a.wav", "rttm_filepath": "a.rttm", "duration": -1}'],
            "m.json:1: duration: -1 is negative",
        ),
    ],
    ids=["not-json", "no-audio-field", "no-audio-file", "offset-past-end", "negative-duration"],
)
def test_nemo_manifest_errors_name_the_line(tmp_path, lines, message):
    write_wav(tmp_path / "a.wav", 2.0, 0)
    (tmp_path / "a.rttm").write_text("SPEAKER a 1 0.0 1.0 <NA> <NA> x <NA> <NA>\n")
    (tmp_path / "m.json").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as error:
        nemo.read(tmp_path / "m.json", None)
    assert str(error.value).startswith(f"{tmp_path}/{message}")


# --- RTTM folder -----------------------------------------------------------------------------


def rttm_folder(root: Path) -> Path:
    """Audio named {uri}.wav, {uri}.Mix-Headset.wav or {uri}.flac; one RTTM and one UEM for all;
    AMI-style lists."""
    write_wav(root / "audio" / "ES2002a.Mix-Headset.wav", 3.0, 1)
    write_wav(root / "audio" / "ES2002b.wav", 3.0, 2)
    sf.write(root / "audio" / "IS1009a.flac", noise(3.0, 3), RATE)
    write_wav(root / "audio" / "TS3003a.wav", 3.0, 4)
    write_wav(root / "audio" / "unused.wav", 1.0, 5)  # no turns, in no list: not imported
    (root / "all.rttm").write_text(
        "".join(
            f"SPEAKER {uri} 1 {start} 1.0 <NA> <NA> {who} <NA> <NA>\n"
            for uri in ("ES2002a", "ES2002b", "IS1009a", "TS3003a")
            for start, who in ((0.2, "FEE005"), (1.5, "MEE006"))
        )
    )
    (root / "all.uem").write_text("ES2002a 1 0.0 2.5\nIS1009a 1 0.5 3.0\n")
    (root / "lists").mkdir()
    for subset, uris in (("train", "ES2002a ES2002b"), ("dev", "IS1009a"), ("test", "TS3003a")):
        (root / "lists" / f"{subset}.meetings.txt").write_text(uris.replace(" ", "\n") + "\n")
    return root


def test_rttm_folder_splits_multi_file_rttm_and_uem_by_uri(tmp_path):
    src, out = rttm_folder(tmp_path / "ami"), tmp_path / "out"
    import_corpus("rttm", src, out, ImportOptions())
    assert lists(out) == {"train": ["ES2002a", "ES2002b"], "dev": ["IS1009a"], "test": ["TS3003a"]}
    assert rttm(out, "IS1009a") == [
        "SPEAKER IS1009a 1 0.200 1.000 <NA> <NA> FEE005 <NA> <NA>",
        "SPEAKER IS1009a 1 1.500 1.000 <NA> <NA> MEE006 <NA> <NA>",
    ]
    assert uem(out, "IS1009a") == "IS1009a 1 0.500 3.000\n"
    assert not (out / "train" / "uem" / "ES2002b.uem").exists()  # no UEM: the whole file
    assert sf.info(str(wav(out, "IS1009a"))).format == "WAV"  # the FLAC, as wav
    assert (
        wav(out, "ES2002a").read_bytes() == (src / "audio" / "ES2002a.Mix-Headset.wav").read_bytes()
    )
    (src / "extra.rttm").write_text("SPEAKER IS1009a 1 0.0 1.0 <NA> <NA> x <NA> <NA>\n")
    with pytest.raises(DataError, match=rf"{src}/extra.rttm: turns of 'IS1009a' are also in"):
        import_corpus("rttm", src, tmp_path / "again", ImportOptions())
    assert not (tmp_path / "again").exists()


# --- the command line ------------------------------------------------------------------------


def test_cli_import_and_its_one_line_errors(tmp_path):
    src = rttm_folder(tmp_path / "ami")
    out = tmp_path / "out"
    outcome = invoke("data", "import", "rttm", src, "--out", out)
    assert outcome.exit_code == 0, outcome.output
    assert (
        outcome.output.startswith(f"wrote {out}: train 2 files") and "fingerprint" in outcome.output
    )
    (out / "note").write_text("mine")
    outcome = invoke(
        "data", "import", "rttm", src, "--out", out, "--split", "40/30/30", "--split-seed", "2"
    )
    assert outcome.exit_code == 1
    assert outcome.output == f"error: {out}: exists and is not empty (pass --force to replace it)\n"
    outcome = invoke(
        "data",
        "import",
        "rttm",
        src,
        "--out",
        out,
        "--force",
        "--split",
        "40/30/30",
        "--split-seed",
        "2",
        "--disjoint",
        "session",
    )
    assert outcome.exit_code == 0, outcome.output
    assert not (out / "note").exists() and leftovers(tmp_path) == []
    # sessions ES2002 (a, b), IS1009, TS3003: one subset each
    assert lists(out) == {"train": ["ES2002a", "ES2002b"], "dev": ["TS3003a"], "test": ["IS1009a"]}
    split = json.loads((out / "bench-import.json").read_text())["split"]
    assert split["seed"] == 2 and split["disjoint"] == "session"
    manifest = tmp_path / "bad.json"
    manifest.write_text("[1, 2]\n")
    outcome = invoke("data", "import", "nemo", manifest, "--out", tmp_path / "new")
    assert outcome.exit_code == 1
    assert outcome.output == f"error: {manifest}:1: expected a JSON object, got list\n"
    assert not (tmp_path / "new").exists()


def test_failed_validation_leaves_no_out_folder(tmp_path):
    src = tmp_path / "nikl"
    for d in range(6):  # dialogues 3 and 5 land in dev with seed 0: make them silent
        silent = [("A", 1.0, 1.0)] if d in (3, 5) else UTTERANCES
        nikl_dialogue(src, d, silent)
    outcome = invoke(
        "data", "import", "nikl", src, "--out", tmp_path / "out", "--split", "34/33/33"
    )
    assert outcome.exit_code == 1
    assert "the dev subset has no reference speech" in outcome.output
    assert outcome.output.count("\n") == 1
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_nemo_takes_its_recordings_lines_from_a_shared_rttm(tmp_path):
    write_wav(tmp_path / "a.wav", 2.0, 0)
    write_wav(tmp_path / "b.wav", 2.0, 1)
    (tmp_path / "all.rttm").write_text(
        "SPEAKER a 1 0.0 1.0 <NA> <NA> x <NA> <NA>\nSPEAKER b 1 0.5 1.0 <NA> <NA> y <NA> <NA>\n"
    )
    rows = [{"audio_filepath": f"{u}.wav", "rttm_filepath": "all.rttm"} for u in ("a", "b", "c")]
    (tmp_path / "c.wav").symlink_to(tmp_path / "a.wav")
    (tmp_path / "m.json").write_text("".join(json.dumps(row) + "\n" for row in rows[:2]))
    a, b = nemo.read(tmp_path / "m.json", None)
    assert a.turns == [Turn(0.0, 1.0, "x")] and b.turns == [Turn(0.5, 1.5, "y")]
    assert a.rttm_file is None  # not a's alone: written anew
    (tmp_path / "m.json").write_text(json.dumps(rows[2]) + "\n")
    with pytest.raises(DataError, match=r"m\.json:1: rttm_filepath: has lines of 2 recordings"):
        nemo.read(tmp_path / "m.json", None)


def test_imported_and_exported_folders_follow_the_umask(tmp_path):
    """Under ``umask 022`` imported datasets and exported folders were ``0700``: a team's other
    users (or a Pages build) could not read them."""
    import os
    import stat

    previous = os.umask(0o022)
    try:
        data = hand_made_dataset(tmp_path / "data")
        assert invoke("data", "export", "nemo", data, "--out", tmp_path / "nemo").exit_code == 0
        back = invoke("data", "import", "nemo", tmp_path / "nemo", "--out", tmp_path / "back")
        assert back.exit_code == 0, back.output
    finally:
        os.umask(previous)
    for top in (tmp_path / "nemo", tmp_path / "back"):
        for path in [top, *top.rglob("*")]:
            want = 0o755 if path.is_dir() else 0o644
            assert stat.S_IMODE(path.stat().st_mode) == want, path
