"""A pipeline to run, from an exported folder, a result file or a hub id, loaded safely.

A pipeline folder's ``config.yaml`` names classes that pyannote imports and calls (the
``pipeline.name``, each ``preprocessors`` entry's ``name``): any importable callable, so a
folder naming ``os.system`` runs it. bench refuses, before anything is loaded, a config naming
anything outside pyannote.audio, pyannote.pipeline and bench unless the user trusts the folder
(``--trust``, ``PretrainedPipeline(trust=True)``). The checkpoints a folder holds are pickles
too (pyannote loads them with ``weights_only=False``): trust lifts the class check only, and
loading a folder you did not make is running its code (docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.deploy.export import Config, DeployError, evaluated_checkpoint, exportable
from bench.models import hub

# where the classes a config.yaml may name without --trust live
TRUSTED = ("pyannote.audio.", "pyannote.pipeline.", "bench.")
CONFIG = "config.yaml"


@dataclass
class Loaded:
    """A pipeline ready to apply, and where it came from."""

    pipeline: Any  # a pyannote Pipeline
    kind: str  # "folder" | "result" | "hub"
    ref: str
    info: dict[str, str | None] = field(default_factory=dict)  # hub: revision and sha256


def read_config(path: Path) -> Config:
    """A pipeline's ``config.yaml`` (one-line errors)."""
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise DeployError(
            f"{path}: not a readable pipeline config: {hub.first_line(error)}"
        ) from None
    if not isinstance(config, dict) or not isinstance(config.get("pipeline"), dict):
        raise DeployError(f"{path}: not a pipeline config (no 'pipeline' section)")
    return config


def named_classes(config: Config) -> list[str]:
    """The dotted names pyannote would import from ``config`` (a bare name is looked up in
    ``pyannote.pipeline.blocks``, as pyannote does)."""
    names = [config["pipeline"].get("name")]
    preprocessors = config.get("preprocessors") or {}
    if isinstance(preprocessors, dict):
        names += [p.get("name") for p in preprocessors.values() if isinstance(p, dict)]
    return [n if "." in str(n) else f"pyannote.pipeline.blocks.{n}" for n in names]


def check_trust(config: Config, where: str, trust: bool) -> None:
    """Refuse a config naming code outside pyannote and bench, unless ``trust``."""
    foreign = [n for n in named_classes(config) if not str(n).startswith(TRUSTED)]
    if foreign and not trust:
        raise DeployError(
            f"{where}: config.yaml names {foreign[0]!r}, outside pyannote.audio and bench: "
            "loading it would import and run it (pass --trust if you trust this pipeline)"
        )


def _from_result(result: Path) -> Loaded:
    """The pipeline a run was scored with: its checkpoint, embedding, clustering (and PLDA) and
    tuned parameters."""
    from bench.evaluation.diarize import tuned_pipeline

    record = exportable(result)
    try:
        pipeline = tuned_pipeline(evaluated_checkpoint(record, result), record.pipeline)
    except ValueError as error:
        raise DeployError(f"{result}: {error}") from None
    return Loaded(pipeline, "result", str(result), {"record": record.stem})


def load_pipeline(
    ref: str, *, trust: bool = False, revision: str | None = None, token_env: str = "HF_TOKEN"
) -> Loaded:
    """The pipeline ``ref`` names: an exported (or any pyannote) pipeline folder, a bench
    result file, or a hub id (``owner/name[@revision]``)."""
    from pyannote.audio import Pipeline

    path = Path(ref).expanduser()
    if path.is_file() and path.suffix == ".json":
        return _from_result(path)
    if path.is_dir():
        config = read_config(path / CONFIG)
        check_trust(config, str(path), trust)
        return Loaded(_instantiate(Pipeline.from_pretrained, path), "folder", str(path))
    if path.exists() or not hub.is_hub_id(ref):
        raise DeployError(
            f"{ref}: expected an exported pipeline folder, a bench result file or a hub id"
        )
    try:
        found = hub.resolve(ref, filename=CONFIG, field="pipeline", revision=revision,
                            token_env=token_env)  # fmt: skip
    except hub.ResolveError as error:
        raise DeployError(str(error).removeprefix("field 'pipeline': ")) from None
    config = read_config(found.path)
    check_trust(config, ref, trust)
    pipeline = _instantiate(
        Pipeline.from_pretrained, found.id, revision=found.revision, token=hub.token_from(token_env)
    )
    return Loaded(pipeline, "hub", ref, {"revision": found.revision, "sha256": found.sha256})


def _instantiate(load: Any, *args: Any, **kwargs: Any) -> Any:
    """``Pipeline.from_pretrained``, its failures as one line."""
    try:
        pipeline = load(*args, **kwargs)
    except Exception as error:
        raise DeployError(
            f"{args[0]}: cannot load the pipeline: {type(error).__name__}: {hub.first_line(error)}"
        ) from None
    if pipeline is None:  # pyannote returns None for a hub repository it could not read
        raise DeployError(f"{args[0]}: not a pipeline pyannote.audio can load")
    return pipeline
