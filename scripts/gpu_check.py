"""GPU check: every recipe trains one epoch on the GPU in each precision, measured, then bench at
scale (``scripts/scale.py``) on the same machine.

Five parts, printed as tables and written to ``OUT/gpu_check.md`` (headed with the card's name
and the date: the table that goes into docs/gpu.md) and ``.json``:

1. recipes: every recipe for 1 epoch of at most ``--max-batches`` batches, through ``bench run``,
   in ``32``, ``16-mixed`` and ``bf16-mixed`` (``bench run --precision``, recorded as an override);
2. ddp: one run of ``--ddp-recipe`` on 2 processes (``--devices 2 --strategy ddp``) when two GPUs
   are present (or ``--ddp on``);
3. train: ``scale.py train`` in the recipes' real shape (batch 64 x 10 s) on a synthetic corpus
   of ``--train-hours`` (or ``--data``), for each ``--workers`` value, pinned and not: bench's
   data path against pyannote's, the bare forward + backward + step floor, bench's loop, and GPU
   utilisation over the floor and the loop (to choose the data-loading defaults);
4. pipeline: ``scale.py pipeline`` on one ``--pipeline-minutes`` file, the plain embedding path
   and bench's padded CAM++ batches of each ``--embedding-batches`` size: seconds per hour,
   per stage, peak memory, same output checked;
5. matrix: the recipes in one ``bench run`` with each ``--matrix-jobs`` value, every job sharing
   the one GPU: wall time of the whole matrix.

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


# --- scale: training in the real shape, a long file, the matrix on one device -------------------


def scale_module():
    """``scripts/scale.py`` (beside this file) as a module."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import scale

    return scale


def scale_args(args: argparse.Namespace, **changes: Any) -> argparse.Namespace:
    """The namespace ``scale.py``'s parts read, from the GPU check's options."""
    out = args.out / "scale"
    return argparse.Namespace(
        out=out, device=args.device, data=args.data, hours=args.train_hours, **changes
    )


def train_rows(args: argparse.Namespace, sampler: GpuSampler) -> tuple[list[Row], str]:
    """``scale.py train`` for each ``--workers`` value, pinned and not on a GPU: the data path
    against pyannote's, the floor, the loop, and GPU utilisation over the floor and the loop."""
    scale = scale_module()
    rows: list[Row] = []
    cells: list[list[Any]] = []
    data = scale.corpus(scale_args(args))
    pins = (True, False) if args.device == "cuda" else (False,)
    for workers in [int(w) for w in args.workers.split(",") if w.strip()]:
        for pin in pins:
            row = Row("train", Path(scale.SCALE_RECIPE).stem, "auto", "failed", workers=workers)
            try:
                report = scale.child(
                    "train", data=str(data), cache=str(args.out / "scale" / "cache"),
                    out=str(args.out / "scale"), device=args.device, batches=args.train_batches,
                    workers=workers, batch_size=args.train_batch_size,
                    duration=args.train_duration, pin_memory=pin,
                )  # fmt: skip
            except RuntimeError as error:
                row.detail = str(error)[-300:]
                rows.append(row)
                continue
            floor = sampler.window(*report["floor_window"])["util"]
            loop = sampler.window(*report["loop_window"])["util"] if report["loop_window"] else None
            busy = "/".join("-" if u is None else f"{u:.0f}" for u in (floor, loop))
            cells.append(scale.train_cells(report, busy))
            row.status, row.precision, row.batch = "ok", report["precision"], report["batch"]
            row.samples_per_second = report["loop_samples_per_second"]
            row.peak_memory_mib = report.get("loop_peak_gpu_mib")
            row.util = loop
            row.detail = (
                f"pin_memory={report['pin_memory']}, loop {report['loop_to_floor']}x the floor, "
                + (
                    f"data path {report['data_speedup']}x pyannote's"
                    if report["data_speedup"]
                    else f"pyannote's data path: {report.get('data_pyannote_unavailable')}"
                )
            )
            row.extra = report
            rows.append(row)
    return rows, scale.markdown(scale.TRAIN_HEADER, cells)


def pipeline_rows(args: argparse.Namespace) -> tuple[list[Row], str]:
    """``scale.py pipeline`` on one ``--pipeline-minutes`` file: the plain embedding path and
    bench's for each ``--embedding-batches`` size."""
    scale = scale_module()
    sizes = [int(b) for b in args.embedding_batches.split(",") if b.strip()]
    namespace = scale_args(
        args, minutes=args.pipeline_minutes, embedding_batches=sizes, segmentation_batch=32
    )
    try:
        found = scale.part_pipeline(namespace)
    except RuntimeError as error:
        return [Row("pipeline", "segmentation-3.0+campplus", "32", "failed", str(error))], ""
    rows = []
    for r in found:
        row = Row("pipeline", f"{r['side']} (batch {r['embedding_batch']})", "32", "ok")
        row.seconds_per_epoch = r["total_s"]
        row.peak_memory_mib = r["peak_gpu_mib"]
        row.detail = f"{r['s_per_hour']} s per hour, {r['speedup']}x plain" + (
            "" if r["same_output"] else f", DER {r['der_to_plain']:.1e} from plain"
        )
        row.extra = r
        rows.append(row)
    return rows, (namespace.out / "scale-pipeline.md").read_text()


