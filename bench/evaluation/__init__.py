"""Evaluation: pyannote.metrics scoring (:mod:`.scoring`), chunk-level test DER (:mod:`.chunks`),
the full-file pipeline and its tuning (:mod:`.pipeline`) and other systems' RTTMs
(:mod:`.external`).

Import from the submodule: this face imports nothing (most submodules import torch)."""
