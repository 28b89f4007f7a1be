"""Scale: bench measured in the shape its users run it, on CPU or GPU.

Three parts, each a table printed and written to ``OUT/scale-PART.md`` and ``.json``:

``index``
    Reading and fingerprinting a dataset folder (``bench.data.load_folder``) and building
    pyannote's training index of it (``prepare_data``) at 1, 10 and 100 hours of 10-minute files:
    seconds and peak memory, each size in a fresh process. The folders hold synthetic metadata
    (turns planned as the demo plans them, UEM) and sparse WAV files of the right length, so
    100 h needs no 11 GB of disk; the sha256 of a sparse file reads zeros from memory, so on a
    real disk hashing is bound by its read speed instead.
``train``
    Training in the recipes' real shape (batch 64 x 10 s) on a synthetic corpus
    (``python -m bench.demo DIR --hours H --file-minutes 10``): the data path per batch, bench's
    (chunks cut from the decoded, memory-mapped cache) against pyannote.audio's own (the same task
    with pyannote's ``get_file``: each chunk read from the file by pyannote's ``Audio``); a bare
    forward + loss + backward + step on batches already in memory (the floor); and bench's
    training loop (``bench.training.fit``, samples/s after the first batch). With ``--device cuda``
    each phase's peak GPU memory and its wall-clock window (for the GPU check's utilisation).
``pipeline``
    The diarization pipeline (segmentation-3.0 + CAM++, pyannote's ``SpeakerDiarization.apply``)
    on one long file: seconds per hour of audio and peak memory, per stage, bench's embedding
    (padded batches of similar lengths, fused front end) against the plain one (each item alone,
    the model as loaded), each in a fresh process, on the same file; their outputs compared.

    python scripts/scale.py index --hours 1,10,100
    python scripts/scale.py train --hours 2 --batches 6
    python scripts/scale.py pipeline --minutes 60
    python scripts/scale.py pipeline --minutes 60 --device cuda --embedding-batches 8,32,64

Exit status: 0 measured, 1 a part failed, 2 a bad option.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEN_MINUTES = 600.0
SCALE_RECIPE = ROOT / "recipes" / "nadam_cosine_tversky.py"  # batch 64 x 10 s, the real shape


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (MiB; Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def child(part: str, **kwargs: Any) -> dict[str, Any]:
    """``part``'s measurement in a fresh Python process (its own peak memory); its JSON."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", part, json.dumps(kwargs)]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [x for x in done.stdout.splitlines() if x.startswith("SCALE ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{part} {kwargs}: exit {done.returncode}: {' / '.join(tail)}")
    return json.loads(lines[-1].removeprefix("SCALE "))


