"""pyannote/speaker-diarization-3.1 as shipped: segmentation-3.0, WeSpeaker ResNet34 embeddings,
centroid clustering with its published threshold. A leaderboard row to beat; needs the Hugging
Face hub (accept the model's conditions, then HF_TOKEN)."""

from bench.recipe import PretrainedPipeline

recipe = PretrainedPipeline(id="pyannote/speaker-diarization-3.1")
