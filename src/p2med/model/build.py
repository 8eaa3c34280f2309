"""Build the model in one obvious place: ``build_model(cfg) -> (model, processor, tokenizer)``.

Each HF part comes from its local folder (``vision.path``, ``llm.path``; never downloaded, a missing folder is
an error saying which weights to put where) or, without a path, from its ``hf_config`` with random weights
(the tiny preset). ``count_parameters`` builds the same parts on the meta device, so the 8B paper shape is
counted exactly without memory or weights (``p2med model-info``).

Example::

    cfg = load_config(ModelConfig, preset_path("tiny"))
    tok = train_tokenizer(export_texts("runs/h"), cfg.tokenizer.vocab_size)
    model, processor, tok = build_model(cfg, tokenizer=tok)
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch

from ..common.errors import P2MedError
from .config import ModelConfig
from .llm import LanguageModel
from .mllm import P2MedModel
from .perceiver import PerceiverResampler
from .processor import ImageProcessor, P2MedProcessor
from .tokenizer import load_tokenizer
from .vision import VisionEncoder, tower_class

log = logging.getLogger(__name__)
TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def local_folder(path: str, field: str, weights: str) -> str:
    """``path`` if it is a local HF model folder, else a P2MedError naming the weights that belong there."""
    p = Path(path)
    if not p.is_dir():
        raise P2MedError(f"{field}={path}: no such folder ({p.resolve()}); put the {weights} weights there in "
                         f"Hugging Face format (config.json + *.safetensors) or set {field}=FOLDER. P2Med never "
                         "downloads weights (HF_HUB_OFFLINE=1)")
    if not (p / "config.json").is_file():
        raise P2MedError(f"{field}={path}: the folder has no config.json; it must hold the {weights} weights in "
                         "Hugging Face format (config.json + *.safetensors)")
    return str(p)


def build_model(cfg: ModelConfig, tokenizer: Any = None) -> tuple[P2MedModel, P2MedProcessor, Any]:
    """The model with ``cfg.trainable`` applied (LoRA attached where asked), its processor and tokenizer."""
    model, processor, tokenizer = build_parts(cfg, tokenizer)
    model.set_trainable(model.cfg.trainable)
    return model, processor, tokenizer


def build_parts(cfg: ModelConfig, tokenizer: Any = None,
                stored: dict[str, str] | None = None) -> tuple[P2MedModel, P2MedProcessor, Any]:
    """Parts without a trainable set; ``stored`` maps a part to a folder that replaces its configured source
    (a checkpoint's own copy of a part built from config or trained fully)."""
    cfg = copy.deepcopy(cfg)
    stored = dict(stored or {})
    tokenizer = tokenizer if tokenizer is not None else _tokenizer(cfg)
    dtype = TORCH_DTYPES[cfg.dtype]
    v = cfg.vision
    if "vision" in stored or v.path:
        folder = stored.get("vision") or local_folder(v.path, "vision.path", v.weights)
        vision = VisionEncoder.from_pretrained(folder, v.class_name, v.feature_layer, v.use_cls, dtype)
        _warn_mismatch("vision.hf_config", v.hf_config, vision.tower.config)
    else:
        vision = VisionEncoder.from_config(v.class_name, v.hf_config, v.feature_layer, v.use_cls, dtype)
        stored["vision"] = "built from config"
    m = cfg.llm
    if "llm" in stored or m.path:
        folder = stored.get("llm") or local_folder(m.path, "llm.path", m.weights)
        llm = LanguageModel.from_pretrained(folder, m.attn_implementation, dtype)
        _warn_mismatch("llm.hf_config", m.hf_config, llm.model.config)
    else:
        special = {k: getattr(tokenizer, k) for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
        llm = LanguageModel.from_config(m.hf_config, len(tokenizer), special, m.attn_implementation, dtype)
        stored["llm"] = "built from config"
    rows = llm.model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise P2MedError(f"the tokenizer has {len(tokenizer)} tokens but the LLM's embedding has {rows} rows: "
                         "use the LLM's own tokenizer (tokenizer.path)")
    perceiver = PerceiverResampler(vision.dim, vision.num_patches, llm.hidden_size, cfg.perceiver).to(dtype)
    model = P2MedModel(vision, perceiver, llm, cfg, stored_parts=set(stored))
    image_processor = ImageProcessor(cfg.processor, vision.image_size, cfg.perceiver.max_slices)
    processor = P2MedProcessor(image_processor, tokenizer, cfg.conversation, cfg.perceiver.num_latents)
    return model, processor, tokenizer


def _tokenizer(cfg: ModelConfig) -> Any:
    if cfg.tokenizer.path:
        return load_tokenizer(cfg.tokenizer.path, "tokenizer.path")
    if cfg.llm.path:
        return load_tokenizer(local_folder(cfg.llm.path, "llm.path", cfg.llm.weights), "llm.path")
    raise P2MedError("the LLM is built from a config and tokenizer.path is not set: train a tokenizer on the "
                     "export's text (p2med.model.tokenizer.train_tokenizer) and pass it to build_model, or set "
                     "tokenizer.path=FOLDER")


def _warn_mismatch(field: str, wanted: dict[str, Any], config: Any) -> None:
    diff = {k: (v, getattr(config, k, None)) for k, v in wanted.items()
            if k != "model_type" and getattr(config, k, None) != v}
    if diff:
        log.warning("%s differs from the loaded folder's config (config value, folder value): %s", field, diff)


def count_parameters(cfg: ModelConfig) -> dict[str, Any]:
    """Exact parameter counts per part, built on the meta device (no memory, no weights read).

    A part whose folder exists is counted from the folder's config.json, otherwise from ``hf_config``; an
    LLM built from config without a vocab_size counts ``tokenizer.vocab_size`` rows.
    """
    sources = {}
    with torch.device("meta"):
        v = cfg.vision
        hf_v = dict(v.hf_config)
        if v.path and Path(v.path, "config.json").is_file():
            hf_v = tower_class(v.class_name).config_class.from_pretrained(v.path).to_dict()
            sources["vision"] = f"{v.path}/config.json"
        else:
            sources["vision"] = "vision.hf_config" + (f" (weights expected at {v.path})" if v.path
                                                      else " (random weights, stored in checkpoints)")
        _need(hf_v, "vision.hf_config", v.path)
        vision = VisionEncoder.from_config(v.class_name, hf_v, v.feature_layer, v.use_cls)
        m = cfg.llm
        hf_m = dict(m.hf_config)
        if m.path and Path(m.path, "config.json").is_file():
            from transformers import AutoConfig

            hf_m = AutoConfig.from_pretrained(m.path).to_dict()
            sources["llm"] = f"{m.path}/config.json"
        else:
            sources["llm"] = "llm.hf_config" + (f" (weights expected at {m.path})" if m.path
                                                else " (random weights, stored in checkpoints)")
        _need(hf_m, "llm.hf_config", m.path)
        vocab = hf_m.pop("vocab_size", None) or cfg.tokenizer.vocab_size
        llm = LanguageModel.from_config(hf_m, vocab, None, m.attn_implementation)
        perceiver = PerceiverResampler(vision.dim, vision.num_patches, llm.hidden_size, cfg.perceiver)
    counts = {"vision": _numel(vision), "perceiver": _numel(perceiver), "llm": _numel(llm)}
    lora = {"vision": _lora_numel(vision, cfg.lora.vision_targets, cfg.lora.r),
            "llm": _lora_numel(llm, cfg.lora.targets, cfg.lora.r)}
    for part in ("vision", "llm"):
        if getattr(cfg.trainable, part) == "lora":
            counts[f"lora_{part}"] = lora[part]
    trainable = {"vision": cfg.trainable.vision, "perceiver": cfg.trainable.perceiver, "llm": cfg.trainable.llm}
    n_train = sum(counts[p] if mode == "full" else counts.get(f"lora_{p}", 0) if mode == "lora" else 0
                  for p, mode in trainable.items())
    return {"counts": counts, "total": sum(counts.values()), "trainable": n_train, "modes": trainable,
            "sources": sources, "vocab_size": vocab, "num_patches": vision.num_patches}


def _need(hf: dict, field: str, path: str | None) -> None:
    if not hf:
        raise P2MedError(f"cannot count this part: {field} is empty and {path} holds no config.json")


def _numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _lora_numel(module: torch.nn.Module, targets: list[str], r: int) -> int:
    """What peft adds: A [r, in] and B [out, r] per targeted Linear layer."""
    return sum(r * (lin.in_features + lin.out_features) for name, lin in module.named_modules()
               if isinstance(lin, torch.nn.Linear) and name.rsplit(".", 1)[-1] in targets)
