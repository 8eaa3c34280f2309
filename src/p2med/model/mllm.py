"""The composed P2Med model: vision encoder -> perceiver -> LLM, each part trainable as frozen | lora | full.

``P2MedModel(vision, perceiver, llm, cfg)`` takes built parts (build.py builds them) and owns only the glue:
the image path split in two so training can cache the frozen encoder's features (``encode_images`` then
``resample``), the replacement of each ``<image>``'s slots by its 32 visual tokens, and the summed loss.
It does not know tokenizers or files (processor.py, checkpoint.py).

Example::

    feats = model.encode_images(batch["pixel_values"], batch["slice_mask"])   # [N, S, P, D_vision]
    out = model(input_ids=..., attention_mask=..., image_mask=..., labels=...,
                image_features=feats, slice_mask=batch["slice_mask"])
    (out.loss_sum / out.n_tokens).backward()   # training divides by the global token count instead
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..common.errors import P2MedError
from .config import ModelConfig, TrainableConfig
from .conversation import IGNORE
from .llm import LanguageModel
from .lora import add_lora, has_lora, merge_lora
from .perceiver import PerceiverResampler
from .vision import VisionEncoder


@dataclass
class P2MedOutput:
    logits: torch.Tensor                  # [B, T, V]
    loss_sum: torch.Tensor | None = None  # summed cross-entropy over the target tokens (given labels)
    n_tokens: torch.Tensor | None = None  # number of target tokens (labels != -100 after the shift)
    past_key_values: Any = None


class P2MedModel(nn.Module):
    def __init__(self, vision: VisionEncoder, perceiver: PerceiverResampler, llm: LanguageModel, cfg: ModelConfig,
                 stored_parts: set[str] | None = None):
        super().__init__()
        if perceiver.proj.out_features != llm.hidden_size:
            raise P2MedError(f"the perceiver's width {perceiver.proj.out_features} must equal the LLM's "
                             f"hidden size {llm.hidden_size}")
        self.vision, self.perceiver, self.llm, self.cfg = vision, perceiver, llm, cfg
        # parts whose weights a checkpoint must hold: built from a config, or trained fully
        self.stored_parts = set(stored_parts or ())

    @property
    def num_latents(self) -> int:
        return self.perceiver.cfg.num_latents

    # ---- the image path, in two steps so that frozen-encoder features can be cached
    def encode_images(self, pixel_values: torch.Tensor, slice_mask: torch.Tensor | None = None,
                      chunk: int = 64) -> torch.Tensor:
        """pixel_values [N, S, 3, H, W] -> features [N, S, P, D_vision] (zeros where slice_mask is False)."""
        N, S = pixel_values.shape[:2]
        if slice_mask is None:
            slice_mask = torch.ones((N, S), dtype=torch.bool, device=pixel_values.device)
        slices = pixel_values[slice_mask].to(self.vision_dtype)          # [M, 3, H, W] real slices only
        trains = any(p.requires_grad for p in self.vision.parameters())
        with torch.set_grad_enabled(trains and torch.is_grad_enabled()):
            feats = torch.cat([self.vision(slices[i: i + chunk]) for i in range(0, len(slices), chunk)])  # [M, P, Dv]
        out = feats.new_zeros((N, S, *feats.shape[1:]))
        out[slice_mask] = feats
        return out

    def resample(self, features: torch.Tensor, slice_mask: torch.Tensor | None = None) -> torch.Tensor:
        """features [N, S, P, D_vision] -> visual tokens [N, num_latents, D_llm]."""
        return self.perceiver(features.to(self.perceiver.latents.dtype), slice_mask)

    def visual_tokens(self, pixel_values: torch.Tensor | None = None, image_features: torch.Tensor | None = None,
                      slice_mask: torch.Tensor | None = None) -> torch.Tensor | None:
        if image_features is None and pixel_values is None:
            return None
        if image_features is None:
            image_features = self.encode_images(pixel_values, slice_mask)
        return self.resample(image_features, slice_mask)

    def embed(self, input_ids: torch.Tensor, image_mask: torch.Tensor | None = None,
              visual: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings [B, T, D] with each image's slots (image_mask) replaced by its visual tokens."""
        if image_mask is None or not image_mask.any():
            if visual is not None:
                raise P2MedError(f"{visual.shape[0]} image(s) given but the input has no <image> slots")
            return self.llm.embed(input_ids)
        x = self.llm.embed(input_ids.masked_fill(image_mask, 0))      # slots are never embedded as tokens
        slots = int(image_mask.sum())
        if visual is None or visual.shape[0] * visual.shape[1] != slots:
            got = 0 if visual is None else visual.shape[0]
            raise P2MedError(f"the input has {slots // self.num_latents} <image> slot group(s) but {got} image(s) "
                             "were given")
        return x.masked_scatter(image_mask[..., None], visual.to(x.dtype))  # images fill slots in order

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, image_mask: torch.Tensor | None = None,
                pixel_values: torch.Tensor | None = None, image_features: torch.Tensor | None = None,
                slice_mask: torch.Tensor | None = None) -> P2MedOutput:
        """input_ids/attention_mask/labels/image_mask [B, T]; images as pixel_values [N, S, 3, H, W] or
        precomputed image_features [N, S, P, D_vision], with slice_mask [N, S]."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        visual = self.visual_tokens(pixel_values, image_features, slice_mask)  # [N, L, D] or None
        x = self.embed(input_ids, image_mask, visual)                          # [B, T, D]
        logits, _ = self.llm(x, attention_mask)                                # [B, T, V]
        if labels is None:
            return P2MedOutput(logits)
        target = labels[:, 1:]                                                 # [B, T-1]
        loss_sum = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), target.flatten(), ignore_index=IGNORE,
                                   reduction="sum")
        return P2MedOutput(logits, loss_sum, (target != IGNORE).sum())

    # ---- what trains
    @property
    def vision_dtype(self) -> torch.dtype:
        return next(self.vision.parameters()).dtype

    def train(self, mode: bool = True) -> "P2MedModel":
        """As nn.Module.train, but a frozen tower stays in eval mode: its BatchNorm statistics (convolutional
        towers) must not drift while it is frozen, and its cached features must match what it computes."""
        super().train(mode)
        if self.cfg.trainable.vision == "frozen":
            self.vision.eval()
        return self

    def set_trainable(self, trainable: TrainableConfig) -> None:
        """Freeze, attach LoRA to, or fully unfreeze each part (an adapter is added the first time one asks
        for lora; a part with an adapter that becomes frozen keeps it, frozen)."""
        lora = self.cfg.lora
        self.vision.tower = self._set_part(self.vision.tower, "vision", trainable.vision, lora.vision_targets,
                                           causal_lm=False)
        self.llm.model = self._set_part(self.llm.model, "llm", trainable.llm, lora.targets, causal_lm=True)
        self.perceiver.requires_grad_(trainable.perceiver == "full")
        self.cfg.trainable = trainable
        self.train(self.training)

    def _set_part(self, module: nn.Module, part: str, mode: str, targets: list[str], causal_lm: bool) -> nn.Module:
        if mode == "lora" and not has_lora(module):
            module = add_lora(module, self.cfg.lora, targets, causal_lm)
        if mode == "full" and has_lora(module):
            raise P2MedError(f"trainable.{part}=full but the {part} carries a LoRA adapter: merge it first "
                             "(P2MedModel.merge_lora) or train it as lora")
        for name, p in module.named_parameters():
            p.requires_grad_(mode == "full" or (mode == "lora" and "lora_" in name))
        if mode == "full":
            self.stored_parts.add(part)
        return module

    def merge_lora(self) -> None:
        """Fold every adapter into its base weights (serving: a peft-wrapped LLM decodes several times slower);
        the merged parts' weights must then be stored in checkpoints."""
        for part, holder, attr in (("vision", self.vision, "tower"), ("llm", self.llm, "model")):
            if has_lora(getattr(holder, attr)):
                setattr(holder, attr, merge_lora(getattr(holder, attr)))
                self.stored_parts.add(part)
        for part in ("vision", "llm"):
            if getattr(self.cfg.trainable, part) == "lora":
                setattr(self.cfg.trainable, part, "frozen")
