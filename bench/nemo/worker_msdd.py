"""NeMo worker for bench, MSDD part: trains and runs NeMo's multiscale diarization decoder
(EncDecDiarLabelModel) from a JSON job, fully offline.

worker.py imports this module (it lives beside it) and calls ``run(job, emit)`` for a job whose
"model" is "msdd". Like worker.py it runs under the NeMo venv's python and imports only the
stdlib, torch, lightning, omegaconf and NeMo, never bench.

What it does, in NeMo's own code:

* training: ``EncDecDiarLabelModel(cfg, trainer)`` and ``trainer.fit`` as NeMo's
  examples/speaker_tasks/diarization/neural_diarizer/multiscale_diar_decoder.py does, on
  configs/msdd.yaml (the stock msdd_5scl_15_05_50Povl_256x3x32x2.yaml). Its training data use
  oracle VAD (speech regions of each manifest entry's RTTM), as NeMo's MSDD training always does.
* the speaker model (TitaNet) that MSDD needs: a local .nemo (``config`` key
  ``diarizer.speaker_embeddings.model_path``, or ``init`` pointing at a speaker-model .nemo), or,
  failing that, a randomly initialised TitaNet built from NeMo's titanet-large.yaml (below) with
  ``speaker_model_cfg.*`` overrides. NeMo would otherwise download titanet_large from NGC. As in
  the stock config (emb_batch_size 0), the speaker model stays frozen during MSDD training.
* inference: NeMo's ``NeuralDiarizer`` (clustering diarizer for the initial speaker labels, then
  MSDD) on the saved out/model.nemo, with oracle VAD (no VAD model exists offline), so every
  test entry needs an rttm_filepath, of which only the speech regions are used. Speaker count
  and speaker labels come from the clustering and MSDD, not from the reference.

Job keys MSDD refuses: session_len_sec must be null (MSDD trains on whole manifest entries);
postprocessing, if not null, holds dotted keys of NeMo's NeuralDiarizerInferenceConfig under
``diarizer.clustering.parameters`` or ``diarizer.msdd_model.parameters``, relative to
``diarizer`` (e.g. {"msdd_model.parameters.sigmoid_threshold": 0.7,
"clustering.parameters.oracle_num_speakers": true}).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from worker import (  # this folder's worker.py: the helpers both models share
    Emit,
    JobError,
    check_common,
    config_sha256,
    guard_probabilities,
    make_reporter,
    make_trainer,
    readable_checkpoint,
    sha256_file,
    start_facts,
    write_atomic,
)

# model-config sections the job sets through its own keys; overriding them too would be ambiguous
RESERVED = {"train_ds", "validation_ds", "test_ds", "optim"}
SPEAKER = "speaker_model_cfg"  # NeMo's own key for the speaker model's config inside MSDD's
SPEAKER_PATH = "diarizer.speaker_embeddings.model_path"
POSTPROCESSING_ROOTS = ("clustering.parameters.", "msdd_model.parameters.")
MANIFEST_KEYS = (
    "audio_filepath offset duration label text num_speakers rttm_filepath uem_filepath".split()
)

# The `model:` section of NeMo's examples/speaker_tasks/recognition/conf/titanet-large.yaml
# (upstream commit b46d958eb2, 2024-10-04; identical at v2.5.0rc0 and main as of 2025-09-20),
# without train_ds/validation_ds/optim, which an MSDD's speaker model does not use.
# Copyright (c) NVIDIA CORPORATION. Licensed under the Apache License, Version 2.0
# (http://www.apache.org/licenses/LICENSE-2.0).
TITANET_LARGE = """
sample_rate: &sample_rate 16000
model:
  model_defaults:
    filters: 1024
    repeat: 3
    dropout: 0.1
    separable: true
    se: true
    se_context_size: -1
    kernel_size_factor: 1.0
  preprocessor:
    _target_: nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor
    normalize: "per_feature"
    window_size: 0.025
    sample_rate: *sample_rate
    window_stride: 0.01
    window: "hann"
    features: &n_mels 80
    n_fft: 512
    frame_splicing: 1
    dither: 0.00001
  spec_augment:
    _target_: nemo.collections.asr.modules.SpectrogramAugmentation
    freq_masks: 3
    freq_width: 4
    time_masks: 5
    time_width: 0.03
  encoder:
    _target_: nemo.collections.asr.modules.ConvASREncoder
    feat_in: *n_mels
    activation: relu
    conv_mask: true
    jasper:
      - filters: ${model.model_defaults.filters}
        repeat: 1
        kernel: [3]
        stride: [1]
        dilation: [1]
        dropout: 0.0
        residual: false
        separable: ${model.model_defaults.separable}
        se: ${model.model_defaults.se}
        se_context_size: ${model.model_defaults.se_context_size}
      - filters: ${model.model_defaults.filters}
        repeat: ${model.model_defaults.repeat}
        kernel: [7]
        stride: [1]
        dilation: [1]
        dropout: ${model.model_defaults.dropout}
        residual: true
        separable: ${model.model_defaults.separable}
        se: ${model.model_defaults.se}
        se_context_size: ${model.model_defaults.se_context_size}
      - filters: ${model.model_defaults.filters}
        repeat: ${model.model_defaults.repeat}
        kernel: [11]
        stride: [1]
        dilation: [1]
        dropout: ${model.model_defaults.dropout}
        residual: true
        separable: ${model.model_defaults.separable}
        se: ${model.model_defaults.se}
        se_context_size: ${model.model_defaults.se_context_size}
      - filters: ${model.model_defaults.filters}
        repeat: ${model.model_defaults.repeat}
        kernel: [15]
        stride: [1]
        dilation: [1]
        dropout: ${model.model_defaults.dropout}
        residual: true
        separable: ${model.model_defaults.separable}
        se: ${model.model_defaults.se}
        se_context_size: ${model.model_defaults.se_context_size}
      - filters: &enc_feat_out 3072
        repeat: 1
        kernel: [1]
        stride: [1]
        dilation: [1]
        dropout: 0.0
        residual: false
        separable: ${model.model_defaults.separable}
        se: ${model.model_defaults.se}
        se_context_size: ${model.model_defaults.se_context_size}
  decoder:
    _target_: nemo.collections.asr.modules.SpeakerDecoder
    feat_in: *enc_feat_out
    num_classes: 7205
    pool_mode: 'attention'
    emb_sizes: 192
  loss:
    _target_: nemo.collections.asr.losses.angularloss.AngularSoftmaxLoss
    scale: 30
    margin: 0.2
