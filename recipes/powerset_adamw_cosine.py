"""Powerset mode (pyannote.audio 4's default) with AdamW + cosine annealing: beyond the reference.

Fine-tunes pyannote/segmentation-3.0 as it was trained: 3 speakers per chunk, at most 2 per
frame, cross-entropy over the 7 powerset classes, so its head is kept (nothing re-initialised).
AdamW (lr 1e-4, weight decay 1e-2), cosine annealing stepped per optimizer step after a linear
warm-up of 100 steps, batch 64, 10 s chunks, 50 epochs, gradient clipping at 0.5, early stopping
(patience 10). No reference result: the reference experiments were all multilabel.
"""

from bench.recipe import Cosine, Loss, Optimizer, Pretrained, Recipe

recipe = Recipe(
    model=Pretrained(id="pyannote/segmentation-3.0"),
    mode="powerset",
    max_speakers_per_chunk=3,
    max_speakers_per_frame=2,
    duration=10.0,
    optimizer=Optimizer(name="adamw", lr=1e-4, weight_decay=1e-2),
    scheduler=Cosine(warmup=100, interval="step"),
    epochs=50,
    batch_size=64,
    loss=Loss(kind="ce"),
    gradient_clip=0.5,
    early_stopping_patience=10,
    seed=0,
)
