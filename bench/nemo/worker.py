"""NeMo worker for bench: fine-tunes and runs Sortformer (SortformerEncLabelModel) from a JSON job.

It runs under the NeMo venv's python, never bench's: bench pins lightning>=2.5 while NeMo 2.7 wants
2.4, so the two cannot share a venv. Hence only the stdlib, torch, lightning, omegaconf and NeMo
are imported here, and bench talks to this script through the job file, JSON lines on stdout and
the files under the job's "out" folder:

    python worker.py JOB.json

stdout carries only the JSON events (start, epoch..., done); everything else, NeMo's chatter
included, goes to stderr, whose last line on failure is a one-line message (exit 3: "diverged").
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

# run as a script, this module is __main__: worker_msdd.py imports its helpers as "worker", and
# must get this very module (one JobError, one Diverged), not a second copy
sys.modules.setdefault("worker", sys.modules[__name__])
Emit = Callable[[dict[str, Any]], None]
JOB_KEYS = set(
    "model init config train_manifest dev_manifest test_manifest out epochs batch_size max_steps"
    " seed device threads optimizer warmup_steps session_len_sec postprocessing".split()
)
# model-config sections the job sets through its own keys; overriding them too would be ambiguous
RESERVED = {"train_ds", "validation_ds", "test_ds", "optim", "lr"}
# optional model keys NeMo reads although the stock config does not list them
OPTIONAL = set(
    "spec_augment augmentor streaming_mode async_streaming eps negative_init_val max_batch_dur"
    "".split()
)
POSTPROCESSING = set("onset offset pad_onset pad_offset min_duration_on min_duration_off".split())


class JobError(Exception):
    """A job bench should not have sent: reported as one line, without a traceback."""


class Diverged(Exception):
    """A non-finite training loss; exit code 3 tells bench to report divergence, not a crash."""

    exit_code = 3


def check_common(job: Any) -> dict[str, Any]:
    """Refuse missing, unknown or ill-typed keys up front, before NeMo's slow import (the keys
    every model reads alike; each model's own are checked by its ``check_job``)."""
    if not isinstance(job, dict):
        raise JobError("the job file must hold a JSON object")
    unknown, missing = sorted(set(job) - JOB_KEYS), sorted(JOB_KEYS - set(job))
    if unknown or missing:
        raise JobError(f"job keys: unknown {unknown}, missing {missing}")
    init = job["init"]
    if not isinstance(init, dict) or init.get("kind") not in ("scratch", "file"):
        raise JobError('init must be {"kind": "scratch"} or {"kind": "file", "path": ...}')
    if set(init) != ({"kind"} if init["kind"] == "scratch" else {"kind", "path"}):
        raise JobError(f"init: unexpected keys {sorted(init)}")
    if not isinstance(job["config"], dict) or not all(isinstance(k, str) for k in job["config"]):
        raise JobError("config must be an object of dotted-key overrides")
    for key, low in {"epochs": 0, "batch_size": 1, "seed": 0, "warmup_steps": 0}.items():
        if type(job[key]) is not int or job[key] < low:
            raise JobError(f"{key} must be an integer >= {low}")
    for key in ("max_steps", "threads"):
        if job[key] is not None and (type(job[key]) is not int or job[key] < 1):
            raise JobError(f"{key} must be null or an integer >= 1")
    if job["device"] not in ("cpu", "gpu"):
        raise JobError('device must be "cpu" or "gpu"')
    opt = job["optimizer"]
    if (
        not isinstance(opt, dict)
        or set(opt) != {"name", "lr", "weight_decay"}
        or opt["name"] not in ("adam", "adamw")
        or not all(isinstance(opt[k], int | float) for k in ("lr", "weight_decay"))
    ):
        raise JobError('optimizer must be {"name": "adam"|"adamw", "lr": .., "weight_decay": ..}')
    need = ["test_manifest", "out"] + (["train_manifest", "dev_manifest"] if job["epochs"] else [])
    for key in need:
        if not isinstance(job[key], str) or not job[key]:
            raise JobError(f"{key} must be a path")
    return job


