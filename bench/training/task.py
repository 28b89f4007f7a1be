"""The training task: pyannote.audio's SpeakerDiarization in multilabel or powerset mode, reading
audio from bench's decoded cache and logging the reference write-up's per-epoch columns."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import torch
from pyannote.audio.core.task import Problem, Resolution, Specifications
from pyannote.audio.tasks import SpeakerDiarization
from pyannote.audio.torchmetrics import (
    DiarizationErrorRate,
    FalseAlarmRate,
    MissedDetectionRate,
    OptimalDiarizationErrorRate,
    OptimalDiarizationErrorRateThreshold,
    OptimalFalseAlarmRate,
    OptimalMissedDetectionRate,
    OptimalSpeakerConfusionRate,
    SpeakerConfusionRate,
)
from pyannote.audio.utils.permutation import permutate
from pyannote.database.protocol import SpeakerDiarizationProtocol
from torch_audiomentations.core.transforms_interface import BaseWaveformTransform

from bench.data import SAMPLE_RATE, Split
from bench.data.audio import AudioCache
from bench.recipe import Recipe
from bench.training.losses import (
    Float32Activation,
    multilabel_segmentation_loss,
    powerset_loss,
    vad_loss,
)

DER = "DiarizationErrorRate"
VALIDATION_METRICS = (
    DER,
    f"{DER}/Confusion",
    f"{DER}/FalseAlarm",
    f"{DER}/Miss",
    f"{DER}/Threshold",
)


class BenchProtocol(SpeakerDiarizationProtocol):
    """pyannote.database protocol over a :class:`Split` (audio as paths, UEM as ``annotated``)."""

    def __init__(self, split: Split):
        super().__init__()
        self.split = split
        self.name = f"bench.SpeakerDiarization.{split.fingerprint}"

    def _iter(self, subset: str) -> Iterator[dict]:
        for rec in self.split.files(subset):
            yield {
                "uri": rec.uri,
                "database": "bench",
                "audio": str(rec.audio),
                "annotation": rec.annotation,
                "annotated": rec.annotated,
                "scope": "file",
            }

    def train_iter(self) -> Iterator[dict]:
        return self._iter("train")

    def development_iter(self) -> Iterator[dict]:
        return self._iter("dev")

    def test_iter(self) -> Iterator[dict]:
        return self._iter("test")


class BenchDiarization(SpeakerDiarization):
    """Speaker diarization task driven by a :class:`Recipe`.

    multilabel: one sigmoid per speaker, permutation-invariant BCE (+ Dice/Tversky), optional VAD
    loss; validation DER at the threshold that minimises it (OptimalDiarizationErrorRate).
    powerset: pyannote.audio 4's classes over speaker subsets, cross-entropy; validation DER of
    the hard decisions (no threshold).
    """

    def __init__(
        self,
        protocol: BenchProtocol,
        recipe: Recipe,
        audio: AudioCache,
        cache: Path,
        augmentation: BaseWaveformTransform | None = None,
    ):
        self.recipe = recipe
        self.mode = recipe.mode
        self.audio_cache = audio
        super().__init__(
            protocol,
            cache=str(cache),
            duration=recipe.duration,
            max_speakers_per_chunk=recipe.max_speakers_per_chunk,
            max_speakers_per_frame=(
                recipe.max_speakers_per_frame or 2
                if recipe.mode == "powerset"
                else recipe.max_speakers_per_chunk
            ),
            batch_size=recipe.batch_size,
            num_workers=recipe.num_workers,
            augmentation=augmentation,
        )

    def prepare_data(self) -> None:
        """Index the split once: written to a temporary file, then renamed into place, so that
        the index other runs share is never a half-written one."""
        final = Path(self.cache)
        if final.is_file() and final.stat().st_size > 0:
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        self.cache = final.with_suffix(f".{os.getpid()}.tmp")
        try:
            super().prepare_data()
            os.replace(self.cache, final)
        finally:
            Path(self.cache).unlink(missing_ok=True)
            self.cache = final

    # the seam: audio comes from the decoded cache, never from torchcodec/FFmpeg
    def get_file(self, file_id: int) -> dict:
        path = self.prepared_data["audio-path"][file_id]
        return {"waveform": self.audio_cache.waveform(path), "sample_rate": SAMPLE_RATE}

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        if self.mode == "multilabel":
            self.specifications = Specifications(
                problem=Problem.MULTI_LABEL_CLASSIFICATION,
                resolution=Resolution.FRAME,
                duration=self.duration,
                min_duration=self.min_duration,
                classes=[f"speaker#{i + 1}" for i in range(self.max_speakers_per_chunk)],
                permutation_invariant=True,
            )

    def setup_loss_func(self) -> None:
        """Powerset mapping (powerset mode); the model's final activation in float32.

        Called by ``Model.setup`` right after ``build()`` has made a new activation.
        """
        if self.mode == "powerset":
            super().setup_loss_func()
        activation = getattr(self.model, "activation", None)
        if isinstance(activation, torch.nn.Module) and not isinstance(
            activation, Float32Activation
        ):
            self.model.activation = Float32Activation(activation)

    def default_metric(self) -> dict:
        if self.mode == "multilabel":
            return {
                DER: OptimalDiarizationErrorRate(),
                f"{DER}/Threshold": OptimalDiarizationErrorRateThreshold(),
                f"{DER}/Confusion": OptimalSpeakerConfusionRate(),
                f"{DER}/Miss": OptimalMissedDetectionRate(),
                f"{DER}/FalseAlarm": OptimalFalseAlarmRate(),
            }
        return {
            DER: DiarizationErrorRate(0.5),
            f"{DER}/Confusion": SpeakerConfusionRate(0.5),
            f"{DER}/Miss": MissedDetectionRate(0.5),
            f"{DER}/FalseAlarm": FalseAlarmRate(0.5),
        }

    def compute_losses(
        self, batch: dict
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """Segmentation loss, VAD loss (or None), speaker scores and target, both permutated
        to agree: (batch, frames, speakers).

        Under mixed precision only the model's forward runs in autocast: everything after it
        (permutation, powerset mapping, losses, metrics) is float32, since CUDA autocast refuses
        BCE and numpy (scipy's assignment in ``permutate``) refuses bfloat16.
        """
        prediction = self.model(batch["X"])
        with torch.autocast(device_type=prediction.device.type, enabled=False):
            return self._losses(prediction.float(), batch["y"])

    def _losses(
        self, prediction: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        if not torch.isfinite(prediction).all():
            raise FloatingPointError("the model's output is not finite: training diverged")
        if self.mode == "multilabel":
            permutated, _ = permutate(target, prediction)
            segmentation = multilabel_segmentation_loss(self.recipe.loss, permutated, target)
            scores = permutated
        else:
            powerset = self.model.powerset
            hard = powerset.to_multilabel(prediction)
            permutated_target, _ = permutate(hard, target)
            target_class = torch.argmax(powerset.to_powerset(permutated_target.float()), dim=-1)
            segmentation = powerset_loss(self.recipe.loss, prediction, target_class)
            target = permutated_target
            scores = powerset.to_multilabel(prediction, soft=True)
        vad = vad_loss(scores, target) if self.recipe.vad_loss is not None else None
        if self.mode == "powerset":
            scores = powerset.to_multilabel(prediction)
        return segmentation, vad, scores, target

    def _total(self, segmentation: torch.Tensor, vad: torch.Tensor | None) -> torch.Tensor:
        if vad is None:
            return segmentation
        return segmentation + self.recipe.vad_loss.weight * vad

    def _log_losses(self, stage: str, segmentation: torch.Tensor, vad: torch.Tensor | None):
        total = self._total(segmentation, vad)
        log = {
            "on_step": False,
            "on_epoch": True,
            "logger": True,
            "batch_size": self.batch_size,
            "sync_dist": self.model.trainer.world_size > 1,  # mean over DDP processes
        }
        self.model.log(f"loss/{stage}/segmentation", segmentation, **log)
        if vad is not None:
            self.model.log(f"loss/{stage}/vad", vad, **log)
        self.model.log(f"loss/{stage}", total, prog_bar=True, **log)
        return total

    def training_step(self, batch: dict, batch_idx: int) -> dict:
        segmentation, vad, _, _ = self.compute_losses(batch)
        loss = self._log_losses("train", segmentation, vad)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss is {loss.item()}: training diverged")
        return {"loss": loss}

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        segmentation, vad, scores, target = self.compute_losses(batch)
        self._log_losses("val", segmentation, vad)
        with torch.autocast(device_type=scores.device.type, enabled=False):
            self.model.validation_metric(
                torch.transpose(scores.float(), 1, 2), torch.transpose(target, 1, 2)
            )
        self.model.log_dict(self.model.validation_metric, on_step=False, on_epoch=True, logger=True)
