"""NeMo recipes: one of NVIDIA NeMo's diarizers fine-tuned (or trained from scratch) on the split
with NeMo's own training code, in NeMo's own environment (:mod:`bench.nemo`), then scored with
the same Scorer as every other row.

``model`` is ``"sortformer"`` (``SortformerEncLabelModel``, NeMo's end-to-end diarizer) or
``"msdd"`` (``EncDecDiarLabelModel``, the multiscale diarization decoder on TitaNet embeddings);
``init`` is a pretrained model (a hub id such as ``nvidia/diar_sortformer_4spk-v1``, or a local
``.nemo`` file) or :class:`NemoScratch` (NeMo's stock config, shipped in ``bench/nemo/configs/``,
with random weights and dotted-key ``config`` overrides: how the tests build a small model).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from bench.recipe.schema import _Runnable, _Strict

NEMO_MODELS = ("sortformer", "msdd")
# a config override's value: what a YAML scalar or a list of them can be
ConfigValue = int | float | bool | str | None | list[int | float | str]
ConfigKey = Annotated[str, Field(pattern=r"^[A-Za-z_]\w*(\.\w+)*$")]  # "encoder.n_layers"


class NemoScratch(_Strict):
    """The model built from NeMo's stock config for ``model`` with random weights. ``config``
    sets fields of its ``model:`` section by dotted key (``{"encoder.n_layers": 2}``); a key the
    config does not have is refused."""

    kind: Literal["scratch"] = "scratch"
    config: dict[ConfigKey, ConfigValue] = Field(default_factory=dict)


class NemoPretrained(_Strict):
    """A pretrained NeMo model: a Hugging Face id (``nvidia/diar_sortformer_4spk-v1``; its
    ``<name>.nemo`` file, as NeMo's ``from_pretrained`` fetches it, at ``revision``, with the
    token from ``$token_env``) or a path to a ``.nemo`` file."""

    kind: Literal["pretrained"] = "pretrained"
    id: str = Field(min_length=1)
    revision: str | None = None
    token_env: str = "HF_TOKEN"


class NemoOptimizer(_Strict):
    """NeMo's optimizer (``optim`` in its config)."""

    name: Literal["adam", "adamw"] = "adamw"
    lr: float = Field(gt=0)
    weight_decay: float = Field(0.001, ge=0)


class NemoPostprocessing(_Strict):
    """How Sortformer's frame probabilities become segments (NeMo's ``postprocessing_params``):
    a speaker starts above ``onset`` and ends below ``offset``; segments are padded, then those
    shorter than ``min_duration_on`` dropped and gaps shorter than ``min_duration_off`` filled."""

    onset: float = Field(0.5, gt=0, lt=1)
    offset: float = Field(0.5, gt=0, lt=1)
    pad_onset: float = Field(0.0, ge=0)
    pad_offset: float = Field(0.0, ge=0)
    min_duration_on: float = Field(0.0, ge=0)
    min_duration_off: float = Field(0.0, ge=0)


class NemoRecipe(_Runnable):
    """A NeMo diarizer trained on the split's train files (validated on dev each epoch), applied
    to the test files and scored like every recipe. ``epochs=0`` scores ``init`` as it is.

    ``batch_size`` is per optimizer step; ``session_len_sec`` (Sortformer) is the length of the
    training segments (NeMo's default, 90 s, when None); ``warmup_steps`` > 0 uses NeMo's
    inverse-square-root schedule with that warm-up (a constant rate otherwise);
    ``postprocessing`` (Sortformer) turns frame probabilities into segments (NeMo's defaults
    when None)."""

    kind: Literal["nemo"] = "nemo"
    name: str = Field("", pattern=r"^([A-Za-z0-9_+-][A-Za-z0-9_.+-]*)?$")
    description: str = ""
    model: Literal["sortformer", "msdd"]
    init: NemoScratch | NemoPretrained = Field(discriminator="kind")
    optimizer: NemoOptimizer | None = None
    warmup_steps: int = Field(0, ge=0)
    epochs: int = Field(ge=0)
    batch_size: int = Field(4, ge=1)
    session_len_sec: float | None = Field(None, gt=0)
    postprocessing: NemoPostprocessing | None = None
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> NemoRecipe:
        if self.epochs == 0:
            for name in ("optimizer", "session_len_sec"):
                if getattr(self, name) is not None:
                    raise ValueError(f"'{name}' does not apply with epochs=0 (no training)")
            if self.warmup_steps:
                raise ValueError("'warmup_steps' does not apply with epochs=0 (no training)")
        elif self.optimizer is None:
            raise ValueError("'optimizer' is required to train (epochs > 0)")
        if self.model == "msdd":
            for name in ("session_len_sec", "postprocessing"):
                if getattr(self, name) is not None:
                    raise ValueError(f"'{name}' applies to model 'sortformer' only")
        return self
