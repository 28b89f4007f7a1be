"""GPU check: every recipe trains one epoch on the GPU in each precision, measured.

Three parts, each printed as a table and written to ``OUT/gpu_check.md`` and ``.json``:

1. recipes: every recipe for 1 epoch of at most ``--max-batches`` batches, through ``bench run``,
   in ``32``, ``16-mixed`` and ``bf16-mixed`` (``bench run --precision``, recorded as an override);
2. ddp: one run of ``--ddp-recipe`` on 2 processes (``--devices 2 --strategy ddp``) when two GPUs
   are present (or ``--ddp on``);
3. loader: ``--loader-recipe`` in its real shape (batch x chunk duration, no demo caps) for each
   ``--workers`` value: steady samples/s and GPU utilisation, to choose the data-loading defaults.

Columns: status, seconds per epoch (training, without validation, when the result records
bench's throughput; otherwise the whole train stage, marked ~), samples/s, peak GPU memory
(torch's allocator when known, else nvidia-smi's used memory above the idle level) and mean GPU
utilisation (nvidia-smi, sampled every 250 ms, over the training window).

On a machine without CUDA, ``--device cuda`` (the default) refuses with exit status 2;
``--device cpu`` is a dry mode that runs the same code paths on the CPU (16-mixed is skipped:
it needs a GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = str(Path(sys.executable).parent / "bench")  # the venv's console script
TAGS = {"32": "fp32", "16-mixed": "fp16", "bf16-mixed": "bf16", "auto": "auto"}


# --- GPU sampling ------------------------------------------------------------------------------


class GpuSampler:
    """Polls ``nvidia-smi`` every ``interval`` seconds in a background thread (nothing without
    it); ``window`` summarises the samples between two ``time.time()`` instants."""

    QUERY = ("--query-gpu=index,utilization.gpu,memory.used", "--format=csv,noheader,nounits")

    def __init__(self, interval: float = 0.25):
        self.interval = interval
        self.rows: list[tuple[float, int, float, float]] = []  # time, gpu, util %, MiB used
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()

    def __enter__(self) -> GpuSampler:
        if shutil.which("nvidia-smi"):
            self.thread = threading.Thread(target=self._poll, daemon=True)
            self.thread.start()
            time.sleep(1.0)  # a few idle samples: the memory baseline
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=10)

    def _poll(self) -> None:
        while not self.stop.is_set():
            stamp = time.time()
            try:
                out = subprocess.run(
                    ["nvidia-smi", *self.QUERY], capture_output=True, text=True, timeout=5
                ).stdout
            except (OSError, subprocess.SubprocessError):
                out = ""
            self.rows += parse_smi(out, stamp)
            self.stop.wait(self.interval)

    def window(self, start: float, end: float, gpus: int = 1) -> dict[str, float | None]:
        return gpu_window(list(self.rows), start, end, gpus)


def parse_smi(text: str, stamp: float) -> list[tuple[float, int, float, float]]:
    """``index, utilization.gpu, memory.used`` CSV lines (no header, no units) as rows."""
    rows = []
    for line in text.splitlines():
        try:
            index, util, memory = (float(p) for p in line.split(","))
        except ValueError:
            continue  # "[N/A]" or a malformed line
        rows.append((stamp, int(index), util, memory))
    return rows


def gpu_window(
    rows: list[tuple[float, int, float, float]], start: float, end: float, gpus: int = 1
) -> dict[str, float | None]:
    """Mean utilisation (%) and peak memory above each GPU's idle level (MiB) over the samples
    of GPUs ``0..gpus-1`` taken between ``start`` and ``end``; None without samples."""
    rows = [r for r in rows if r[1] < gpus]
    inside = [r for r in rows if start <= r[0] <= end]
    if not inside:
        return {"util": None, "memory": None}
    idle = {i: min((r[3] for r in rows if r[1] == i), default=0.0) for i in range(gpus)}
    util = sum(r[2] for r in inside) / len(inside)
    memory = max(r[3] - idle[r[1]] for r in inside)
    return {"util": round(util, 1), "memory": round(memory, 1)}


# --- one row of the report ---------------------------------------------------------------------


@dataclass
class Row:
    part: str
    recipe: str
    precision: str
    status: str
    detail: str = ""
    batch: int | None = None
    devices: int = 1
    workers: int | None = None
    seconds_per_epoch: float | None = None
    seconds_exact: bool = False
    samples_per_second: float | None = None
    peak_memory_mib: float | None = None
    util: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def cells(self) -> list[str]:
        def num(value: float | None, fmt: str) -> str:
            return "-" if value is None else format(value, fmt)

        seconds = num(self.seconds_per_epoch, ".2f")
        if self.seconds_per_epoch is not None and not self.seconds_exact:
            seconds = "~" + seconds
        return [
            self.part,
            self.recipe,
            self.precision,
            "-" if self.workers is None else str(self.workers),
            f"{self.batch or '-'} x {self.devices}",
            self.status,
            seconds,
            num(self.samples_per_second, ".1f"),
            num(self.peak_memory_mib, ".0f"),
            num(self.util, ".0f"),
            self.detail[:80],
        ]


HEADER = [
    "part",
    "recipe",
    "precision",
    "workers",
    "batch x devices",
    "status",
    "s/epoch",
    "samples/s",
    "peak MiB",
    "GPU util %",
    "detail",
]


def table(rows: list[Row]) -> str:
    """A markdown table (also readable as plain text)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in r.cells()) + " |" for r in rows]
    return "\n".join(lines)


