"""NeMo recipes without NeMo: the recipe layer's refusals (file:line), the NeMo environment read
from its files (missing, stale, another version), the identity of a NeMo run, its loss rules and
its epoch rows. The runs themselves are in tests/nemo/test_nemo_run.py (slow, NeMo's venv)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import ROOT, bench

from bench import environment
from bench.nemo import config_problem
from bench.nemo import environment as nemo_env
from bench.recipe import NemoOptimizer, NemoPretrained, NemoRecipe, NemoScratch, load_recipe
from bench.results.identity import identify_nemo
from bench.runner.nemo import epoch_row
from bench.training.divergence import nemo_divergence

HEAD = "from bench.recipe import NemoOptimizer, NemoPretrained, NemoRecipe, NemoScratch\n"


def recipe_file(tmp_path: Path, body: str, name: str = "n.py") -> Path:
    path = tmp_path / name
    path.write_text(HEAD + "recipe = NemoRecipe(\n" + body + ")\n")
    return path


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ('    model="sortformer",\n    init=NemoScratch(),\n    epochs=1,\n'
         '    optimizer=NemoOptimizer(name="sgd", lr=1e-4),\n', 6, "field 'optimizer.name'"),
        ('    model="sortformer",\n    init=NemoScratch(),\n    epochs=0,\n'
         '    optimizer=NemoOptimizer(lr=1e-4),\n', 2, "'optimizer' does not apply with epochs=0"),
        ('    model="msdd",\n    init=NemoScratch(),\n    epochs=1,\n'
         '    optimizer=NemoOptimizer(lr=1e-4),\n    session_len_sec=30.0,\n', 2,
         "'session_len_sec' applies to model 'sortformer' only"),
        ('    model="sortformer",\n    init=NemoScratch(),\n    epochs=1,\n', 2,
         "'optimizer' is required to train"),
        ('    model="sortformer",\n    init=NemoScratch(config={"encoder/x": 1}),\n'
         '    epochs=0,\n', 4, "field 'init.config.encoder/x"),
        ('    model="sortformer",\n    init=NemoScratch(),\n    epochs=0,\n    dropout=0.1,\n',
         6, "field 'dropout': unknown field"),
    ],
)  # fmt: skip
def test_a_bad_nemo_option_is_refused_at_its_line(tmp_path, body, line, message):
    path = recipe_file(tmp_path, body)
    outcome = bench("run", path, "--results", tmp_path / "r", "--no-wandb")
    assert outcome.exit_code == 1, outcome.output
    assert f"{path}:{line}" in outcome.output and message in outcome.output, outcome.output
    assert "Traceback" not in outcome.output


def test_a_config_key_nemo_does_not_have_is_refused_at_its_line(tmp_path, cache_dir):
    """Checked against bench's copy of NeMo's stock config before NeMo is needed at all."""
    path = recipe_file(
        tmp_path,
        '    model="sortformer",\n    init=NemoScratch(\n        config={"encoder.n_layerz": 2},'
        "\n    ),\n    epochs=0,\n",
    )
    outcome = bench("run", path, "--results", tmp_path / "r", "--no-wandb", "--cache", cache_dir)
    assert outcome.exit_code == 1, outcome.output
    assert f"{path}:5: field 'init.config': 'encoder.n_layerz' is not in NeMo's sortformer" in (
        outcome.output.replace("\n", " ")
    ), outcome.output
    assert config_problem("sortformer", "encoder.n_layers") is None
    assert "recipe's own fields" in config_problem("sortformer", "optim.lr")


def test_a_missing_nemo_environment_is_one_line_naming_the_setup_command(
    tmp_path, cache_dir, monkeypatch
):
    body = '    model="sortformer",\n    init=NemoScratch(),\n    epochs=0,\n'
    path = recipe_file(tmp_path, body)
    monkeypatch.setenv(nemo_env.VENV_ENV, str(tmp_path / "nowhere"))
    outcome = bench("run", path, "--results", tmp_path / "r", "--no-wandb", "--cache", cache_dir)
    assert outcome.exit_code == 1, outcome.output
    assert "the NeMo environment is missing" in outcome.output
    assert "run bash scripts/setup_nemo.sh" in outcome.output and "Traceback" not in outcome.output


def fake_venv(root: Path, versions: dict[str, str], marker: str | None) -> Path:
    """A venv as setup_nemo.sh leaves it, as far as bench reads it: an interpreter, pyvenv.cfg,
    the distributions' metadata and the lock marker."""
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "python").write_text("")
    (root / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11.7\n")
    site = root / "lib" / "python3.11" / "site-packages"
    for name, version in versions.items():
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    if marker is not None:
        (root / nemo_env.MARKER).write_text(marker + "\n")
    return root


def test_the_nemo_environment_is_read_from_its_files(tmp_path, monkeypatch):
    pins = environment.read_lock(ROOT / environment.NEMO_LOCK)
    assert pins["nemo-toolkit"] == "2.7.3" and pins["lightning"].startswith("2.4")
    assert pins["torch"] == environment.read_lock(ROOT / environment.LOCK)["torch"]
    locked = {k: pins[k] for k in ("nemo-toolkit", "torch", "lightning")}
    good = fake_venv(tmp_path / "good", locked, nemo_env.lock_sha256())
    monkeypatch.setenv(nemo_env.VENV_ENV, str(good))
    env = nemo_env.nemo_environment()
    described = env.describe()
    assert described["packages"]["nemo-toolkit"] == "2.7.3" and described["python"] == "3.11.7"
    assert described["lock"]["matches"] is False  # only three of the lock's packages
    newer = {**locked, "nemo-toolkit": "2.8.0"}
    newer = fake_venv(tmp_path / "newer", newer, nemo_env.lock_sha256())
    other = nemo_env.NemoEnvironment(newer).describe()
    assert other["digest"] != described["digest"]
    assert "nemo-toolkit 2.7.3 -> 2.8.0" in environment.changes(described, other)
    stale = fake_venv(tmp_path / "stale", locked, "0" * 16)
    monkeypatch.setenv(nemo_env.VENV_ENV, str(stale))
    with pytest.raises(nemo_env.NemoMissing, match="not made from this checkout's"):
        nemo_env.nemo_environment()


def test_the_nemo_lock_is_stamped_with_its_source(tmp_path):
    for name in (environment.LOCK, environment.NEMO_LOCK, environment.ASSETS_LOCK,
                 "pyproject.toml", environment.ASSETS_IN, environment.NEMO_IN):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    assert environment.check_stamp(tmp_path) is None
    with (tmp_path / environment.NEMO_IN).open("a") as source:
        source.write("wandb\n")
    assert environment.check_stamp(tmp_path) == (
        "requirements-nemo.lock: made from another scripts/nemo.in: run bash scripts/lock.sh"
    )


def small(**changes) -> NemoRecipe:
    spec = NemoRecipe(
        name="s", model="sortformer", init=NemoScratch(config={"encoder.n_layers": 1}),
        optimizer=NemoOptimizer(lr=1e-4), epochs=1,
    )  # fmt: skip
    return spec.with_overrides(**changes)


def test_a_nemo_run_is_its_settings_weights_and_both_environments():
    base = identify_nemo(small(), "fp", "init-a", "nemo-env-a", max_batches=None)
    assert base.kind == "nemo" and base.environment == environment.digest(environment.numbers())
    assert base.as_dict()["nemo_environment"] == "nemo-env-a"
    others = [
        identify_nemo(small(), "fp", "init-b", "nemo-env-a", max_batches=None),
        identify_nemo(small(), "fp", "init-a", "nemo-env-b", max_batches=None),
        identify_nemo(small(batch_size=8), "fp", "init-a", "nemo-env-a", max_batches=None),
        identify_nemo(
            small(init=NemoScratch(config={"encoder.n_layers": 2})), "fp", "init-a",
            "nemo-env-a", max_batches=None,
        ),
        identify_nemo(small(), "fp", "init-a", "nemo-env-a", max_batches=4),
    ]  # fmt: skip
    assert len({base.digest, *(o.digest for o in others)}) == 6
    seeded = identify_nemo(small(seed=3), "fp", "init-a", "nemo-env-a", max_batches=None)
    assert seeded.family == base.family and seeded.digest != base.digest
    hub = small(init=NemoPretrained(id="nvidia/diar_sortformer_4spk-v1"))
    assert hub.content_hash() != small().content_hash()


def test_nemo_rows_are_judged_by_their_losses():
    initial = {"loss/val": 0.5}
    events = [
        {"event": "epoch", "epoch": e, "train_loss": t, "val_loss": v, "steps": 6 * e, "lr": 1e-4,
         "val_f1_acc": 0.5}
        for e, t, v in ((1, 0.6, 0.55), (2, 9.0, 3.1))
    ]  # fmt: skip
    rows = [epoch_row(event) for event in events]
    assert rows[0] == {"epoch": 1, "lr": 1e-4, "loss/train": 0.6, "loss/val": 0.55, "steps": 6,
                       "val_f1_acc": 0.5}  # fmt: skip
    assert nemo_divergence(initial, rows, kept=1) is None
    assert "loss/val 3.1 at epoch 2 is 6.2x the initial validation loss" in nemo_divergence(
        initial, rows, kept=None
    )
    rows[0]["loss/val"] = float("nan")
    assert nemo_divergence(initial, rows, kept=1) == "loss/val is nan at epoch 1"
    assert nemo_divergence(initial, [], kept=None) is None


def test_the_shipped_nemo_recipes_load():
    spec = load_recipe(ROOT / "recipes" / "nemo_sortformer_finetune.py")
    assert isinstance(spec, NemoRecipe) and spec.model == "sortformer"
    assert isinstance(spec.init, NemoPretrained)
    assert spec.init.id == "nvidia/diar_sortformer_4spk-v1"


def test_the_gate_names_what_changed_in_nemos_environment(tmp_path):
    """A NeMo upgrade between baseline and candidate is named like a bench one."""
    from bench.gate.compare import environment_changes
    from bench.results import ok_record

    def nemo_record(version: str):
        env = {"packages": {"nemo-toolkit": version, "torch": "2.11.0"}}
        dataset = {"name": "demo", "fingerprint": "fp"}
        return ok_record(name="n", kind="nemo", dataset=dataset, pipeline={"environment": env})

    changes = environment_changes([(nemo_record("2.7.3"), nemo_record("2.8.0"))])
    assert changes == ("NeMo: nemo-toolkit 2.7.3 -> 2.8.0",)
    assert environment_changes([(nemo_record("2.7.3"), nemo_record("2.7.3"))]) == ()
