"""Deploying the winner: a run's pipeline exported as a folder pyannote.audio loads
(:mod:`.export`, with :mod:`.pipeline` the class it names), loaded safely from a folder, a
result or a hub id (:mod:`.load`), applied to audio (:mod:`.diarize`) and pushed to the hub
(:mod:`.publish`). Torch-heavy: import the modules by name."""