"""


# ----------------------------------------------------------------------------- job checks


def check_job(job: Any) -> dict[str, Any]:
    """Refuse missing, unknown, ill-typed or MSDD-inapplicable keys before NeMo's slow import."""
    check_common(job)
    if job["model"] != "msdd":
        raise JobError(f'worker_msdd runs model "msdd", not {job["model"]!r}')
    init = job["init"]
    if init["kind"] == "file" and (
        not isinstance(init["path"], str) or not init["path"].endswith(".nemo")
    ):
        raise JobError("init path must be a local .nemo file")
    if job["session_len_sec"] is not None:
        raise JobError(
            "session_len_sec must be null for msdd: MSDD trains on whole manifest entries "
            "(cut long recordings into entries with offset/duration instead)"
        )
    post = job["postprocessing"]
    if post is not None and (
        not isinstance(post, dict)
        or not all(isinstance(k, str) and k.startswith(POSTPROCESSING_ROOTS) for k in post)
    ):
        raise JobError(
            "postprocessing for msdd: null or dotted keys of NeMo's diarizer inference config "
            f"starting with {list(POSTPROCESSING_ROOTS)}"
        )
    return job


def read_manifest(path: str, what: str) -> list[dict[str, Any]]:
    """The entries of a NeMo manifest, each of which must name an existing RTTM (MSDD's
    training labels; at test time, oracle VAD's speech regions)."""
    try:
        with open(path, encoding="utf-8") as fh:
            entries = [json.loads(line) for line in fh if line.strip()]
    except (OSError, ValueError) as exc:
        raise JobError(f"{what}: cannot read {path}: {exc}") from None
    if not entries:
        raise JobError(f"{what}: {path} lists no audio")
    for entry in entries:
        rttm = entry.get("rttm_filepath")
        if not rttm or not os.path.exists(rttm):
            raise JobError(
                f"{what}: every entry needs an existing rttm_filepath (MSDD uses oracle VAD); "
                f"{entry.get('audio_filepath')} has {rttm!r}"
            )
    return entries


# ----------------------------------------------------------------------------- helpers


def nemo_target(path: Path) -> str:
    """The model class a .nemo file holds (its config's ``target``)."""
    from nemo.core.classes import ModelPT

    cfg = ModelPT.restore_from(str(path), return_config=True, map_location="cpu")
    return str(cfg.get("target", ""))


