"""NAdam + cosine annealing, 50 epochs, batch 128 (reference experiment 7).

Fine-tunes pyannote/segmentation-3.0 as a 3-speaker multilabel model (the powerset head
converted, exactly: head="convert"; the reference run re-initialised it) with a BCE
voice-activity loss, lr 1e-4, gradient clipping at 0.5 and early stopping (patience 10) on
validation DER.
Reference result: best validation DER 0.2201.
"""

from bench.recipe import Cosine, Loss, Optimizer, Pretrained, Recipe, VadLoss

recipe = Recipe(
    model=Pretrained(id="pyannote/segmentation-3.0", head="convert"),
    mode="multilabel",
    max_speakers_per_chunk=3,
    duration=10.0,
    optimizer=Optimizer(name="nadam", lr=1e-4),
    scheduler=Cosine(),
    epochs=50,
    batch_size=128,
    loss=Loss(kind="bce"),
    vad_loss=VadLoss(kind="bce", weight=1.0),
    gradient_clip=0.5,
    early_stopping_patience=10,
    seed=0,
)
