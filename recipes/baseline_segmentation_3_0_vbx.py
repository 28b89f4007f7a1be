"""pyannote/segmentation-3.0 as shipped, clustered with VBx: the baseline row of pyannote 4's
pipeline.

The same model as baseline_segmentation_3_0 (no fine-tuning), with the full-file pipeline that
pyannote.audio 4 and speaker-diarization-community-1 ship: VBx clustering on PLDA-transformed
embeddings (BUT's, as DiariZen uses it) instead of centroid agglomerative clustering. bench's
embedding is CAM++, which has no PLDA of its own: the PLDA is estimated on the split's train
embeddings (LDA, then a two-covariance PLDA) and cached. VBx's threshold, Fa and Fb are tuned on
dev like the AHC threshold. The two baseline rows side by side say which pipeline a fine-tuned
segmentation model should be judged in.
"""

from bench.recipe import Loss, Pipeline, Pretrained, Recipe

recipe = Recipe(
    model=Pretrained(id="pyannote/segmentation-3.0"),
    mode="powerset",
    max_speakers_per_chunk=3,
    max_speakers_per_frame=2,
    duration=10.0,
    epochs=0,
    batch_size=64,
    loss=Loss(kind="ce"),
    pipeline=Pipeline(clustering="vbx", plda="train"),
    seed=0,
)
