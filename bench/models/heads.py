"""A multilabel head that starts exactly where a pretrained powerset head is.

pyannote/segmentation-3.0 is a powerset model: per frame, a softmax over the 7 sets of at most
2 of 3 speakers. The reference recipes train a 3-speaker multilabel model, and re-initialising
its classifier throws away what the checkpoint knew (validation DER 0.77 instead of 0.23 before
the first step, on real meetings). A speaker is active with the probability of the sets that
contain it, so a multilabel head defined as

    logit( softmax(pretrained powerset layer(x)) @ mapping )      mapping: (7 sets, 3 speakers)

gives, through the model's sigmoid, the pretrained model's speaker probabilities before any step,
and trains with the multilabel losses (``Pretrained(head="convert")``). It is a PyanNet subclass
so that its checkpoints load back through ``Model.from_pretrained`` (the pipeline, ``--also-test``).
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from pyannote.audio.models.segmentation import PyanNet
from pyannote.audio.utils.powerset import Powerset
from torch import nn

# probabilities are kept inside [EPS, 1 - EPS] so that their logit is finite (float32)
EPS = 1e-7


class PowersetToMultilabel(nn.Module):
    """Speaker logits computed through a powerset layer, in float32 outside autocast."""

    def __init__(self, in_features: int, num_classes: int, max_set_size: int):
        super().__init__()
        self.sets = Powerset(num_classes, max_set_size)
        self.powerset = nn.Linear(in_features, self.sets.num_powerset_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            sets = torch.softmax(self.powerset(x.float()), dim=-1)
            speakers = (sets @ self.sets.mapping).clamp(EPS, 1.0 - EPS)
            return torch.logit(speakers)


class PowersetInitialisedPyanNet(PyanNet):
    """PyanNet whose multilabel classifier is :class:`PowersetToMultilabel`."""

    def __init__(self, *args: Any, powerset: dict[str, int] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.save_hyperparameters("powerset")

    def build(self) -> None:
        super().build()
        spec = self.hparams.powerset
        in_features = self.classifier.in_features
        self.classifier = PowersetToMultilabel(in_features, spec["classes"], spec["per_frame"])


def convert(model: PyanNet) -> tuple[PowersetInitialisedPyanNet, nn.Linear]:
    """A headless :class:`PowersetInitialisedPyanNet` with ``model``'s encoder, and the powerset
    classifier to copy into its head once the task has built it (:func:`load_head`)."""
    spec = model.specifications
    hparams = model.hparams
    converted = PowersetInitialisedPyanNet(
        sincnet=dict(hparams.sincnet),
        lstm=dict(hparams.lstm),
        linear=dict(hparams.linear),
        sample_rate=hparams.sample_rate,
        num_channels=hparams.num_channels,
        powerset={"classes": len(spec.classes), "per_frame": spec.powerset_max_classes},
    )
    encoder = {k: v for k, v in model.state_dict().items() if not k.startswith("classifier.")}
    missing, unexpected = converted.load_state_dict(encoder, strict=False)
    if unexpected or any(not key.startswith("classifier.") for key in missing):
        raise ValueError(f"cannot convert the head: encoder mismatch ({missing[:3]})")
    return converted, model.classifier


def load_head(model: PowersetInitialisedPyanNet, classifier: nn.Linear) -> None:
    """Copy the pretrained powerset classifier into the built head."""
    model.classifier.powerset.load_state_dict(classifier.state_dict())


# bench 0.3.0 saved this module's models as ``bench.heads.PowersetInitialisedPyanNet`` in their
# checkpoints (pyannote records the class's module); those checkpoints keep loading
sys.modules.setdefault("bench.heads", sys.modules[__name__])
