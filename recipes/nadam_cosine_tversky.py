"""NAdam + cosine annealing, batch 64, BCE + Tversky segmentation loss (reference experiment 11).

Fine-tunes pyannote/segmentation-3.0 as a 3-speaker multilabel model (the powerset head
converted, exactly: head="convert"; the reference run re-initialised it) with a BCE
voice-activity loss, NAdam(lr=1e-4), CosineAnnealingLR over all epochs and gradient clipping at
0.5. Reference result: best validation DER 0.2166 (epoch 49 of 50).
In the reference run the Tversky term never ran (pyannote.audio 3.x ignored `loss=`); here it does.
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
    batch_size=64,
    loss=Loss(kind="bce+tversky", weight=1.0, alpha=0.3, beta=0.7),
    vad_loss=VadLoss(kind="bce", weight=1.0),
    gradient_clip=0.5,
    early_stopping_patience=10,
    seed=0,
)
