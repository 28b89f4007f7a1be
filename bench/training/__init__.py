"""Training: the pyannote task (:mod:`.task`), losses (:mod:`.losses`), augmentation
(:mod:`.augmentation`), the fit itself (:mod:`.fit`) and divergence (:mod:`.divergence`).

Import from the submodule: this face imports nothing (its submodules import torch)."""
