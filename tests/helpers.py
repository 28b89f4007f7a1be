"""Shared test helpers (fixtures live in conftest.py): real audio from pyannote.audio's wheel,
split folders, a tiny recipe, the ``bench`` command line and a result file's JSON view."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import pyannote.audio
import torch
from pyannote.audio.core.task import Problem
from pyannote.audio.models.segmentation import PyanNet
from pyannote.audio.utils.powerset import Powerset
from typer.testing import CliRunner, Result

from bench.cli import app
from bench.io import sha256_file
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


# a headless Chromium that reaches nothing outside the page
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    """Chromium through Playwright (``$BENCH_CHROMIUM`` names another executable). Without it,
    the browser tests fail under CI (``CI=true``) and skip elsewhere, with a warning."""

    def unavailable(reason: str) -> None:
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI=true and the browser tests cannot run: {reason}", pytrace=False)
        import warnings

        notice = f"browser tests skipped: {reason} (under CI=true this fails)"
        warnings.warn(notice, UserWarning, stacklevel=2)
        pytest.skip(notice)

    try:
        from playwright import sync_api
    except ImportError as error:
        unavailable(f"playwright cannot be imported ({error})")
    executable = os.environ.get("BENCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        unavailable(f"no chromium at {executable} (scripts/setup.sh installs Debian's as root)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def truncate(wav: Path, seconds: float) -> None:
    """Keep the first ``seconds`` of a wav file, as an interrupted copy would."""
    data, rate = sf.read(wav, dtype="int16")
    sf.write(wav, data[: round(seconds * rate)], rate, subtype="PCM_16")


def write_database_yml(root: Path, name: str, uem: bool = True) -> Path:
    """A database.yml over a sample split folder, protocol ``Sample.SpeakerDiarization.{name}``
    reading ``{subset}.rttm`` (and ``{subset}.uem``), copied from the folder's files."""
    for subset in ("train", "dev", "test"):
        for kind in ("rttm", "uem") if uem else ("rttm",):
            text = (root / subset / kind / f"sample_{subset}.{kind}").read_text()
            (root / f"{subset}.{kind}").write_text(text)
    yml = root / "database.yml"
    yml.write_text(
        "Databases:\n"
        "  Sample:\n"
        + "".join(f"    - {root}/{s}/wav/{{uri}}.wav\n" for s in ("train", "dev", "test"))
        + f"Protocols:\n  Sample:\n    SpeakerDiarization:\n      {name}:\n"
        + "".join(
            f"        {method}:\n          uri: {s}.txt\n          annotation: {s}.rttm\n"
            + (f"          annotated: {s}.uem\n" if uem else "")
            for method, s in (("train", "train"), ("development", "dev"), ("test", "test"))
        )
    )
    return yml


def add_silent_file(root: Path, subset: str, uri: str = "silent", audio: Path = SAMPLE_WAV) -> None:
    """Add to ``subset`` a copy of a recording (the real sample) whose RTTM is empty."""
    shutil.copy(audio, root / subset / "wav" / f"{uri}.wav")
    (root / subset / "rttm" / f"{uri}.rttm").write_text("")
    listed = (root / f"{subset}.txt").read_text()
    (root / f"{subset}.txt").write_text(f"{listed}{uri}\n")


DEMO_FINGERPRINT = "068e68d9b1b44588"


class MarginalMultilabel(PyanNet):
    """segmentation-3.0 read as a multilabel model: a score in [0, 1] per speaker and frame, like
    a sigmoid output. The score is the speaker's marginal probability under the powerset
    posteriors, raised to ``power``: a monotone recalibration (as different losses produce), so
    that 0.5 is not where it should be binarised."""

    @classmethod
    def from_powerset(cls, model: PyanNet, power: float = 1.0) -> MarginalMultilabel:
        hparams = model.hparams
        multilabel = cls(
            sincnet=hparams.sincnet,
            lstm=hparams.lstm,
            linear=hparams.linear,
            sample_rate=hparams.sample_rate,
            num_channels=hparams.num_channels,
        )
        powerset = model.specifications
        multilabel.specifications = powerset
        multilabel.build()
        multilabel.load_state_dict(model.state_dict(), strict=True)
        multilabel.marginals = Powerset(len(powerset.classes), powerset.powerset_max_classes)
        multilabel.power = power
        multilabel.specifications = replace(
            powerset, problem=Problem.MULTI_LABEL_CLASSIFICATION, powerset_max_classes=None
        )
        return multilabel.eval()

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        marginals = self.marginals.to_multilabel(super().forward(waveforms), soft=True)
        return marginals.clamp(0.0, 1.0) ** self.power


def add_to_cache(cache: Path, repo_id: str, commit: str, files: dict[str, Path], *refs: str):
    """Lay ``files`` out as huggingface_hub stores a download of ``repo_id`` at ``commit``:
    ``blobs/<sha256>``, ``snapshots/<commit>/<name>`` (a relative link), ``refs/<ref>``."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    for name, source in files.items():
        blob = repo / "blobs" / sha256_file(source)
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            shutil.copyfile(source, blob)
        link = repo / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for ref in refs:
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
