"""Which accelerator a run uses, decided without importing torch where the machine has no GPU
(so a finished run is skipped quickly), and how the record describes it."""

from __future__ import annotations

import os
from typing import Any

# device nodes of NVIDIA (CUDA) and AMD (ROCm) drivers: without any, torch sees no GPU either
GPU_DEVICE_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd")


def choose_accelerator(device: str) -> str:
    """``gpu`` or ``cpu``. A machine without GPU device nodes is a CPU one without asking torch,
    so that a finished run is skipped without importing it."""
    if device == "cpu" or (device == "auto" and not any(map(os.path.exists, GPU_DEVICE_NODES))):
        return "cpu"
    import torch

    if device == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    if device in {"cuda", "gpu"}:
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available")
        return "gpu"
    if device != "cpu":
        raise ValueError(f"--device {device!r}: expected auto, cpu or cuda")
    return "cpu"


def device_description(acc: str) -> dict[str, Any]:
    """What a record says of its device: the GPU's name, or CPU threads and cores."""
    import torch

    if acc == "gpu":
        return {"accelerator": "cuda", "name": torch.cuda.get_device_name(0)}
    return {"accelerator": "cpu", "threads": torch.get_num_threads(), "cores": os.cpu_count()}


def _cgroup() -> tuple[int, int] | None:
    """This process's cgroup (v2) memory limit and use, when it has a limit."""
    try:
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
        used = int(open("/sys/fs/cgroup/memory.current").read())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else (int(limit), used)


def _meminfo() -> dict[str, int]:
    """``/proc/meminfo``'s fields in bytes (empty where it cannot be read)."""
    found: dict[str, int] = {}
    try:
        for line in open("/proc/meminfo"):
            name, value = line.split(":", 1)
            found[name] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return found


def available_memory(acc: str, sharing: int = 1) -> tuple[int | None, str]:
    """Bytes a run can still use on its device, and what they are (None: unknown). CPU: the
    kernel's MemAvailable, or the cgroup's room when smaller; GPU: the device's free memory.

    ``sharing`` runs at once on the device (``bench run --jobs``) each get at most their share
    of its total: each checks before it starts, so free memory alone would let every one of
    them count what the others are about to take."""
    if acc == "gpu":
        import torch

        free, total = torch.cuda.mem_get_info()
        have: int | None = free
        where = f"the GPU ({torch.cuda.get_device_name(0)})"
    else:
        info = _meminfo()
        have, total, where = info.get("MemAvailable"), info.get("MemTotal"), "this machine"
        cgroup = _cgroup()
        if cgroup is not None and (have is None or cgroup[0] - cgroup[1] < have):
            have, total = max(0, cgroup[0] - cgroup[1]), cgroup[0]
            where = "this process's memory limit (cgroup)"
    if sharing > 1 and have is not None and total:
        have = min(have, total // sharing)
        where += f" (a 1/{sharing} share: {sharing} runs use it at once)"
    return have, where
