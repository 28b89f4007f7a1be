"""Running NeMo: bench writes a job file, starts the NeMo venv's python on
:file:`bench/nemo/worker.py` and reads back what it writes (``result.json``, the checkpoint, one
hypothesis RTTM per test file). The worker prints one JSON object a line on stdout (``start``,
``epoch``, ``done``); everything else NeMo says goes to ``nemo.log`` in the run folder.

A worker that exits 3 diverged (a non-finite loss); any other non-zero exit is a failure, named by
the worker's last line on stderr. Ctrl-C stops the worker before it is raised again, so a killed
run leaves its last checkpoint for the next attempt to resume from."""

from __future__ import annotations

import json
import os
import subprocess
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.io import atomic_write_text
from bench.nemo.environment import NemoEnvironment

WORKER = Path(__file__).with_name("worker.py")
DIVERGED = 3  # the worker's exit status for a non-finite loss
LOG = "nemo.log"


class NemoFailed(RuntimeError):
    """The worker ended without a result (its last line says why)."""


def run_worker(
    env: NemoEnvironment,
    job: dict[str, Any],
    out: Path,
    on_event: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    """Run ``job`` in the NeMo environment with ``out`` as its folder; ``on_event`` gets each
    progress event as it comes. Returns the worker's ``result.json``."""
    out.mkdir(parents=True, exist_ok=True)
    job_file = atomic_write_text(out / "job.json", json.dumps({**job, "out": str(out)}, indent=2))
    log = out / LOG
    tail: deque[str] = deque(maxlen=20)
    environ = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONNOUSERSITE": "1"}
    environ.pop("PYTHONPATH", None)  # bench's own packages must not leak into NeMo's interpreter
    with log.open("a", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            [str(env.python), str(WORKER), str(job_file)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=environ,
        )
        try:
            assert process.stdout is not None
            for line in process.stdout:
                line = line.strip()
                if not line.startswith("{"):
                    tail.append(line)
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    tail.append(line)
                    continue
                on_event(event)
            status = process.wait()
        except BaseException:  # Ctrl-C or a failing callback: the worker stops with us
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            raise
    if status != 0:
        reason = last_line(log) or (tail[-1] if tail else "") or f"exit status {status}"
        if status == DIVERGED:
            raise FloatingPointError(reason)
        raise NemoFailed(f"NeMo worker failed (exit {status}): {reason} (log: {log})")
    return json.loads((out / "result.json").read_text(encoding="utf-8"))


def last_line(log: Path) -> str:
    """The last non-empty line of the worker's stderr (its one-line reason)."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")
