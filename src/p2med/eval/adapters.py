"""Generators for ``p2med eval --model``: a P2Med checkpoint (images + text) or a plain causal LM folder (the
text-only baseline of the paper's Baichuan 2 / Chinese-LLaMA-2 rows; image tasks are "not applicable").

Both give the earlier turns of a conversation with their answers (the priors) and the last turn's question, never
its reference answer. The P2Med adapter loads each ``images[i].array`` from the ingest cache root as float32
[S, H, W] in 0..1 and calls issue 8's model package: ``p2med.model.checkpoint.load_checkpoint(path) -> (model,
processor, tokenizer)`` and ``p2med.model.generate.generate(model, processor, conversations,
GenerationConfig(max_new_tokens=N)) -> list[str]`` (greedy, KV cache, stops at EOS, left-padded batches) with
conversations ``{"turns": [..., {"human": ...}], "images": [ImageItem(pixels, true_slices)], "lang": "zh"}``.
The causal LM adapter formats the conversation with the tokenizer's chat template, or the paper's
``Human: ... Assistant:`` format with EOS as the stop token when there is none.
Example: ``open_generator("runs/ckpt", images="runs/cache")``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path

import numpy as np

from ..common.errors import P2MedError
from ..common.optional import require


def _config(path: Path) -> dict:
    try:
        return json.loads((path / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise P2MedError(f"{path / 'config.json'}: not JSON ({exc.msg} at line {exc.lineno})") from exc


def _fingerprint(path: Path) -> str:
    cfg = path / "config.json"
    return hashlib.sha256(cfg.read_bytes()).hexdigest() if cfg.is_file() else ""


def is_p2med_checkpoint(path: Path) -> bool:
    """A P2Med checkpoint folder (``format: p2med-model``, or a perceiver in it); a plain causal LM is not one."""
    cfg = _config(path)
    return cfg.get("format") == "p2med-model" or "perceiver" in cfg or any(path.glob("perceiver*.safetensors"))


def _history(sample: dict) -> list[dict]:
    """Earlier turns with their answers, then the last question without one (a generation prompt)."""
    turns = sample["turns"]
    return [{"human": t["human"], "assistant": t["assistant"]} for t in turns[:-1]] + [{"human": turns[-1]["human"]}]


class CausalLMGenerator:
    """A Hugging Face causal LM from a local folder, greedy, batched with left padding, text tasks only."""

    supports_images = False

    def __init__(self, path: str | Path, max_new_tokens: int = 512) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self.max_new_tokens = max_new_tokens
        self.torch = require("torch", "train")
        transformers = require("transformers", "train")
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = transformers.AutoModelForCausalLM.from_pretrained(self.path, local_files_only=True,
                                                                       dtype=self.torch.float32)
        self.model.eval()

    def prompt(self, sample: dict) -> str:
        turns = _history(sample)
        if getattr(self.tokenizer, "chat_template", None):
            msgs = []
            for t in turns:
                msgs.append({"role": "user", "content": t["human"]})
                if "assistant" in t:
                    msgs.append({"role": "assistant", "content": t["assistant"]})
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        eos = self.tokenizer.eos_token or ""
        text = "".join(f"Human: {t['human']}{eos} Assistant: {t['assistant']}{eos} " for t in turns[:-1])
        return text + f"Human: {turns[-1]['human']}{eos} Assistant: "

    def generate(self, samples: list[dict], max_new_tokens: int | None = None) -> list[str]:
        torch = self.torch
        enc = self.tokenizer([self.prompt(s) for s in samples], return_tensors="pt", padding=True)
        with torch.no_grad():
            out = self.model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens or self.max_new_tokens,
                                      pad_token_id=self.tokenizer.pad_token_id,
                                      eos_token_id=self.tokenizer.eos_token_id)  # [B, T_prompt + T_new]
        new = out[:, enc["input_ids"].shape[1]:]  # [B, T_new]
        return [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]

    def describe(self) -> dict:
        cfg = _config(self.path)
        return {"kind": "causal-lm", "name": self.name, "config_sha256": _fingerprint(self.path),
                "model_type": cfg.get("model_type"), "architectures": cfg.get("architectures"),
                "parameters": int(sum(p.numel() for p in self.model.parameters())), "supports_images": False}


class P2MedGenerator:
    """A P2Med checkpoint (issue 8's ``p2med.model``) with the benchmark's images from the ingest cache."""

    supports_images = True

    def __init__(self, path: str | Path, images: str | Path | None, max_new_tokens: int = 512) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self.images = Path(images) if images else None
        self.max_new_tokens = max_new_tokens
        try:
            checkpoint = importlib.import_module("p2med.model.checkpoint")
            self._generate = importlib.import_module("p2med.model.generate")
            self._image_item = importlib.import_module("p2med.model.processor").ImageItem
        except ImportError as exc:
            raise P2MedError(f"{self.path} is a P2Med checkpoint but the model package is not in this build ({exc}); "
                             "install it or evaluate a plain causal LM") from exc
        self.model, self.processor, self.tokenizer = checkpoint.load_checkpoint(self.path)

    def _image(self, item: dict) -> dict:
        if self.images is None:
            raise P2MedError("the benchmark has image samples but no ingest cache was found: give --images CACHE "
                             "(or a `cache` the dataset's manifest.json points to)")
        path = self.images / item["array"]
        try:
            arr = np.load(path)
        except (OSError, ValueError) as exc:
            raise P2MedError(f"cannot read image array {item['array']} under the ingest cache "
                             f"({type(exc).__name__})") from exc
        arr = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)  # [S, H, W] 0..1
        if arr.ndim == 2:
            arr = arr[None]  # [1, H, W]
        return self._image_item(arr, int(item.get("true_slices") or arr.shape[0]))

    def conversation(self, sample: dict) -> dict:
        """The model's conversation: turns (the last one a prompt) and one image item per ``<image>`` in order."""
        order = [i for t in sample["turns"] for i in t.get("images", [])] or list(range(len(sample.get("images") or [])))
        images = sample.get("images") or []
        return {"turns": _history(sample), "images": [self._image(images[i]) for i in order],
                "lang": sample.get("lang", "zh")}

    def generate(self, samples: list[dict], max_new_tokens: int | None = None) -> list[str]:
        cfg = self._generate.GenerationConfig(max_new_tokens=max_new_tokens or self.max_new_tokens)
        return list(self._generate.generate(self.model, self.processor, [self.conversation(s) for s in samples], cfg))

    def describe(self) -> dict:
        cfg = _config(self.path)
        lineage = {k: cfg[k] for k in ("format", "version", "lineage", "stages", "preset", "base_llm",
                                       "vision_encoder", "stage") if k in cfg}
        return {"kind": "p2med", "name": self.name, "config_sha256": _fingerprint(self.path), "lineage": lineage,
                "supports_images": True}


def open_generator(path: str | Path, kind: str = "auto", images: str | Path | None = None,
                   max_new_tokens: int = 512) -> CausalLMGenerator | P2MedGenerator:
    """The generator for ``--model PATH``: a P2Med checkpoint, or a plain causal LM (text-only baseline)."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise P2MedError(f"--model {path}: no config.json there; expected a P2Med checkpoint folder or a Hugging "
                         "Face causal LM folder")
    if kind == "auto":
        kind = "p2med" if is_p2med_checkpoint(path) else "causal-lm"
    if kind == "p2med":
        return P2MedGenerator(path, images, max_new_tokens)
    if kind == "causal-lm":
        return CausalLMGenerator(path, max_new_tokens)
    raise P2MedError(f"--model-kind {kind!r}: expected auto, p2med or causal-lm")
