"""NeMo's MSDD diarizer as the reference write-up's team fine-tuned it on Korean conversations:
the multiscale diarization decoder on TitaNet-large speaker embeddings (5 scales, 1.5 to 0.5 s,
50 % shift; NeMo's msdd_5scl_15_05_50Povl_256x3x32x2 config), 2 epochs, NeMo's stock optimizer
(Adam 1e-3, weight decay 1e-3) and batch 7. Test files are diarized by NeMo's clustering then
MSDD with oracle VAD (the reference's speech regions), as NeMo evaluates MSDD: the leaderboard
marks it. TitaNet-large comes from the Hugging Face hub (HF_TOKEN); on the offline demo a small
random TitaNet under a small MSDD stands in, and the result says so."""

from bench.recipe import NemoOptimizer, NemoPretrained, NemoRecipe

recipe = NemoRecipe(
    model="msdd",
    init=NemoPretrained(id="nvidia/speakerverification_en_titanet_large"),
    optimizer=NemoOptimizer(name="adam", lr=1e-3, weight_decay=1e-3),
    epochs=2,
    batch_size=7,
    seed=0,
)
