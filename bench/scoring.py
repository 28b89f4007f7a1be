"""DER scoring with pyannote.metrics: chunk-level (per chunk, per file) and full-file variants.

Every DER bench reports comes from here. :func:`summarize` turns pyannote.metrics' accumulated
components (seconds) into DER, Confusion, FalseAlarm and Miss rates plus the seconds themselves.
DER is undefined without reference speech: a file (or a whole set) whose reference holds no
speech inside its UEM gets ``None`` rates, and its false-alarm seconds stay under ``seconds``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

if TYPE_CHECKING:
    from bench.data import Recording

COMPONENTS = {"confusion": "Confusion", "false alarm": "FalseAlarm", "missed detection": "Miss"}
NO_SPEECH = "no reference speech: DER is undefined (false-alarm seconds under 'seconds')"

# full-file scoring: collar 0, overlap scored (primary), and the older convention some papers
# report: md-eval's "-c 0.25" (0.25 s each side) = pyannote.metrics' collar=0.5 (total width)
PRIMARY = {"collar": 0.0, "skip_overlap": False}
VARIANTS = {"collar_0.25_no_overlap": {"collar": 0.5, "skip_overlap": True}}


def summarize(components: dict[str, float]) -> dict[str, Any]:
    """DER and its rates from accumulated pyannote.metrics components (seconds).

    Without reference speech (``total`` 0) the rates are ``None`` and ``undefined`` says why;
    the seconds (false alarm included) are kept either way."""
    total = float(components["total"])
    result: dict[str, Any] = {}
    if total > 0:
        result["DER"] = sum(components[k] for k in COMPONENTS) / total
        for key, name in COMPONENTS.items():
            result[name] = components[key] / total
    else:
        result.update({"DER": None, **{name: None for name in COMPONENTS.values()}})
        result["undefined"] = NO_SPEECH
    result["speech"] = total
    result["seconds"] = {
        key.replace(" ", "_"): float(components[key]) for key in (*COMPONENTS, "total")
    }
    return result


def score(reference: Annotation, hypothesis: Annotation, uem: Timeline | None = None) -> dict:
    """DER and components of one hypothesis (a thin wrapper over pyannote.metrics)."""
    metric = DiarizationErrorRate()
    metric(reference, hypothesis, uem=uem)
    return summarize(metric[:])


class ChunkScorer:
    """Accumulates pyannote.metrics DER over chunks, in total and per file."""

    def __init__(self) -> None:
        self.total = DiarizationErrorRate()
        self.files: dict[str, DiarizationErrorRate] = {}

    def add(self, rec: Recording, chunk: Segment, hypothesis: Annotation) -> None:
        uem = rec.annotated.crop(chunk, mode="intersection")
        if not uem:
            return
        reference = rec.annotation.crop(chunk, mode="intersection")
        self.total(reference, hypothesis, uem=uem)
        self.files.setdefault(rec.uri, DiarizationErrorRate())(reference, hypothesis, uem=uem)

    def report(self) -> dict:
        result = summarize(self.total[:])
        result["files"] = {uri: summarize(metric[:]) for uri, metric in self.files.items()}
        return result


class Scorer:
    """Full-file pyannote.metrics DER, in total and per file, in the primary and the variant
    settings."""

    def __init__(self, variants: dict[str, dict] | None = None) -> None:
        self.settings = {"primary": PRIMARY, **(VARIANTS if variants is None else variants)}
        self.totals = {name: DiarizationErrorRate(**s) for name, s in self.settings.items()}
        self.files: dict[str, dict[str, dict]] = {name: {} for name in self.settings}

    def add(self, uri: str, reference: Annotation, hypothesis: Annotation, uem: Timeline) -> None:
        for name, metric in self.totals.items():
            components = metric(reference, hypothesis, uem=uem, detailed=True)
            self.files[name][uri] = summarize(components)

    def report(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, metric in self.totals.items():
            report = summarize(metric[:])
            report["files"] = self.files[name]
            report.update(self.settings[name])
            if name == "primary":
                result.update(report)
            else:
                report["collar_each_side"] = self.settings[name]["collar"] / 2
                result[name] = report
        return result
