"""Recipe loading: validation errors name file, line and field; hashes track content."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.recipe import Recipe, RecipeError, discover, load_recipe

ROOT = Path(__file__).resolve().parents[2]

GOOD = '''"""doc"""
from bench.recipe import Cosine, Loss, Optimizer, Pretrained, Recipe, VadLoss

recipe = Recipe(
    model=Pretrained(id="pyannote/segmentation-3.0"),
    optimizer=Optimizer(
        name="nadam",
        lr=1e-4,
    ),
    scheduler=Cosine(),
    epochs=5,
    batch_size=8,
    loss=Loss(kind="bce+tversky", alpha=0.3, beta=0.7),
    vad_loss=VadLoss(),
)
'''


def write(tmp_path: Path, text: str, name: str = "r.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_seed_recipe_declares_the_seed_setup():
    recipe = load_recipe(ROOT / "recipes" / "nadam_cosine_tversky.py")
    assert recipe.name == "nadam_cosine_tversky"
    assert recipe.model.id == "pyannote/segmentation-3.0"
    assert (recipe.optimizer.name, recipe.optimizer.lr) == ("nadam", 1e-4)
    assert recipe.scheduler.kind == "cosine" and recipe.resolved()["scheduler"]["t_max"] == 50
    assert (recipe.epochs, recipe.batch_size) == (50, 64)
    assert recipe.loss.kind == "bce+tversky" and recipe.vad_loss.kind == "bce"
    assert recipe.gradient_clip == 0.5 and recipe.early_stopping_patience == 10
    assert "experiment 11" in recipe.description


def test_defaults_name_and_description(tmp_path):
    recipe = load_recipe(write(tmp_path, GOOD, "my_setup.py"))
    assert recipe.name == "my_setup" and recipe.description == "doc"


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "message"),
    [
        ("        lr=1e-4,", "        lr=-1,", 8, "optimizer.lr", "greater than 0"),
        ("    epochs=5,", '    epochs="five",', 11, "epochs", "integer"),
        ("    epochs=5,", "    epochs=5, colour='red',", 11, "colour", "unknown field"),
        ('kind="bce+tversky"', 'kind="lovasz"', 13, "loss.kind", "Input should be"),
        (
            "    vad_loss=VadLoss(),",
            "    vad_loss=VadLoss(), augmentation='noise',",
            14,
            "augmentation",
            "instance of Augmentation",
        ),
        ('name="nadam"', 'name="lion"', 7, "optimizer.name", "Input should be"),
    ],
)
def test_bad_field_names_file_line_and_field(tmp_path, old, new, line, field, message):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    text = str(error.value)
    assert f"{path}:{line}:" in text
    assert f"field '{field}'" in text
    assert message in text


def test_option_that_does_not_apply_is_refused(tmp_path):
    path = write(
        tmp_path, GOOD.replace('kind="bce+tversky", alpha=0.3, beta=0.7', 'kind="bce", alpha=0.1')
    )
    with pytest.raises(RecipeError, match="'alpha' does not apply"):
        load_recipe(path)


def test_powerset_refuses_multilabel_loss(tmp_path):
    path = write(tmp_path, GOOD.replace("    epochs=5,", '    epochs=5, mode="powerset",'))
    with pytest.raises(RecipeError, match="'bce\\+tversky' does not apply to powerset mode"):
        load_recipe(path)


def test_missing_recipe_variable_and_syntax_error(tmp_path):
    with pytest.raises(RecipeError, match="variable named 'recipe'"):
        load_recipe(write(tmp_path, "x = 1\n"))
    with pytest.raises(RecipeError, match=r"r\.py:2: syntax error"):
        load_recipe(write(tmp_path, "x = 1\nrecipe = (\n"))
    with pytest.raises(RecipeError, match="no such recipe file"):
        load_recipe(tmp_path / "absent.py")


def test_hash_follows_content_not_comments(tmp_path):
    base = load_recipe(write(tmp_path, GOOD, "a.py")).content_hash()
    commented = GOOD.replace('"""doc"""', '"""other doc"""\n# a comment')
    assert load_recipe(write(tmp_path, commented, "b.py")).content_hash() == base
    changed = GOOD.replace("lr=1e-4", "lr=2e-4")
    assert load_recipe(write(tmp_path, changed, "c.py")).content_hash() != base
    # an explicit default is the same setup as an implicit one
    explicit = GOOD.replace("    scheduler=Cosine(),", "    scheduler=Cosine(t_max=5),")
    assert load_recipe(write(tmp_path, explicit, "d.py")).content_hash() == base


def test_overrides_are_validated():
    recipe = load_recipe(ROOT / "recipes" / "nadam_cosine_tversky.py")
    assert recipe.with_overrides(epochs=3).epochs == 3
    with pytest.raises(ValueError):
        recipe.with_overrides(epochs=0)
    assert isinstance(recipe, Recipe)


def test_discover_expands_folders(tmp_path):
    write(tmp_path, GOOD, "b.py")
    write(tmp_path, GOOD, "a.py")
    write(tmp_path, "", "_helper.py")
    assert [p.name for p in discover([tmp_path])] == ["a.py", "b.py"]


def test_epochs_zero_is_an_evaluation_without_training(tmp_path):
    base = GOOD.replace("    epochs=5,", "    epochs=0,")
    with pytest.raises(RecipeError, match="'optimizer' does not apply with epochs=0"):
        load_recipe(write(tmp_path, base, "a.py"))
    bare = (
        "from bench.recipe import Pretrained, Recipe\n"
        "recipe = Recipe(model=Pretrained(id='x'), epochs=0, batch_size=8)\n"
    )
    assert load_recipe(write(tmp_path, bare, "b.py")).epochs == 0
    with pytest.raises(RecipeError, match="'optimizer' is required to train"):
        load_recipe(write(tmp_path, bare.replace("epochs=0", "epochs=3"), "c.py"))


def test_pipeline_settings_are_part_of_the_recipe(tmp_path):
    base = load_recipe(write(tmp_path, GOOD, "a.py"))
    assert base.pipeline.embedding == "campplus" and base.pipeline.tune_trials == (10, 10)
    other = GOOD.replace("    epochs=5,", "    epochs=5, pipeline=Pipeline(tune_trials=(3, 3)),")
    other = other.replace("from bench.recipe import", "from bench.recipe import Pipeline,")
    assert load_recipe(write(tmp_path, other, "b.py")).content_hash() != base.content_hash()
    off = GOOD.replace("    epochs=5,", "    epochs=5, pipeline=None,")
    assert load_recipe(write(tmp_path, off, "c.py")).pipeline is None


@pytest.mark.parametrize(
    ("old", "new", "line", "field"),
    [
        ("        lr=1e-4,", '        lr=float("inf"),', 8, "optimizer.lr"),
        ("        lr=1e-4,", '        lr=float("nan"),', 8, "optimizer.lr"),
        ("    epochs=5,", '    epochs=5, gradient_clip=float("inf"),', 11, "gradient_clip"),
        ("alpha=0.3,", 'alpha=0.3, weight=float("inf"),', 13, "loss.weight"),
        ("        lr=1e-4,", '        lr=1e-4, betas=(0.9, float("nan")),', 8, "optimizer.betas.1"),
        (
            "    scheduler=Cosine(),",
            '    scheduler=Cosine(eta_min=float("inf")),',
            10,
            "scheduler.eta_min",
        ),
    ],
)
def test_non_finite_numbers_are_refused(tmp_path, old, new, line, field):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    text = str(error.value)
    assert f"{path}:{line}:" in text
    assert f"field '{field}'" in text
    assert "finite number" in text


def test_non_finite_override_is_refused():
    recipe = load_recipe(ROOT / "recipes" / "adam.py")
    with pytest.raises(ValueError, match="finite number"):
        recipe.with_overrides(gradient_clip=float("inf"))
