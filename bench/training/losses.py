"""Segmentation and voice-activity losses (permutation-invariant, multilabel and powerset).

Every loss runs in float32 with autocast disabled: under ``16-mixed`` or ``bf16-mixed`` the model's
scores may come in half precision, and CUDA autocast refuses ``F.binary_cross_entropy``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from pyannote.audio.utils.loss import binary_cross_entropy, nll_loss

from bench.recipe import Loss

EPS = 1e-6

L = TypeVar("L", bound=Callable[..., torch.Tensor])


def _float32(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.float()
    return value


def float32(loss: L) -> L:
    """Run ``loss`` with autocast disabled on its tensors' device, floating tensors in float32."""

    @functools.wraps(loss)
    def wrapper(*args: Any, **kwargs: Any) -> torch.Tensor:
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        device = tensors[0].device.type if tensors else "cpu"
        with torch.autocast(device_type=device, enabled=False):
            args = tuple(_float32(a) for a in args)
            return loss(*args, **{k: _float32(v) for k, v in kwargs.items()})

    return wrapper  # type: ignore[return-value]


class Float32Activation(torch.nn.Module):
    """A model's final activation (sigmoid, log-softmax) applied to float32 logits outside
    autocast, so that mixed precision does not round probabilities to 16 bits (a bf16 sigmoid is
    exactly 1 above a logit of about 5.5). It has no parameters: state dicts are unchanged."""

    def __init__(self, activation: torch.nn.Module):
        super().__init__()
        self.activation = activation

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=logits.device.type, enabled=False):
            return self.activation(logits.float())


@float32
def tversky(
    probability: torch.Tensor, target: torch.Tensor, alpha: float, beta: float
) -> torch.Tensor:
    """Soft Tversky loss ``1 - TP / (TP + alpha FP + beta FN)`` summed over the whole batch.

    Dice is the special case alpha = beta = 0.5.
    """
    target = target.float()
    tp = torch.sum(probability * target)
    fp = torch.sum(probability * (1.0 - target))
    fn = torch.sum((1.0 - probability) * target)
    return 1.0 - (tp + EPS) / (tp + alpha * fp + beta * fn + EPS)


def overlap_term(
    spec: Loss, probability: torch.Tensor, target: torch.Tensor
) -> torch.Tensor | None:
    """The recipe's Dice/Tversky term on probabilities, or None when the loss has none."""
    if spec.kind.endswith("+dice"):
        return tversky(probability, target, 0.5, 0.5)
    if spec.kind.endswith("+tversky"):
        return tversky(probability, target, spec.alpha, spec.beta)
    return None


@float32
def focal(probability: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    """Sigmoid focal loss ``-(1 - p_t)^gamma log p_t``, averaged (gamma = 0 is BCE)."""
    target = target.float()
    p_t = probability * target + (1.0 - probability) * (1.0 - target)
    p_t = p_t.clamp(EPS, 1.0)
    return torch.mean((1.0 - p_t) ** gamma * -torch.log(p_t))


@float32
def multilabel_segmentation_loss(
    spec: Loss, probability: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """BCE (+ weighted Dice/Tversky) or focal loss between permutated sigmoid outputs and
    targets. probability, target: (batch, frames, speakers)."""
    if spec.kind == "focal":
        return focal(probability, target, spec.gamma)
    loss = binary_cross_entropy(probability, target.float())
    extra = overlap_term(spec, probability, target)
    return loss if extra is None else loss + spec.weight * extra


@float32
def powerset_loss(
    spec: Loss, log_probability: torch.Tensor, target_class: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy over powerset classes (+ weighted Dice/Tversky on class probabilities).

    log_probability: (batch, frames, classes); target_class: (batch, frames) class indices.
    """
    loss = nll_loss(log_probability, target_class)
    one_hot = torch.nn.functional.one_hot(target_class, log_probability.shape[-1])
    extra = overlap_term(spec, log_probability.exp(), one_hot)
    return loss if extra is None else loss + spec.weight * extra


@float32
def vad_loss(speaker_probability: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE between max-over-speakers probability and max-over-speakers target."""
    vad_prediction, _ = torch.max(speaker_probability, dim=2)
    vad_target, _ = torch.max(target.float(), dim=2)
    return F.binary_cross_entropy(vad_prediction.clamp(EPS, 1 - EPS), vad_target)
