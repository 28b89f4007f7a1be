"""pyannote/segmentation-3.0 as shipped, without fine-tuning: the baseline row.

Evaluates the pretrained powerset model (3 speakers per chunk, at most 2 per frame, head kept)
through the same validation, chunk-level test scoring and full-file pipeline (tuned on dev) as
every other recipe, so the leaderboard shows what fine-tuning bought. In the reference write-up the
pretrained pipeline scored 29.8% DER on its AliMeeting test split.
"""

from bench.recipe import Loss, Pretrained, Recipe

recipe = Recipe(
    model=Pretrained(id="pyannote/segmentation-3.0"),
    mode="powerset",
    max_speakers_per_chunk=3,
    max_speakers_per_frame=2,
    duration=10.0,
    epochs=0,
    batch_size=64,
    loss=Loss(kind="ce"),
    seed=0,
)