def check_job(job: Any) -> dict[str, Any]:
    """A Sortformer job: :func:`check_common`, then its session length and postprocessing."""
    check_common(job)
    if job["init"]["kind"] == "file" and job["config"]:
        raise JobError("config overrides apply to scratch init only, not to a .nemo file")
    if not isinstance(job["session_len_sec"], int | float) or job["session_len_sec"] <= 0:
        raise JobError("session_len_sec must be a positive number")
    post = job["postprocessing"]
    if post is not None and (
        not isinstance(post, dict)
        or not set(post) <= POSTPROCESSING
        or not all(isinstance(v, int | float) for v in post.values())
    ):
        raise JobError(f"postprocessing: null or numbers keyed by {sorted(POSTPROCESSING)}")
    return job


def sha256_file(path: Path) -> str:
    """Hash the init .nemo so results say exactly which weights they started from."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def write_atomic(path: Path, text: str) -> None:
    """Write via tmp + os.replace so a killed worker never leaves a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def build_config(job: dict[str, Any], restored: Any) -> Any:
    """The resolved model config: bundled stock config (scratch + overrides) or the .nemo's own.

    Data, optimizer and schedule always come from the job (on top of the stock config's
    train_ds/validation_ds/optim sections), so a downloaded .nemo trains like a scratch model.
    """
    from omegaconf import OmegaConf, open_dict

    base = OmegaConf.load(Path(__file__).parent / "configs" / "sortformer.yaml")
    full = base.copy()
    if restored is None:
        for key, value in job["config"].items():
            top = key.split(".")[0]
            if top in RESERVED:
                raise JobError(f"config key {key!r} is set by the job's own keys")
            if (
                top not in OPTIONAL
                and OmegaConf.select(base.model, key, default=KeyError) is KeyError
            ):
                raise JobError(f"config key {key!r} is not in the base config")
            OmegaConf.update(full.model, key, value, force_add=True)
    else:
        full.model = OmegaConf.create(OmegaConf.to_container(restored, resolve=True))
        with open_dict(full.model):
            for section in ("train_ds", "validation_ds"):
                full.model[section] = base.model[section]
            full.model.pop("test_ds", None)
    cpu = job["device"] == "cpu"
    full.batch_size = job["batch_size"]
    full.num_workers = 0 if cpu else min(4, max(1, (os.cpu_count() or 2) - 1))
    opt = job["optimizer"]
    optim: dict[str, Any] = {
        "name": opt["name"],
        "lr": float(opt["lr"]),
        "betas": list(base.model.optim.betas),
        "weight_decay": float(opt["weight_decay"]),
    }
    if job["warmup_steps"]:
        optim["sched"] = {
            **OmegaConf.to_container(base.model.optim.sched),
            "warmup_steps": job["warmup_steps"],
            "warmup_ratio": None,
        }
    with open_dict(full.model):
        full.model.lr = float(opt["lr"])
        full.model.optim = optim
        for section, manifest in (("train_ds", "train"), ("validation_ds", "dev")):
            ds = full.model[section]
            ds.manifest_filepath = job[f"{manifest}_manifest"]
            ds.session_len_sec = float(job["session_len_sec"])
            ds.pin_memory = not cpu
    return OmegaConf.create(OmegaConf.to_container(full.model, resolve=True))