def matrix_rows(args: argparse.Namespace, sampler: GpuSampler) -> list[Row]:
    """The recipes as one ``bench run`` with ``--jobs 1`` and with each larger ``--matrix-jobs``
    value, every job on the same device: wall time of the whole matrix, and its speed-up."""
    recipes = recipe_files(args.recipes)
    data = args.data or scale_module().corpus(scale_args(args))  # the synthetic corpus
    rows: list[Row] = []
    first: float | None = None
    for jobs in [int(j) for j in args.matrix_jobs.split(",") if j.strip()]:
        row = Row("matrix", f"{len(recipes)} recipes", "auto", "failed", workers=None)
        results = args.out / "matrix" / f"jobs{jobs}"
        shutil.rmtree(results, ignore_errors=True)
        command = [
            BENCH, "run", *map(str, recipes), "--device", args.device, "--jobs", str(jobs),
            "--epochs", str(args.matrix_epochs), "--max-batches", str(args.max_batches),
            *([] if args.matrix_pipeline else ["--no-pipeline"]),
            "--no-wandb", "--no-progress", "--force", "--results", str(results),
            "--data", str(data),
            *(["--cache", str(args.cache)] if args.cache else []),
        ]  # fmt: skip
        start = time.time()
        code = run_logged(command, args.out / "logs" / f"matrix-jobs{jobs}.log", args.timeout)
        end = time.time()
        found = [json.loads(p.read_text()) for p in results.glob("*.json")]
        ok = sum(1 for r in found if r.get("status") == "ok")
        row.seconds_per_epoch = round(end - start, 1)  # here: the whole matrix
        row.seconds_exact = True
        first = first or row.seconds_per_epoch
        row.util = sampler.window(start, end)["util"]
        row.peak_memory_mib = sampler.window(start, end)["memory"]
        row.status = "ok" if code == 0 and ok == len(recipes) else "failed"
        row.detail = (
            f"--jobs {jobs}: {ok}/{len(recipes)} ok, {row.seconds_per_epoch:.0f} s for the matrix, "
            f"{first / row.seconds_per_epoch:.2f}x --jobs 1"
        )
        row.extra = {"jobs": jobs, "wall_s": row.seconds_per_epoch, "exit": code}
        rows.append(row)
    return rows


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
    parser.add_argument(
        "--workers", default="0,2,4,8", help="train part: num_workers sweep ('' to skip)"
    )
    parser.add_argument("--train-hours", type=float, default=2.0, help="synthetic corpus (h)")
    parser.add_argument("--train-batches", type=int, default=20, help="measured batches a phase")
    parser.add_argument("--train-batch-size", type=int, help="default: the recipe's (64)")
    parser.add_argument("--train-duration", type=float, help="default: the recipe's (10 s)")
    parser.add_argument(
        "--pipeline-minutes", type=float, default=60.0, help="long file (0 to skip)"
    )
    parser.add_argument("--embedding-batches", default="8,16,32,64", help="padded CAM++ batches")
    parser.add_argument("--matrix-jobs", default="1,2,4", help="matrix part ('' to skip)")
    parser.add_argument("--matrix-epochs", type=int, default=1)
    parser.add_argument(
        "--matrix-pipeline", action="store_true", help="matrix runs tune the pipeline too"
    )
    args = parser.parse_args(argv)
    args.out = args.out.resolve()
    args.argv = list(argv)
    return args


def machine(device: str) -> str:
    """The heading of the report: the device(s), torch, the date."""
    import torch

    if device == "cuda":
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    else:
        names = f"CPU only ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    return f"# GPU check: {names}; torch {torch.__version__}; {datetime.now():%Y-%m-%d %H:%M}"


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
        scale_tables = []
        if args.workers.strip():
            found, text = train_rows(args, sampler)
            for row in found:
                report(row)
            scale_tables.append("## Training in the real shape\n\n" + text)
        if args.pipeline_minutes > 0:
            found, text = pipeline_rows(args)
            for row in found:
                report(row)
            scale_tables.append("## One long file\n\n" + text)
        if args.matrix_jobs.strip():
            for row in matrix_rows(args, sampler):
                report(row)
    text = "\n\n".join([machine(args.device), table(rows), *scale_tables])
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