# ----------------------------------------------------------------------------- configs


def speaker_config(overrides: dict[str, Any]) -> Any:
    """TitaNet-large's config with ``speaker_model_cfg.*`` overrides, resolved. The encoder's
    input width and the decoder's input width follow the mel features and the encoder's last
    block unless set explicitly (upstream ties them with YAML anchors, which dotted overrides
    cannot follow)."""
    from omegaconf import OmegaConf

    root = OmegaConf.create(TITANET_LARGE)
    for key, value in overrides.items():
        if OmegaConf.select(root.model, key, default=KeyError) is KeyError:
            raise JobError(f"config key '{SPEAKER}.{key}' is not in TitaNet-large's config")
        OmegaConf.update(root.model, key, value, force_add=True)
    cfg = OmegaConf.create(OmegaConf.to_container(root.model, resolve=True))
    if "encoder.feat_in" not in overrides:
        cfg.encoder.feat_in = cfg.preprocessor.features
    if "decoder.feat_in" not in overrides:
        cfg.decoder.feat_in = cfg.encoder.jasper[-1].filters
    return cfg


def speaker_file_config(path: Path) -> Any:
    """The config of a speaker-model .nemo, resolved."""
    from nemo.collections.asr.models import EncDecSpeakerLabelModel
    from omegaconf import OmegaConf

    cfg = EncDecSpeakerLabelModel.restore_from(str(path), return_config=True, map_location="cpu")
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    cfg.pop("target", None)
    cfg.pop("nemo_version", None)
    return cfg


def build_config(job: dict[str, Any], restored: Any, speaker_cfg: Any) -> Any:
    """The resolved MSDD model config: the stock config with the job's overrides (scratch) or a
    restored MSDD's own config, and always the job's data, batch size and optimizer. Temporary
    paths (emb_dir, the speaker model's path) are left null here; run() fills them in."""
    from omegaconf import OmegaConf, open_dict

    base = OmegaConf.load(Path(__file__).parent / "configs" / "msdd.yaml")
    full = base.copy()
    if restored is None:
        for key, value in job["config"].items():
            top = key.split(".")[0]
            if top in RESERVED:
                raise JobError(f"config key {key!r} is set by the job's own keys")
            if top == SPEAKER or key == SPEAKER_PATH:
                continue
            if OmegaConf.select(base.model, key, default=KeyError) is KeyError:
                raise JobError(f"config key {key!r} is not in the base config (msdd.yaml)")
            OmegaConf.update(full.model, key, value, force_add=True)
        with open_dict(full.model):
            full.model.diarizer.speaker_embeddings.model_path = None
    else:
        model = OmegaConf.create(OmegaConf.to_container(restored, resolve=True))
        with open_dict(model):
            for section in ("train_ds", "validation_ds", "test_ds"):
                model[section] = base.model[section]
            model.pop("target", None)
            model.pop("nemo_version", None)
            model.pop(SPEAKER, None)
            model.diarizer.speaker_embeddings.model_path = None
        full.model = model
    cpu = job["device"] == "cpu"
    full.batch_size = job["batch_size"]
    full.num_workers = 0 if cpu else min(4, max(1, (os.cpu_count() or 2) - 1))
    opt = job["optimizer"]
    sched: dict[str, Any] = OmegaConf.to_container(base.model.optim.sched)  # type: ignore[assignment]
    if job["warmup_steps"]:
        sched["warmup_steps"] = job["warmup_steps"]
    with open_dict(full.model):
        full.model.optim = {
            "name": opt["name"],
            "lr": float(opt["lr"]),
            "weight_decay": float(opt["weight_decay"]),
            "sched": sched,
        }
        for section, manifest in (("train_ds", "train"), ("validation_ds", "dev")):
            ds = full.model[section]
            ds.manifest_filepath = job[f"{manifest}_manifest"] if job["epochs"] else None
            ds.emb_dir = None
            ds.batch_size = job["batch_size"]
            ds.pin_memory = not cpu
        full.model.test_ds.manifest_filepath = None
    cfg = OmegaConf.create(OmegaConf.to_container(full.model, resolve=True))
    # MSDD's input width is the speaker model's embedding size, and MSDD cuts its segments from
    # the speaker model's features with its own preprocessor's feature count.
    emb = int(speaker_cfg.decoder.emb_sizes)
    if "msdd_module.emb_dim" in job["config"] and int(cfg.msdd_module.emb_dim) != emb:
        raise JobError(f"msdd_module.emb_dim {cfg.msdd_module.emb_dim} != speaker embeddings {emb}")
    cfg.msdd_module.emb_dim = emb
    if int(cfg.preprocessor.features) != int(speaker_cfg.preprocessor.features):
        raise JobError("preprocessor.features must equal the speaker model's")
    with open_dict(cfg):
        cfg[SPEAKER] = speaker_cfg
    return cfg


