"""Scoring with pyannote.metrics: chunk-level DER and full-file DER, JER and speaker counts.

Every DER bench reports comes from here. :func:`summarize` turns pyannote.metrics' accumulated
components (seconds) into DER, Confusion, FalseAlarm and Miss rates plus the seconds themselves.
DER is undefined without reference speech: a file (or a whole set) whose reference holds no
speech inside its UEM gets ``None`` rates, and its false-alarm seconds stay under ``seconds``.
JER is likewise undefined (``None``) without reference speakers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import (
    JER_SPEAKER_COUNT,
    JER_SPEAKER_ERROR,
    DiarizationErrorRate,
    JaccardErrorRate,
)
from pyannote.metrics.identification import IdentificationErrorRate

if TYPE_CHECKING:
    from bench.data import Recording

COMPONENTS = {"confusion": "Confusion", "false alarm": "FalseAlarm", "missed detection": "Miss"}
NO_SPEECH = "no reference speech: DER is undefined (false-alarm seconds under 'seconds')"

# full-file scoring: collar 0, overlap scored (primary), and the older convention some papers
# report: md-eval's "-c 0.25" (0.25 s each side) = pyannote.metrics' collar=0.5 (total width)
PRIMARY = {"collar": 0.0, "skip_overlap": False}
VARIANTS = {"collar_0.25_no_overlap": {"collar": 0.5, "skip_overlap": True}}
MAPPING = (
    "md-eval's: one optimal speaker mapping per file, chosen on the whole reference inside the "
    "UEM (no collar, overlap kept), then scored without collars and overlap, not re-mapped"
)
# the UEM split by the number of reference speakers: none, one, two or more
REGIONS = ("non_speech", "single", "overlapped")


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


def mapped(
    reference: Annotation, hypothesis: Annotation, uem: Timeline
) -> tuple[Annotation, Annotation]:
    """The reference and the hypothesis relabelled with md-eval's speaker mapping: the optimal
    one on the whole reference inside the UEM (no collar, overlap kept), whatever collar and
    overlap rule are scored next. pyannote.metrics' DER would map again after removing them,
    which reads lower than md-eval (and spy-der) on confusable output. The reference gets string
    labels and the hypothesis integer ones, so an unmapped speaker never matches by name."""
    reference = reference.rename_labels(generator="string")
    hypothesis = hypothesis.rename_labels(generator="int")
    mapping = DiarizationErrorRate().optimal_mapping(reference, hypothesis, uem=uem)
    return reference, hypothesis.rename_labels(mapping=mapping)


def breakdown(
    reference: Annotation, hypothesis: Annotation, uem: Timeline
) -> dict[str, dict[str, float]]:
    """pyannote.metrics' identification components of a mapped hypothesis (collar 0, overlap
    scored), split by the number of distinct reference speakers in each stretch: the UEM's
    :data:`REGIONS`. One pass over the common timeline, the same loop as pyannote.metrics'."""
    metric = IdentificationErrorRate()
    reference, hypothesis, timeline = metric.uemify(
        reference, hypothesis, uem=uem, returns_timeline=True
    )
    parts = {name: metric.init_components() for name in REGIONS}
    for segment in timeline:
        labels = reference.get_labels(segment, unique=False)
        counts, _ = metric.matcher_(labels, hypothesis.get_labels(segment, unique=False))
        part = parts[REGIONS[min(len(set(labels)), 2)]]
        for key, value in counts.items():
            part[key] += segment.duration * value
    return parts


def _jaccard(components: Mapping[str, float]) -> dict[str, Any]:
    """The record's ``jaccard`` from pyannote.metrics' JER components."""
    return {
        "speaker_error": float(components[JER_SPEAKER_ERROR]),
        "speaker_count": int(components[JER_SPEAKER_COUNT]),
    }


def jer(jaccard: Mapping[str, float]) -> float | None:
    """JER from its components: the mean speaker error over reference speakers (``None``
    without any; pyannote.metrics would say 1.0)."""
    count = jaccard["speaker_count"]
    return jaccard["speaker_error"] / count if count else None


def speaker_count(files: Iterable[Mapping[str, int]]) -> dict[str, Any]:
    """Speaker counting over files (SDBench's SCA and SCMAE): the share of files whose
    hypothesis has exactly the reference's number of speakers, and the mean absolute error."""
    errors = [abs(f["hypothesis"] - f["reference"]) for f in files]
    if not errors:
        return {"accuracy": None, "mae": None, "files": 0}
    return {
        "accuracy": sum(e == 0 for e in errors) / len(errors),
        "mae": sum(errors) / len(errors),
        "files": len(errors),
    }


class Scorer:
    """Full-file scores, in total and per file: DER in the primary and the variant settings,
    JER, speaker counts and the primary DER split by the number of reference speakers.

    Every DER uses one speaker mapping per file, md-eval's (:func:`mapped`); JER keeps
    pyannote.metrics' own. ``Scorer({})`` scores the primary setting only; JER, speaker counts
    and the overlap breakdown are always there."""

    def __init__(self, variants: dict[str, dict] | None = None) -> None:
        self.settings = {"primary": PRIMARY, **(VARIANTS if variants is None else variants)}
        self.totals = {name: IdentificationErrorRate(**s) for name, s in self.settings.items()}
        self.parts = {name: dict.fromkeys((*COMPONENTS, "total"), 0.0) for name in REGIONS}
        self.jer = JaccardErrorRate()
        self.files: dict[str, dict[str, Any]] = {}

    def add(self, uri: str, reference: Annotation, hypothesis: Annotation, uem: Timeline) -> None:
        reference, hypothesis = mapped(reference, hypothesis, uem)
        settings = {
            name: summarize(metric(reference, hypothesis, uem=uem, detailed=True))
            for name, metric in self.totals.items()
        }
        overlap = {}
        for name, components in breakdown(reference, hypothesis, uem).items():
            for key, value in self.parts[name].items():
                self.parts[name][key] = value + components[key]
            overlap[name] = summarize(components)
        jaccard = _jaccard(self.jer(reference, hypothesis, uem=uem, detailed=True))
        reference, hypothesis = (a.crop(uem, mode="intersection") for a in (reference, hypothesis))
        self.files[uri] = {
            "settings": settings,
            "overlap": overlap,
            "JER": jer(jaccard),
            "jaccard": jaccard,
            "speakers": {
                "reference": len(reference.labels()),
                "hypothesis": len(hypothesis.labels()),
            },
        }

    def _per_file(self, group: str, name: str) -> dict[str, dict]:
        return {uri: scores[group][name] for uri, scores in self.files.items()}

    def report(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, metric in self.totals.items():
            report = {**summarize(metric[:]), "files": self._per_file("settings", name)}
            report.update(self.settings[name])
            if name == "primary":
                result.update(report)
            else:
                report["collar_each_side"] = self.settings[name]["collar"] / 2
                report["mapping"] = MAPPING
                result[name] = report
        jaccard = _jaccard(self.jer[:])
        result["JER"] = jer(jaccard)
        result["jaccard"] = jaccard
        result["speaker_count"] = speaker_count(f["speakers"] for f in self.files.values())
        result["overlap"] = {
            name: {**summarize(components), "files": self._per_file("overlap", name)}
            for name, components in self.parts.items()
        }
        result["files"] = {
            uri: {
                **scores["settings"]["primary"],
                **{key: scores[key] for key in ("JER", "jaccard", "speakers")},
            }
            for uri, scores in self.files.items()
        }
        return result
