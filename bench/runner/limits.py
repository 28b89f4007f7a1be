"""Limits checked before any work starts (before audio is decoded or a model trains), each refused
as a :class:`bench.recipe.FieldRefusal` naming its recipe field: a training step's memory against
the device's, and a VBx pipeline's PLDA against its embedding. (A chunk shorter than the model's
receptive field is refused in :func:`bench.training.assemble.check_chunks`; a run's precision in
:func:`bench.runner.stages.resolve`.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.recipe import FieldRefusal

if TYPE_CHECKING:
    from bench.runner.active import ActiveRun


def check_memory(run: ActiveRun) -> None:
    """Refuse, before anything is built, a batch whose training step cannot fit the device's
    available memory (:func:`bench.recipe.budget.step_memory`: an estimate, rounded up)."""
    if run.recipe.epochs == 0:
        return
    from bench.recipe.budget import STEP_BYTES_PER_CHUNK_SECOND, step_memory
    from bench.runner.device import available_memory

    need = step_memory(run.recipe)
    have, where = available_memory(run.accelerator, run.options.sharing)
    if have is not None and need > have:
        recipe = run.recipe
        raise FieldRefusal(
            ("batch_size",),
            f"a training step of {recipe.batch_size} chunks of {recipe.duration:g} s needs about "
            f"{_gib(need)} (~{STEP_BYTES_PER_CHUNK_SECOND / 2**20:g} MiB per chunk-second), and "
            f"{where} has {_gib(have)} available: lower batch_size or duration",
        )


def check_plda(run: ActiveRun) -> None:
    """Refuse, before training, a VBx pipeline whose existing PLDA (a folder, a hub pipeline's)
    cannot be had or was made for embeddings of another dimension; an estimated one is made for
    the embedding by construction (in the pipeline stage)."""
    spec = run.recipe.pipeline
    if spec is None or spec.plda is None or spec.plda == "train":
        return
    from bench.evaluation.diarize import check_plda as check
    from bench.evaluation.vbx import resolve_plda
    from bench.models import campplus
    from bench.models.embeddings import resolve_embedding

    try:
        found = resolve_plda(spec.plda, run.recipe.token_env)
        if spec.embedding.split(":")[0] == "campplus":
            dimension = campplus.EMBEDDING_DIM
        else:
            dimension = int(
                resolve_embedding(spec.embedding, token_env=run.recipe.token_env)[0].dimension
            )
        check(found, dimension, spec.embedding)
    except ValueError as error:
        raise FieldRefusal(
            ("pipeline", "plda"), str(error).removeprefix("field 'pipeline.plda': ")
        ) from None


def _gib(size: float) -> str:
    return f"{size / 2**30:,.1f} GiB"
