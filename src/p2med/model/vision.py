"""The vision encoder box: an HF vision tower (CLIP ViT by default) that turns slices into patch features.

It wraps, never subclasses, a transformers tower loaded from a local folder or built from a config, and picks
one hidden layer (``feature_layer``; -2 is LLaVA's choice) with or without the CLS token (``use_cls``).
Convolutional towers (``ResNetModel``, ``ConvNextModel``...) work too: their stage outputs [M, C, h, w] become
h*w "patches" of C features (their config needs ``image_size``, the side slices are resized to; the sizes are
found by running the tower once on a blank image). CT
slices go through it one by one like X-ray views (SPEC section 5). It does not know about series, padding or
the perceiver. The paper keeps it frozen; ``P2MedModel.set_trainable`` decides.

Example::

    enc = VisionEncoder.from_config("CLIPVisionModel", {"image_size": 112, "patch_size": 14, ...}, -1, False)
    feats = enc(torch.zeros(5, 3, 112, 112))       # [5, 64, D_vision]
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..common.errors import P2MedError


def tower_class(class_name: str) -> type:
    import transformers

    cls = getattr(transformers, class_name, None)
    if cls is None or not hasattr(cls, "config_class"):
        raise P2MedError(f"vision.class_name: {class_name!r} is not a transformers model class "
                         "(e.g. CLIPVisionModel, SiglipVisionModel)")
    return cls


class VisionEncoder(nn.Module):
    """Slices [M, 3, H, W] -> patch features [M, P, D] of one hidden layer of ``tower``."""

    def __init__(self, tower: nn.Module, feature_layer: int, use_cls: bool):
        super().__init__()
        self.tower = tower
        cfg = tower.config
        if not getattr(cfg, "image_size", None):
            raise P2MedError(f"vision.hf_config: {type(tower).__name__} has no image_size; give image_size (the side "
                             "slices are resized to) in vision.hf_config")
        self.image_size = int(cfg.image_size)
        self.convolutional = not hasattr(cfg, "patch_size")
        if self.convolutional:
            shapes = self._probe()
            layers = len(shapes) - 1
        else:
            layers = int(cfg.num_hidden_layers)
        if not (-layers <= feature_layer <= layers and feature_layer != 0):
            raise P2MedError(f"vision.feature_layer={feature_layer}: the tower has {layers} layers "
                             f"(use 1..{layers} or -1..-{layers})")
        self.feature_layer = feature_layer
        # CLIP-style towers put a class token before the patches; SigLIP-style and convolutional ones have none
        self.n_prefix = int(any(hasattr(m, "class_embedding") for m in tower.modules()))
        if use_cls and not self.n_prefix:
            raise P2MedError(f"vision.use_cls is true but {type(tower).__name__} has no CLS token")
        self.use_cls = use_cls
        if self.convolutional:
            channels, h, w = shapes[feature_layer]
            self.dim, self.num_patches = channels, h * w
        else:
            self.dim = int(cfg.hidden_size)
            grid = self.image_size // int(cfg.patch_size)
            self.num_patches = grid * grid + (self.n_prefix if use_cls else 0)

    def _probe(self) -> list[tuple[int, ...]]:
        """[C, h, w] of every hidden state of a convolutional tower, from one blank image."""
        weight = next(self.tower.parameters())
        blank = torch.zeros(1, int(getattr(self.tower.config, "num_channels", 3)), self.image_size, self.image_size,
                            dtype=weight.dtype, device=weight.device)
        was_training = self.tower.training
        self.tower.eval()
        with torch.no_grad():
            states = self.tower(pixel_values=blank, output_hidden_states=True).hidden_states
        self.tower.train(was_training)
        if states[-1].dim() != 4:
            raise P2MedError(f"vision.class_name: {type(self.tower).__name__} has no patch_size and its hidden states "
                             "are not feature maps [M, C, h, w]; use a ViT-style or a convolutional tower")
        return [tuple(h.shape[1:]) for h in states]

    @classmethod
    def from_config(cls, class_name: str, hf_config: dict[str, Any], feature_layer: int, use_cls: bool,
                    dtype: torch.dtype = torch.float32) -> "VisionEncoder":
        """A tower with random weights (the tiny preset: no pretrained weights exist offline)."""
        tower_cls = tower_class(class_name)
        try:
            config = tower_cls.config_class(**hf_config)
        except (TypeError, ValueError) as exc:
            raise P2MedError(f"vision.hf_config is not a valid {tower_cls.config_class.__name__}: {exc}") from exc
        return cls(tower_cls(config).to(dtype), feature_layer, use_cls)

    @classmethod
    def from_pretrained(cls, folder: str, class_name: str, feature_layer: int, use_cls: bool,
                        dtype: torch.dtype = torch.float32) -> "VisionEncoder":
        """A tower from a local HF folder (a full CLIP checkpoint works: its vision part is taken)."""
        tower = tower_class(class_name).from_pretrained(folder, local_files_only=True, dtype=dtype)
        return cls(tower, feature_layer, use_cls)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values [M, 3, H, W] -> features [M, P, D]."""
        out = self.tower(pixel_values=pixel_values, output_hidden_states=True)
        h = out.hidden_states[self.feature_layer]  # [M, n_prefix + grid^2, D], or [M, C, h, w] for a conv tower
        if self.convolutional:
            return h.flatten(2).transpose(1, 2)     # [M, h*w, C]
        return h if self.use_cls else h[:, self.n_prefix:]
