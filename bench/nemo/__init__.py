"""NeMo's diarizers as a backend: its own environment (:mod:`bench.nemo.environment`), a worker
script run by that environment's python (``worker.py``, never imported here) and the subprocess
that talks to it (:mod:`bench.nemo.backend`). Nothing here imports NeMo or torch.

``configs/`` holds NeMo's stock training configs (Apache-2.0, from NeMo's examples), which a
:class:`bench.recipe.NemoScratch` model is built from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONFIGS = Path(__file__).with_name("configs")
# fields of the ``model:`` section a recipe's own fields set (data, optimizer, schedule): a
# config override of them would say one thing twice
RESERVED = ("train_ds", "validation_ds", "test_ds", "optim", "lr")
# small models for the tests and for the demo when no pretrained weights can be had offline
SMALL_CONFIGS: dict[str, dict[str, Any]] = {
    # 137 k parameters (the stock model: 117 M); an epoch of the demo in about 35 s on 2 cores
    "sortformer": {
        "model_defaults.fc_d_model": 64,
        "model_defaults.tf_d_model": 32,
        "encoder.n_layers": 1,
        "encoder.n_heads": 4,
        "encoder.subsampling_conv_channels": 32,
        "transformer_encoder.num_layers": 1,
        "transformer_encoder.inner_size": 64,
        "transformer_encoder.num_attention_heads": 4,
    },
    # 43 k parameters: a tiny random TitaNet (frozen, as in the stock config) under a small MSDD
    "msdd": {
        "speaker_model_cfg.model_defaults.filters": 32,
        "speaker_model_cfg.model_defaults.repeat": 1,
        "speaker_model_cfg.model_defaults.se": False,
        "speaker_model_cfg.encoder.jasper.4.filters": 64,
        "speaker_model_cfg.decoder.pool_mode": "xvector",
        "speaker_model_cfg.decoder.emb_sizes": 32,
        "speaker_model_cfg.decoder.num_classes": 16,
        "msdd_module.hidden_size": 32,
        "msdd_module.num_lstm_layers": 1,
        "msdd_module.cnn_output_ch": 8,
        "msdd_module.conv_repeat": 1,
    },
}
# MSDD's speaker model (TitaNet) config lives in the worker, which checks these keys itself
OWN_KEYS = {"msdd": "speaker_model_cfg"}


def stock_config(model: str) -> Path:
    """NeMo's stock config of ``model`` (``sortformer`` or ``msdd``) as shipped in bench."""
    return CONFIGS / f"{model}.yaml"


def config_problem(model: str, key: str) -> str | None:
    """Why ``key`` (dotted) cannot override ``model``'s stock config, or None when it can."""
    import yaml

    if key.split(".")[0] in RESERVED:
        return f"'{key}' is set by the recipe's own fields (data, optimizer, schedule)"
    if key.split(".")[0] == OWN_KEYS.get(model):
        return None
    node: Any = yaml.safe_load(stock_config(model).read_text(encoding="utf-8"))["model"]
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return f"'{key}' is not in NeMo's {model} config ({stock_config(model).name})"
        node = node[part]
    return None
