"""What an interrupted run needs to resume, written in its run folder, and verified before it is
trusted: a state or checkpoint that cannot be read is set aside (never deleted) and the run
starts again."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.io import write_json
from bench.results import Row


@dataclass
class RunState:
    """What an interrupted run needs to resume: written once the initial model is evaluated."""

    initial_validation: Row
    initial_test: dict[str, Any]
    wandb_id: str | None

    FILE = "state.json"

    def save(self, run_dir: Path) -> None:
        write_json(run_dir / self.FILE, asdict(self))

    @classmethod
    def load(cls, run_dir: Path) -> RunState | None:
        """The state of an interrupted run in ``run_dir``, if it got as far as a checkpoint.
        :class:`ValueError` names a state or checkpoint that cannot be read."""
        path, last = run_dir / cls.FILE, run_dir / "checkpoints" / "last.ckpt"
        if not path.is_file() or not last.is_file():
            return None
        try:
            state = cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as error:
            raise ValueError(f"{path}: not a readable run state: {error}") from None
        import torch

        try:  # what Lightning resumes from: a zip archive holding the trainer's state
            checkpoint = torch.load(last, map_location="cpu", weights_only=False, mmap=True)
        except Exception as error:
            raise ValueError(f"{last}: not a readable checkpoint: {error}") from None
        if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
            raise ValueError(f"{last}: not a readable checkpoint: no state_dict")
        return state

    @classmethod
    def set_aside(cls, run_dir: Path) -> Path:
        """Move an unreadable resume state (checkpoints and state file) out of the way, into
        ``run_dir/unreadable-TIME/``, so that the run starts again and nothing is deleted."""
        aside = run_dir / f"unreadable-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        aside.mkdir()
        for name in ("checkpoints", cls.FILE):
            if (run_dir / name).exists():
                os.replace(run_dir / name, aside / name)
        return aside
