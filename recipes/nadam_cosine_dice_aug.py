"""NAdam + cosine, batch 64, BCE + Dice, with augmentation (reference experiment 10).

Fine-tunes pyannote/segmentation-3.0 as a 3-speaker multilabel model (the powerset head
converted, exactly: head="convert"; the reference run re-initialised it) with a BCE
voice-activity loss, lr 1e-4, gradient clipping at 0.5 and early stopping (patience 10) on
validation DER. Noise at 5-20 dB SNR (p=0.5) and impulse responses
(p=0.5). Reference result: best validation DER 0.2224.
The reference's Dice term never ran (see nadam_cosine_dice). Noise and impulse responses are read
from the `noise/` and `ir/` folders of the dataset (the demo split ships generated ones; the
reference used MUSAN noise): put yours there or give absolute paths.
"""

from bench.recipe import (
    Augmentation,
    BackgroundNoise,
    Cosine,
    ImpulseResponse,
    Loss,
    Optimizer,
    Pretrained,
    Recipe,
    VadLoss,
)

recipe = Recipe(
    model=Pretrained(id="pyannote/segmentation-3.0", head="convert"),
    mode="multilabel",
    max_speakers_per_chunk=3,
    duration=10.0,
    optimizer=Optimizer(name="nadam", lr=1e-4),
    scheduler=Cosine(),
    epochs=50,
    batch_size=64,
    loss=Loss(kind="bce+dice", weight=1.0),
    vad_loss=VadLoss(kind="bce", weight=1.0),
    augmentation=Augmentation(
        noise=BackgroundNoise(path="noise", min_snr_db=5.0, max_snr_db=20.0, p=0.5),
        impulse_response=ImpulseResponse(path="ir", p=0.5),
    ),
    gradient_clip=0.5,
    early_stopping_patience=10,
    seed=0,
)