def config_sha256(cfg: Any) -> str:
    """Hash the resolved config as canonical JSON, so bench can tell identical runs apart."""
    from omegaconf import OmegaConf

    canon = json.dumps(OmegaConf.to_container(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def readable_checkpoint(ckpt_dir: Path) -> Path | None:
    """last.ckpt to resume from, or None; an unreadable one (said on stderr) is moved aside."""
    import torch

    last = ckpt_dir / "last.ckpt"
    if last.exists():
        try:
            state = torch.load(last, map_location="cpu", weights_only=False)
            if "state_dict" in state and "loops" in state:
                return last
            problem = "not a lightning checkpoint"
        except Exception as exc:
            problem = " ".join(str(exc).split())[:200]
        print(f"warning: {last} is unreadable ({problem}); starting again", file=sys.stderr)
    if ckpt_dir.exists() and any(ckpt_dir.iterdir()):
        aside = ckpt_dir.with_name(f"checkpoints.aside-{time.strftime('%Y%m%dT%H%M%S')}")
        os.replace(ckpt_dir, aside)
        print(f"warning: moved stale {ckpt_dir} to {aside}", file=sys.stderr)
    return None


def make_reporter(emit: Emit, identity: dict[str, Any], max_steps: int | None) -> Any:
    """A lightning callback that emits one row per epoch and keeps the rows in the checkpoint.

    The rows live in the callback's state so a resumed run reports every epoch; the identity
    (config and init hashes) is checked on resume so a checkpoint never continues another job;
    the RNG states (which lightning does not save) make a resumed run repeat an uninterrupted one.
    """
    from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states
    from lightning.pytorch import Callback

    class Reporter(Callback):
        def __init__(self) -> None:
            self.rows: list[dict[str, Any]] = []
            self.losses: list[float] = []
            self.validated = False
            self.rng: dict[str, Any] | None = None
            self.initial: dict[str, float] | None = None  # dev before training

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self.losses, self.validated = [], False
            if self.rng is not None:  # resumed: continue the random streams where they stopped
                _set_rng_states(self.rng)
                self.rng = None

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            self.validated = True

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            loss = float((outputs["loss"] if isinstance(outputs, dict) else outputs).detach())
            if not math.isfinite(loss):
                raise Diverged(f"diverged: training loss {loss} at step {trainer.global_step}")
            self.losses.append(loss)
            # stopping through should_stop (not only Trainer.max_steps) still validates the epoch
            if max_steps is not None and trainer.global_step >= max_steps:
                trainer.should_stop = True

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            logged = trainer.callback_metrics.items() if self.validated else ()
            metrics = {k: float(v) for k, v in logged if k.startswith("val_")}
            val_loss = metrics.pop("val_loss", None)
            if val_loss is not None and not math.isfinite(val_loss):
                raise Diverged(
                    f"diverged: validation loss {val_loss} at step {trainer.global_step}"
                )
            row = {
                "epoch": trainer.current_epoch + 1,
                "train_loss": sum(self.losses) / max(1, len(self.losses)),
                "val_loss": val_loss,
                "steps": trainer.global_step,
                "lr": float(trainer.optimizers[0].param_groups[0]["lr"]),
                **dict(sorted(metrics.items())),
            }
            self.rows.append(row)
            emit({"event": "epoch", **row})

        def state_dict(self) -> dict[str, Any]:
            state = {"rows": self.rows, "initial": self.initial, **identity}
            return {**state, "rng": _collect_rng_states()}

        def load_state_dict(self, state_dict: dict[str, Any]) -> None:
            if {k: state_dict.get(k) for k in identity} != identity:
                raise JobError(
                    "out/checkpoints/last.ckpt belongs to another config or init; "
                    "use a fresh out folder"
                )
            self.rows, self.rng = list(state_dict["rows"]), state_dict["rng"]
            self.initial = state_dict.get("initial")

    return Reporter()


def guard_probabilities(model: Any, trainer: Any) -> None:
    """Diverged weights give NaN probabilities, on which torch's BCE raises a RuntimeError
    before any loss exists to check: catch them on their way into the model's loss instead."""
    import torch

    def finite_probs(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        probs = kwargs.get("probs", args[0] if args else None)
        if probs is not None and not bool(torch.isfinite(probs).all()):
            raise Diverged(
                f"diverged: non-finite speaker probabilities at step {trainer.global_step}"
            )

    model.loss.register_forward_pre_hook(finite_probs, with_kwargs=True)


def start_facts(model: Any, config_sha256: str, init_sha256: str | None) -> dict[str, Any]:
    """What the start event and result.json say of a run: versions, hashes, parameters."""
    import lightning
    import nemo
    import torch

    return {
        "nemo_version": nemo.__version__,
        "torch_version": torch.__version__,
        "lightning_version": lightning.__version__,
        "config_sha256": config_sha256,
        "init_sha256": init_sha256,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def make_trainer(job: dict[str, Any], reporter: Any, ckpt_dir: Path) -> tuple[Any, Any]:
    """The Lightning trainer both models train with, and its checkpoint keeper: every epoch
    validated and checkpointed (``last.ckpt`` to resume, the lowest validation loss kept)."""
    from lightning.pytorch import Trainer
    from lightning.pytorch.callbacks import ModelCheckpoint

    keeper = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best-{epoch}",
        monitor="val_loss",
        mode="min",
        save_top_k=1,
        save_last=True,
        every_n_epochs=1,
        save_on_train_epoch_end=True,
        auto_insert_metric_name=False,
    )
    trainer = Trainer(
        accelerator="gpu" if job["device"] == "gpu" else "cpu",
        devices=1,
        max_epochs=job["epochs"],
        max_steps=job["max_steps"] or -1,
        logger=False,
        enable_progress_bar=False,
        callbacks=[reporter, keeper],
        deterministic="warn",
        num_sanity_val_steps=0,
        check_val_every_n_epoch=1,
        log_every_n_steps=1,
    )
    return trainer, keeper


def diarize(model: Any, job: dict[str, Any], out: Path) -> list[str]:
    """Diarize every test_manifest entry with model.diarize and write out/hyp/<uri>.rttm.

    model.diarize gets a copy of the manifest reduced to audio_filepath/offset/duration: NeMo's
    manifest path honours offset and duration (times stay in file time), and the copy keeps any
    stray uniq_id from renaming a recording away from its audio stem.
    """
    from nemo.collections.asr.parts.mixins.diarization import DiarizeConfig
    from nemo.collections.asr.parts.utils.vad_utils import PostProcessingParams
    from omegaconf import OmegaConf

    with open(job["test_manifest"], encoding="utf-8") as fh:
        entries = [json.loads(line) for line in fh if line.strip()]
    uris = [Path(entry["audio_filepath"]).stem for entry in entries]
    if len(set(uris)) != len(uris) or not uris:
        raise JobError("test_manifest must list distinct audio files (their stems name the RTTMs)")
    post = OmegaConf.structured(PostProcessingParams())
    for key, value in (job["postprocessing"] or {}).items():
        setattr(post, key, float(value))
    cfg = DiarizeConfig(
        session_len_sec=-1,
        batch_size=min(job["batch_size"], len(uris)),
        num_workers=0,
        verbose=False,
        postprocessing_params=post,
    )
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "test.json"
        keep = [(e["audio_filepath"], e.get("offset") or 0.0, e["duration"]) for e in entries]
        rows = [dict(zip(("audio_filepath", "offset", "duration"), k, strict=True)) for k in keep]
        manifest.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        segments = model.diarize(audio=str(manifest), override_config=cfg)
    if list(model._diarize_audio_rttm_map) != uris:
        raise RuntimeError("model.diarize returned recordings out of manifest order")
    hyp = out / "hyp"
    hyp.mkdir(parents=True, exist_ok=True)
    for uri, lines in zip(uris, segments, strict=True):
        rows = sorted((float(s), float(e), spk) for s, e, spk in (line.split() for line in lines))
        text = "".join(
            f"SPEAKER {uri} 1 {s:.3f} {e - s:.3f} <NA> <NA> {spk} <NA> <NA>\n"
            for s, e, spk in rows
            if e > s
        )
        write_atomic(hyp / f"{uri}.rttm", text)
    return uris


def run_sortformer(job: dict[str, Any], emit: Emit) -> None:
    """Build or restore the model, train it with NeMo's own steps, save it and diarize test."""
    import torch
    from lightning.pytorch import seed_everything
    from nemo.collections.asr.models import SortformerEncLabelModel
    from omegaconf import OmegaConf

    gpu = job["device"] == "gpu"
    if gpu and not torch.cuda.is_available():
        raise JobError("device gpu requested but CUDA is not available")
    if job["threads"] is not None:
        torch.set_num_threads(job["threads"])
    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"
    seed_everything(job["seed"], workers=True)
    init_path = Path(job["init"]["path"]) if job["init"]["kind"] == "file" else None
    init_sha = sha256_file(init_path) if init_path else None
    restored = None
    if init_path is not None:
        restored = SortformerEncLabelModel.restore_from(str(init_path), map_location="cpu")
    cfg = build_config(job, None if restored is None else restored.cfg)
    cfg_sha = config_sha256(cfg)
    resume = readable_checkpoint(ckpt_dir) if job["epochs"] else None
    reporter = make_reporter(
        emit, {"config_sha256": cfg_sha, "init_sha256": init_sha}, job["max_steps"]
    )
    trainer, keeper = make_trainer(job, reporter, ckpt_dir)
    if restored is None:
        model = SortformerEncLabelModel(cfg=cfg, trainer=trainer)
    else:
        model = restored
        model.cfg = cfg
        model.set_trainer(trainer)
        if job["epochs"]:
            model.setup_training_data(cfg.train_ds)
            model.setup_multiple_validation_data(cfg.validation_ds)
    seed_everything(job["seed"], workers=True)  # the model's __init__ calls random.seed(42)

    guard_probabilities(model, trainer)
    head = start_facts(model, cfg_sha, init_sha)
    emit({"event": "start", **head, "resume": str(resume) if resume else None})

    started = time.perf_counter()
    if job["epochs"] and resume is None:  # dev before training: what divergence is judged against
        logged = trainer.validate(model, verbose=False)[0]
        reporter.initial = {k: float(v) for k, v in sorted(logged.items()) if k.startswith("val_")}
        emit({"event": "initial", **reporter.initial})
    if job["epochs"]:
        trainer.fit(model, ckpt_path=str(resume) if resume else None)
    train_s = time.perf_counter() - started
    best = Path(keeper.best_model_path) if keeper.best_model_path else None
    best_epoch = None
    if best is not None and best.exists():
        state = torch.load(best, map_location="cpu", weights_only=False)
        model.load_state_dict(state["state_dict"])
        best_epoch = int(state["epoch"]) + 1
    model.to("cuda" if gpu else "cpu")
    tmp = out / ".model.tmp.nemo"
    model.save_to(str(tmp))
    os.replace(tmp, out / "model.nemo")
    write_atomic(out / "config.yaml", OmegaConf.to_yaml(cfg))

    started = time.perf_counter()
    uris = diarize(model, job, out)
    diarize_s = time.perf_counter() - started
    result = {
        **head,
        "initial_validation": reporter.initial,
        "epochs": reporter.rows,
        "steps": trainer.global_step,
        "kept": "best" if best_epoch else "last",
        "best_epoch": best_epoch,
        "wall_time_s": {"train": round(train_s, 3), "diarize": round(diarize_s, 3)},
        "hypotheses": uris,
    }
    write_atomic(out / "result.json", json.dumps(result, indent=2) + "\n")


def run(job: Any, emit: Emit) -> None:
    """Dispatch on job["model"]; msdd lives in worker_msdd.py beside this file (same contract)."""
    model = job.get("model") if isinstance(job, dict) else None
    if model == "msdd":
        sys.path.insert(0, str(Path(__file__).parent))
        try:
            import worker_msdd  # type: ignore[import-not-found]
        except ModuleNotFoundError as exc:
            if exc.name != "worker_msdd":
                raise
            raise JobError("model msdd: worker_msdd.py is not installed beside worker.py") from None
        worker_msdd.run(job, emit)
        return
    if model != "sortformer":
        raise JobError(f'model must be "sortformer" or "msdd", not {model!r}')
    run_sortformer(check_job(job), emit)


def main() -> None:
    """Keep stdout for JSON events only, run the job, end with a one-line message on failure.

    fd 1 is pointed at stderr before NeMo is imported, since NeMo logs INFO to stdout; exiting
    through os._exit keeps atexit chatter from following the final message.
    """
    events = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def emit(event: dict[str, Any]) -> None:
        events.write(json.dumps(event) + "\n")
        events.flush()

    code, message = 0, ""
    try:
        if len(sys.argv) != 2:
            raise JobError("usage: worker.py JOB.json")
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come as files, never downloads
        run(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")), emit)
        emit({"event": "done"})
    except JobError as exc:
        code, message = 2, f"error: {exc}"
    except BaseException as exc:
        traceback.print_exc()
        code = getattr(exc, "exit_code", 1)
        text = " ".join(str(exc).split()) or type(exc).__name__
        message = text if code == 3 else f"error: {type(exc).__name__}: {text}"
    if message:
        sys.stderr.flush()
        print(message, file=sys.stderr, flush=True)
    events.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
