"""What a ``bench run`` was asked to do: its options, the split it runs on (and the
``--also-test`` ones), the demo's caps and the recipe as it will run (overrides recorded)."""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bench.data import Split, load_folder, load_split
from bench.io import cache_root
from bench.recipe import Recipe
from bench.results import Override

# The demo must finish in a few minutes on 2 CPU cores: its runs are capped (shorter chunks, fewer
# epochs, batches divided by a common factor so that recipes differing in batch size stay
# distinct), say so, and record it under "overrides".
DEMO_PROFILE = {"epochs": 12, "duration": 5.0}


DEMO_BATCH_DIVISOR = 8  # 64 -> 8, 128 -> 16, 256 -> 32


@dataclass
class RunOptions:
    """The command-line options of ``bench run`` that change what a run does."""

    data: Path | None = None
    protocol: str | None = None
    results: Path = Path("results")
    epochs: int | None = None
    seed: int | None = None
    device: str = "auto"
    wandb: bool = True
    cache_dir: Path | None = None
    progress: bool = True
    max_batches: int | None = None
    force: bool = False
    pipeline: bool = True
    embedding: str | None = None
    tune_trials: tuple[int, int] | None = None
    devices: int = 1
    strategy: str = "auto"
    also_test: tuple[str, ...] = ()  # extra test splits: dataset folders, or "demo-ood"
    precision: str | None = None  # overrides the recipe's (recorded under "overrides")
    sharing: int = 1  # runs sharing this run's device at once (--jobs): its share of the memory


OOD_DEMO = "demo-ood"  # --also-test's name for the demo's out-of-domain split


@functools.cache
def load_extra_split(source: str, cache_dir: Path | None) -> Split:
    """An extra test split (``--also-test``): a dataset folder, or :data:`OOD_DEMO`."""
    if source == OOD_DEMO:
        from bench.demo import ensure_ood_demo

        return load_folder(ensure_ood_demo(cache_root(cache_dir)))
    return load_folder(source)


def extra_splits(options: RunOptions, main: Split) -> list[Split]:
    """The ``--also-test`` splits, each once; one that is the main split is refused."""
    splits: dict[str, Split] = {}
    for source in options.also_test:
        extra = load_extra_split(source, options.cache_dir)
        if extra.fingerprint == main.fingerprint:
            raise ValueError(f"--also-test {source}: this is the split the runs are tested on")
        splits.setdefault(extra.fingerprint, extra)
    return list(splits.values())


def resolve_split(options: RunOptions) -> tuple[Split, bool]:
    """The split to run on, and whether it is the embedded demo."""
    if options.data is None:
        from bench.demo import ensure_demo

        return load_folder(ensure_demo(cache_root(options.cache_dir))), True
    return load_split(options.data, options.protocol), False


def check_writable(folder: Path) -> None:
    """Fail early, in one line, when results cannot be written to ``folder``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(
            f"results folder {folder} is not writable: {error.strerror or error}"
        ) from None


def demo_caps(recipe: Recipe) -> dict[str, Any]:
    """The demo profile's changes to ``recipe``."""
    caps = {k: cap for k, cap in DEMO_PROFILE.items() if getattr(recipe, k) > cap}
    if recipe.batch_size > DEMO_BATCH_DIVISOR:
        caps["batch_size"] = -(-recipe.batch_size // DEMO_BATCH_DIVISOR)
    return caps


def effective_recipe(
    recipe: Recipe, options: RunOptions, demo: bool
) -> tuple[Recipe, dict[str, Override]]:
    """Apply command-line overrides and, on the demo, the demo profile; report each change.

    ``--epochs`` leaves recipes with ``epochs=0`` (no fine-tuning) alone."""
    changes: dict[str, Any] = {}
    if options.epochs is not None and recipe.epochs > 0:
        changes["epochs"] = options.epochs
    if options.seed is not None:
        changes["seed"] = options.seed
    if options.precision is not None:
        changes["precision"] = options.precision
    if not options.pipeline:
        changes["pipeline"] = None
    elif recipe.pipeline is not None and (options.embedding or options.tune_trials):
        changes["pipeline"] = recipe.pipeline.model_copy(
            update={
                k: v
                for k, v in (("embedding", options.embedding), ("tune_trials", options.tune_trials))
                if v is not None
            }
        )
    if demo:
        changes.update(demo_caps(recipe.with_overrides(**changes)))
    changes = {k: v for k, v in changes.items() if v != getattr(recipe, k)}
    applied = {
        k: {"declared": _plain(getattr(recipe, k)), "ran": _plain(v)} for k, v in changes.items()
    }
    if options.max_batches is not None:
        applied["max_batches"] = {"declared": None, "ran": options.max_batches}
    return recipe.with_overrides(**changes), applied


def _plain(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value
