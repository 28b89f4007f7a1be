"""``bench recipes``: the recipes with their main settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from bench.cli.common import console
from bench.recipe import AnyRecipe, NemoRecipe, PretrainedPipeline
from bench.recipe.text import (
    augmentation_text,
    init_text,
    loss_text,
    optimizer_text,
    scheduler_text,
)


def recipes(
    paths: Annotated[list[Path] | None, typer.Argument(help="Recipe files or folders.")] = None,
) -> None:
    """List recipes with their main settings."""
    from rich.table import Table

    from bench.recipe import RecipeError, discover, load_recipe

    table = Table()
    table.add_column("recipe", no_wrap=True, min_width=24)
    columns = ("hash", "mode", "init", "optimizer", "scheduler", "epochs", "batch", "loss")
    for name in (*columns, "aug", "seed"):
        table.add_column(name)
    errors = []
    for path in discover(paths or [Path("recipes")]):
        try:
            r = load_recipe(path)
        except RecipeError as error:
            errors.append(str(error))
            continue
        table.add_row(*recipe_summary(r))
    Console(width=max(console.width, 180)).print(table)
    for error in errors:
        console.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
    if errors:
        raise typer.Exit(1)


def recipe_summary(r: AnyRecipe) -> list[str]:
    """The main settings of a recipe, as short strings (:mod:`bench.recipe.text`, as the
    leaderboard writes them)."""
    if isinstance(r, PretrainedPipeline):
        source = r.path or (f"{r.id}@{r.revision}" if r.revision else r.id)
        tuned = f"re-tuned {r.tune_trials[0]}+{r.tune_trials[1]}" if r.retune else "as shipped"
        return [r.name, r.content_hash(), "pipeline", source, "-", tuned, "-", "-", "-", "-",
                str(r.seed)]  # fmt: skip
    data = r.resolved()
    return [
        r.name,
        r.content_hash(),
        f"NeMo {r.model}" if isinstance(r, NemoRecipe) else r.mode,
        init_text(data),
        optimizer_text(data) or "- (no training)",
        scheduler_text(data),
        str(r.epochs),
        str(r.batch_size),
        loss_text(data),
        "-" if isinstance(r, NemoRecipe) else augmentation_text(data),
        str(r.seed),
    ]
