"""NeMo's Sortformer (nvidia/diar_sortformer_4spk-v1, its current end-to-end diarizer: up to 4
speakers) fine-tuned on the split with NeMo's own training code, in NeMo's environment
(bash scripts/setup_nemo.sh). NeMo's stock optimizer (AdamW, betas 0.9/0.98, weight decay 1e-3)
at a tenth of its from-scratch rate, with a short warm-up, as a fine-tuning does; 90 s training
sessions, NeMo's default. Needs the Hugging Face hub (HF_TOKEN); on the offline demo a small
Sortformer from scratch stands in, and the result says so."""

from bench.recipe import NemoOptimizer, NemoPretrained, NemoRecipe

recipe = NemoRecipe(
    model="sortformer",
    init=NemoPretrained(id="nvidia/diar_sortformer_4spk-v1"),
    optimizer=NemoOptimizer(name="adamw", lr=1e-5, weight_decay=1e-3),
    warmup_steps=100,
    epochs=20,
    batch_size=4,
    session_len_sec=90.0,
    seed=0,
)
