"""The gate: does a candidate's test DER (or JER) regress against the baseline's, beyond doubt?

Candidate and baseline runs are paired by recipe name and seed, and a pair is compared only when
it is the same experiment (:attr:`bench.results.RunIdentity.PAIRED`); otherwise the pair is
refused, naming the difference. A recipe regresses when its candidate DER (the mean over seeds
when several seeds ran on both sides) is higher than the baseline's by more than a tolerance
*and* a paired bootstrap over the same test files (and seeds) says the difference is
significant. A candidate that failed or diverged is a regression too. DER is the primary metric
(:func:`bench.results.primary_metric`); with ``measure="jer"`` the gate compares full-pipeline
JER instead, and refuses records without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Any

from bench import environment, stats
from bench.results import (
    METRIC_LABELS,
    Record,
    ResultError,
    RunIdentity,
    ScoreReport,
    has_scores,
    load_results,
    newest,
    primary_metric,
    read_record,
    write_record,
)

EXIT_CODES = {"pass": 0, "regression": 1, "refused": 2}
FAILING = ("regression", "failed")
# what the gate can compare, by name: DER (of the primary metric) or full-pipeline JER
MEASURES = {"der": "DER", "jer": "JER"}
JER_LABEL = "full-pipeline JER"


class GateError(ValueError):
    """Inputs the gate cannot read at all (exit code 2)."""


@dataclass(frozen=True)
class Verdict:
    """The gate's verdict on one recipe: its status, the numbers compared and why."""

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
    measure: str = "der"  # what baseline and candidate are: a key of MEASURES
    # what differs between the baseline's and the candidate's environments ("torch 2.11.0 ->
    # 2.12.0"): judged all the same, since a lock bump is what the gate is there to catch
    environment: tuple[str, ...] = ()


Pair = tuple[Record, Record]  # (baseline, candidate) of one recipe and seed


def load(path: Path, allow_empty: bool = False) -> list[Record]:
    """Every result record in a file or folder; an unreadable file refuses the whole gate,
    named (the store's policy: it is reported, and the gate cannot judge without it). An empty
    baseline folder is allowed: every recipe is then new."""
    found = load_results(path)
    if found.unreadable:
        raise GateError(f"not a bench result: {found.unreadable[0].reason}")
    if not found.records and not (allow_empty and path.is_dir()):
        raise GateError(f"{path}: no result files")
    return [stored.record for stored in found.records]


def by_name_and_seed(records: list[Record], ok_only: bool) -> dict[tuple, Record]:
    """The newest record (:func:`bench.results.newest`) for each (recipe name, seed)."""
    kept, _ = newest(
        (r for r in records if r.status == "ok" or not ok_only),
        key=lambda r: (r.name, r.seed),
        finished=lambda r: r.finished,
    )
    return {(r.name, r.seed): r for r in kept}


def _refusal(pairs: list[Pair]) -> str:
    """Why the pairs are not the same experiment ('' when they are)."""
    reasons = []
    for base, cand in pairs:
        a, b = base.run_identity, cand.run_identity
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


def has_jer(record: Record) -> bool:
    """The record carries full-pipeline JER and every test file its ``jaccard`` components."""
    test = record.test.pipeline
    return test is not None and test.jer_components() is not None


def _missing(pairs: list[Pair], has: Callable[[Record], bool], what: str) -> str:
    """The records of ``pairs`` without ``what``, named ('' when every one has it)."""
    missing = [
        f"{side} {record.name} (seed {record.seed})"
        for pair in pairs
        for side, record in zip(("baseline", "candidate"), pair, strict=True)
        if not has(record)
    ]
    return f"no {what} in {', '.join(missing)}" if missing else ""


def environment_changes(pairs: list[Pair]) -> tuple[str, ...]:
    """What changed from the baseline's environment to the candidate's, over every pair."""
    found: list[str] = []
    for base, cand in pairs:
        a, b = base.environment, cand.environment
        if a is None and b is None:
            continue
        if a is None or b is None:
            side = "baseline" if a is None else "candidate"
            found.append(f"the {side} records no environment (made before bench 0.3.0)")
            continue
        found.extend(environment.changes(a, b))
        nemo_a, nemo_b = (r.pipeline.get("environment") if r.kind == "nemo" and r.pipeline
                          else None for r in (base, cand))  # fmt: skip
        if nemo_a and nemo_b:  # NeMo's own venv trained both
            found.extend(f"NeMo: {change}" for change in environment.changes(nemo_a, nemo_b))
    return tuple(dict.fromkeys(found))


def failure(name: str, candidates: list[Record]) -> Verdict | None:
    """A "failed" verdict when any candidate run failed or diverged."""
    broken = [c for c in candidates if c.status != "ok"]
    if not broken:
        return None
    error = broken[0].error or {}
    message = str(error.get("message") or "").strip().splitlines()
    return Verdict(
        name,
        "failed",
        seeds=tuple(c.seed for c in candidates),
        reason=f"candidate {broken[0].status}: {error.get('type', '?')}: "
        + (message[0] if message else ""),
    )


def _files(report: ScoreReport, measure: str) -> dict[str, tuple[float, float]]:
    """Each test file's (errors, total) of ``measure``: the bootstrap's input."""
    return (report.jer_components() or {}) if measure == "jer" else report.components()


