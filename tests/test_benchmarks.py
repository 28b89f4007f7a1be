"""Speed benchmarks (pytest-benchmark): they measure, they do not assert timings.

Run them alone with ``pytest tests/test_benchmarks.py --benchmark-only``.
"""

from __future__ import annotations

import numpy as np
import pytest
from pyannote.core import Segment, SlidingWindow

from bench.data import load_folder
from bench.data.audio import AudioCache
from bench.evaluation.chunks import chunk_hypothesis, chunk_scores
from bench.evaluation.scoring import ChunkScorer
from bench.models.weights import load_initial
from bench.recipe import Pretrained


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


# --- the diarization pipeline, stage by stage (real speech, segmentation-3.0 read as multilabel,
# CAM++); extra_info holds each stage's real-time factor (seconds per audio second)


@pytest.fixture(scope="module")
def pipeline_parts(tmp_path_factory, one_torch_thread):
    from helpers import MarginalMultilabel, make_sample_split

    from bench.evaluation.pipeline import BenchSpeakerDiarization, pipeline_file
    from bench.models.embeddings import resolve_embedding

    split = load_folder(make_sample_split(tmp_path_factory.mktemp("bench-pipeline") / "split"))
    audio = AudioCache(tmp_path_factory.mktemp("bench-audio"))
    model, _ = load_initial(Pretrained(id="pyannote/segmentation-3.0"))
    multilabel = MarginalMultilabel.from_powerset(model, power=0.5)
    embedding = resolve_embedding("campplus")[0]
    pipeline = BenchSpeakerDiarization(multilabel, embedding)
    pipeline.instantiate(pipeline.initial_parameters())
    rec = split.files("dev")[0]
    file = pipeline_file(rec, audio, with_reference=True)
    return pipeline, embedding, file, rec.duration


def _binarized(pipeline, file):
    from pyannote.audio.utils.signal import binarize

    segmentations = pipeline.get_segmentations(file)
    return segmentations, binarize(segmentations, onset=pipeline.segmentation.threshold)


def test_pipeline_segmentation(benchmark, pipeline_parts):
    """The pipeline's sliding-window segmentation of one 30 s file."""
    pipeline, _, file, duration = pipeline_parts
    segmentations = benchmark.pedantic(pipeline.get_segmentations, args=(file,), rounds=2)
    benchmark.extra_info["real_time_factor"] = benchmark.stats["mean"] / duration
    assert segmentations.data.ndim == 3


def test_pipeline_embedding(benchmark, pipeline_parts):
    """CAM++ embeddings of every (chunk, local speaker) of one 30 s file."""
    pipeline, _, file, duration = pipeline_parts
    _, binarized = _binarized(pipeline, file)
    embeddings = benchmark.pedantic(pipeline.get_embeddings, args=(file, binarized), rounds=1)
    benchmark.extra_info["real_time_factor"] = benchmark.stats["mean"] / duration
    assert embeddings.shape[:2] == binarized.data.shape[::2] and np.isfinite(embeddings).any()


def test_pipeline_clustering(benchmark, pipeline_parts):
    """Clustering, reconstruction and conversion to an annotation, embeddings given."""
    pipeline, _, file, duration = pipeline_parts
    segmentations, binarized = _binarized(pipeline, file)
    embeddings = pipeline.get_embeddings(file, binarized)
    count = pipeline.speaker_count(binarized, pipeline._segmentation.model.receptive_field)

    def cluster():
        hard, _, _ = pipeline.clustering(
            embeddings=embeddings, segmentations=binarized, min_clusters=1, max_clusters=20
        )
        hard[np.sum(binarized.data, axis=1) == 0] = -2
        return pipeline.to_annotation(pipeline.reconstruct(segmentations, hard, count))

    annotation = benchmark.pedantic(cluster, rounds=3)
    benchmark.extra_info["real_time_factor"] = benchmark.stats["mean"] / duration
    assert annotation.labels()


def test_pipeline_tuning(benchmark, pipeline_parts):
    """Two-stage tuning on one 30 s dev file (2 + 2 trials): one embedding pass, as in a run."""
    from bench.evaluation.tuning import tune

    pipeline, embedding, file, duration = pipeline_parts
    dev = [{k: v for k, v in file.items() if not k.startswith("training_cache/")}]

    def tuning():
        return tune(pipeline._segmentation.model, embedding, dev, (2, 2), 0)

    _, record, _ = benchmark.pedantic(tuning, rounds=1)
    benchmark.extra_info["real_time_factor"] = benchmark.stats["mean"] / duration
    assert record["dev_der_after"] <= record["stages"][1]["start_dev_der"]


# --- the training data path: bench's (chunks cut from the decoded, memory-mapped cache) against
# pyannote.audio's own (the same task with pyannote's get_file: each chunk read from the file by
# pyannote's Audio, through torchcodec, which needs FFmpeg's libraries). scripts/scale.py train
# measures both in the recipes' real shape (batch 64 x 10 s).


@pytest.fixture(scope="module")
def training_task(tmp_path_factory):
    from helpers import TINY_RECIPE, make_sample_split

    from bench.recipe import load_recipe
    from bench.training.assemble import assemble

    folder = tmp_path_factory.mktemp("bench-data-path")
    split = load_folder(make_sample_split(folder / "split"))
    (folder / "tiny.py").write_text(TINY_RECIPE.replace("batch_size=4", "batch_size=8"))
    task = assemble(load_recipe(folder / "tiny.py"), split, folder / "cache").task
    task.setup()
    return task


def _batches(task, count: int) -> list[dict]:
    loader = iter(task.train_dataloader())
    return [next(loader) for _ in range(count)]


def _pyannote_get_file(task):
    """pyannote's own ``get_file`` on ``task``, or a skip when torchcodec cannot load FFmpeg."""
    import types

    from pyannote.audio.tasks.segmentation.mixins import SegmentationTask

    own = types.MethodType(SegmentationTask.get_file, task)
    try:
        task.model.audio.crop(own(0), Segment(0.0, 1.0))
    except Exception as error:  # OSError / RuntimeError from torchcodec's loader
        why = str(error).strip().splitlines() or [type(error).__name__]
        if "libtorchcodec" in str(error):
            why = ["torchcodec cannot load FFmpeg's shared libraries (apt install ffmpeg)"]
        pytest.skip(f"pyannote's Audio cannot read files here: {why[-1]}")
    return own


@pytest.mark.parametrize("path", ["bench", "pyannote"])
def test_training_data_path_per_batch(benchmark, training_task, path):
    """One training batch (8 x 5 s) of the sample split, through each data path."""
    if path == "pyannote":
        bench_get_file = training_task.get_file
        training_task.get_file = _pyannote_get_file(training_task)
    try:
        loader = iter(training_task.train_dataloader())
        batch = benchmark.pedantic(lambda: next(loader), rounds=5, warmup_rounds=1)
    finally:
        if path == "pyannote":
            training_task.get_file = bench_get_file
    assert batch["X"].shape == (8, 1, 80000)


def test_both_data_paths_give_the_same_chunks(training_task):
    """pyannote seeds its chunk sampling from the epoch: both paths sample the same chunks, and
    bench's cache holds the samples pyannote's reader decodes."""
    import torch

    ours = _batches(training_task, 3)
    bench_get_file = training_task.get_file
    training_task.get_file = _pyannote_get_file(training_task)
    try:
        theirs = _batches(training_task, 3)
    finally:
        training_task.get_file = bench_get_file
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a["y"], b["y"])
        assert float((a["X"] - b["X"]).abs().max()) < 1e-6
