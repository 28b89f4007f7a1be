"""The gate: a candidate's results against a baseline's, paired by run family (torch-free)."""

from __future__ import annotations

from bench.gate.compare import (
    EXIT_CODES,
    FAILING,
    JER_LABEL,
    MEASURES,
    GateError,
    Pair,
    Verdict,
    by_name_and_seed,
    compare,
    environment_changes,
    failure,
    has_jer,
    judge,
    load,
    markdown,
    outcome,
    update_baseline,
)

__all__ = [
    "EXIT_CODES",
    "FAILING",
    "JER_LABEL",
    "MEASURES",
    "GateError",
    "Pair",
    "Verdict",
    "by_name_and_seed",
    "compare",
    "environment_changes",
    "failure",
    "has_jer",
    "judge",
    "load",
    "markdown",
    "outcome",
    "update_baseline",
]