def inference_config(job: dict[str, Any], model_path: Path, cfg: Any, work: Path) -> Any:
    """NeMo's NeuralDiarizerInferenceConfig for out/model.nemo with oracle VAD and the model's
    own scales; postprocessing keys override it."""
    from nemo.collections.asr.models.configs.diarizer_config import NeuralDiarizerInferenceConfig
    from omegaconf import OmegaConf

    structured = OmegaConf.structured(NeuralDiarizerInferenceConfig())
    infer = OmegaConf.create(OmegaConf.to_container(structured))
    infer.device = "cuda" if job["device"] == "gpu" else "cpu"
    infer.num_workers = 0
    infer.verbose = False
    d = infer.diarizer
    d.manifest_filepath = str(work / "test.json")
    d.out_dir = str(work / "infer")
    d.oracle_vad = True
    d.vad.model_path = None  # no VAD model offline; oracle_vad never loads one
    d.speaker_embeddings.model_path = None  # the speaker model comes from the MSDD .nemo
    d.speaker_embeddings.parameters = OmegaConf.to_container(
        cfg.diarizer.speaker_embeddings.parameters
    )
    d.speaker_embeddings.parameters.save_embeddings = True  # MSDD reads them back
    d.msdd_model.model_path = str(model_path)
    d.msdd_model.parameters.use_speaker_model_from_ckpt = True
    for key, value in (job["postprocessing"] or {}).items():
        if OmegaConf.select(d, key, default=KeyError) is KeyError:
            raise JobError(f"postprocessing key {key!r} is not in NeMo's diarizer config")
        if key == "msdd_model.parameters.sigmoid_threshold":
            value = value if isinstance(value, list) else [value]
            if len(value) != 1:
                raise JobError("postprocessing: one sigmoid_threshold (each writes the RTTMs)")
        OmegaConf.update(d, key, value)
    return infer


# ----------------------------------------------------------------------------- training


def random_speaker_model(cfg: Any, path: Path, seed: int) -> None:
    """Save a randomly initialised TitaNet (EncDecSpeakerLabelModel) built from ``cfg``."""
    import torch
    from lightning.pytorch import seed_everything
    from nemo.collections.asr.models import EncDecSpeakerLabelModel
    from omegaconf import open_dict

    seed_everything(seed, workers=True)
    model = EncDecSpeakerLabelModel(cfg=copy.deepcopy(cfg))
    # EncDecDiarLabelModel deletes these two keys from the speaker config it copies
    with open_dict(model._cfg):
        model._cfg.train_ds = {"manifest_filepath": None}
        model._cfg.validation_ds = {"manifest_filepath": None}
    with torch.no_grad():
        model.save_to(str(path))


def save_speaker_model(speaker: Any, path: Path) -> None:
    """Save a speaker model as a .nemo that NeMo's MSDD init accepts: it takes the speaker model
    only from a file and deletes train_ds/validation_ds from the config it copies (a KeyError
    where they are missing)."""
    from omegaconf import open_dict

    with open_dict(speaker._cfg):
        speaker._cfg.train_ds = {"manifest_filepath": None}
        speaker._cfg.validation_ds = {"manifest_filepath": None}
    speaker.save_to(str(path))


# ----------------------------------------------------------------------------- inference


