"""Score another system's diarization (RTTM files) on a split's test set, as bench scores its own
runs, and record it as a result of kind "external" that the leaderboard ranks beside recipes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pyannote.core import Annotation

from bench.data import DataError, Split, read_rttm_all, rttm_text
from bench.evaluation.scoring import Scorer
from bench.io import atomic_write_text
from bench.results import (
    Outputs,
    Record,
    external_record,
    hypothesis_path,
)


def read_hypotheses(path: Path) -> dict[str, tuple[Annotation, Path]]:
    """Each URI's hypothesis and the file it came from: one RTTM (any number of URIs) or a
    folder of ``*.rttm`` files. A URI found in two files is refused."""
    if path.is_dir():
        files = sorted(path.glob("*.rttm"))
        if not files:
            raise DataError(f"{path}: no .rttm files in this folder")
    elif path.is_file():
        files = [path]
    else:
        raise DataError(f"{path}: no such hypothesis file or folder")
    found: dict[str, tuple[Annotation, Path]] = {}
    for file in files:
        for uri, annotation in read_rttm_all(file).items():
            if uri in found:
                raise DataError(f"{file}: URI {uri!r} is also in {found[uri][1]}")
            found[uri] = (annotation, file)
    return found


def score_test(
    split: Split, found: dict[str, Annotation], missing_as_empty: bool, where: str
) -> tuple[dict[str, object], dict[str, str], list[str]]:
    """Score hypotheses by URI on ``split``'s test files (collars, metrics and variants as a
    run's pipeline scores): the report, each test file's RTTM text, and the URIs scored as empty
    (``missing_as_empty``; otherwise a missing one is an error naming ``where``)."""
    test = split.files("test")
    missing = [rec.uri for rec in test if rec.uri not in found]
    if missing and not missing_as_empty:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DataError(
            f"{where}: no hypothesis for {len(missing)} of {len(test)} test file(s): "
            f"{shown} (--missing-as-empty scores them as all missed)"
        )
    scorer = Scorer()
    texts: dict[str, str] = {}
    for rec in test:
        hypothesis = found.get(rec.uri, Annotation(uri=rec.uri))
        scorer.add(rec.uri, rec.annotation, hypothesis, rec.annotated)
        texts[rec.uri] = rttm_text(hypothesis)
    return scorer.report(), texts, missing


def score_system(
    split: Split,
    hypotheses: Path,
    name: str,
    about: str | None = None,
    missing_as_empty: bool = False,
) -> tuple[Record, dict[str, str]]:
    """The external record of ``hypotheses`` scored on ``split``'s test files (collars, metrics
    and variants as a run's pipeline scores), and the RTTM text of each test file to keep.

    A test file without a hypothesis is an error, or with ``missing_as_empty`` an empty
    hypothesis (all its speech missed), recorded under ``outputs.missing_as_empty``."""
    found = read_hypotheses(hypotheses)
    report, texts, missing = score_test(
        split,
        {uri: annotation for uri, (annotation, _) in found.items()},
        missing_as_empty,
        where=str(hypotheses),
    )
    content = {
        "files": {uri: hashlib.sha256(text.encode()).hexdigest() for uri, text in texts.items()},
        "missing_as_empty": missing,
    }
    outputs: Outputs = {
        "format": "rttm",
        "source": str(hypotheses.resolve()),
        "test": {},
        "missing_as_empty": missing,
        "ignored_uris": sorted(set(found) - {rec.uri for rec in split.files("test")}),
    }
    record = external_record(
        name, split.describe(), {"pipeline": report}, outputs, content, about=about
    )
    outputs["test"] = {
        uri: {"path": hypothesis_path(record.stem, "test", uri).as_posix(), "sha256": digest}
        for uri, digest in content["files"].items()
    }
    record.outputs = outputs
    return record, texts


def write_outputs(results: Path, record: Record, texts: dict[str, str]) -> None:
    """Keep the scored hypotheses beside the result, where its ``outputs`` say they are."""
    for uri, entry in (record.outputs or {}).get("test", {}).items():
        atomic_write_text(results / entry["path"], texts[uri])
