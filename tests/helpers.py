"""Shared test helpers (fixtures live in conftest.py): real audio from pyannote.audio's wheel,
split folders, a tiny recipe, the ``bench`` command line and a result file's JSON view."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import soundfile as sf

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import pyannote.audio
from typer.testing import CliRunner, Result

from bench.cli import app
from bench.results import read_record

SAMPLE_DIR = Path(pyannote.audio.__file__).parent / "sample"
SAMPLE_WAV = SAMPLE_DIR / "sample.wav"
SAMPLE_RTTM = SAMPLE_DIR / "sample.rttm"
ROOT = Path(__file__).resolve().parents[1]


def bench(*args: Any) -> Result:
    """``bench ARGS...`` in this process (arguments turned into strings)."""
    return CliRunner().invoke(app, [str(arg) for arg in args])


def result_json(path: Path) -> dict[str, Any]:
    """A result file as its JSON view, migrated to the current schema (read by the store)."""
    return read_record(Path(path)).as_json()


def write_sample_copy(path: Path, index: int) -> None:
    """pyannote's sample, its last sample moved by ``index`` LSB: the same speech, other bytes
    (bench refuses the same audio in two subsets as a leak)."""
    data, rate = sf.read(SAMPLE_WAV, dtype="int16")
    data[-1] = data[-1] + index if data[-1] < 0 else data[-1] - index
    sf.write(path, data, rate, subtype="PCM_16")


def make_sample_split(root: Path) -> Path:
    """A split whose every file is pyannote's real 30 s two-speaker sample under another URI
    (one LSB apart, see :func:`write_sample_copy`)."""
    rttm = SAMPLE_RTTM.read_text()
    for index, subset in enumerate(("train", "dev", "test")):
        uri = f"sample_{subset}"
        for folder in ("wav", "rttm", "uem"):
            (root / subset / folder).mkdir(parents=True, exist_ok=True)
        write_sample_copy(root / subset / "wav" / f"{uri}.wav", index)
        (root / subset / "rttm" / f"{uri}.rttm").write_text(rttm.replace("sample ", f"{uri} "))
        (root / subset / "uem" / f"{uri}.uem").write_text(f"{uri} 1 0.000 30.000\n")
        (root / f"{subset}.txt").write_text(f"{uri}\n")
    return root


def xvector_checkpoint(path: Path, dimension: int = 32) -> Path:
    """A small pyannote embedding checkpoint, as Lightning's ModelCheckpoint writes it."""
    import lightning
    import torch
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import XVectorSincNet

    torch.manual_seed(0)
    model = XVectorSincNet(dimension=dimension)
    model.specifications = Specifications(
        problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=2.0
    )
    checkpoint = {
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "pytorch-lightning_version": lightning.__version__,
    }
    model.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path


TINY_RECIPE = '''
"""A tiny scratch model for fast tests."""
from bench.recipe import Cosine, Loss, Optimizer, Recipe, Scratch, VadLoss

recipe = Recipe(
    model=Scratch(lstm_hidden_size=16, lstm_num_layers=1, linear_hidden_size=16),
    optimizer=Optimizer(name="adam", lr=1e-3),
    scheduler=Cosine(),
    epochs=2,
    batch_size=4,
    duration=5.0,
    max_speakers_per_chunk=3,
    loss=Loss(kind="bce+dice"),
    vad_loss=VadLoss(),
    gradient_clip=0.5,
    pipeline=None,
    seed=3,
)
'''
