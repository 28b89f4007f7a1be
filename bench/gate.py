"""The gate: does a candidate's test DER regress against the baseline's, beyond doubt?

A recipe regresses when its candidate DER is higher than the baseline's by more than a tolerance
*and* a paired bootstrap over the same test files says the difference is significant. Results
on different dataset fingerprints are never compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import stats
from bench.results import read_result, write_json


class GateError(ValueError):
    """Inputs the gate refuses to compare (exit code 2)."""


@dataclass(frozen=True)
class Verdict:
    recipe: str
    metric: str  # "pipeline" (full-file DER) or "chunk" (chunk-level DER)
    baseline: float
    candidate: float
    comparison: stats.Comparison
    status: (
        str  # "regression" | "improvement" | "unchanged" | "within tolerance" | "not significant"
    )


def load(path: Path) -> dict[str, dict[str, Any]]:
    """Successful results by recipe name (the newest when a recipe ran several times)."""
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise GateError(f"{path}: no result files")
    found: dict[str, dict[str, Any]] = {}
    for file in files:
        try:
            result = read_result(file)
        except (OSError, ValueError) as error:
            raise GateError(f"{file}: not a bench result: {error}") from None
        if result.get("status") != "ok":
            continue
        name = result["recipe"]["name"]
        if name not in found or result["finished"] > found[name]["finished"]:
            found[name] = result
    return found


def metric_of(baseline: dict[str, Any], candidate: dict[str, Any]) -> str:
    """Full-pipeline DER when both runs have it, else chunk-level DER."""
    if all((r["test"].get("pipeline") or {}).get("files") for r in (baseline, candidate)):
        return "pipeline"
    return "chunk"


def judge(
    name: str,
    baseline: dict[str, Any],
    candidate: dict[str, Any],
    max_increase: float,
    confidence: float,
) -> Verdict:
    a_print, b_print = baseline["dataset"]["fingerprint"], candidate["dataset"]["fingerprint"]
    if a_print != b_print:
        raise GateError(
            f"{name}: dataset fingerprints differ (baseline {a_print}, candidate {b_print}): "
            "these numbers are not comparable"
        )
    metric = metric_of(baseline, candidate)
    a, b = baseline["test"][metric], candidate["test"][metric]
    comparison = stats.compare_files(
        stats.file_components(a["files"]), stats.file_components(b["files"]), confidence=confidence
    )
    difference = comparison.difference.estimate
    if difference > max_increase and comparison.worse:
        status = "regression"
    elif comparison.better:
        status = "improvement"
    elif difference == 0.0:
        status = "unchanged"
    elif difference <= max_increase:
        status = "within tolerance"
    else:
        status = "not significant"
    return Verdict(name, metric, a["DER"], b["DER"], comparison, status)


def compare(
    baseline: Path, candidate: Path, max_increase: float = 0.005, confidence: float = 0.95
) -> list[Verdict]:
    """A verdict for every recipe present on both sides."""
    base, cand = load(baseline), load(candidate)
    shared = sorted(set(base) & set(cand))
    if not shared:
        raise GateError(f"no recipe has results in both {baseline} and {candidate}")
    return [judge(n, base[n], cand[n], max_increase, confidence) for n in shared]


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def markdown(verdicts: list[Verdict], max_increase: float, confidence: float) -> str:
    """A report fit for a pull-request comment."""
    regressions = [v for v in verdicts if v.status == "regression"]
    head = (
        f"### bench gate: :x: {len(regressions)} regression(s)"
        if regressions
        else "### bench gate: :white_check_mark: no DER regression"
    )
    lines = [
        head,
        "",
        f"A regression is a test DER increase of more than {_pct(max_increase)} (absolute) "
        f"whose {int(confidence * 100)}% paired-bootstrap interval over test files excludes 0.",
        "",
        "| recipe | metric | baseline DER | candidate DER | difference | "
        f"{int(confidence * 100)}% interval | files | verdict |",
        "|---|---|---:|---:|---:|---|---:|---|",
    ]
    for v in verdicts:
        d = v.comparison.difference
        interval = f"[{_pct(d.low)}, {_pct(d.high)}]" if d.defined else "n/a (< 2 files)"
        lines.append(
            f"| {v.recipe} | {v.metric} | {_pct(v.baseline)} | {_pct(v.candidate)} | "
            f"{'+' if d.estimate > 0 else ''}{_pct(d.estimate)} | {interval} | {d.n_files} | "
            f"{'**regression**' if v.status == 'regression' else v.status} |"
        )
    return "\n".join(lines) + "\n"


def update_baseline(candidate: Path, baseline: Path) -> list[Path]:
    """Copy the candidate's successful results into the baseline folder (one file a recipe)."""
    baseline.mkdir(parents=True, exist_ok=True)
    written = []
    for name, result in load(candidate).items():
        for stale in baseline.glob("*.json"):
            try:
                if read_result(stale)["recipe"]["name"] == name:
                    stale.unlink()
            except (OSError, ValueError, KeyError, TypeError):
                continue
        stem = f"{name}-{result['recipe_hash']}-{result['dataset']['fingerprint']}"
        written.append(write_json(baseline / f"{stem}.json", result))
    return written
