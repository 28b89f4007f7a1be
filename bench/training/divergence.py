"""Divergence: whether a training run's own validation rows say its result must not be ranked.

A run is judged on the epoch whose checkpoint is evaluated on test (the lowest finite validation
DER, the earliest on ties, as :func:`bench.training.fit.fit` chooses it), against the validation of
the initial weights before training. It has **diverged** when one of these holds:

- **validation loss** at that epoch is at least 5 times the initial validation loss
  (``loss/val``);
- **training loss** of that epoch is at least 5 times the initial validation loss
  (``loss/train``; the same loss terms, so the same scale);
- a loss of that epoch is not a finite number, or no epoch has a finite validation DER;
- (multilabel only) the dev-optimal **threshold is pinned at a bound of its search grid**
  (0.00 to 1.00 in steps of 0.02): at 1.00 no score exceeds it, so the model outputs no speech
  at all (DER 1, Miss 1); at 0.00 many scores are exactly 0, an underflowed sigmoid (a
  threshold of 0 on scores above 0 marks every speaker active everywhere: never optimal).

Epochs after the evaluated one do not count: a late blow-up does not hide the real number of
an earlier, sane checkpoint.

A loss clamped by the BCE (each term at most 100) stays finite and escapes the non-finite
checks made during training; these rules catch it. Output-based rules alone (all speech,
identical rows, DER far from the initial) are not used: a sane scratch model after a few
batches outputs one speaker everywhere, exactly like a diverged one (same DER, FalseAlarm and
Miss), and only its losses tell them apart. A run without epochs (``epochs=0``) never diverged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from bench.io import is_number
from bench.results import DER_KEY as DER
from bench.results import evaluated_epoch

THRESHOLD = f"{DER}/Threshold"
VAL_LOSS = "loss/val"
TRAIN_LOSS = "loss/train"
LOSS_FACTOR = 5.0  # sane demo runs stay below 2.2x the initial loss; diverged ones are >= 11x
THRESHOLD_BOUNDS = (0.0, 1.0)  # pyannote.audio's OptimalDiarizationErrorRate: linspace(0, 1, 51)
_EPSILON = 1e-6


def divergence(
    initial: Mapping[str, Any] | None,
    epochs: Sequence[Mapping[str, Any]],
    mode: str = "multilabel",
    best_epoch: int | None = None,
) -> str | None:
    """Why the run diverged, in one line, or None when its rows show no divergence.

    ``initial`` is the result's ``initial_validation`` row, ``epochs`` its per-epoch rows,
    ``mode`` the recipe's (``"powerset"`` has no threshold), ``best_epoch`` the evaluated epoch
    (default: chosen as training chooses it).
    """
    if mode not in ("multilabel", "powerset"):
        raise ValueError(f"mode {mode!r}: expected 'multilabel' or 'powerset'")
    if not epochs:
        return None
    if best_epoch is None:
        row = evaluated_epoch(epochs)
    else:
        row = next((r for r in epochs if r.get("epoch") == best_epoch), None)
    if row is None:
        return "no epoch has a finite validation DER"
    reason = loss_divergence(initial, row)
    if reason:
        return reason
    where = f"epoch {row.get('epoch')}"
    threshold = row.get(THRESHOLD)
    if mode == "multilabel" and is_number(threshold):
        low, high = THRESHOLD_BOUNDS
        if abs(threshold - high) < _EPSILON:
            return (
                f"dev-optimal threshold pinned at {high:.2f} at {where}: no score exceeds it, "
                f"the model outputs no speech (DER {row.get(DER, math.nan):.4f})"
            )
        if abs(threshold - low) < _EPSILON:
            return (
                f"dev-optimal threshold pinned at {low:.2f} at {where}: the model's scores are "
                "exactly 0 (an underflowed sigmoid)"
            )
    return None


def loss_divergence(initial: Mapping[str, Any] | None, row: Mapping[str, Any]) -> str | None:
    """The loss rules, for any toolkit's rows with ``loss/val`` and ``loss/train``: a loss of
    the judged epoch that is not finite, or at least :data:`LOSS_FACTOR` times the initial
    validation loss."""
    where = f"epoch {row.get('epoch')}"
    for column in (VAL_LOSS, TRAIN_LOSS):
        value = row.get(column)
        if value is not None and not is_number(value):
            return f"{column} is {value} at {where}"
    reference = (initial or {}).get(VAL_LOSS)
    if is_number(reference) and reference > 0:
        for column in (VAL_LOSS, TRAIN_LOSS):
            value = row.get(column)
            if is_number(value) and value >= LOSS_FACTOR * reference:
                return (
                    f"{column} {value:.4g} at {where} is {value / reference:.3g}x the initial "
                    f"validation loss {reference:.4g} (limit {LOSS_FACTOR:g}x)"
                )
    return None


def nemo_divergence(
    initial: Mapping[str, Any] | None, epochs: Sequence[Mapping[str, Any]], kept: int | None
) -> str | None:
    """Why a NeMo run diverged (its loss rows, judged at the ``kept`` epoch, the last when
    None), or None. NeMo validates losses, not DER, so only the loss rules apply."""
    if not epochs:
        return None
    row = next((r for r in epochs if r.get("epoch") == kept), epochs[-1])
    return loss_divergence(initial, row)


__all__ = [
    "LOSS_FACTOR",
    "THRESHOLD_BOUNDS",
    "divergence",
    "evaluated_epoch",
    "loss_divergence",
    "nemo_divergence",
]
