"""Each segmentation loss really runs: different values and gradients, hand-checked values."""

from __future__ import annotations

import pytest
import torch

from bench.recipe import Loss
from bench.training.losses import multilabel_segmentation_loss, tversky, vad_loss


def batch():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 50, 3, generator=generator, requires_grad=True)
    target = (torch.rand(2, 50, 3, generator=generator) > 0.6).float()
    return logits, target


def test_tversky_hand_computed():
    p = torch.tensor([[[0.9, 0.2], [0.4, 0.7]]])
    t = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
    tp, fp, fn = 0.9 + 0.4 + 0.7, 0.2, 0.1 + 0.6 + 0.3
    assert tversky(p, t, 0.3, 0.7).item() == pytest.approx(
        1 - tp / (tp + 0.3 * fp + 0.7 * fn), abs=1e-6
    )
    assert tversky(p, t, 0.5, 0.5).item() == pytest.approx(
        1 - 2 * tp / (2 * tp + fp + fn), abs=1e-6
    )


def test_losses_differ_in_value_and_gradient():
    logits, target = batch()
    values, grads = {}, {}
    for spec in (
        Loss(kind="bce"),
        Loss(kind="bce+dice"),
        Loss(kind="bce+tversky"),
        Loss(kind="bce+tversky", alpha=0.7, beta=0.3),
        Loss(kind="bce+dice", weight=2.0),
    ):
        key = (spec.kind, spec.alpha, spec.beta, spec.weight)
        logits.grad = None
        loss = multilabel_segmentation_loss(spec, torch.sigmoid(logits), target)
        loss.backward()
        values[key], grads[key] = loss.item(), logits.grad.clone()
    assert len(set(values.values())) == len(values)
    keys = list(grads)
    for a in keys:
        for b in keys:
            if a != b:
                assert not torch.allclose(grads[a], grads[b])
    probability = torch.sigmoid(logits)
    bce = torch.nn.functional.binary_cross_entropy(probability, target).item()
    assert values[("bce", 0.3, 0.7, 1.0)] == pytest.approx(bce, rel=1e-5)
    dice = tversky(probability, target, 0.5, 0.5).item()
    assert values[("bce+dice", 0.3, 0.7, 2.0)] == pytest.approx(bce + 2 * dice, rel=1e-5)


def test_vad_loss_uses_max_over_speakers():
    p = torch.tensor([[[0.9, 0.1], [0.2, 0.3]]])
    t = torch.tensor([[[0.0, 1.0], [0.0, 0.0]]])
    expected = -(torch.log(torch.tensor(0.9)) + torch.log(torch.tensor(0.7))) / 2
    assert vad_loss(p, t).item() == pytest.approx(expected.item(), rel=1e-5)
