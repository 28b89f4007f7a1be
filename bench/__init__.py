"""bench: benchmark harness for fine-tuning pyannote.audio speaker-diarization models."""

import os

# pyannote.audio sends usage telemetry unless told not to; bench never wants that by default.
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

__version__ = "0.3.0"
