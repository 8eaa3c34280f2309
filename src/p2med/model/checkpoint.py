"""Checkpoints as folders: what a training stage hands to the next one, to evaluation and to the server.

Layout (``save_checkpoint(model, processor, "runs/stage1")``)::

    config.json               format, the ModelConfig, which parts are stored here and why, parameter counts
    perceiver.safetensors     the perceiver (always trained)
    adapter_llm/              the LLM's LoRA adapter in peft format (adapter_config.json + safetensors), if any
    adapter_vision/           the vision tower's adapter, if it has one
    vision/  llm/             HF folders of parts that no local path can rebuild: built from a config with random
                              weights (the tiny preset: no pretrained weights exist offline) or trained fully
    tokenizer/                the tokenizer

A base encoder or LLM loaded from a local folder is referenced by that path (as configured), never copied;
loading a checkpoint whose base folder is missing says which weights to put where. The folder is written
beside its final place and renamed into it, and holds no absolute paths, times or patient data.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..common.atomic import write_json
from ..common.errors import P2MedError
from ..common.optional import require
from ..config import ConfigError, from_dict, to_dict
from .config import ModelConfig
from .lora import base_state_dict, has_lora, load_lora, save_lora

FORMAT = "p2med-model"
VERSION = 1
PARTS = {"vision": ("vision", "tower"), "llm": ("llm", "model")}  # part -> (attribute, HF model attribute)


def _hf(model: Any, part: str) -> Any:
    attr, inner = PARTS[part]
    return getattr(getattr(model, attr), inner)


def save_checkpoint(model: Any, processor: Any, folder: str | os.PathLike) -> Path:
    """Write ``folder`` (replacing an existing one only once the new one is complete)."""
    st = require("safetensors.torch", "train")
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    st.save_file({k: v.detach().contiguous().cpu() for k, v in model.perceiver.state_dict().items()},
                 str(tmp / "perceiver.safetensors"))
    stored, adapters = {}, {}
    for part in PARTS:
        hf = _hf(model, part)
        configured = getattr(model.cfg, part).path
        if part in model.stored_parts:
            base = hf.get_base_model() if has_lora(hf) else hf
            base.save_pretrained(str(tmp / part), state_dict=base_state_dict(hf))
            stored[part] = part
        if has_lora(hf):
            save_lora(hf, tmp / f"adapter_{part}", base_reference=f"stored:{part}" if part in stored
                      else str(configured))
            adapters[part] = f"adapter_{part}"
    processor.tokenizer.save_pretrained(str(tmp / "tokenizer"))
    built = sorted(p for p in stored if getattr(model.cfg, p).path is None)
    notes = ([f"{', '.join(built)} built from a config with random weights (no pretrained weights exist for this "
              "preset); the trained weights are stored in this folder"] if built else [])
    notes += [f"{p} loaded from {getattr(model.cfg, p).path} and trained fully: stored in this folder"
              for p in sorted(set(stored) - set(built))]
    notes += [f"{p} referenced by its local path {getattr(model.cfg, p).path} (not copied)"
              for p in PARTS if p not in stored]
    counts = {name: sum(p.numel() for p in getattr(model, name).parameters())
              for name in ("vision", "perceiver", "llm")}
    write_json(tmp / "config.json", {"format": FORMAT, "version": VERSION, "model": to_dict(model.cfg),
                                     "stored": stored, "adapters": adapters, "notes": notes,
                                     "parameters": counts})
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old)
    else:
        os.replace(tmp, folder)
    return folder


def read_checkpoint_config(folder: str | os.PathLike) -> dict[str, Any]:
    path = Path(folder) / "config.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise P2MedError(f"{path}: not a P2Med checkpoint folder ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise P2MedError(f"{path}: format is {meta.get('format')!r}, expected {FORMAT!r} "
                         "(a folder written by save_checkpoint)")
    if meta.get("version") != VERSION:
        raise P2MedError(f"{path}: checkpoint version {meta.get('version')} is not supported (expected {VERSION})")
    return meta


def load_checkpoint(folder: str | os.PathLike) -> tuple[Any, Any, Any]:
    """(model, processor, tokenizer) as saved, with the config's trainable set, in eval mode."""
    from .build import build_parts
    from .tokenizer import load_tokenizer

    st = require("safetensors.torch", "train")
    folder = Path(folder)
    meta = read_checkpoint_config(folder)
    try:
        cfg = from_dict(ModelConfig, meta["model"])
    except ConfigError as exc:
        raise P2MedError(f"{folder / 'config.json'}: bad model config: {exc}") from exc
    tokenizer = load_tokenizer(folder / "tokenizer", f"{folder}/tokenizer")
    stored = {part: str(folder / sub) for part, sub in meta.get("stored", {}).items()}
    model, processor, tokenizer = build_parts(cfg, tokenizer, stored)
    for part, sub in meta.get("adapters", {}).items():
        attr, inner = PARTS[part]
        setattr(getattr(model, attr), inner, load_lora(_hf(model, part), folder / sub))
    state = st.load_file(str(folder / "perceiver.safetensors"))
    model.perceiver.load_state_dict(state)
    model.set_trainable(cfg.trainable)
    model.eval()
    return model, processor, tokenizer
