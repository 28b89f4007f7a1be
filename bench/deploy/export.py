"""``bench export``: a run's tuned pipeline as a folder that
``pyannote.audio.Pipeline.from_pretrained(DIR)`` loads offline, with its model card.

The folder::

    config.yaml                      pipeline class, $model references, batch sizes, tuned params,
                                     the dependencies pyannote checks
    segmentation/pytorch_model.bin   the evaluated checkpoint, stripped to what inference needs
    embedding/...                    CAM++ (campplus_cn_en_common.pt) or a local pyannote
                                     embedding (pytorch_model.bin); a hub embedding is named by
                                     id and commit instead of copied
    plda/                            VBx: xvec_transform.npz and plda.npz
    README.md                        the model card (bench.leaderboard.card)
    bench.json                       the run's record and each file's sha256 (provenance)
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml

import bench
from bench.deploy.pipeline import CLASS_PATH
from bench.evaluation.pipeline import SEGMENTATION_STEP
from bench.io import atomic_write_text, sha256_file, staging_dir, write_json
from bench.leaderboard.card import export_refusal, model_card
from bench.models.embeddings import CAMPPLUS_FILE
from bench.models.hub import CHECKPOINT_FILE
from bench.results import Record, ResultError, now, read_record

# a pipeline folder's config.yaml, as YAML gives it (mappings of mappings, lists and scalars)
Config = dict[str, Any]
# what inference needs of a Lightning checkpoint (optimizer, loops and callbacks are dropped)
KEEP = ("pytorch-lightning_version", "state_dict", "hyper_parameters", "hparams_name")
PROVENANCE = "bench.json"


class DeployError(ValueError):
    """A result that cannot be exported, a pipeline that cannot be loaded or pushed, audio that
    cannot be read (one line)."""


def find_result(ref: str | Path, results: Path) -> Path:
    """A result file: ``ref`` itself, or the run stem ``ref`` in the ``results`` folder."""
    path = Path(ref)
    if path.is_file():
        return path
    stem = results / f"{ref}.json"
    if stem.is_file():
        return stem
    raise DeployError(f"{ref}: neither a result file nor a run stem in {results}")


def best_result(results: Path, split: str | None = None) -> Path:
    """The leaderboard's best exportable run (a recipe run with a tuned pipeline) on ``split``
    (a dataset name or fingerprint; may be left out when the folder holds one split)."""
    from bench.leaderboard.rank import build_board
    from bench.leaderboard.select import load_runs

    runs, _ = load_runs(results)
    groups = [g for g in build_board(runs).groups if not g.smoke and not g.other_environment]
    if split is not None:
        groups = [g for g in groups if split in (g.fingerprint, g.dataset.get("name"))]
    names = sorted({f"{g.dataset.get('name')} ({g.fingerprint})" for g in groups})
    if not groups:
        raise DeployError(f"{results}: no ranked run" + (f" on split {split}" if split else ""))
    if len(names) > 1:
        raise DeployError(f"{results}: runs on several splits ({', '.join(names)}): pass --split")
    for ranked in groups[0].ranked:
        if export_refusal(ranked.run.record) is None:
            return ranked.run.source
    raise DeployError(f"{results}: no ranked run with a tuned pipeline on {names[0]}")


def evaluated_checkpoint(record: Record, result: Path) -> Path:
    """The checkpoint the run's test scores came from: its best epoch's, or (``epochs=0``) its
    initial weights, checked against their recorded sha256."""
    if record.best_checkpoint:
        recorded = Path(record.best_checkpoint)
        moved = result.parent / "runs" / record.stem / "checkpoints" / recorded.name
        for path in (recorded, moved):
            if path.is_file():
                return path
        raise DeployError(f"{result}: its best checkpoint is gone ({recorded}, {moved})")
    init = record.initial_weights or {}
    path = Path(init.get("path") or "")
    if not init.get("path") or not path.is_file():
        raise DeployError(f"{result}: no checkpoint recorded and no initial weights file")
    if init.get("sha256") and sha256_file(path) != init["sha256"]:
        raise DeployError(f"{path}: not the initial weights the run recorded (sha256 differs)")
    return path


def strip_checkpoint(source: Path, target: Path, duration: float | None = None) -> None:
    """Write ``source`` (a Lightning/pyannote checkpoint) at ``target`` with only what
    ``Model.from_pretrained`` needs. ``duration``: the chunk duration the run's pipeline slid
    (a model evaluated as it is, ``epochs=0``, takes its run's task duration, which its file
    does not hold: the demo's 5 s against segmentation-3.0's 10 s)."""
    checkpoint = torch.load(source, map_location="cpu", weights_only=False)
    kept = {k: checkpoint[k] for k in KEEP if k in checkpoint}
    kept["pyannote.audio"] = dict(checkpoint["pyannote.audio"])
    specifications = kept["pyannote.audio"].get("specifications")
    if duration is not None and specifications is not None:
        kept["pyannote.audio"]["specifications"] = dataclasses.replace(
            specifications, duration=duration
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(kept, target)


def _embedding(record: Record, folder: Path) -> tuple[str, str]:
    """Copy the run's embedding into ``folder/embedding`` when it is a file (CAM++, a local
    pyannote checkpoint); return config.yaml's ``embedding`` and ``embedding_name``."""
    info = (record.pipeline or {}).get("embedding") or {}
    name = str(info.get("name") or "campplus")
    path = Path(info["path"]) if info.get("path") else None
    if name.startswith("campplus"):
        target, copy = folder / "embedding" / CAMPPLUS_FILE, True
    elif info.get("origin") == "hub":  # pyannote's own loader fetches it by commit
        return f"{info['id']}@{info.get('revision') or 'main'}", name
    else:
        target, copy = folder / "embedding" / CHECKPOINT_FILE, False
    if path is None or not path.is_file():
        raise DeployError(f"embedding {name!r}: its file {path} is gone")
    if info.get("sha256") and sha256_file(path) != info["sha256"]:
        raise DeployError(f"embedding {name!r}: {path} is not the file the run used")
    target.parent.mkdir(parents=True, exist_ok=True)
    if copy:
        shutil.copyfile(path, target)
    else:
        strip_checkpoint(path, target)
    return "$model/embedding", name


