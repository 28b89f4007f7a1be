"""The primary metric, ranking and statistics: runs grouped by split into a board."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import environment, results, stats
from bench.environment import Environment
from bench.leaderboard.metrics import Details, details
from bench.leaderboard.select import ResultFile, assign_slugs, newest
from bench.results import METRIC_LABELS, DatasetInfo, ScoreReport, instant

# (split fingerprint, smoke, environment digest): the runs of one table
SplitKey = tuple[str | None, bool, str | None]
# identity fields that tell apart runs of one recipe name in a table (beyond seed and epochs)
_DISTINGUISH = ("max_batches", "world_size", "global_batch", "precision", "recipe_hash")


def primary_metric(runs: Sequence[ResultFile]) -> str:
    """The test metric a group of runs is ranked by (:func:`bench.results.primary_metric`)."""
    return results.primary_metric(*(run.record for run in runs))


@dataclass
class Ranked:
    """A ranked run with its test statistics."""

    run: ResultFile
    rank: int
    test: ScoreReport
    interval: stats.Interval
    versus: stats.Comparison | None  # paired against the leader (None for the leader)
    label: str = ""
    details: Details = field(default_factory=Details)  # JER, speaker counting, DER by overlap
    also: dict[str, ExtraScore] = field(default_factory=dict)  # by extra split's fingerprint
    # a run that ended worse than where it started: no better on dev than its initial weights,
    # or worse on test than the split's baseline row beyond the noise (it stays ranked)
    marks: list[str] = field(default_factory=list)
    # tuning that helped dev and hurt test beyond the noise (bench.results.carryover)
    overfit: str | None = None

    @property
    def standing(self) -> str:
        if self.versus is None:
            return "leader"
        return "tied" if self.versus.tied else "worse"


@dataclass(frozen=True)
class ExtraSplit:
    """A split the runs of a group were also tested on (``also_test``): the forgetting check."""

    fingerprint: str
    name: str
    metric: str  # its primary metric among the runs that have it

    @property
    def label(self) -> str:
        return METRIC_LABELS.get(self.metric, f"{self.metric} DER")


@dataclass(frozen=True)
class ExtraScore:
    """A run's DER on an extra split, and its change against the group's baseline row there
    (paired bootstrap; None for the baseline itself or when the baseline has no score)."""

    value: float
    change: stats.Comparison | None


@dataclass(frozen=True)
class AcrossSeeds:
    """One recipe run with several seeds on a split: the spread of its test DER."""

    name: str
    epochs: Any
    seeds: list[Any]
    mean: float
    sd: float
    low: float
    high: float


def across_seeds(ranked: Sequence[Ranked]) -> list[AcrossSeeds]:
    """Mean and standard deviation of test DER for every run family (the same identity but for
    the seed) with more than one seed."""
    runs: dict[str, list[Ranked]] = {}
    for r in ranked:
        family = r.run.identity.family if r.run.identity else r.run.key
        runs.setdefault(family, []).append(r)
    summaries = []
    for group in runs.values():
        name, epochs = group[0].run.name, group[0].run.recipe.get("epochs")
        values = [float(r.test.DER) for r in group if r.test.defined]
        if len({r.run.seed for r in group}) < 2 or len(values) < 2:
            continue
        summaries.append(
            AcrossSeeds(
                name,
                epochs,
                sorted(r.run.seed for r in group),
                statistics.mean(values),
                statistics.stdev(values),
                min(values),
                max(values),
            )
        )
    return sorted(summaries, key=lambda s: (s.mean, s.name))


@dataclass
class Group:
    """The ranked runs on one split."""

    fingerprint: str | None
    dataset: DatasetInfo
    metric: str
    ranked: list[Ranked] = field(default_factory=list)
    unscored: list[ResultFile] = field(default_factory=list)  # ok runs without the primary metric
    smoke: bool = False  # --max-batches runs: ranked only among themselves, marked as such
    extra: list[ExtraSplit] = field(default_factory=list)  # also-tested splits, by name
    baseline: Ranked | None = None  # the first ranked run that did not train (epochs 0)
    # the environment digest its runs share (None: not recorded, results before bench 0.3.0);
    # a split with runs from several environments gets one group each, the newest first
    environment: str | None = None
    environment_info: Environment | None = None  # the newest run's record of it
    # for a group that is not the split's newest environment: what changed from its
    # environment to the newest one
    environment_changes: list[str] | None = None

    @property
    def seeds(self) -> list[AcrossSeeds]:
        return across_seeds(self.ranked)

    @property
    def metric_label(self) -> str:
        return METRIC_LABELS.get(self.metric, f"{self.metric} DER")

    @property
    def other_environment(self) -> bool:
        return self.environment_changes is not None

    @property
    def anchor(self) -> str:
        env = f"-env-{self.environment or 'unknown'}" if self.other_environment else ""
        return f"split-{self.fingerprint or 'unknown'}" + ("-smoke" if self.smoke else "") + env


def _interval(test: ScoreReport) -> stats.Interval:
    files = test.components()
    if not files:
        return stats.Interval(float(test.DER), math.nan, math.nan, 0)
    found = stats.interval_of_files(files)
    # the recorded DER is the reference point; the bootstrap only supplies the interval
    return stats.Interval(float(test.DER), found.low, found.high, found.n_files)


def _versus(leader: ScoreReport, other: ScoreReport) -> stats.Comparison:
    a, b = leader.components(), other.components()
    if not set(a) & set(b):
        nan = math.nan
        return stats.Comparison(stats.Interval(other.DER - leader.DER, nan, nan, 0))
    return stats.compare_files(a, b)


def rank_group(runs: Sequence[ResultFile]) -> Group:
    """Rank the ``ok`` runs of one split by the primary metric, lowest DER first."""
    metric = primary_metric(runs)
    scored = [(run, run.record.scores(metric)) for run in runs]
    unscored = [run for run, test in scored if test is None]
    valid = [(run, test) for run, test in scored if test is not None]
    valid.sort(key=lambda item: (item[1].DER, item[0].name, item[0].slug))
    first = runs[0].dataset if runs else {}
    group = Group(runs[0].fingerprint if runs else None, first, metric, unscored=unscored)
    group.smoke = bool(runs) and runs[0].smoke
    for i, (run, test) in enumerate(valid):
        versus = None if i == 0 else _versus(valid[0][1], test)
        ranked = Ranked(run, i + 1, test, _interval(test), versus)
        ranked.details = details(run.record.test.pipeline)
        group.ranked.append(ranked)
    _label(group.ranked)
    _also_tested(group)
    _mark_worse_than_start(group)
    return group


def _mark_worse_than_start(group: Group) -> None:
    """Mark the trained runs that ended no better than their start on dev, or worse on test
    than the baseline row (epochs 0: the initial weights as they are) beyond the noise."""
    base = group.baseline
    for r in group.ranked:
        if not r.run.trained:
            continue
        record = r.run.record
        carried = results.carryover(record.test, (record.pipeline or {}).get("tuning"))
        r.overfit = carried.text if carried is not None and carried.overfit else None
        r.marks = results.progress_notes(record)
        if base is None or r is base:
            continue
        change = _versus(base.test, r.test)
        if change.worse:
            d = change.difference
            r.marks.append(
                f"test DER worse than the baseline row {base.label} beyond the noise "
                f"(+{100 * d.estimate:.1f} points, "
                f"95% CI [{100 * d.low:+.1f}, {100 * d.high:+.1f}])"
            )


def _also_scores(run: ResultFile, split: ExtraSplit) -> ScoreReport | None:
    entry = run.record.also_test.get(split.fingerprint)
    return entry.pipeline if entry is not None and entry.pipeline.defined else None


def _also_tested(group: Group) -> None:
    """The extra splits of a group's runs, each run's DER there and its change against the
    baseline row (the first ranked run whose identity has ``epochs == 0``)."""
    names: dict[str, str] = {}
    for r in group.ranked:
        for fingerprint, entry in r.run.record.also_test.items():
            if fingerprint != group.fingerprint:
                names.setdefault(fingerprint, str(entry.dataset.get("name") or fingerprint))
    for fingerprint in sorted(names, key=lambda f: (names[f], f)):
        # an also-tested split is scored by the tuned pipeline only
        group.extra.append(ExtraSplit(fingerprint, names[fingerprint], "pipeline"))
    group.baseline = next(
        (r for r in group.ranked if r.run.identity and r.run.identity.epochs == 0), None
    )
    for split in group.extra:
        base = _also_scores(group.baseline.run, split) if group.baseline else None
        for r in group.ranked:
            scores = _also_scores(r.run, split)
            if scores is None:
                continue
            change = None
            if base is not None and r is not group.baseline:
                change = _versus(base, scores)
            r.also[split.fingerprint] = ExtraScore(float(scores.DER), change)


def _label(ranked: Sequence[Ranked]) -> None:
    """Recipe names, with seed, epochs and whatever else tells them apart added where a name
    appears more than once."""
    for r in ranked:
        same = [o.run for o in ranked if o.run.name == r.run.name]
        r.label = r.run.name
        if len(same) == 1:
            continue
        parts = [f"s{r.run.seed}", f"e{r.run.recipe.get('epochs')}"]
        mine = r.run.identity.as_dict() if r.run.identity else {}
        for key in _DISTINGUISH:
            if len({(o.identity.as_dict() if o.identity else {}).get(key) for o in same}) > 1:
                parts.append(f"{key.replace('_', ' ')} {mine.get(key)}")
        r.label = f"{r.run.name} ({', '.join(parts)})"


@dataclass
class Board:
    """Everything the pages show."""

    groups: list[Group]
    failed: list[ResultFile]
    skipped: list[tuple[str, str]]
    superseded: int
    total: int

    @property
    def newest(self) -> str:
        runs = [r.run for g in self.groups for r in g.ranked] + self.failed
        return max((run.finished for run in runs), default="")


def build_board(runs: Sequence[ResultFile], skipped: Sequence[tuple[str, str]] = ()) -> Board:
    """Select, group and rank ``runs``: the newest good result of each run identity is ranked
    with the others on its split (smoke runs in a group of their own); failed and diverged runs
    are listed, never ranked, and never hide a good result of the same identity."""
    ok, superseded = newest(run for run in runs if run.status == "ok")
    failed, superseded_failures = newest(run for run in runs if run.status != "ok")
    kept = sorted([*ok, *failed], key=lambda run: (run.name, run.source.name))
    assign_slugs(kept)
    failed.sort(key=lambda r: instant(r.finished), reverse=True)
    groups = _environment_groups(_by_split(ok))
    superseded += superseded_failures
    return Board(groups, failed, list(skipped), superseded, len(runs))


def _run_environment(run: ResultFile) -> str | None:
    return run.identity.environment if run.identity else None


def _by_split(ok: Sequence[ResultFile]) -> dict[SplitKey, list[ResultFile]]:
    """Runs by (split, smoke, environment). An external system's scores do not depend on the
    training environment: it joins every environment's table on its split."""
    by_split: dict[SplitKey, list[ResultFile]] = {}
    ordered = sorted(ok, key=lambda run: (run.name, run.source.name))
    for run in (r for r in ordered if not r.external):
        by_split.setdefault((run.fingerprint, run.smoke, _run_environment(run)), []).append(run)
    for run in (r for r in ordered if r.external):
        keys = [k for k in by_split if k[:2] == (run.fingerprint, run.smoke)]
        for key in keys or [(run.fingerprint, run.smoke, None)]:
            by_split.setdefault(key, []).append(run)
    return by_split


