"""Segmentation and voice-activity losses (permutation-invariant, multilabel and powerset)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pyannote.audio.utils.loss import binary_cross_entropy, nll_loss

from bench.recipe import Loss

EPS = 1e-6


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
    if spec.kind == "bce+dice":
        return tversky(probability, target, 0.5, 0.5)
    if spec.kind == "bce+tversky":
        return tversky(probability, target, spec.alpha, spec.beta)
    return None


def multilabel_segmentation_loss(
    spec: Loss, probability: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """BCE (+ weighted Dice/Tversky) between permutated sigmoid outputs and targets.

    probability, target: (batch, frames, speakers)
    """
    loss = binary_cross_entropy(probability, target.float())
    extra = overlap_term(spec, probability, target)
    return loss if extra is None else loss + spec.weight * extra


def powerset_segmentation_loss(
    log_probability: torch.Tensor, target_class: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy over powerset classes. log_probability: (batch, frames, classes)."""
    return nll_loss(log_probability, target_class)


def vad_loss(speaker_probability: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE between max-over-speakers probability and max-over-speakers target."""
    vad_prediction, _ = torch.max(speaker_probability, dim=2)
    vad_target, _ = torch.max(target.float(), dim=2)
    return F.binary_cross_entropy(vad_prediction.clamp(EPS, 1 - EPS), vad_target)