# --- recipes through `bench run` ---------------------------------------------------------------


def recipe_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files += sorted(path.glob("*.py")) if path.is_dir() else [path]
    return files


def run_logged(command: list[str], log: Path, timeout: float) -> int | None:
    """Run ``command`` with its output in ``log``; its exit code, or None past ``timeout`` s."""
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(log, "w") as out:
            return subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, timeout=timeout
            ).returncode
    except subprocess.TimeoutExpired:
        return None


def bench_run(
    args: argparse.Namespace,
    sampler: GpuSampler,
    recipe: Path,
    precision: str,
    part: str,
    extra: list[str] | None = None,
    devices: int = 1,
) -> Row:
    """One ``bench run --precision`` of ``recipe``, measured."""
    tag = f"{recipe.stem}-{TAGS[precision]}" + (f"-ddp{devices}" if devices > 1 else "")
    row = Row(part, recipe.stem, precision, "failed", devices=devices)
    if precision == "16-mixed" and args.device == "cpu":
        row.status, row.detail = "skipped", "16-mixed needs a GPU"
        return row
    results = args.out / "results" / tag
    shutil.rmtree(results, ignore_errors=True)
    command = [
        BENCH,
        "run",
        str(recipe),
        "--precision",
        precision,
        "--device",
        args.device,
        "--epochs",
        "1",
        "--max-batches",
        str(args.max_batches),
        "--no-pipeline",
        "--no-wandb",
        "--no-progress",
        "--force",
        "--results",
        str(results),
        *(["--data", str(args.data)] if args.data else []),
        *(["--cache", str(args.cache)] if args.cache else []),
        *(extra or []),
    ]
    log = args.out / "logs" / f"{tag}.log"
    start = time.time()
    code = run_logged(command, log, args.timeout)
    if code is None:
        row.status, row.detail = "timeout", f"over {args.timeout} s; log {log}"
        return row
    end = time.time()
    found = sorted(results.glob("**/*.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        tail = log.read_text().strip().splitlines()[-1:] or [""]
        row.detail = f"exit {code}, no result: {tail[0]}"
        return row
    result = json.loads(found[-1].read_text())
    row.status = result.get("status", "?")
    error = result.get("error") or {}
    row.detail = error.get("message", "") if isinstance(error, dict) else str(error)
    resolved = result.get("recipe") or {}
    row.batch = resolved.get("batch_size")
    measure(row, result, sampler, start, end, devices)
    return row


def measure(
    row: Row, result: dict, sampler: GpuSampler, start: float, end: float, devices: int
) -> None:
    """Seconds, samples/s and peak memory from the result; utilisation from the sampler over
    the train stage (located from the result's ``finished`` time and stage durations)."""
    stages = result.get("wall_time") or {}
    speed = result.get("throughput") or []
    if speed:  # bench's Throughput rows (training only, validation excluded)
        row.seconds_per_epoch = sum(r["seconds"] for r in speed) / len(speed)
        row.seconds_exact = True
        row.samples_per_second = speed[-1].get("samples_per_second")
        row.peak_memory_mib = speed[-1].get("peak_gpu_memory_mib")
    elif "train" in stages and result.get("epochs"):
        row.seconds_per_epoch = stages["train"] / len(result["epochs"])
        batches = ((result.get("overrides") or {}).get("max_batches") or {}).get("ran")
        if batches and row.batch:
            row.samples_per_second = batches * row.batch * devices / row.seconds_per_epoch
    window = (start, end)
    finished = result.get("finished")
    if finished and "train" in stages:
        after = sum(stages.get(k, 0.0) for k in ("test", "pipeline"))
        stop = datetime.fromisoformat(finished).timestamp() - after
        window = (stop - stages["train"], stop)
    gpu = sampler.window(*window, gpus=devices)
    row.util = gpu["util"]
    if row.peak_memory_mib is None:
        row.peak_memory_mib = gpu["memory"]


# --- data loading sweep, in the recipe's real shape --------------------------------------------


def loader_child(args: argparse.Namespace) -> None:
    """One loader measurement, run in its own process; prints one JSON line."""
    from lightning.pytorch.callbacks import Callback

    from bench.data import load_folder
    from bench.demo import ensure_demo
    from bench.io import cache_root
    from bench.recipe import load_recipe
    from bench.results.identity import precision
    from bench.training.assemble import assemble
    from bench.training.fit import fit

    class Window(Callback):
        """Wall-clock window of the steady training batches (after the first)."""

        def __init__(self) -> None:
            self.start: float | None = None
            self.end: float | None = None

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if self.start is None:
                self.start = time.time()
            else:
                self.end = time.time()

    cache = cache_root(args.cache)
    root = Path(args.data) if args.data else ensure_demo(cache)
    split = load_folder(root)
    changes: dict[str, Any] = {"num_workers": args.loader_workers, "epochs": 1, "pipeline": None}
    if args.loader_batch_size:
        changes["batch_size"] = args.loader_batch_size
    if args.loader_duration:
        changes["duration"] = args.loader_duration
    recipe = load_recipe(args.loader_recipe).with_overrides(**changes)
    model = assemble(recipe, split, cache).model  # as `bench run` builds it
    window = Window()
    accelerator = "gpu" if args.device == "cuda" else "cpu"
    run_dir = args.out / "loader" / f"w{args.loader_workers}"
    shutil.rmtree(run_dir, ignore_errors=True)
    fitted = fit(
        recipe,
        model,
        run_dir,
        accelerator,
        [],
        progress=False,
        max_batches=args.loader_batches,
        extra_callbacks=[window],
    )
    speed = fitted.throughput[-1] if fitted.throughput else {}
    print(
        "GPU_CHECK "
        + json.dumps(
            {
                "batch": recipe.batch_size,
                "precision": precision(recipe, accelerator),
                "duration": recipe.duration,
                "pin_memory": model.task.pin_memory,
                "throughput": speed,
                "window": [window.start, window.end],
            }
        )
    )


def loader_run(args: argparse.Namespace, sampler: GpuSampler, workers: int) -> Row:
    """One loader measurement (``loader_child`` in a fresh process), with GPU utilisation over
    its steady training batches."""
    row = Row("loader", Path(args.loader_recipe).stem, "auto", "failed", workers=workers)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--loader-child",
        "--loader-workers",
        str(workers),
        *args.argv,
    ]
    log = args.out / "logs" / f"loader-w{workers}.log"
    code = run_logged(command, log, args.timeout)
    if code is None:
        row.status, row.detail = "timeout", f"over {args.timeout} s; log {log}"
        return row
    lines = [x for x in log.read_text().splitlines() if x.startswith("GPU_CHECK ")]
    if code != 0 or not lines:
        tail = log.read_text().strip().splitlines()[-1:] or [""]
        row.detail = f"exit {code}: {tail[0]}"
        return row
    report = json.loads(lines[-1].removeprefix("GPU_CHECK "))
    speed = report["throughput"]
    row.status = "ok"
    row.batch = report["batch"]
    row.precision = report["precision"]
    row.seconds_per_epoch = speed.get("seconds")
    row.seconds_exact = True
    steady = speed.get("steady_samples_per_second")  # after the first batch (worker start-up)
    row.samples_per_second = steady or speed.get("samples_per_second")
    row.peak_memory_mib = speed.get("peak_gpu_memory_mib")
    start, end = report["window"]
    if start is not None and end is not None:
        row.util = sampler.window(start, end)["util"]
    row.detail = f"{report['duration']:g} s chunks, pin_memory={report['pin_memory']}" + (
        ", samples/s after the first batch" if steady else ""
    )
    return row


# --- main --------------------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--recipes", type=Path, nargs="+", default=[ROOT / "recipes"])
    parser.add_argument("--precisions", default="32,16-mixed,bf16-mixed")
    parser.add_argument("--max-batches", type=int, default=10)
    parser.add_argument("--data", type=Path, help="dataset folder (default: the demo, capped)")
    parser.add_argument("--cache", type=Path, help="bench cache folder (default: bench's)")
    parser.add_argument("--out", type=Path, default=ROOT / "gpu-check")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per run")
    parser.add_argument("--skip-recipes", action="store_true")
    parser.add_argument("--ddp", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--ddp-recipe", type=Path, default=ROOT / "recipes/nadam_cosine_tversky.py")
    parser.add_argument("--workers", default="0,2,4,8", help="loader sweep ('' to skip)")
    parser.add_argument(
        "--loader-recipe", type=Path, default=ROOT / "recipes/nadam_cosine_tversky.py"
    )
    parser.add_argument("--loader-batches", type=int, default=30)
    parser.add_argument("--loader-batch-size", type=int, help="default: the recipe's (64)")
    parser.add_argument("--loader-duration", type=float, help="default: the recipe's (10 s)")
    parser.add_argument("--loader-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--loader-workers", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.out = args.out.resolve()
    args.argv = list(argv)
    return args


def gpu_count(device: str) -> int:
    """Visible CUDA devices; exits with status 2 when ``--device cuda`` has none."""
    import torch

    if device == "cpu":
        return 0
    if not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device is visible (torch.cuda.is_available() is False); "
            "run it on a machine with a GPU, or use --device cpu for a dry run",
            file=sys.stderr,
        )
        raise SystemExit(2)
    count = torch.cuda.device_count()
    names = ", ".join(torch.cuda.get_device_name(i) for i in range(count))
    print(f"gpu_check: {count} GPU(s): {names}; torch {torch.__version__}", flush=True)
    return count


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.loader_child:
        loader_child(args)
        return 0
    gpus = gpu_count(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    precisions = [p for p in args.precisions.split(",") if p]
    unknown = set(precisions) - {"32", "16-mixed", "bf16-mixed"}
    if unknown:
        print(f"gpu_check: unknown precision(s) {sorted(unknown)}", file=sys.stderr)
        return 2
    rows: list[Row] = []

    def report(row: Row) -> None:
        rows.append(row)
        print(" | ".join(row.cells()), flush=True)

    print(" | ".join(HEADER), flush=True)
    with GpuSampler() as sampler:
        if not args.skip_recipes:
            for recipe in recipe_files(args.recipes):
                for precision in precisions:
                    report(bench_run(args, sampler, recipe, precision, "recipes"))
        if args.ddp == "on" or (args.ddp == "auto" and gpus >= 2):
            extra = ["--devices", "2", "--strategy", "ddp"]
            report(bench_run(args, sampler, args.ddp_recipe, "auto", "ddp", extra, devices=2))
        for workers in [int(w) for w in args.workers.split(",") if w.strip()]:
            report(loader_run(args, sampler, workers))
    text = table(rows)
    samples = "\n".join(",".join(str(x) for x in r) for r in sampler.rows)
    (args.out / "nvidia-smi.csv").write_text("time,gpu,util,memory_mib\n" + samples + "\n")
    (args.out / "gpu_check.md").write_text(text + "\n")
    (args.out / "gpu_check.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    print("\n" + text)
    print(f"\ngpu_check: tables in {args.out}/gpu_check.md and .json; logs in {args.out}/logs")
    failed = [r for r in rows if r.status not in {"ok", "skipped"}]
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("WANDB_MODE", "disabled")
    sys.exit(main(sys.argv[1:]))