def diarize(job: dict[str, Any], model_path: Path, cfg: Any, out: Path) -> list[str]:
    """Run NeMo's NeuralDiarizer (clustering init + MSDD, oracle VAD) on the test manifest and
    write out/hyp/<audio stem>.rttm."""
    from nemo.collections.asr.models.msdd_models import NeuralDiarizer

    entries = read_manifest(job["test_manifest"], "test_manifest")
    uris = [Path(entry["audio_filepath"]).stem for entry in entries]
    if len(set(uris)) != len(uris):
        raise JobError("test_manifest must list distinct audio files (their stems name the RTTMs)")
    hyp = out / "hyp"
    hyp.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".infer-") as tmp:
        work = Path(tmp)
        # a copy without stray keys (a uniq_id would rename a recording away from its stem)
        rows = [{k: e[k] for k in MANIFEST_KEYS if k in e} for e in entries]
        for row in rows:
            row.setdefault("label", "infer")
            row.setdefault("text", "-")
        (work / "test.json").write_text(
            "".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8"
        )
        infer = inference_config(job, model_path, cfg, work)
        diarizer = NeuralDiarizer(cfg=infer).to(infer.device)
        diarizer.diarize()
        pred = work / "infer" / "pred_rttms"
        for uri in uris:
            segments = []
            source = pred / f"{uri}.rttm"
            if source.exists():
                for line in source.read_text(encoding="utf-8").splitlines():
                    fields = line.split()
                    if len(fields) >= 8 and fields[0] == "SPEAKER":
                        segments.append((float(fields[3]), float(fields[4]), fields[7]))
            text = "".join(
                f"SPEAKER {uri} 1 {start:.3f} {dur:.3f} <NA> <NA> {spk} <NA> <NA>\n"
                for start, dur, spk in sorted(segments)
                if dur > 0
            )
            write_atomic(hyp / f"{uri}.rttm", text)
    return uris


# ----------------------------------------------------------------------------- run


