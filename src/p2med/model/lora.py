"""LoRA through peft on any HF part (the LLM by default, the vision tower if asked): W' = W + B A * alpha / r.

A part with LoRA is a ``peft.PeftModel`` wrapping the HF model; its adapter is saved apart in peft format
(``adapter_config.json`` + ``adapter_model.safetensors``) and never mixed with the base weights. It does not
decide what trains (``P2MedModel.set_trainable``) or where files go (checkpoint.py).

Example::

    lm.model = add_lora(lm.model, LoraConfig(r=16), lm_targets, causal_lm=True)
    ...train...
    lm.model = merge_lora(lm.model)            # plain HF model again, W + BA folded in (serving)
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..common.errors import P2MedError
from ..common.optional import require
from .config import LoraConfig


def has_lora(model: nn.Module) -> bool:
    peft = require("peft", "train")
    return isinstance(model, peft.PeftModel)


def add_lora(model: nn.Module, cfg: LoraConfig, targets: list[str], causal_lm: bool) -> nn.Module:
    """Wrap ``model`` with a fresh adapter on ``targets`` (module names such as q_proj)."""
    peft = require("peft", "train")
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = sorted(set(targets) - names)
    if missing:
        raise P2MedError(f"lora targets {missing} are not modules of {type(model).__name__}; "
                         f"linear layers there include {sorted(n for n in names if 'proj' in n)[:12]}")
    config = peft.LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=list(targets),
                             task_type="CAUSAL_LM" if causal_lm else None)
    return peft.get_peft_model(model, config)


def load_lora(model: nn.Module, folder: str | Path) -> nn.Module:
    """Wrap ``model`` with the adapter saved in ``folder`` (trainable; set_trainable decides afterwards)."""
    peft = require("peft", "train")
    return peft.PeftModel.from_pretrained(model, str(folder), is_trainable=True)


def save_lora(model: nn.Module, folder: str | Path, base_reference: str) -> None:
    """Write the adapter alone; ``base_reference`` replaces peft's record of where the base came from (which
    would otherwise be an absolute path, and checkpoints hold none)."""
    for config in model.peft_config.values():
        config.base_model_name_or_path = base_reference
    # LoRA never targets the embeddings and P2Med never resizes the vocabulary; "auto" would look the base up
    model.save_pretrained(str(folder), save_embedding_layers=False)


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold the adapter into the base weights and return the plain HF model."""
    return model.merge_and_unload() if has_lora(model) else model


def base_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of the HF model under the adapter, with peft's names undone (for save_pretrained)."""
    if not has_lora(model):
        return model.state_dict()
    out = {}
    for key, value in model.get_base_model().state_dict().items():
        if "lora_" in key:
            continue
        out[key.replace(".base_layer.", ".")] = value
    return out
