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


def _cgroup_room() -> int | None:
    """Bytes this process's cgroup (v2) may still take, when it has a limit."""
    try:
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
        used = int(open("/sys/fs/cgroup/memory.current").read())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(0, int(limit) - used)


def available_memory(acc: str) -> tuple[int | None, str]:
    """Bytes a run can still use on its device, and what they are (None: unknown). CPU: the
    kernel's MemAvailable, or the cgroup's room when smaller; GPU: the device's free memory."""
    if acc == "gpu":
        import torch

        free, _ = torch.cuda.mem_get_info()
        return free, f"the GPU ({torch.cuda.get_device_name(0)})"
    found = None
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                found = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    room = _cgroup_room()
    if room is not None and (found is None or room < found):
        return room, "this process's memory limit (cgroup)"
    return found, "this machine"
