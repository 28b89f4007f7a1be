"""Recipe files: executing one into a validated recipe, and naming the file, line and field of
every refusal (:class:`RecipeError`; :class:`FieldRefusal` for one that only what the recipe runs
on can decide)."""

from __future__ import annotations

import ast
import runpy
import traceback
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bench.recipe.nemo import NemoRecipe
from bench.recipe.schema import PretrainedPipeline, Recipe

# what a recipe file may assign to ``recipe``
AnyRecipe = Recipe | PretrainedPipeline | NemoRecipe


class RecipeError(ValueError):
    """A recipe file that cannot be loaded, with the file, line and field at fault."""


class FieldRefusal(ValueError):
    """A recipe value refused once what it runs on is known (the model's receptive field, the
    machine's memory): :meth:`located` names the recipe file's line of ``field``, like every
    other recipe refusal."""

    def __init__(self, field: tuple[str, ...], message: str):
        super().__init__(message)
        self.field = field

    def located(self, path: Path) -> RecipeError:
        """The refusal as ``file:line: field 'name': message``."""
        name = ".".join(self.field)
        return RecipeError(f"{field_location(path, self.field)}: field '{name}': {self}")


def _keyword_lines(source: str) -> tuple[dict[tuple[str, ...], int], dict[str, tuple[str, ...]]]:
    """Keyword paths of the ``Recipe(...)`` call mapped to line numbers, and where each nested
    constructor (``Optimizer`` -> ``("optimizer",)``) stands."""
    lines: dict[tuple[str, ...], int] = {}
    owners: dict[str, tuple[str, ...]] = dict.fromkeys(RECIPE_TYPES, ())

    def visit(call: ast.Call, prefix: tuple[str, ...]) -> None:
        for kw in call.keywords:
            if kw.arg is not None:
                lines.setdefault((*prefix, kw.arg), kw.lineno)
                if isinstance(kw.value, ast.Call):
                    owners.setdefault(getattr(kw.value.func, "id", ""), (*prefix, kw.arg))
                    visit(kw.value, (*prefix, kw.arg))

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in RECIPE_TYPES:
            visit(node, ())
    return lines, owners


def field_location(path: Path, field: tuple[str, ...]) -> str:
    """``file:line`` of a field of the ``Recipe(...)`` call (its nearest enclosing field that is
    written in the file; just the file when none is, e.g. a default)."""
    try:
        lines, _ = _keyword_lines(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return str(path)
    line = next((lines[field[:n]] for n in range(len(field), 0, -1) if field[:n] in lines), None)
    return f"{path}:{line}" if line else str(path)


def _recipe_frame_line(path: Path, exc: BaseException) -> int | None:
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == path.resolve():
            line = frame.lineno
    return line


_TAGS = {"scratch", "pretrained", "cosine", "step", "plateau"}
# the classes a recipe file may assign to ``recipe`` (their keyword lines are located)
RECIPE_TYPES = ("Recipe", "PretrainedPipeline", "NemoRecipe")


def _format_validation_error(path: Path, error: ValidationError, fallback: int | None) -> str:
    try:
        lines, owners = _keyword_lines(path.read_text())
    except SyntaxError:
        lines, owners = {}, {}
    prefix = owners.get(error.title, ())
    messages = []
    for item in error.errors():
        loc = (*prefix, *(str(p) for p in item["loc"] if p not in _TAGS))
        line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), fallback)
        where = f"{path}:{line}" if line else str(path)
        message = "unknown field" if item["type"] == "extra_forbidden" else item["msg"]
        messages.append(f"{where}: field '{'.'.join(loc) or 'recipe'}': {message}")
    return "\n".join(messages)


def load_recipe(path: str | Path) -> AnyRecipe:
    """Execute a recipe file and return its validated :class:`Recipe` (or
    :class:`PretrainedPipeline`, or :class:`NemoRecipe`).

    The name defaults to the file's stem and the description to its docstring.
    """
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: no such recipe file")
    try:
        namespace = runpy.run_path(str(path), run_name=f"bench_recipe_{path.stem}")
    except ValidationError as error:
        raise RecipeError(
            _format_validation_error(path, error, _recipe_frame_line(path, error))
        ) from None
    except SyntaxError as error:
        raise RecipeError(f"{path}:{error.lineno}: syntax error: {error.msg}") from None
    except Exception as error:  # any failure while executing user code
        line = _recipe_frame_line(path, error)
        where = f"{path}:{line}" if line else str(path)
        raise RecipeError(f"{where}: {type(error).__name__}: {error}") from None

    recipe = namespace.get("recipe")
    if not isinstance(recipe, Recipe | PretrainedPipeline | NemoRecipe):
        raise RecipeError(
            f"{path}: must assign a bench.recipe.Recipe (or PretrainedPipeline, NemoRecipe) to a "
            f"variable named 'recipe' (found {type(recipe).__name__})"
        )
    changes: dict[str, Any] = {}
    if not recipe.name:
        changes["name"] = path.stem
    if not recipe.description and namespace.get("__doc__"):
        changes["description"] = namespace["__doc__"].strip()
    if changes:
        try:
            recipe = recipe.model_copy(update=changes)
            type(recipe).model_validate(recipe.model_dump())
        except ValidationError as error:
            raise RecipeError(_format_validation_error(path, error, None)) from None
    return recipe


def discover(paths: list[Path]) -> list[Path]:
    """Expand folders into the recipe files they hold (sorted, ``_*.py`` skipped)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(p for p in sorted(path.glob("*.py")) if not p.name.startswith("_"))
        else:
            found.append(path)
    return found
