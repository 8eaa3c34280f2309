"""The frozen-encoder feature cache: each image's (or CT slice's) patch features computed once, stored float16.

While the vision tower is frozen its output depends only on the image, the tower's weights and the
preprocessing, so features are stored content-addressed: ``DIR/<identity>/<ab>/<image sha256>.npy`` (float16
[S, P, D], S = the real slices the processor keeps) where ``identity`` hashes the tower (class, feature layer,
CLS choice, dtype and every weight) and the preprocessing (image size, mean/std, resize, slice cap). A new
encoder or preprocessing gets a new identity folder, and stale identity folders are removed: invalidation
needs no bookkeeping. The size is estimated before anything is computed (S * P * D * 2 bytes per image; ViT-L
at 336 px: 576 x 1024 x 2 = 1.2 MB per slice) and bounded by ``budget_gb``: images beyond the budget (in
sha256 order, so every stage and rank admits the same ones) are recomputed each time they are used.
Files are written atomically, so ranks computing the same image race harmlessly.

Example::

    cache = FeatureCache(Path("runs/train/features"), model, processor.image_processor, budget_bytes=8e9)
    cache.admit(refs)                       # estimate, log, choose what is stored
    feats = cache.features(cache_root, ref)  # [S, P, D] float32
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from ..common.atomic import write_bytes, write_json
from .data import ImageRef, load_image

log = logging.getLogger(__name__)


def encoder_identity(model: Any, image_processor: Any) -> dict[str, Any]:
    """What the features depend on: the tower's description and weight digest, and the preprocessing."""
    vision = model.vision
    h = hashlib.sha256()
    for name, t in sorted(vision.state_dict().items()):
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return {"class": type(vision.tower).__name__, "feature_layer": vision.feature_layer,
            "use_cls": vision.use_cls, "weights_sha256": h.hexdigest(),
            "preprocessing": {"image_size": image_processor.image_size, "max_slices": image_processor.max_slices,
                              "mean": list(image_processor.cfg.mean), "std": list(image_processor.cfg.std),
                              "resize": image_processor.cfg.resize}}


@dataclass
class Estimate:
    images: int
    total_bytes: int
    admitted: int
    admitted_bytes: int


class FeatureCache:
    def __init__(self, root: Path, model: Any, image_processor: Any, budget_bytes: float, enabled: bool = True):
        self.model, self.image_processor = model, image_processor
        self.enabled = enabled
        self.budget = budget_bytes
        ident = encoder_identity(model, image_processor)
        self.key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]
        self.dir = Path(root) / self.key
        self.identity = ident
        self.admitted: set[str] = set()
        self.hits = self.misses = 0
        if enabled:
            self.dir.mkdir(parents=True, exist_ok=True)
            write_json(self.dir / "identity.json", ident)
            for other in Path(root).iterdir():
                if other.is_dir() and other.name != self.key and (other / "identity.json").is_file():
                    log.info("feature cache: removing %s (another encoder or preprocessing)", other.name)
                    shutil.rmtree(other, ignore_errors=True)

    def slice_bytes(self) -> int:
        v = self.model.vision
        return int(v.num_patches) * int(v.dim) * 2

    def admit(self, refs: Iterable[ImageRef]) -> Estimate:
        """Estimate the cache's size for these images and choose which are stored (the rest are recomputed)."""
        unique = {}
        for r in refs:
            real = r.true_slices or r.slices
            unique[r.sha256] = min(real, self.image_processor.max_slices) * self.slice_bytes()
        total = sum(unique.values())
        used = 0
        self.admitted = set()
        for sha in sorted(unique):
            if self.enabled and used + unique[sha] <= self.budget:
                self.admitted.add(sha)
                used += unique[sha]
        est = Estimate(len(unique), total, len(self.admitted), used)
        log.info("feature cache: %d images, estimated %.1f MB in float16; budget %.1f MB: storing %d (%.1f MB), "
                 "recomputing %d", est.images, total / 1e6, self.budget / 1e6, est.admitted, used / 1e6,
                 est.images - est.admitted)
        return est

    def path(self, ref: ImageRef) -> Path:
        return self.dir / ref.sha256[:2] / f"{ref.sha256}.npy"

    def features(self, cache_root: Path, ref: ImageRef) -> torch.Tensor:
        """[S, P, D] float32 features of one image: from the cache, or computed (and stored if admitted)."""
        path = self.path(ref)
        if ref.sha256 in self.admitted and path.is_file():
            self.hits += 1
            return torch.from_numpy(np.load(path).astype(np.float32))
        self.misses += 1
        px = self.image_processor(load_image(cache_root, ref), where=f"image {ref.array}")  # [S, 3, h, w]
        with torch.no_grad():
            feats = self.model.encode_images(px[None])[0].float()                           # [S, P, D]
        half = feats.to(torch.float16)
        if ref.sha256 in self.admitted:
            buf = io.BytesIO()
            np.save(buf, half.numpy())
            write_bytes(path, buf.getvalue())
        return half.float()  # what a later cache hit returns, so every epoch sees the same numbers
