"""Image items -> the vision tower's input, and conversations -> model batches (the processor of build_model).

An image item is what the ingestion cache holds for one ``<image>``: a float32 array [S, H, W] in 0..1
(grayscale, already windowed; S = 1 for an X-ray view, the slices of a CT series otherwise) plus
``true_slices`` (slices beyond it are zero padding). The processor drops the padding, subsamples series longer
than the perceiver's temporal embedding evenly (warning once), resizes each slice to the tower's image size,
repeats gray to 3 channels and normalises with the configured mean/std. It knows nothing about DICOM or HU.

Example::

    item = ImageItem(np.zeros((40, 336, 336), np.float32), true_slices=31)
    px = image_processor(item)                           # [31, 3, 112, 112] for the tiny tower
    sample = processor.encode(turns, [item], lang="zh")  # input_ids, labels, image_mask, pixel_values
    batch = processor.collate([sample, ...])             # padded tensors + slice_mask
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..common.errors import P2MedError
from .config import ConversationConfig, ProcessorConfig
from .conversation import IMAGE, collate, encode_conversation, pad_id

log = logging.getLogger(__name__)


@dataclass
class ImageItem:
    """One ``<image>``: float32 [S, H, W] in 0..1 (an [H, W] array is one slice) and the real slice count."""

    pixels: np.ndarray
    true_slices: int | None = None  # slices at and beyond this index are zero padding; None: all are real


class ImageProcessor:
    """Turns image items into normalised pixel tensors [S, 3, size, size] for the vision tower."""

    def __init__(self, cfg: ProcessorConfig, image_size: int, max_slices: int):
        self.cfg = cfg
        self.image_size = image_size
        self.max_slices = max_slices
        self.mean = torch.tensor(cfg.mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg.std, dtype=torch.float32).view(1, 3, 1, 1)
        self.subsampled = 0         # series subsampled so far (warned about once: training reads them every epoch)

    def __call__(self, item: ImageItem | np.ndarray, where: str = "image") -> torch.Tensor:
        if not isinstance(item, ImageItem):
            item = ImageItem(np.asarray(item))
        x = np.asarray(item.pixels)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or not np.issubdtype(x.dtype, np.floating):
            raise P2MedError(f"{where}: expected a float array [S, H, W] in 0..1, got {x.dtype} {x.shape}")
        s = x.shape[0] if item.true_slices is None else int(item.true_slices)
        if not 1 <= s <= x.shape[0]:
            raise P2MedError(f"{where}: true_slices={item.true_slices} but the array has {x.shape[0]} slices")
        x = x[:s]
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-3 or hi > 1 + 1e-3 or not np.isfinite(lo + hi):
            raise P2MedError(f"{where}: pixel values must be windowed to 0..1, found {lo:.3g}..{hi:.3g}")
        if s > self.max_slices:
            self.subsampled += 1
            (log.warning if self.subsampled == 1 else log.debug)(
                "%s: %d slices exceed the perceiver's %d temporal embeddings; subsampling evenly%s", where, s,
                self.max_slices, " (every longer series is; said once)" if self.subsampled == 1 else "")
            x = x[np.linspace(0, s - 1, self.max_slices).round().astype(int)]
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1)  # [S, 1, H, W]
        if t.shape[-2:] != (self.image_size, self.image_size):
            t = F.interpolate(t, size=(self.image_size, self.image_size), mode=self.cfg.resize,
                              align_corners=False, antialias=True).clamp_(0.0, 1.0)
        return (t.expand(-1, 3, -1, -1) - self.mean) / self.std  # [S, 3, size, size]


class P2MedProcessor:
    """Conversation + image items -> one sample; samples -> a padded batch (see conversation.py)."""

    def __init__(self, image_processor: ImageProcessor, tokenizer: Any, conversation: ConversationConfig,
                 num_latents: int):
        self.image_processor = image_processor
        self.tokenizer = tokenizer
        self.conversation = conversation
        self.num_latents = num_latents

    def encode(self, turns: Sequence[dict], images: Sequence[ImageItem | np.ndarray] = (), lang: str = "zh",
               image_features: Sequence[torch.Tensor] | None = None) -> dict:
        """One sample: input_ids/labels/image_mask [T] and the images' pixel_values (a list of [S, 3, h, w])
        or, for training from a feature cache, ``image_features`` (a list of [S, P, D]) given instead.
        A last turn without "assistant" makes a generation prompt."""
        enc = encode_conversation(turns, self.tokenizer, self.conversation, self.num_latents, lang)
        given = len(image_features) if image_features is not None else len(images)
        if given != enc.n_images:
            raise P2MedError(f"the conversation has {enc.n_images} {IMAGE} placeholder(s) but {given} image(s) "
                             "were given; each <image> needs exactly one image item, in order")
        sample = {"input_ids": torch.tensor(enc.input_ids), "labels": torch.tensor(enc.labels),
                  "image_mask": torch.tensor(enc.image_mask)}
        if image_features is not None:
            sample["image_features"] = list(image_features)
        elif images:
            sample["pixel_values"] = [self.image_processor(im, where=f"image {i + 1}") for i, im in enumerate(images)]
        return sample

    def collate(self, samples: Sequence[dict], padding_side: str = "right") -> dict:
        return collate(samples, pad_id=pad_id(self.tokenizer), padding_side=padding_side)

