"""Running recipes: what a run was asked (:mod:`.options`), where it runs (:mod:`.device`),
what it prints (:mod:`.console`), its named stages (:mod:`.stages`) and their end
(:mod:`.recording`), many runs and their summary (:mod:`.matrix`); ``--dry-run``
(:mod:`.dryrun`) and W&B (:mod:`.tracking`) are imported on use. Nothing here imports torch,
so a finished run is skipped quickly."""

from __future__ import annotations

from bench.runner.active import ActiveRun
from bench.runner.console import (
    Reporter,
    quiet_known_warnings,
)
from bench.runner.device import (
    GPU_DEVICE_NODES,
    choose_accelerator,
    device_description,
)
from bench.runner.matrix import (
    Job,
    Returned,
    pack_result,
    parse_seeds,
    plan,
    run_jobs,
    run_on_ray,
    summary,
    unpack_result,
)
from bench.runner.options import (
    DEMO_BATCH_DIVISOR,
    DEMO_PROFILE,
    OOD_DEMO,
    RunOptions,
    check_writable,
    demo_caps,
    effective_recipe,
    extra_splits,
    load_extra_split,
    resolve_split,
)
from bench.runner.recording import (
    add_also_test,
    record,
    record_failure,
    write_hypotheses,
)
from bench.runner.stages import (
    Diverged,
    RunFailed,
    announce,
    assemble,
    check_divergence,
    evaluate,
    existing_result,
    pipeline,
    resolve,
    run_lock,
    run_recipe,
    train,
)
from bench.runner.state import RunState

__all__ = [
    "DEMO_BATCH_DIVISOR",
    "DEMO_PROFILE",
    "GPU_DEVICE_NODES",
    "OOD_DEMO",
    "ActiveRun",
    "Diverged",
    "Job",
    "Reporter",
    "Returned",
    "RunFailed",
    "RunOptions",
    "RunState",
    "add_also_test",
    "announce",
    "assemble",
    "check_divergence",
    "check_writable",
    "choose_accelerator",
    "demo_caps",
    "device_description",
    "effective_recipe",
    "evaluate",
    "existing_result",
    "extra_splits",
    "load_extra_split",
    "pack_result",
    "parse_seeds",
    "pipeline",
    "plan",
    "quiet_known_warnings",
    "record",
    "record_failure",
    "resolve",
    "resolve_split",
    "run_jobs",
    "run_lock",
    "run_on_ray",
    "run_recipe",
    "summary",
    "train",
    "unpack_result",
    "write_hypotheses",
]
