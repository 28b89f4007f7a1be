"""What a recipe trains on a split, built and not yet trained: the decoded audio, the pyannote
task over the split's chunk index, and the initial model. A pure function of its inputs, so
``bench run``, ``--dry-run``, the GPU check and the tests build it the same way."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import lightning
import torch
from pyannote.audio import Model

from bench.data import Split
from bench.data.audio import AudioCache
from bench.models.weights import load_initial
from bench.recipe import FieldRefusal, Recipe
from bench.training.augmentation import build_augmentation
from bench.training.fit import Initialisation, prepare_model
from bench.training.task import BenchDiarization, BenchProtocol


@dataclass
class Assembled:
    """A recipe's task and model on a split, ready for :func:`bench.training.fit.fit`."""

    task: BenchDiarization
    model: Model
    init: Initialisation
    audio: AudioCache


def index_path(split: Split, recipe: Recipe, folder: Path) -> Path:
    """The one name of a split's chunk index: per split, copy of it (the index holds audio
    paths, so a copy elsewhere gets its own) and chunk duration, shared by every recipe."""
    where = hashlib.sha256(split.source.encode()).hexdigest()[:8]
    return folder / f"{split.fingerprint}-{where}-{recipe.duration:g}s.npz"


def check_chunks(recipe: Recipe, model: Model) -> None:
    """Refuse chunks shorter than the model's receptive field: not one output frame fits them
    (pyannote would fail inside training with ``negative dimensions are not allowed``)."""
    field = model.receptive_field.duration
    if recipe.duration < field:
        raise FieldRefusal(
            ("duration",),
            f"{recipe.duration:g} s chunks are shorter than the model's receptive field "
            f"({field:.3f} s): not one output frame fits in a chunk",
        )


def assemble(recipe: Recipe, split: Split, cache: Path, index_dir: Path | None = None) -> Assembled:
    """Check the chunks fit the model (before any audio is decoded; the weights are loaded
    again where they always were, so the random numbers a run draws do not move), decode the
    split's audio into ``cache/audio``, seed everything with the recipe's seed, build its
    augmentation, the task (index in ``index_dir``, default ``cache/tasks``) and the initial
    model."""
    with torch.random.fork_rng(devices=[]):  # a look at the model that draws no random number
        check_chunks(recipe, load_initial(recipe.model)[0])
    audio = AudioCache(cache / "audio", split.every_file())
    for subset in split.recordings:
        for rec in split.files(subset):
            audio.prepare(rec.audio)
    lightning.seed_everything(recipe.seed, workers=True, verbose=False)
    augmentation = build_augmentation(recipe.augmentation, split.root)
    index = index_path(split, recipe, index_dir or cache / "tasks")
    task = BenchDiarization(BenchProtocol(split), recipe, audio, index, augmentation)
    model, init = prepare_model(recipe, task)
    return Assembled(task, model, init, audio)
