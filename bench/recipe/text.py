"""A recipe as short text: the one convention ``bench recipes``, ``--dry-run``, the leaderboard
and its markdown page share (``nadam 1e-4``, ``cosine (T 50)``, ``bce+tversky (α 0.3, β 0.7) +
vad``).

Every function reads the recipe's JSON form (:meth:`bench.recipe.Recipe.resolved`, what a
result records), so a record written by an older bench, whose recipe the current schema might
refuse, is still described.
"""

from __future__ import annotations

from typing import Any

from bench.io import is_number


def rate(value: Any) -> str:
    """A learning rate as the reference write-up writes it: ``1e-4``, ``3e-3``, ``0.05``."""
    if not is_number(value):
        return str(value)
    if value == 0 or 1e-2 <= abs(value) < 1e3:
        return f"{value:g}"
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def optimizer_text(recipe: dict[str, Any]) -> str:
    """``'nadam 1e-4'``, ``'adamw 1e-4, wd 0.01'``, ``'sgd 0.05, m 0.9'``."""
    opt = recipe.get("optimizer") or {}
    if not opt:
        return ""
    text = f"{opt.get('name')} {rate(opt.get('lr'))}"
    if opt.get("weight_decay"):
        text += f", wd {rate(opt['weight_decay'])}"
    if opt.get("momentum"):
        text += f", m {opt['momentum']:g}"
    return text


def scheduler_text(recipe: dict[str, Any]) -> str:
    """``'cosine (T 50)'``, ``'step (×0.1 / 10)'``, ``'plateau (×0.5, p 2)'`` or ``'none'``."""
    if recipe.get("kind") == "nemo":  # NeMo's inverse-square-root schedule, or a constant rate
        warmup = recipe.get("warmup_steps")
        return f"inverse sqrt (warm-up {warmup})" if warmup else "none"
    sched = recipe.get("scheduler")
    if not sched:
        return "none" if recipe else ""
    kind = str(sched.get("kind", "?"))
    if kind == "cosine":
        parts = [f"T {sched['t_max']}"] if sched.get("t_max") is not None else []
        if sched.get("warmup"):
            parts.append(f"warm-up {sched['warmup']}")
    elif kind == "step":
        parts = [f"×{sched.get('gamma', 0.1):g} / {sched.get('step_size')}"]
    elif kind == "plateau":
        parts = [f"×{sched.get('factor', 0.5):g}, p {sched.get('patience')}"]
    else:
        parts = []
    if sched.get("interval") == "step":
        parts.append("per step")
    return f"{kind} ({', '.join(parts)})" if parts else kind


def loss_text(recipe: dict[str, Any]) -> str:
    """``'bce+tversky (α 0.3, β 0.7) + vad'``; a NeMo model's own loss by name."""
    if recipe.get("kind") == "nemo":
        return NEMO_LOSSES.get(str(recipe.get("model")), "")
    loss = recipe.get("loss") or {}
    if not loss:
        return ""
    kind = str(loss.get("kind"))
    parts = []
    if kind.endswith("+tversky"):
        parts.append(f"α {loss.get('alpha'):g}, β {loss.get('beta'):g}")
    if kind.endswith(("+dice", "+tversky")) and loss.get("weight", 1.0) != 1.0:
        parts.append(f"×{loss['weight']:g}")
    if kind == "focal" and loss.get("gamma") is not None:
        parts.append(f"γ {loss['gamma']:g}")
    text = f"{kind} ({', '.join(parts)})" if parts else kind
    vad = recipe.get("vad_loss")
    if vad:
        weight = vad.get("weight", 1.0) if isinstance(vad, dict) else 1.0
        text += " + vad" + (f" ×{weight:g}" if weight != 1.0 else "")
    return text


AUGMENTATIONS = {"impulse_response": "IR", "noise": "noise", "gain": "gain"}
# what each NeMo model trains with (its config's loss; not a recipe field)
NEMO_LOSSES = {"sortformer": "PIL+ATS (NeMo)", "msdd": "BCE (NeMo)"}


def augmentation_text(recipe: dict[str, Any]) -> str:
    """``'none'``, or the augmentations applied (``'IR+noise'``); empty for a NeMo recipe
    (its augmentation is its config's, not a recipe field)."""
    if not recipe or recipe.get("kind") == "nemo":
        return ""
    aug = recipe.get("augmentation")
    if not aug:
        return "none"
    if isinstance(aug, dict):
        return "+".join(AUGMENTATIONS.get(k, k) for k, v in aug.items() if v) or "none"
    return str(aug)


def init_text(recipe: dict[str, Any]) -> str:
    """``'scratch'``, or the initial weights' id (with ``, head converted`` and the like)."""
    if recipe.get("kind") == "nemo":
        init = recipe.get("init") or {}
        return "scratch" if init.get("kind") == "scratch" else str(init.get("id"))
    model = recipe.get("model") or {}
    if not model:
        return ""
    if model.get("kind") == "scratch":
        return "scratch"
    head = model.get("head")
    return str(model.get("id")) + (f", head {HEADS.get(head, head)}" if head else "")


HEADS = {"convert": "converted", "reinitialise": "reinitialised"}