def markdown(header: list[str], rows: list[list[Any]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write(out: Path, part: str, text: str, data: Any) -> None:
    """``OUT/scale-PART.md`` and ``.json``; the table printed."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"scale-{part}.md").write_text(text + "\n")
    (out / f"scale-{part}.json").write_text(json.dumps(data, indent=1) + "\n")
    print(text, flush=True)


# --- index -------------------------------------------------------------------------------------


def wav_header(samples: int, sample_rate: int = 16000) -> bytes:
    """The 44-byte header of a 16-bit mono PCM WAV file of ``samples`` samples."""
    data = 2 * samples
    return (
        b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, 2 * sample_rate, 2, 16)
        + b"data" + struct.pack("<I", data)
    )  # fmt: skip


def synthetic_folder(root: Path, hours: float, file_seconds: float = TEN_MINUTES) -> Path:
    """A dataset folder of ``hours`` in ``file_seconds`` files (4 : 1 : 1), metadata only: the
    demo's turn planner without audio, UEM, and sparse WAV files that differ in their first
    samples (so no two files are the same audio). Kept when already complete."""
    import numpy as np

    from bench.data import SAMPLE_RATE, rttm_line
    from bench.demo.generate import scaled_sizes
    from bench.demo.mix import plan_conversation
    from bench.demo.voices import SENTENCES, SUBSET_SPEAKERS

    if (root / "COMPLETE").is_file():
        return root
    sizes = scaled_sizes(hours, file_seconds / 60)
    sr = SAMPLE_RATE
    samples = round(file_seconds * SAMPLE_RATE)
    for k, (subset, count) in enumerate(sizes.items()):
        uris = [f"synthetic_{subset}_{i:04d}" for i in range(count)]
        for folder in ("wav", "rttm", "uem"):
            (root / subset / folder).mkdir(parents=True, exist_ok=True)
        pool = SUBSET_SPEAKERS[subset]
        for i, uri in enumerate(uris):
            rng = np.random.default_rng([7, k, i])
            speakers = tuple(pool[j] for j in sorted(rng.choice(len(pool), 3, replace=False)))
            # every (speaker, sentence) its own length, 1-4 s, as synthesis would give
            seconds = rng.uniform(1.0, 4.0, (len(pool), len(SENTENCES)))
            index = {s.name: j for j, s in enumerate(pool)}
            turns = plan_conversation(
                rng,
                speakers,
                samples,
                lambda speaker, i, table=seconds, at=index: int(table[at[speaker.name], i] * sr),
            )
            (root / subset / "rttm" / f"{uri}.rttm").write_text(
                "".join(
                    rttm_line(uri, t.start / sr, (t.end - t.start) / sr, t.speaker) for t in turns
                )
            )
            (root / subset / "uem" / f"{uri}.uem").write_text(f"{uri} 1 0.000 {file_seconds:.3f}\n")
            with open(root / subset / "wav" / f"{uri}.wav", "wb") as wav:
                wav.write(wav_header(samples) + struct.pack("<4H", k + 1, i % 65536, i // 65536, 1))
                wav.truncate(44 + 2 * samples)  # the rest: a hole of zeros
        (root / f"{subset}.txt").write_text("".join(u + "\n" for u in uris))
    (root / "COMPLETE").write_text(json.dumps(sizes) + "\n")
    return root


def index_child(folder: str, cache: str) -> dict[str, Any]:
    """Time and peak memory of reading + fingerprinting ``folder`` and of pyannote's index."""
    from bench.data import load_folder
    from bench.data.audio import AudioCache
    from bench.io import sha256_file
    from bench.recipe import load_recipe
    from bench.training.task import BenchDiarization, BenchProtocol

    base = peak_rss_mib()
    start = time.perf_counter()
    split = load_folder(folder)
    read = time.perf_counter() - start
    after_read = peak_rss_mib()
    start = time.perf_counter()
    for subset in split.recordings:
        for rec in split.files(subset):
            sha256_file(rec.audio)
    hashing = time.perf_counter() - start
    recipe = load_recipe(SCALE_RECIPE)
    index = Path(cache) / f"{split.fingerprint}.npz"
    index.unlink(missing_ok=True)
    task = BenchDiarization(BenchProtocol(split), recipe, AudioCache(Path(cache) / "audio"), index)
    start = time.perf_counter()
    task.prepare_data()
    indexed = time.perf_counter() - start
    hours = sum(r.duration for s in split.recordings for r in split.files(s)) / 3600
    turns = sum(len(r.annotation) for s in split.recordings for r in split.files(s))
    return {
        "hours": round(hours, 2),
        "files": sum(len(split.files(s)) for s in split.recordings),
        "turns": turns,
        "read_fingerprint_s": round(read, 3),
        "hash_again_s": round(hashing, 3),
        "gib": round(
            sum(r.audio.stat().st_size for s in split.recordings for r in split.files(s)) / 2**30, 2
        ),
        "index_s": round(indexed, 3),
        "index_mib": round(index.stat().st_size / 2**20, 2),
        "rss_before_mib": base,
        "rss_after_read_mib": after_read,
        "peak_rss_mib": peak_rss_mib(),
    }


def part_index(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each ``--hours`` size: synthetic metadata, then its reading and index in a fresh process."""
    rows = []
    for hours in args.hours:
        folder = synthetic_folder(args.out / "synthetic" / f"{hours:g}h", hours)
        rows.append(child("index", folder=str(folder), cache=str(args.out / "cache")))
    table = markdown(
        ["hours", "files", "turns", "audio GiB", "read + fingerprint s", "sha256 alone s",
         "pyannote index s", "index MiB",
         "peak RSS MiB", "RSS growth MiB", "s per hour (read / index)"],
        [[r["hours"], r["files"], r["turns"], r["gib"], r["read_fingerprint_s"],
          r["hash_again_s"], r["index_s"],
          r["index_mib"], r["peak_rss_mib"], round(r["peak_rss_mib"] - r["rss_before_mib"], 1),
          f"{r['read_fingerprint_s'] / r['hours']:.3f} / {r['index_s'] / r['hours']:.3f}"]
         for r in rows],
    )  # fmt: skip
    write(args.out, "index", table, rows)
    return rows


# --- train -------------------------------------------------------------------------------------


def corpus(args: argparse.Namespace) -> Path:
    """``--data``, or the synthetic corpus of ``--hours`` in 10-minute files (made once)."""
    if args.data:
        return Path(args.data)
    from bench.demo.generate import generate_demo, scaled_sizes

    root = args.out / "corpus" / f"{args.hours:g}h-10min"
    if not (root / "MANIFEST.json").is_file():
        generate_demo(root, sizes=scaled_sizes(args.hours, 10), duration=TEN_MINUTES)
    return root


def _sync(device: Any) -> float:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def train_child(
    data: str, cache: str, out: str, device: str, batches: int, workers: int,
    batch_size: int | None, duration: float | None, pin_memory: bool | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Data path (bench's, pyannote's), floor and loop of one recipe in its real shape;
    ``pin_memory`` overrides bench's choice (pinned on a GPU) for the sweep."""
    import types

    import torch
    from pyannote.audio.tasks.segmentation.mixins import SegmentationTask

    from bench.data import load_folder
    from bench.recipe import load_recipe
    from bench.results.identity import precision
    from bench.training import fit as fitting
    from bench.training.assemble import assemble
    from bench.training.fit import fit, make_optimizer

    if pin_memory is not None:  # the sweep's setting instead of bench's choice, in this process
        chosen = fitting.dataloader_settings
        fitting.dataloader_settings = lambda recipe, accelerator: {
            **chosen(recipe, accelerator),
            "pin_memory": pin_memory,
        }
    changes: dict[str, Any] = {"num_workers": workers, "epochs": 1, "pipeline": None}
    if batch_size:
        changes["batch_size"] = batch_size
    if duration:
        changes["duration"] = duration
    recipe = load_recipe(SCALE_RECIPE).with_overrides(**changes)
    accelerator = "gpu" if device == "cuda" else "cpu"
    mode = precision(recipe, accelerator)
    target = torch.device(device)
    split = load_folder(data)
    built = assemble(recipe, split, Path(cache))
    task, model = built.task, built.model
    task.setup()  # as for "fit", without a trainer to broadcast the index path
    report: dict[str, Any] = {
        "batch": recipe.batch_size,
        "duration": recipe.duration,
        "precision": mode,
        "workers": workers,
        "device": device,
        "train_hours": round(sum(r.duration for r in split.files("train")) / 3600, 2),
    }

    def data_path(name: str) -> list[dict]:
        task.pin_memory = fitting.dataloader_settings(recipe, accelerator)["pin_memory"]
        loader = iter(task.train_dataloader())
        kept = [next(loader)]  # the first batch pays for the loader's start
        start = time.perf_counter()
        for _ in range(batches):
            kept.append(next(loader))
        seconds = time.perf_counter() - start
        report[f"data_{name}_s_per_batch"] = round(seconds / batches, 4)
        return kept

    kept = data_path("bench")
    bench_get_file = task.get_file
    task.get_file = types.MethodType(SegmentationTask.get_file, task)  # pyannote's own
    try:
        theirs = data_path("pyannote")
    except Exception as error:  # torchcodec without FFmpeg's libraries, typically
        theirs = None
        first = (str(error).strip().splitlines() or [type(error).__name__])[-1]
        if "libtorchcodec" in str(error):
            first = "torchcodec cannot load FFmpeg's shared libraries (apt install ffmpeg)"
        report["data_pyannote_unavailable"] = f"{type(error).__name__}: {first[:200]}"
        report["data_pyannote_s_per_batch"] = report["data_speedup"] = None
    finally:
        task.get_file = bench_get_file
    if theirs is not None:
        report["data_speedup"] = round(
            report["data_pyannote_s_per_batch"] / report["data_bench_s_per_batch"], 2
        )
        # the same chunks either way (pyannote seeds its sampling from the epoch): same samples
        pairs = list(zip(kept, theirs, strict=True))
        report["data_max_abs_diff"] = max(float((a["X"] - b["X"]).abs().max()) for a, b in pairs)
        report["data_same_targets"] = all(torch.equal(a["y"], b["y"]) for a, b in pairs)

    # the floor: forward + loss + backward + step on batches already on the device
    model.to(target).train()
    optimizer = make_optimizer(recipe, model.parameters())
    autocast = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(mode)
    on_device = [{k: v.to(target) for k, v in b.items() if k in ("X", "y")} for b in kept]
    if target.type == "cuda":
        torch.cuda.reset_peak_memory_stats(target)
    start = None
    for i, batch in enumerate(on_device):
        if i == 1:
            start = _sync(target)
            report["floor_window"] = [time.time(), None]
        with torch.autocast(target.type, dtype=autocast or torch.float32, enabled=bool(autocast)):
            segmentation, vad, _, _ = task.compute_losses(batch)
        loss = task._total(segmentation, vad)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    floor_seconds = _sync(target) - start
    report["floor_window"][1] = time.time()
    report["floor_samples_per_second"] = round(batches * recipe.batch_size / floor_seconds, 2)
    if target.type == "cuda":
        report["floor_peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(target) / 2**20, 1)
    model.to("cpu")
    del on_device, kept, optimizer

    # bench's training loop: a fresh model, as `bench run` builds it
    built = assemble(recipe, split, Path(cache))
    window: list[float] = []
    from lightning.pytorch.callbacks import Callback

    class Window(Callback):
        def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
            window.append(time.time())

    fitted = fit(
        recipe, built.model, Path(out) / "loop", accelerator, [], progress=False,
        max_batches=batches + 1, extra_callbacks=[Window()],
    )  # fmt: skip
    speed = fitted.throughput[-1]
    report["loop_samples_per_second"] = speed["steady_samples_per_second"]
    report["loop_window"] = [window[0], window[-1]] if len(window) > 1 else None
    report["loop_batches"] = len(window)
    report["loop_peak_gpu_mib"] = speed.get("peak_gpu_memory_mib")
    report["loop_to_floor"] = round(
        report["loop_samples_per_second"] / report["floor_samples_per_second"], 3
    )
    report["pin_memory"] = built.task.pin_memory
    report["peak_rss_mib"] = peak_rss_mib()
    return report


TRAIN_HEADER = [
    "device", "precision", "batch x s", "workers", "pin memory", "data s/batch bench",
    "data s/batch pyannote", "data speed-up", "floor samples/s", "loop samples/s",
    "loop / floor", "peak RSS MiB", "peak GPU MiB", "GPU busy % (floor / loop)",
]  # fmt: skip


def train_cells(r: dict[str, Any], busy: str = "-") -> list[Any]:
    """One row of :data:`TRAIN_HEADER` (``busy``: the GPU check's utilisation)."""
    gpu = r.get("loop_peak_gpu_mib") or r.get("floor_peak_gpu_mib") or "-"
    return [
        r["device"], r["precision"], f"{r['batch']} x {r['duration']:g}", r["workers"],
        r["pin_memory"], r["data_bench_s_per_batch"], r["data_pyannote_s_per_batch"] or "-",
        "unavailable" if r["data_speedup"] is None
        else f"{r['data_speedup']}x" + ("" if r["data_same_targets"] else " (other chunks!)"),
        r["floor_samples_per_second"], r["loop_samples_per_second"],
        r["loop_to_floor"], r["peak_rss_mib"], gpu, busy,
    ]  # fmt: skip


def part_train(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each ``--workers`` value in a fresh process, on ``--data`` or the synthetic corpus."""
    data = corpus(args)
    rows = []
    for workers in args.workers:
        rows.append(
            child(
                "train", data=str(data), cache=str(args.out / "cache"), out=str(args.out),
                device=args.device, batches=args.batches, workers=workers,
                batch_size=args.batch_size, duration=args.duration,
                pin_memory={"auto": None, "on": True, "off": False}[args.pin_memory],
            )
        )  # fmt: skip
    write(args.out, "train", markdown(TRAIN_HEADER, [train_cells(r) for r in rows]), rows)
    return rows


# --- pipeline ----------------------------------------------------------------------------------


def long_file(args: argparse.Namespace) -> tuple[Path, Path]:
    """One test file of ``--minutes`` (its WAV and RTTM), generated once."""
    from bench.demo.generate import generate_demo

    root = args.out / "corpus" / f"one-{args.minutes:g}min"
    if not (root / "MANIFEST.json").is_file():
        generate_demo(root, sizes={"train": 0, "dev": 0, "test": 1}, duration=args.minutes * 60)
    test = root / "test"
    return test / "wav" / "demo_test_000.wav", test / "rttm" / "demo_test_000.rttm"


class StageMemory:
    """A pyannote pipeline hook: :class:`StepTimer`'s marks, and the peak memory so far (RSS and
    the GPU allocator's) when each step ends."""

    def __init__(self, device: Any):
        from bench.evaluation.pipeline import StepTimer

        self.timer = StepTimer()
        self.start = self.timer.start
        self.device = device
        self.rss: dict[str, float] = {}
        self.gpu: dict[str, float] = {}

    def __call__(self, step_name: str, artefact: Any, file=None, total=None, completed=None):
        self.timer(step_name, artefact, file=file, total=total, completed=completed)
        if completed is None and total is None and step_name not in self.rss:
            self.rss[step_name] = peak_rss_mib()
            if self.device.type == "cuda":
                import torch

                self.gpu[step_name] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)

    def split(self, end: float) -> dict[str, float]:
        return self.timer.split(end)

    def peaks(self) -> dict[str, dict[str, float] | None]:
        """Peak memory (MiB) by the end of segmentation, embedding and clustering."""
        from bench.evaluation.pipeline import StepTimer

        gpu = None
        if self.device.type == "cuda":
            import torch

            final = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
            gpu = StepTimer.stage_ends(self.gpu, final)
        return {"rss": StepTimer.stage_ends(self.rss, peak_rss_mib()), "gpu": gpu}


def pipeline_child(
    wav: str, rttm: str, out: str, side: str, device: str, embedding_batch: int,
    segmentation_batch: int,
) -> dict[str, Any]:  # fmt: skip
    """The pipeline at its initial parameters on one file; stage seconds, peak memory, DER."""
    import torch
    from pyannote.database.util import load_rttm
    from pyannote.metrics.diarization import DiarizationErrorRate

    from bench.data.audio import decode
    from bench.evaluation.pipeline import BenchSpeakerDiarization, quiet_pipeline
    from bench.models.embeddings import CAMPPlusEmbedding
    from bench.models.weights import load_initial
    from bench.recipe import Pretrained

    target = torch.device(device)
    model, _ = load_initial(Pretrained(id="pyannote/segmentation-3.0"))
    model.eval().to(target)
    if side == "bench":
        embedding = CAMPPlusEmbedding(device=target, padded_batch=embedding_batch)
    else:
        embedding = CAMPPlusEmbedding(device=target, padded_batch=1, fused=False)
    pipeline = BenchSpeakerDiarization(model, embedding, segmentation_batch_size=segmentation_batch)
    pipeline.instantiate(pipeline.initial_parameters())
    waveform = torch.from_numpy(decode(Path(wav))).unsqueeze(0)
    seconds = waveform.shape[1] / 16000
    file = {"uri": Path(wav).stem, "waveform": waveform, "sample_rate": 16000}
    if target.type == "cuda":
        torch.cuda.reset_peak_memory_stats(target)
    rss = peak_rss_mib()
    timer = StageMemory(target)
    with quiet_pipeline():
        hypothesis = pipeline.apply(file, hook=timer)
    end = _sync(target)
    stages = timer.split(end)
    peaks = timer.peaks()
    total = end - timer.start
    name = f"{side}-b{embedding_batch if side == 'bench' else 1}-{device}.rttm"
    (Path(out) / "hypotheses").mkdir(parents=True, exist_ok=True)
    with open(Path(out) / "hypotheses" / name, "w") as f:
        hypothesis.write_rttm(f)
    reference = next(iter(load_rttm(rttm).values()))
    der = DiarizationErrorRate()(reference, hypothesis, uem=whole(seconds))
    return {
        "side": side,
        "device": device,
        "embedding_batch": embedding_batch if side == "bench" else 1,
        "audio_s": round(seconds, 1),
        "threads": torch.get_num_threads(),
        "stages_s": {k: round(v, 2) for k, v in stages.items()},
        "total_s": round(total, 2),
        "s_per_hour": round(total * 3600 / seconds, 1),
        "peak_rss_mib": peak_rss_mib(),
        "rss_before_apply_mib": rss,
        "stage_peak_rss_mib": peaks["rss"],  # the peak so far when each stage ends
        "stage_peak_gpu_mib": peaks["gpu"],
        "peak_gpu_mib": (
            round(torch.cuda.max_memory_allocated(target) / 2**20, 1)
            if target.type == "cuda"
            else None
        ),
        "der": round(float(der), 5),
        "hypothesis": str(Path(out) / "hypotheses" / name),
    }


def whole(seconds: float) -> Any:
    """The UEM of a whole file of ``seconds``."""
    from pyannote.core import Segment, Timeline

    return Timeline([Segment(0.0, seconds)])


def same_output(a: str, b: str, seconds: float) -> tuple[bool, float]:
    """Whether two RTTM files say the same (text), and the DER of ``b`` against ``a``."""
    from pyannote.database.util import load_rttm
    from pyannote.metrics.diarization import DiarizationErrorRate

    first, second = (next(iter(load_rttm(p).values())) for p in (a, b))
    der = DiarizationErrorRate()(first, second, uem=whole(seconds))
    return Path(a).read_text() == Path(b).read_text(), float(der)


def part_pipeline(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The plain path, then bench's for each ``--embedding-batches`` size, on one long file."""
    wav, rttm = long_file(args)
    common = dict(wav=str(wav), rttm=str(rttm), out=str(args.out), device=args.device,
                  segmentation_batch=args.segmentation_batch)  # fmt: skip
    rows = [child("pipeline", side="plain", embedding_batch=1, **common)]
    for size in args.embedding_batches:
        rows.append(child("pipeline", side="bench", embedding_batch=size, **common))
    plain = rows[0]
    for row in rows:
        row["same_output"], row["der_to_plain"] = same_output(
            plain["hypothesis"], row["hypothesis"], row["audio_s"]
        )
        row["speedup"] = round(plain["total_s"] / row["total_s"], 2)
    table = markdown(
        ["embedding", "device", "threads", "audio s", "segmentation s", "embedding s",
         "clustering s", "total s", "s per hour", "x plain",
         "peak RSS MiB (segmentation / embedding / clustering)", "peak GPU MiB",
         "DER", "same output as plain"],
        [[f"{r['side']} (batch {r['embedding_batch']})", r["device"], r["threads"], r["audio_s"],
          r["stages_s"]["segmentation"], r["stages_s"]["embedding"], r["stages_s"]["clustering"],
          r["total_s"], r["s_per_hour"], r["speedup"],
          " / ".join(f"{v:.0f}" for v in r["stage_peak_rss_mib"].values()),
          " / ".join(f"{v:.0f}" for v in (r["stage_peak_gpu_mib"] or {}).values()) or "-",
          r["der"],
          "identical" if r["same_output"] else f"DER {r['der_to_plain']:.2e} apart"]
         for r in rows],
    )  # fmt: skip
    write(args.out, "pipeline", table, rows)
    return rows


# --- main --------------------------------------------------------------------------------------


def numbers(kind: type) -> Any:
    """An argparse type: comma-separated numbers >= 0 of ``kind``."""

    def parse(text: str) -> list:
        try:
            values = [kind(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated numbers, got {text!r}"
            ) from None
        if not values or min(values) < 0:
            raise argparse.ArgumentTypeError(f"expected numbers >= 0, got {text!r}")
        return values

    return parse


def parser() -> argparse.ArgumentParser:
    """The command line: one subcommand a part."""
    main = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parts = main.add_subparsers(dest="part", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", type=Path, default=ROOT / "scale", help="default: ./scale")
    common.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    index = parts.add_parser("index", parents=[common], help="indexing at 1, 10, 100 h")
    index.add_argument("--hours", type=numbers(float), default=[1.0, 10.0, 100.0])
    train = parts.add_parser("train", parents=[common], help="training in the real shape")
    train.add_argument("--data", type=Path, help="dataset folder (default: a synthetic corpus)")
    train.add_argument("--hours", type=float, default=2.0, help="synthetic corpus size")
    train.add_argument("--batches", type=int, default=5, help="measured batches a phase")
    train.add_argument("--workers", type=numbers(int), default=[0], help="num_workers sweep")
    train.add_argument("--batch-size", type=int, help="default: the recipe's (64)")
    train.add_argument("--duration", type=float, help="default: the recipe's (10 s)")
    train.add_argument(
        "--pin-memory", choices=("auto", "on", "off"), default="auto", help="auto: bench's choice"
    )
    pipeline = parts.add_parser("pipeline", parents=[common], help="one long file")
    pipeline.add_argument("--minutes", type=float, default=60.0)
    pipeline.add_argument("--embedding-batches", type=numbers(int), default=[8])
    pipeline.add_argument("--segmentation-batch", type=int, default=32)
    return main


CHILDREN = {"index": index_child, "train": train_child, "pipeline": pipeline_child}
PARTS = {"index": part_index, "train": part_train, "pipeline": part_pipeline}


def main(argv: list[str]) -> int:
    """Run one part (or, with ``--child``, one measurement); the exit status."""
    if argv[:1] == ["--child"]:
        print("SCALE " + json.dumps(CHILDREN[argv[1]](**json.loads(argv[2]))), flush=True)
        return 0
    args = parser().parse_args(argv)
    args.out = args.out.resolve()
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("scale: --device cuda: no CUDA device is visible", file=sys.stderr)
            return 2
    try:
        PARTS[args.part](args)
    except RuntimeError as error:
        print(f"scale: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("WANDB_MODE", "disabled")
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    sys.exit(main(sys.argv[1:]))
