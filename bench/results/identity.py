"""The run identity of a recipe on a split: the resolved recipe, the precision it runs in, what
its files contain and the environment it runs in (torch-free, so a finished run is skipped
without importing torch)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import bench
from bench import environment
from bench.io import sha256_file
from bench.models.hub import CHECKPOINT_FILE, local_file
from bench.recipe import NemoRecipe, Pretrained, PretrainedPipeline, Recipe, data_path
from bench.results.record import RunIdentity


def tree_sha256(folder: Path) -> str:
    """sha256 over every file under ``folder`` (relative path and content), in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def init_sha256(recipe: Recipe) -> str | None:
    """Content hash of a local initial checkpoint (a hub id is covered by id and revision)."""
    if not isinstance(recipe.model, Pretrained):
        return None
    file = local_file(recipe.model.id, CHECKPOINT_FILE)
    return sha256_file(file) if file is not None and file.is_file() else None


def augmentation_sha256(recipe: Recipe, data_root: Path | None) -> str | None:
    """Content hash of the noise and impulse-response folders a recipe reads."""
    spec = recipe.augmentation
    if spec is None:
        return None
    digest = hashlib.sha256()
    for part in (spec.noise, spec.impulse_response):
        if part is None:
            continue
        folder = data_path(part.path, data_root)
        digest.update(tree_sha256(folder).encode() if folder.is_dir() else b"missing")
    return digest.hexdigest()[:16]


def plda_identity(recipe: Recipe) -> str | None:
    """What a VBx pipeline's PLDA is, for the identity: the estimator (``train``: the split's
    train data is the fingerprint's), or a local folder's content; a hub PLDA is its id in the
    recipe hash, as hub models are."""
    spec = recipe.pipeline
    if spec is None or spec.plda is None:
        return None
    from bench.evaluation import plda  # numpy and scipy: only a run with VBx gets here

    if spec.plda == "train":
        return f"estimated:{plda.ESTIMATOR}"
    folder = Path(spec.plda).expanduser()
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for name in plda.FILES:
        file = folder / name
        digest.update(f"{name}\0{sha256_file(file) if file.is_file() else '-'}\n".encode())
    return digest.hexdigest()[:16]


def identify(
    recipe: Recipe,
    fingerprint: str,
    data_root: Path | None,
    *,
    max_batches: int | None,
    world_size: int,
    precision: str | None,
) -> RunIdentity:
    """The identity of ``recipe`` (already capped and overridden) run on a split."""
    return RunIdentity(
        name=recipe.name,
        kind="recipe",
        # the seed is a field of its own, so runs that differ only in seed share a family
        recipe_hash=recipe.with_overrides(seed=0).content_hash(),
        fingerprint=fingerprint,
        seed=recipe.seed,
        epochs=recipe.epochs,
        max_batches=max_batches,
        world_size=world_size,
        global_batch=recipe.batch_size * world_size,
        precision=precision,
        init_sha256=init_sha256(recipe),
        augmentation_sha256=augmentation_sha256(recipe, data_root),
        bench_version=bench.__version__,
        # an upgrade that can change the numbers makes another experiment: re-run, not skipped
        environment=environment.digest(environment.numbers()),
        plda=plda_identity(recipe),
    )


def precision(recipe: Recipe, accelerator: str) -> str:
    """Lightning precision: "auto" is 32-bit on CPU and 16-bit mixed on GPU.

    Under mixed precision only the model's forward runs in autocast: its final activation, the
    losses and the validation metrics run in float32 (see :mod:`bench.training.losses`).
    """
    if recipe.precision == "auto":
        return "16-mixed" if accelerator == "gpu" else "32-true"
    if recipe.precision == "16-mixed" and accelerator == "cpu":
        raise ValueError("precision '16-mixed' needs a GPU (use 'bf16-mixed' or '32' on CPU)")
    if recipe.precision == "bf16-mixed" and accelerator == "gpu":
        import torch  # only on a GPU: a CPU run resolves its identity without torch

        if not torch.cuda.is_bf16_supported(including_emulation=False):
            name = torch.cuda.get_device_name(0)
            raise ValueError(f"precision 'bf16-mixed' needs a GPU with bfloat16 ({name} has none)")
    return "32-true" if recipe.precision == "32" else recipe.precision


def identify_pipeline(spec: PretrainedPipeline, fingerprint: str, content: str) -> RunIdentity:
    """The identity of a pretrained pipeline on a split: its settings, and what it is
    (``content``: a folder's files' sha256, or a hub repository's ``id@commit``)."""
    return RunIdentity(
        name=spec.name,
        kind="pipeline",
        recipe_hash=spec.with_overrides(seed=0).content_hash(),
        fingerprint=fingerprint,
        seed=spec.seed,
        epochs=None,
        max_batches=None,
        world_size=1,
        global_batch=None,
        precision=None,
        init_sha256=content,
        augmentation_sha256=None,
        bench_version=bench.__version__,
        environment=environment.digest(environment.numbers()),
    )


def identify_nemo(
    spec: NemoRecipe,
    fingerprint: str,
    init: str,
    nemo_environment: str,
    *,
    max_batches: int | None,
) -> RunIdentity:
    """The identity of a NeMo recipe on a split: its settings, what its initial weights are
    (``init``: the ``.nemo`` file's sha256, or the stock config's for a model from scratch) and
    both environments (NeMo's trains and diarizes, bench's scores)."""
    return RunIdentity(
        name=spec.name,
        kind="nemo",
        recipe_hash=spec.with_overrides(seed=0).content_hash(),
        fingerprint=fingerprint,
        seed=spec.seed,
        epochs=spec.epochs,
        max_batches=max_batches,
        world_size=1,
        global_batch=spec.batch_size,
        precision="32-true",
        init_sha256=init,
        augmentation_sha256=None,
        bench_version=bench.__version__,
        environment=environment.digest(environment.numbers()),
        nemo_environment=nemo_environment,
    )
