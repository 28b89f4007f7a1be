"""The gate: does a candidate's test DER regress against the baseline's, beyond doubt?

Candidate and baseline runs are paired by recipe name and seed, and a pair is compared only when
it is the same experiment (:attr:`bench.results.RunIdentity.PAIRED`); otherwise the pair is
refused, naming the difference. A recipe regresses when its candidate DER (the mean over seeds
when several seeds ran on both sides) is higher than the baseline's by more than a tolerance
*and* a paired bootstrap over the same test files (and seeds) says the difference is
significant. A candidate that failed or diverged is a regression too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Any

from bench import stats
from bench.results import (
    METRIC_LABELS,
    ResultError,
    RunIdentity,
    identity_of,
    parse_record,
    primary_metric,
    read_result,
    write_record,
)

EXIT_CODES = {"pass": 0, "regression": 1, "refused": 2}
FAILING = ("regression", "failed")


class GateError(ValueError):
    """Inputs the gate cannot read at all (exit code 2)."""


@dataclass(frozen=True)
class Verdict:
    recipe: str
    # "regression" | "failed" | "improvement" | "unchanged" | "within tolerance"
    # | "not significant" | "refused" | "new"
    status: str
    metric: str | None = None  # "pipeline" (full-file DER) or "chunk" (chunk-level DER)
    seeds: tuple[Any, ...] = ()
    baseline: float | None = None
    candidate: float | None = None
    comparison: stats.Comparison | None = None
    reason: str = ""


def load(path: Path, allow_empty: bool = False) -> list[dict[str, Any]]:
    """Every result record in a file or folder (unreadable files are refused, named). An empty
    baseline folder is allowed: every recipe is then new."""
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not all(f.is_file() for f in files) or not (files or (allow_empty and path.is_dir())):
        raise GateError(f"{path}: no result files")
    try:
        return [read_result(file) for file in files]
    except ResultError as error:
        raise GateError(f"not a bench result: {error}") from None


def by_name_and_seed(records: list[dict[str, Any]], ok_only: bool) -> dict[tuple, dict]:
    """The newest record for each (recipe name, seed)."""
    found: dict[tuple, dict[str, Any]] = {}
    for record in records:
        if ok_only and record["status"] != "ok":
            continue
        key = (record["name"], record.get("seed"))
        if key not in found or (record.get("finished") or "") > (found[key].get("finished") or ""):
            found[key] = record
    return found


def _refusal(pairs: list[tuple[dict, dict]]) -> str:
    """Why the pairs are not the same experiment ('' when they are)."""
    reasons = []
    for base, cand in pairs:
        a, b = identity_of(base), identity_of(cand)
        if a is None or b is None:
            reasons.append("a result carries no run identity")
            continue
        if a.fingerprint != b.fingerprint:
            reasons.append(
                f"dataset fingerprints differ (baseline {a.fingerprint}, candidate "
                f"{b.fingerprint}): these numbers are not comparable"
            )
        diff = [d for d in a.differences(b, RunIdentity.PAIRED) if not d.startswith("fingerprint")]
        if diff:
            reasons.append(f"seed {a.seed}: baseline and candidate differ in " + "; ".join(diff))
    return "; ".join(dict.fromkeys(reasons))


def failure(name: str, candidates: list[dict[str, Any]]) -> Verdict | None:
    """A "failed" verdict when any candidate run failed or diverged."""
    broken = [c for c in candidates if c["status"] != "ok"]
    if not broken:
        return None
    error = broken[0].get("error") or {}
    message = (error.get("message") or "").strip().splitlines()
    return Verdict(
        name,
        "failed",
        seeds=tuple(c.get("seed") for c in candidates),
        reason=f"candidate {broken[0]['status']}: {error.get('type', '?')}: "
        + (message[0] if message else ""),
    )


def judge(
    name: str,
    pairs: list[tuple[dict[str, Any], dict[str, Any]]],
    max_increase: float,
    confidence: float,
) -> Verdict:
    """The verdict on one recipe from its (baseline, candidate) pairs, one pair per seed."""
    seeds = tuple(cand.get("seed") for _, cand in pairs)
    broken = failure(name, [cand for _, cand in pairs])
    if broken:
        return broken
    refusal = _refusal(pairs)
    if refusal:
        return Verdict(name, "refused", seeds=seeds, reason=refusal)
    metric = primary_metric(*(r for pair in pairs for r in pair))
    a = [base["test"][metric] for base, _ in pairs]
    b = [cand["test"][metric] for _, cand in pairs]
    files_a = [stats.file_components(s["files"]) for s in a]
    files_b = [stats.file_components(s["files"]) for s in b]
    if len(pairs) == 1:
        comparison = stats.compare_files(files_a[0], files_b[0], confidence=confidence)
    else:
        comparison = stats.compare_seeded(files_a, files_b, confidence=confidence)
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
    return Verdict(
        name,
        status,
        metric,
        seeds,
        mean(s["DER"] for s in a),
        mean(s["DER"] for s in b),
        comparison,
    )


def compare(
    baseline: Path, candidate: Path, max_increase: float = 0.005, confidence: float = 0.95
) -> list[Verdict]:
    """A verdict for every recipe the candidate ran."""
    base = by_name_and_seed(load(baseline, allow_empty=True), ok_only=True)
    cand = by_name_and_seed(load(candidate), ok_only=False)
    verdicts = []
    for name in sorted({n for n, _ in cand}):
        seeds = sorted((s for n, s in cand if n == name), key=str)
        pairs = [(base[(name, s)], cand[(name, s)]) for s in seeds if (name, s) in base]
        if pairs:
            verdicts.append(judge(name, pairs, max_increase, confidence))
        elif any(n == name for n, _ in base):
            base_seeds = sorted((s for n, s in base if n == name), key=str)
            verdicts.append(
                Verdict(
                    name,
                    "refused",
                    seeds=tuple(seeds),
                    reason=f"no common seed (baseline {base_seeds}, candidate {seeds})",
                )
            )
        else:
            verdicts.append(
                failure(name, [cand[(name, s)] for s in seeds])
                or Verdict(name, "new", seeds=tuple(seeds), reason="new recipe, no baseline yet")
            )
    return verdicts


def outcome(verdicts: list[Verdict]) -> str:
    """``regression`` when any recipe regressed or failed, else ``refused`` when any pair was
    refused, else ``pass``."""
    if any(v.status in FAILING for v in verdicts):
        return "regression"
    if any(v.status == "refused" for v in verdicts):
        return "refused"
    return "pass"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}%"


def markdown(
    verdicts: list[Verdict], max_increase: float, confidence: float, error: str | None = None
) -> str:
    """A report fit for a pull-request comment (refusals and unreadable inputs included)."""
    if error is not None:
        return f"### bench gate: :no_entry: refused\n\n{error}\n"
    result = outcome(verdicts)
    failing = [v for v in verdicts if v.status in FAILING]
    head = {
        "regression": f"### bench gate: :x: {len(failing)} regression(s)",
        "refused": "### bench gate: :no_entry: refused: results that are not comparable",
        "pass": "### bench gate: :white_check_mark: no DER regression",
    }[result]
    lines = [
        head,
        "",
        f"A regression is a test DER increase of more than {_pct(max_increase)} (absolute) "
        f"whose {int(confidence * 100)}% paired-bootstrap interval over test files (and seeds) "
        "excludes 0, or a candidate run that failed or diverged.",
        "",
        "| recipe | seeds | metric | baseline DER | candidate DER | difference | "
        f"{int(confidence * 100)}% interval | files | verdict |",
        "|---|---|---|---:|---:|---:|---|---:|---|",
    ]
    for v in verdicts:
        seeds = ", ".join(str(s) for s in v.seeds)
        if v.comparison is None:
            verdict = f"**{v.status}**" if v.status in (*FAILING, "refused") else v.status
            lines.append(f"| {v.recipe} | {seeds} | | | | | | | {verdict}: {v.reason} |")
            continue
        d = v.comparison.difference
        interval = f"[{_pct(d.low)}, {_pct(d.high)}]" if d.defined else "n/a (< 2 files)"
        lines.append(
            f"| {v.recipe} | {seeds} | {METRIC_LABELS[v.metric]} | {_pct(v.baseline)} | "
            f"{_pct(v.candidate)} | {'+' if d.estimate > 0 else ''}{_pct(d.estimate)} | "
            f"{interval} | {d.n_files} | "
            f"{'**regression**' if v.status == 'regression' else v.status} |"
        )
    return "\n".join(lines) + "\n"


def update_baseline(candidate: Path, baseline: Path) -> list[Path]:
    """Copy the candidate's successful results into the baseline folder (one file a recipe and
    seed, under the results' own file names)."""
    baseline.mkdir(parents=True, exist_ok=True)
    chosen = by_name_and_seed(load(candidate), ok_only=True)
    for stale in baseline.glob("*.json"):
        try:
            record = read_result(stale)
        except ResultError:
            continue
        if (record["name"], record.get("seed")) in chosen:
            stale.unlink()
    return [write_record(baseline, parse_record(result)) for result in chosen.values()]
