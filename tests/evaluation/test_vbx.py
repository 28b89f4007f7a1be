"""VBx with a PLDA: the estimator (bench.evaluation.plda) writes what pyannote's own PLDA loads,
learns speakers (shuffled labels make it useless), and gives the same VBx clustering in a fresh
process; refused combinations fail before training, naming the recipe line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import TINY_RECIPE, bench, result_json
from pyannote.audio.core.plda import PLDA
from pyannote.audio.utils.vbx import cluster_vbx, vbx_setup
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.metrics import adjusted_rand_score

from bench.evaluation.plda import FILES, estimate, xvec_transform

DIMENSION = 192


class Voices:
    """Synthetic x-vectors: speakers in a low-rank subspace, a stronger session nuisance and
    anisotropic noise, far from zero mean (as real embeddings are)."""

    def __init__(self, dimension: int = DIMENSION, seed: int = 0):
        rng = np.random.default_rng(dimension)  # one world a dimension; ``seed``: who is drawn
        self.rng = np.random.default_rng(seed)
        self.offset = rng.normal(0, 1, dimension)
        self.speaker = rng.normal(0, 1, (dimension, 48)) / np.sqrt(48) * 0.45
        self.session = rng.normal(0, 1, (dimension, 32)) / np.sqrt(32) * 1.3
        self.noise = 0.5 * np.exp(rng.normal(0, 0.5, dimension))

    def draw(self, speakers: int, each) -> tuple[np.ndarray, np.ndarray]:
        rng = self.rng
        centres = self.offset + rng.normal(size=(speakers, 48)) @ self.speaker.T
        counts = [each] * speakers if np.isscalar(each) else list(each)
        vectors = [
            centre
            + rng.normal(size=(n, 32)) @ self.session.T
            + rng.normal(size=(n, centre.size)) * self.noise
            for centre, n in zip(centres, counts, strict=True)
        ]
        return np.concatenate(vectors), np.repeat(np.arange(speakers), counts)


def vbx_ari(plda: PLDA, voices: Voices, recordings: int = 8) -> float:
    """Mean adjusted Rand index of VBx (AHC start, as pyannote's VBxClustering) on recordings
    of unseen speakers."""
    scores = []
    for _ in range(recordings):
        speakers = int(voices.rng.integers(2, 6))
        x, y = voices.draw(speakers, voices.rng.integers(10, 30, size=speakers))
        normed = x / np.linalg.norm(x, axis=1, keepdims=True)
        start = fcluster(linkage(normed, method="centroid"), 0.6, "distance") - 1
        _, start = np.unique(start, return_inverse=True)
        q, _ = cluster_vbx(start, plda(x), plda.phi, Fa=0.3, Fb=5.0, maxIters=20)
        scores.append(adjusted_rand_score(y, q.argmax(axis=1)))
    return float(np.mean(scores))


def test_the_estimated_plda_is_pyannotes_format_and_learns_speakers(tmp_path):
    voices = Voices()
    x, y = voices.draw(40, 20)
    true = estimate(x, y, tmp_path / "true")
    shuffled = estimate(x, voices.rng.permutation(y), tmp_path / "shuffled")
    # pyannote's own loader: the same transform as ours, psi as written
    transform, _, psi = vbx_setup(true / FILES[0], true / FILES[1])
    with np.load(true / FILES[0]) as written:
        ours = xvec_transform(x, written["mean1"], written["mean2"], written["lda"])
        assert written["lda"].shape == (DIMENSION, 39)  # min(128, D, speakers - 1)
    assert np.abs(ours - transform(x)).max() < 1e-9
    with np.load(true / FILES[1]) as written:
        assert np.allclose(psi, written["psi"])
    good, bad = PLDA.from_pretrained(str(true)), PLDA.from_pretrained(str(shuffled))
    assert good.phi[0] > 5 * bad.phi[0]  # speaker variance found, and not in noise
    assert vbx_ari(good, Voices(seed=1)) > 0.9 > 0.2 > vbx_ari(bad, Voices(seed=1))


# pyannote's own PLDA loader and VBxClustering, one local speaker a chunk: run here and, as
# FRESH, in a new process
CLUSTERS = """
def clusters(folder, embeddings):
    import numpy as np
    from pyannote.audio.core.plda import PLDA
    from pyannote.audio.pipelines.clustering import VBxClustering
    from pyannote.core import SlidingWindow, SlidingWindowFeature

    clustering = VBxClustering(PLDA.from_pretrained(folder), metric="cosine")
    clustering.instantiate({"threshold": 0.6, "Fa": 0.3, "Fb": 5.0})
    window = SlidingWindow(start=0.0, duration=10.0, step=1.0)
    segmentations = SlidingWindowFeature(np.ones((len(embeddings), 10, 1)), window)
    hard, _, _ = clustering(embeddings[:, None, :], segmentations=segmentations,
                            min_clusters=1, max_clusters=np.inf)
    return hard[:, 0].tolist()
"""
exec(CLUSTERS)  # defines clusters() in this module
FRESH = CLUSTERS + (
    "import json, sys, numpy\nprint(json.dumps(clusters(sys.argv[1], numpy.load(sys.argv[2]))))\n"
)


def test_a_fitted_plda_gives_the_same_vbx_output_in_a_fresh_process(tmp_path):
    voices = Voices(seed=2)
    folder = estimate(*voices.draw(30, 15), tmp_path / "plda")
    held_out, _ = voices.draw(4, 25)
    np.save(tmp_path / "held_out.npy", held_out)
    fresh = subprocess.run(
        [sys.executable, "-c", FRESH, str(folder), str(tmp_path / "held_out.npy")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    here = clusters(str(folder), held_out)  # noqa: F821 (defined by exec(CLUSTERS))
    assert json.loads(fresh.splitlines()[-1]) == here
    assert 2 <= len(set(here)) <= 6  # it clustered: neither one cluster nor one per vector


@pytest.mark.parametrize(
    ("pipeline", "why"),
    [
        ('Pipeline(clustering="vbx")', "clustering 'vbx' needs a 'plda'"),
        ('Pipeline(plda="train")', "'plda' applies to clustering 'vbx' only"),
    ],
)
def test_a_vbx_pipeline_without_a_plda_source_is_refused_at_its_line(tmp_path, pipeline, why):
    text = TINY_RECIPE.replace("pipeline=None", f"pipeline={pipeline}").replace(
        "VadLoss\n", "VadLoss, Pipeline\n"
    )
    recipe = tmp_path / "r.py"
    recipe.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "pipeline=" in row)
    outcome = bench("recipes", recipe)
    assert outcome.exit_code == 1
    assert f"{recipe}:{line}: field 'pipeline': Value error, {why}" in outcome.output.replace(
        "\n", ""
    )


def test_a_plda_for_other_embeddings_is_refused_before_training(tmp_path, sample_split):
    """community-1's PLDA is for 256-dimensional WeSpeaker embeddings; bench's CAM++ gives 192."""
    voices = Voices(dimension=256, seed=3)
    folder = estimate(*voices.draw(20, 10), tmp_path / "plda256")
    text = TINY_RECIPE.replace(
        "pipeline=None", f'pipeline=Pipeline(clustering="vbx", plda="{folder}")'
    ).replace("VadLoss\n", "VadLoss, Pipeline\n")
    recipe = tmp_path / "r.py"
    recipe.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "pipeline=" in row)
    results = tmp_path / "results"
    outcome = bench("run", recipe, "--data", sample_split, "--results", results, "--no-wandb",
                    "--no-progress")  # fmt: skip
    assert outcome.exit_code == 1
    assert (
        f"{recipe}:{line}: field 'pipeline.plda': {folder} transforms 256-dimensional "
        "embeddings, and the embedding 'campplus' gives 192"
    ) in outcome.output.replace("\n", "")
    (failed,) = [result_json(p) for p in results.glob("*.failed.json")]
    assert failed["epochs"] == [] and "train" not in failed["wall_time"]


def overfit_split(root):
    """Dev is pyannote's two-speaker sample with its reference relabelled as one speaker; test
    is the sample, three times (one LSB apart), as it is: tuning on dev learns to merge."""
    from helpers import SAMPLE_RTTM, write_sample_copy

    rttm = SAMPLE_RTTM.read_text()
    files = {"train": ["t0"], "dev": ["d0"], "test": ["x0", "x1", "x2"]}
    index = 0
    for subset, uris in files.items():
        for folder in ("wav", "rttm"):
            (root / subset / folder).mkdir(parents=True, exist_ok=True)
        for uri in uris:
            write_sample_copy(root / subset / "wav" / f"{uri}.wav", index)
            index += 1
            text = rttm.replace("sample ", f"{uri} ")
            if subset == "dev":
                text = "".join(
                    " ".join([*line.split()[:7], "one_speaker", *line.split()[8:]]) + "\n"
                    for line in text.splitlines()
                )
            (root / subset / "rttm" / f"{uri}.rttm").write_text(text)
        (root / f"{subset}.txt").write_text("".join(f"{uri}\n" for uri in uris))
    return root


@pytest.mark.slow
def test_tuning_that_overfits_dev_is_flagged(tmp_path, cache_dir):
    """pyannote-audio #1535: tuning lowered dev DER and raised test DER. Built to overfit: a dev
    file whose reference says one speaker; the test files have two."""
    data = overfit_split(tmp_path / "data")
    recipe = tmp_path / "merge.py"
    recipe.write_text(
        "from bench.recipe import Loss, Pipeline, Pretrained, Recipe\n"
        'recipe = Recipe(model=Pretrained(id="pyannote/segmentation-3.0"), mode="powerset",\n'
        '    epochs=0, batch_size=8, duration=10.0, loss=Loss(kind="ce"),\n'
        "    pipeline=Pipeline(tune_trials=(1, 12)))\n"
    )
    results = tmp_path / "results"
    outcome = bench("run", recipe, "--data", data, "--results", results, "--no-wandb",
                    "--no-progress", "--cache", cache_dir)  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    assert "warning: tuning overfit dev: dev DER" in outcome.output.replace("\n", " ")
    (result,) = results.glob("*.json")
    record = result_json(result)
    tuning = record["pipeline"]["tuning"]
    assert tuning["dev_der_after"] < tuning["dev_der_before"]
    assert record["test"]["pipeline"]["DER"] > record["test"]["pipeline_initial"]["DER"]
    assert record["pipeline"]["initial_test"]["reused_embeddings"] == 3  # powerset: no 2nd pass
    bench("leaderboard", "--results", results, "--out", tmp_path / "site")
    board = (tmp_path / "site" / "LEADERBOARD.md").read_text()
    assert "⚠ Tuning overfit dev (ranked at its tuned parameters): merge: tuning overfit" in board
    page = (tmp_path / "site" / "runs" / f"{result.stem}.html").read_text()
    assert '<span class="badge worse">tuning overfit</span>' in page


COMPARE = """
import json, sys, torch
from pathlib import Path
from pyannote.audio import Pipeline
from bench.data import load_folder
from bench.data.audio import decode
pipeline = Pipeline.from_pretrained(sys.argv[1])
found = {}
for rec in load_folder(Path(sys.argv[2])).files("test"):
    out = pipeline({"waveform": torch.from_numpy(decode(rec.audio))[None], "sample_rate": 16000,
                    "uri": rec.uri})
    found[rec.uri] = sorted([s.start, s.end] for s, _ in out.speaker_diarization.itertracks())
print(json.dumps(found))
"""


@pytest.mark.slow
def test_the_vbx_and_ahc_baselines_rank_side_by_side_on_the_demo(tmp_path, cache_dir):
    """The shipped VBx baseline (a PLDA estimated on the train embeddings) and the AHC one, on a
    small demo split: both ranked, each with hypotheses, JER and the overlap breakdown; the VBx
    run exported and loaded in a fresh process gives its own test hypotheses."""
    import os

    from helpers import ROOT

    from bench.demo import generate_demo

    data = generate_demo(tmp_path / "demo", sizes={"train": 6, "dev": 2, "test": 3})
    results = tmp_path / "results"
    outcome = bench(
        "run", ROOT / "recipes" / "baseline_segmentation_3_0_vbx.py",
        ROOT / "recipes" / "baseline_segmentation_3_0.py", "--data", data, "--results", results,
        "--tune-trials", "1,3", "--no-wandb", "--no-progress", "--cache", cache_dir,
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    records = {r["name"]: r for r in map(result_json, results.glob("*.json"))}
    vbx = records["baseline_segmentation_3_0_vbx"]
    plda = vbx["pipeline"]["plda"]
    assert vbx["pipeline"]["clustering"]["name"] == "VBxClustering" and plda["source"] == "train"
    assert plda["dimension"] == 192 and plda["speakers"] >= 6 and vbx["identity"]["plda"]
    assert set(vbx["pipeline"]["tuning"]["params"]["clustering"]) == {"threshold", "Fa", "Fb"}
    for record in records.values():
        test = record["test"]["pipeline"]
        assert test["JER"] is not None and set(test["overlap"]) >= {"single", "overlapped"}
        assert len(record["outputs"]["test"]) == 3 and record["test"]["pipeline_initial"]
    bench("leaderboard", "--results", results, "--out", tmp_path / "site")
    board = (tmp_path / "site" / "LEADERBOARD.md").read_text()
    assert "baseline_segmentation_3_0_vbx" in board and "\n| 2 " in board  # both ranked

    exported = tmp_path / "exported"
    vbx_file = next(results.glob("baseline_segmentation_3_0_vbx-*.json"))
    assert bench("export", vbx_file, "--out", exported).exit_code == 0
    assert sorted(p.name for p in (exported / "plda").iterdir()) == sorted(FILES)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    fresh = subprocess.run([sys.executable, "-c", COMPARE, str(exported), str(data)], env=env,
                           capture_output=True, text=True, check=True)  # fmt: skip
    loaded = json.loads(fresh.stdout.splitlines()[-1])
    for uri, entry in vbx["outputs"]["test"].items():
        rows = [line.split() for line in (results / entry["path"]).read_text().splitlines()]
        recorded = sorted([float(r[3]), float(r[3]) + float(r[4])] for r in rows)
        assert len(recorded) == len(loaded[uri])
        assert all(abs(a - b) < 1e-6 for x, y in zip(recorded, loaded[uri], strict=True)
                   for a, b in zip(x, y, strict=True))  # fmt: skip