def judge(
    name: str,
    pairs: list[Pair],
    max_increase: float,
    confidence: float,
    measure: str = "der",
) -> Verdict:
    """The verdict on one recipe from its (baseline, candidate) pairs, one pair per seed."""
    seeds = tuple(cand.seed for _, cand in pairs)
    broken = failure(name, [cand for _, cand in pairs])
    if broken:
        return broken
    if measure == "jer":
        metric = "pipeline"
        why = "test.pipeline.JER and per-file jaccard; not in runs without the pipeline, or older"
        lacking = _missing(pairs, has_jer, f"{JER_LABEL} ({why})")
    else:
        metric = primary_metric(*(r for pair in pairs for r in pair))
        lacking = _missing(pairs, lambda r: has_scores(r, metric), METRIC_LABELS[metric])
    refusal = _refusal(pairs) or lacking
    changed = environment_changes(pairs)
    if refusal:
        return Verdict(
            name, "refused", seeds=seeds, reason=refusal, measure=measure, environment=changed
        )
    key = MEASURES[measure]
    a: list[ScoreReport] = [getattr(base.test, metric) for base, _ in pairs]
    b: list[ScoreReport] = [getattr(cand.test, metric) for _, cand in pairs]
    files_a = [_files(s, measure) for s in a]
    files_b = [_files(s, measure) for s in b]
    apart = [
        cand.seed
        for (_, cand), fa, fb in zip(pairs, files_a, files_b, strict=True)
        if not fa.keys() & fb
    ]
    if apart:
        reason = f"seed {apart[0]}: baseline and candidate share no test file (damaged records?)"
        return Verdict(
            name, "refused", seeds=seeds, reason=reason, measure=measure, environment=changed
        )
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
        mean(getattr(s, key) for s in a),
        mean(getattr(s, key) for s in b),
        comparison,
        measure=measure,
        environment=changed,
    )


def compare(
    baseline: Path,
    candidate: Path,
    max_increase: float = 0.005,
    confidence: float = 0.95,
    measure: str = "der",
) -> list[Verdict]:
    """A verdict for every recipe the candidate ran, on ``measure`` (a key of MEASURES)."""
    if measure not in MEASURES:
        raise GateError(f"metric {measure!r}: expected one of {', '.join(MEASURES)}")
    base = by_name_and_seed(load(baseline, allow_empty=True), ok_only=True)
    cand = by_name_and_seed(load(candidate), ok_only=False)
    verdicts = []
    for name in sorted({n for n, _ in cand}):
        seeds = sorted((s for n, s in cand if n == name), key=str)
        pairs = [(base[(name, s)], cand[(name, s)]) for s in seeds if (name, s) in base]
        if pairs:
            verdicts.append(judge(name, pairs, max_increase, confidence, measure))
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


def _label(verdict: Verdict) -> str:
    return JER_LABEL if verdict.measure == "jer" else METRIC_LABELS[verdict.metric]


def markdown(
    verdicts: list[Verdict],
    max_increase: float,
    confidence: float,
    error: str | None = None,
    measure: str = "der",
) -> str:
    """A report fit for a pull-request comment (refusals and unreadable inputs included), naming
    the metric compared."""
    if error is not None:
        return f"### bench gate: :no_entry: refused\n\n{error}\n"
    name = MEASURES[measure]
    result = outcome(verdicts)
    failing = [v for v in verdicts if v.status in FAILING]
    head = {
        "regression": f"### bench gate: :x: {len(failing)} regression(s)",
        "refused": "### bench gate: :no_entry: refused: results that are not comparable",
        "pass": f"### bench gate: :white_check_mark: no {name} regression",
    }[result]
    lines = [
        head,
        "",
        f"A regression is a test {name} increase of more than {_pct(max_increase)} (absolute) "
        f"whose {int(confidence * 100)}% paired-bootstrap interval over test files (and seeds) "
        "excludes 0, or a candidate run that failed or diverged.",
        "",
        f"| recipe | seeds | metric | baseline {name} | candidate {name} | difference | "
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
            f"| {v.recipe} | {seeds} | {_label(v)} | {_pct(v.baseline)} | "
            f"{_pct(v.candidate)} | {'+' if d.estimate > 0 else ''}{_pct(d.estimate)} | "
            f"{interval} | {d.n_files} | "
            f"{'**regression**' if v.status == 'regression' else v.status} |"
        )
    return "\n".join(lines + _environment_section(verdicts)) + "\n"


def _environment_section(verdicts: list[Verdict]) -> list[str]:
    """The packages that changed between baseline and candidate (a lock bump), if any."""
    changed = {v.recipe: v.environment for v in verdicts if v.environment}
    if not changed:
        return []
    lines = ["", "#### Environment changed", ""]
    if len(set(changed.values())) == 1 and len(changed) == len(verdicts):
        lines.append("Every recipe ran in another environment than its baseline:")
        lines.extend(f"- {change}" for change in next(iter(changed.values())))
    else:
        for recipe, changes in changed.items():
            lines.append(f"- {recipe}: {'; '.join(changes)}")
    return lines


def update_baseline(candidate: Path, baseline: Path) -> list[Path]:
    """Copy the candidate's successful results into the baseline folder (one file a recipe and
    seed, under the results' own file names)."""
    chosen = by_name_and_seed(load(candidate), ok_only=True)
    baseline.mkdir(parents=True, exist_ok=True)
    for stale in baseline.glob("*.json"):
        try:
            record = read_record(stale)
        except ResultError:
            continue
        if (record.name, record.seed) in chosen:
            stale.unlink()
    return [write_record(baseline, result) for result in chosen.values()]
