"""A run's console output (every user text escaped) and the library warnings bench silences
because they have nothing actionable for its users."""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from bench.results import DER_KEY, ScoreReport

# Warnings with nothing actionable for a bench user (bench reports head re-initialisation itself).
_QUIET = (
    "target_rate is required by Identity",
    "`isinstance(treespec, LeafSpec)` is deprecated",
    "Your `IterableDataset` has `__len__` defined",
    "Model has been trained for a different task",
    "The number of training batches",
    "but have no logger configured",
    "Targets are not (yet) supported by ApplyImpulseResponse",
    "is required by ApplyImpulseResponse",
)


def quiet_known_warnings() -> None:
    """Silence the library warnings listed above (and Lightning's info chatter)."""
    for message in _QUIET:
        warnings.filterwarnings("ignore", message=f".*{re.escape(message)}")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


class Reporter:
    """A run's console output. Every piece of user text (names, paths, messages) is escaped, so
    a message that looks like Rich markup prints as itself."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(soft_wrap=True)

    def say(self, text: str, style: str | None = None, label: str | None = None) -> None:
        head = f"[{style}]{escape(label)}[/] " if label and style else ""
        self.console.print(head + escape(text), highlight=False)

    def warn(self, text: str) -> None:
        self.say(text, "yellow", "warning:")

    def result(self, path: Path) -> None:
        self.console.print(f"result: {escape(str(path))}", highlight=False)

    def epoch(self, row: dict[str, Any]) -> None:
        der = DER_KEY
        self.say(
            f"epoch {row['epoch']:>3}  DER {_fmt(row[der])}  Conf {_fmt(row[f'{der}/Confusion'])}  "
            f"FA {_fmt(row[f'{der}/FalseAlarm'])}  Miss {_fmt(row[f'{der}/Miss'])}  "
            f"thr {_fmt(row[f'{der}/Threshold'])}  loss/val {_fmt(row['loss/val'])}  "
            f"loss/train {_fmt(row['loss/train'])}"
        )

    def scores(self, what: str, test: ScoreReport) -> None:
        parts = "  ".join(
            f"{k} {_fmt(getattr(test, k))}" for k in ("DER", "Confusion", "FalseAlarm", "Miss")
        )
        if test.speaker_count is not None:  # full-pipeline scores
            right = _fmt(test.speaker_count.accuracy)
            parts += f"  JER {_fmt(test.JER)}  speaker count right {right}"
        self.say(f"test ({what}): {parts}")
