"""Speed benchmarks (pytest-benchmark): they measure, they do not assert timings.

Run them alone with ``pytest tests/test_benchmarks.py --benchmark-only``.
"""

from __future__ import annotations

import numpy as np
from pyannote.core import Segment, SlidingWindow

from bench.audio import AudioCache
from bench.data import load_folder
from bench.evaluation import chunk_hypothesis, chunk_scores
from bench.recipe import Pretrained
from bench.scoring import ChunkScorer
from bench.weights import load_initial


def test_chunk_scoring_throughput(benchmark, sample_split):
    """pyannote.metrics scoring of one 30 s file in 10 s chunks (binarise + DER)."""
    rec = load_folder(sample_split).files("test")[0]
    frames = SlidingWindow(start=0.0, duration=0.0619, step=0.0169)
    scores = np.random.default_rng(0).random((589, 3))

    def score() -> float:
        scorer = ChunkScorer()
        for start in (0.0, 10.0, 20.0):
            hypothesis = chunk_hypothesis(scores, frames, start, 0.5, rec.uri)
            scorer.add(rec, Segment(start, start + 10.0), hypothesis)
        return scorer.report()["DER"]

    assert benchmark(score) > 0.0


def test_segmentation_inference_real_time_factor(benchmark, sample_split, tmp_path):
    """segmentation-3.0 on 30 s of real speech in 10 s chunks, on this machine's CPU."""
    rec = load_folder(sample_split).files("test")[0]
    waveform = AudioCache(tmp_path).waveform(rec.audio)
    model, _ = load_initial(Pretrained(id="pyannote/segmentation-3.0"))
    model.eval()
    outputs = benchmark.pedantic(
        chunk_scores, args=(model, waveform, [0.0, 10.0, 20.0], 10.0, 3), rounds=3
    )
    benchmark.extra_info["real_time_factor"] = benchmark.stats["mean"] / rec.duration
    assert len(outputs) == 3 and outputs[0].shape == (589, 3)  # frames x speakers


def test_skipping_a_finished_run(benchmark, tmp_path, sample_split, tiny_recipe, cache_dir):
    """``bench run`` of a run whose result exists, as a fresh process: it must decide without
    importing torch, lightning or pyannote.audio (they cost ~4 s of the ~4.5 s it used to take)."""
    import subprocess
    import sys

    from bench.runner import RunOptions, run_recipe

    results = tmp_path / "results"
    options = RunOptions(
        data=sample_split, results=results, epochs=1, wandb=False, progress=False,
        cache_dir=cache_dir,
    )  # fmt: skip
    done = run_recipe(tiny_recipe, options)
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from bench.cli import app\n"
        f"args = ['run', {str(tiny_recipe)!r}, '--data', {str(sample_split)!r}, '--epochs', '1',"
        f" '--results', {str(results)!r}, '--cache', {str(cache_dir)!r}, '--no-wandb']\n"
        "outcome = CliRunner().invoke(app, args)\n"
        "assert outcome.exit_code == 0, outcome.output\n"
        "assert 'skipped, its result exists' in outcome.output, outcome.output\n"
        "heavy = sorted({m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'lightning', 'torchaudio'} or m.startswith('pyannote.audio')})\n"
        "assert not heavy, heavy[:5]\n"
    )

    def skip() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    outcome = benchmark.pedantic(skip, rounds=3)
    assert outcome.returncode == 0, outcome.stderr
    assert done.is_file()