def run(job: Any, emit: Emit) -> dict[str, Any]:
    """Build or restore an MSDD, train it with NeMo's own steps, save out/model.nemo, diarize
    the test manifest into out/hyp/ and write out/result.json (also returned)."""
    check_job(job)
    started_all = time.perf_counter()
    import torch
    from lightning.pytorch import seed_everything
    from nemo.collections.asr.models import EncDecDiarLabelModel
    from omegaconf import OmegaConf, open_dict

    timings: dict[str, float] = {"import": time.perf_counter() - started_all}
    gpu = job["device"] == "gpu"
    if gpu and not torch.cuda.is_available():
        raise JobError("device gpu requested but CUDA is not available")
    if job["threads"] is not None:
        torch.set_num_threads(job["threads"])
    if job["epochs"]:
        read_manifest(job["train_manifest"], "train_manifest")
        read_manifest(job["dev_manifest"], "dev_manifest")
    read_manifest(job["test_manifest"], "test_manifest")
    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"

    # --- what to start from: scratch (random or local TitaNet), a speaker .nemo or an MSDD .nemo
    started = time.perf_counter()
    speaker_over = {
        k[len(SPEAKER) + 1 :]: v for k, v in job["config"].items() if k.startswith(SPEAKER + ".")
    }
    speaker_file: Path | None = None
    speaker_complete = True
    restored = None
    init_path = Path(job["init"]["path"]) if job["init"]["kind"] == "file" else None
    if init_path is not None:
        if not init_path.is_file():
            raise JobError(f"init: no file {init_path}")
        target = nemo_target(init_path)
        if target.endswith("EncDecDiarLabelModel"):
            if job["config"]:
                raise JobError("config overrides apply to scratch or speaker-model init only")
            restored = EncDecDiarLabelModel.restore_from(str(init_path), map_location="cpu")
        elif target.endswith("EncDecSpeakerLabelModel"):
            speaker_file = init_path
        else:
            raise JobError(
                f"init: {init_path} holds a {target or 'unknown model'}, not an MSDD "
                "(EncDecDiarLabelModel) or speaker model (EncDecSpeakerLabelModel)"
            )
    if SPEAKER_PATH in job["config"]:
        path = job["config"][SPEAKER_PATH]
        if speaker_file is not None:
            raise JobError(f"{SPEAKER_PATH} and a speaker-model init both name a speaker model")
        if not isinstance(path, str) or not path.endswith(".nemo") or not Path(path).is_file():
            raise JobError(
                f"{SPEAKER_PATH} must be a local .nemo file, not {path!r}: a model name "
                "(titanet_large) would be downloaded from NGC"
            )
        speaker_file = Path(path)
    if speaker_file is not None and speaker_over:
        raise JobError(f"{SPEAKER}.* overrides build a random speaker model, not {speaker_file}")
    if restored is not None:
        speaker_cfg = OmegaConf.create(OmegaConf.to_container(restored.cfg[SPEAKER]))
    elif speaker_file is not None:
        speaker_cfg = speaker_file_config(speaker_file)
        speaker_complete = "train_ds" in speaker_cfg and "validation_ds" in speaker_cfg
    else:
        speaker_cfg = speaker_config(speaker_over)
    for key in ("train_ds", "validation_ds"):
        speaker_cfg.pop(key, None)
    cfg = build_config(job, None if restored is None else restored.cfg, speaker_cfg)
    cfg_sha = config_sha256(cfg)
    init_sha = sha256_file(init_path) if init_path else None
    speaker_sha = sha256_file(speaker_file) if speaker_file else None
    identity = {"config_sha256": cfg_sha, "init_sha256": init_sha, "speaker_sha256": speaker_sha}

    resume = readable_checkpoint(ckpt_dir) if job["epochs"] else None
    reporter = make_reporter(emit, identity, job["max_steps"])
    trainer, keeper = make_trainer(job, reporter, ckpt_dir)
    with tempfile.TemporaryDirectory(dir=out, prefix=".work-") as tmp:
        work = Path(tmp)
        train_cfg = copy.deepcopy(cfg)
        with open_dict(train_cfg):
            train_cfg.pop(SPEAKER)
            train_cfg.train_ds.emb_dir = str(work / "train")
            train_cfg.validation_ds.emb_dir = str(work / "dev")
            if speaker_file is not None and not speaker_complete:
                from nemo.collections.asr.models import EncDecSpeakerLabelModel

                copy_path = work / "speaker_init.nemo"
                save_speaker_model(
                    EncDecSpeakerLabelModel.restore_from(str(speaker_file), map_location="cpu"),
                    copy_path,
                )
                speaker_file = copy_path
            if speaker_file is None:
                speaker_file = work / "speaker_init.nemo"
                if restored is not None:
                    save_speaker_model(restored.msdd._speaker_model, speaker_file)
                else:
                    random_speaker_model(speaker_cfg, speaker_file, job["seed"])
            train_cfg.diarizer.speaker_embeddings.model_path = str(speaker_file)
        seed_everything(job["seed"], workers=True)
        model = EncDecDiarLabelModel(cfg=train_cfg, trainer=trainer)
        if restored is not None:
            model.load_state_dict(restored.state_dict())
            del restored
        seed_everything(job["seed"], workers=True)
        timings["build"] = time.perf_counter() - started

        guard_probabilities(model, trainer)
        head = {**start_facts(model, cfg_sha, init_sha), "speaker_sha256": speaker_sha}
        emit({"event": "start", **head, "resume": str(resume) if resume else None})

        started = time.perf_counter()
        if job["epochs"]:
            trainer.fit(model, ckpt_path=str(resume) if resume else None)
        timings["train"] = time.perf_counter() - started

    started = time.perf_counter()
    best = Path(keeper.best_model_path) if keeper.best_model_path else None
    best_epoch = None
    if best is not None and best.exists():
        state = torch.load(best, map_location="cpu", weights_only=False)
        model.load_state_dict(state["state_dict"])
        best_epoch = int(state["epoch"]) + 1
    # NeMo's EncDecDiarLabelModel adds the speaker model's config to the cfg it was given but not
    # to the copy save_to writes, so its .nemo would not restore; put it there, and drop the
    # temporary paths.
    speaker_saved = OmegaConf.create(OmegaConf.to_container(model.msdd._speaker_model.cfg))
    for key in ("train_ds", "validation_ds"):
        speaker_saved.pop(key, None)
    with open_dict(model._cfg):
        model._cfg[SPEAKER] = speaker_saved
        model._cfg.train_ds.emb_dir = None
        model._cfg.validation_ds.emb_dir = None
        model._cfg.diarizer.speaker_embeddings.model_path = None
    model.to("cpu")
    tmp_nemo = out / ".model.tmp.nemo"
    model.save_to(str(tmp_nemo))
    os.replace(tmp_nemo, out / "model.nemo")
    write_atomic(out / "config.yaml", OmegaConf.to_yaml(cfg))
    steps = trainer.global_step
    del model
    timings["save"] = time.perf_counter() - started

    started = time.perf_counter()
    uris = diarize(job, out / "model.nemo", cfg, out)
    timings["diarize"] = time.perf_counter() - started
    timings["total"] = time.perf_counter() - started_all
    result = {
        **head,
        "epochs": reporter.rows,
        "steps": steps,
        "kept": "best" if best_epoch else "last",
        "best_epoch": best_epoch,
        "wall_time_s": {k: round(v, 3) for k, v in timings.items()},
        "hypotheses": uris,
    }
    write_atomic(out / "result.json", json.dumps(result, indent=2) + "\n")
    return result