def _plda(record: Record, folder: Path) -> bool:
    """Copy a VBx run's PLDA into ``folder/plda`` (checked against the run's sha256)."""
    from bench.evaluation import plda, vbx

    info = (record.pipeline or {}).get("plda")
    if not info:
        return False
    source = Path(str(info["path"]))
    if not source.is_dir() or vbx.files_sha256(source) != info.get("sha256"):
        raise DeployError(f"the run's PLDA ({source}) is gone or changed")
    (folder / "plda").mkdir(parents=True, exist_ok=True)
    for name in plda.FILES:
        shutil.copyfile(source / name, folder / "plda" / name)
    return True


def pipeline_config(record: Record, embedding: str, embedding_name: str) -> Config:
    """config.yaml: what ``Pipeline.from_pretrained`` instantiates, with the tuned params."""
    import pyannote.audio

    pipeline = record.pipeline or {}
    tuning = pipeline.get("tuning") or {}
    return {
        "dependencies": {"pyannote.audio": pyannote.audio.__version__, "bench": bench.__version__},
        "pipeline": {
            "name": CLASS_PATH,
            "params": {
                "segmentation": "$model/segmentation",
                "embedding": embedding,
                "embedding_name": embedding_name,
                "clustering": (pipeline.get("clustering") or {}).get(
                    "name", "AgglomerativeClustering"
                ),
                "segmentation_step": (pipeline.get("segmentation") or {}).get(
                    "step", SEGMENTATION_STEP
                ),
                "segmentation_batch_size": 32,
                "embedding_batch_size": 32,
                "embedding_exclude_overlap": False,
            },
        },
        "params": tuning["params"],
    }


def exportable(result: Path) -> Record:
    """The record of ``result``, refused unless it is a good recipe run with a tuned pipeline."""
    try:
        record = read_record(result)
    except ResultError as error:
        raise DeployError(str(error)) from None
    refusal = export_refusal(record)
    if refusal:
        raise DeployError(f"{result}: {refusal}")
    return record


def export(result: Path, out: Path, force: bool = False, card_source: str | None = None) -> Path:
    """Write the exported pipeline of ``result`` at ``out`` (built beside it, swapped in whole);
    ``card_source`` is what the card tells users to load (default: ``out``)."""
    record = exportable(result)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise DeployError(f"{out}: exists and is not empty (pass --force to replace it)")
    checkpoint = evaluated_checkpoint(record, result)
    with staging_dir(out) as stage:
        duration = ((record.pipeline or {}).get("segmentation") or {}).get("duration")
        strip_checkpoint(checkpoint, stage / "segmentation" / CHECKPOINT_FILE, duration)
        embedding, embedding_name = _embedding(record, stage)
        config = pipeline_config(record, embedding, embedding_name)
        if _plda(record, stage):
            config["pipeline"]["params"]["plda"] = "$model/plda"
        atomic_write_text(stage / "config.yaml", yaml.safe_dump(config, sort_keys=False))
        card = model_card(record, source=card_source or str(out))
        atomic_write_text(stage / "README.md", card)
        files = {
            p.relative_to(stage).as_posix(): sha256_file(p)
            for p in sorted(stage.rglob("*"))
            if p.is_file()
        }
        write_json(
            stage / PROVENANCE,
            {
                "exported": now(),
                "bench": bench.__version__,
                "result": str(result.resolve()),
                "checkpoint": str(checkpoint),
                "files": files,
                "record": json.loads(json.dumps(record.as_json())),
            },
        )
    return out
