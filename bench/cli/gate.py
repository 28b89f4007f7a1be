"""``bench gate``: fail a pull request whose test DER (or JER) regresses."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bench.cli.common import console


def gate(
    baseline: Annotated[Path, typer.Option(help="Baseline result file or folder.")] = Path(
        "leaderboard/baseline"
    ),
    candidate: Annotated[Path, typer.Option(help="Candidate result file or folder.")] = Path(
        "results"
    ),
    max_increase: Annotated[
        float, typer.Option(min=0.0, help="Tolerated absolute increase of the metric.")
    ] = 0.005,
    confidence: Annotated[
        float, typer.Option(min=0.5, max=0.999, help="Paired-bootstrap confidence.")
    ] = 0.95,
    markdown: Annotated[Path | None, typer.Option(help="Also write the report here.")] = None,
    update_baseline: Annotated[
        bool, typer.Option("--update-baseline", help="Copy the candidate into the baseline.")
    ] = False,
    metric: Annotated[
        str,
        typer.Option(help="der (the primary metric) or jer (full-pipeline JER, every result)."),
    ] = "der",
) -> None:
    """Fail (exit 1) when a recipe's test DER (or JER) regresses significantly against the
    baseline (or its candidate run failed); exit 2 when the results are not comparable. The
    markdown report is always written, refusals included."""
    from bench import gate as gating
    from bench.io import atomic_write_text

    verdicts, error = [], None
    try:
        if update_baseline:
            for path in gating.update_baseline(candidate, baseline):
                console.print(f"baseline: {path}", markup=False)
            return
        verdicts = gating.compare(baseline, candidate, max_increase, confidence, metric)
    except gating.GateError as failure:
        error = str(failure)
    report = gating.markdown(verdicts, max_increase, confidence, error, metric)
    print(report, end="")  # first: the report is shown even when --markdown cannot be written
    if markdown is not None:
        atomic_write_text(markdown, report)
    if error is not None:
        raise typer.Exit(gating.EXIT_CODES["refused"])
    raise typer.Exit(gating.EXIT_CODES[gating.outcome(verdicts)])