def _environment_groups(by_split: dict[SplitKey, list[ResultFile]]):
    """Rank each (split, environment) apart: runs from different environments are never one
    comparison. On each split the group holding the newest run comes first; the others say how
    their environment differs from it."""
    groups = []
    for (_, _, env), runs in by_split.items():
        group = rank_group(runs)
        group.environment = env
        recorded = [r.record.environment for r in runs if r.record.environment]
        group.environment_info = recorded[-1] if recorded else None
        groups.append(group)
    lead: dict[tuple[str | None, bool], Group] = {}
    for group in groups:
        key = (group.fingerprint, group.smoke)
        if key not in lead or _newest_instant(group) > _newest_instant(lead[key]):
            lead[key] = group
    for group in groups:
        newest = lead[(group.fingerprint, group.smoke)]
        if group is not newest:
            # from this group's environment to the newest one's, e.g. "torch 2.11.0 -> 2.12.0"
            group.environment_changes = environment.changes(
                group.environment_info, newest.environment_info
            ) or [f"environment {group.environment or 'not recorded'} -> {newest.environment}"]
    order = {id(g): i for i, g in enumerate(sorted(lead.values(), key=_split_order))}
    groups.sort(
        key=lambda g: (
            order[id(lead[(g.fingerprint, g.smoke)])],
            g.other_environment,
            -_newest_instant(g),
        )
    )
    return groups


def _split_order(g: Group) -> tuple:
    return (g.smoke, -len(g.ranked), -_newest_instant(g), g.fingerprint or "")


def _newest_instant(group: Group) -> float:
    return max((instant(r.run.finished) for r in group.ranked), default=-math.inf)
