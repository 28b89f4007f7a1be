"""Weights & Biases logging through Lightning's WandbLogger: online with an API key, offline files
beside the result otherwise."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

from bench.results import WandbInfo


def has_api_key() -> bool:
    """A W&B API key is set (``WANDB_API_KEY`` or ``~/.netrc``): log online."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode() -> str:
    """``WANDB_MODE`` when set, else online with a key and offline without."""
    explicit = os.environ.get("WANDB_MODE")
    if explicit:
        return explicit
    return "online" if has_api_key() else "offline"


def make_logger(
    run_dir: Path,
    name: str,
    config: dict[str, Any],
    run_id: str | None = None,
    project: str | None = None,
):
    """A WandbLogger for one run; ``run_id`` continues an interrupted run's W&B run."""
    from lightning.pytorch.loggers import WandbLogger

    mode = wandb_mode()
    run_dir.mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        project=project or os.environ.get("WANDB_PROJECT", "bench"),
        name=name,
        save_dir=str(run_dir),
        mode=mode,
        config=config,
        log_model=False,
        id=run_id,
        resume="allow" if run_id else None,
    )


def finish(logger) -> WandbInfo:
    """Close the run and say where it went."""
    run = logger.experiment
    info: WandbInfo = {
        "mode": wandb_mode(),
        "run_id": run.id,
        "project": run.project,
        "dir": str(Path(run.dir).parent),
        "url": run.url if wandb_mode() == "online" else None,
    }
    run.finish()
    return info
