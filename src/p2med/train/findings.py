"""A supervised pre-stage for a vision tower trained from scratch: (pattern, side, zone/lobe) from the images.

A stage with ``objective: findings`` trains the tower (``trainable.vision: full``), the perceiver
(``trainable.perceiver: full``) or both to say which findings an exam's report names as present, as multi-label
classification. The labels come from the report text
through the evaluation's finding extractor (``p2med.clinical.findings``), never from any ground-truth file:
the impression section of each image sample's last answer (the whole answer when it has none). The label set
is every (pattern, side, level) seen at least ``MIN_LABEL`` times. Each image's slices go through the tower
(CT subsampled evenly); tower only: the features are max-pooled over slices and a linear head reads the patch
grid; with the perceiver: a linear head reads the perceiver's visual tokens, so the tokens the LLM will see
already carry the findings (a random perceiver trained by the language loss alone does not learn to pass them
on within a CPU budget: docs/demo.md). The head is thrown away at the end; tower and perceiver are kept.
A tenth of the exams (by id hash) is held out and its exact-set accuracy logged, so a user sees whether the
tower learned. With ``mirror: true`` each radiograph exam is flipped left-right half the time and its labels'
sides swapped: the side is then learned from where the lesion lies, and a small tower sees twice the views.
Runs in one process; a killed run restarts the stage (it is short).
Example stage: ``{name: vision, data: stage1+stage2, objective: findings, trainable: {vision: full, perceiver: full,
llm: frozen}, lr: {vision: 2.0e-3, perceiver: 1.0e-3}, epochs: 12}``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..clinical.findings import FindingExtractor, present
from ..common.atomic import write_json
from ..common.errors import P2MedError
from ..model.processor import ImageItem
from ..text.sections import parse_sections
from .checkpoint import save_training_checkpoint
from .config import StageConfig, TrainConfig
from .data import ImageRef, image_ref, iter_shards, load_image, stage_folders

log = logging.getLogger(__name__)
MIN_LABEL = 3
HELD_OUT = 10          # one exam in HELD_OUT is held out for the logged accuracy


def labels_of(answer: str, output_keys: list[str], lang: str, extractor: FindingExtractor) -> set[str]:
    """'pattern|side|level' of every finding the answer's impression says is present now."""
    text = parse_sections(answer, output_keys).sections.get("impression") or answer
    return {"|".join(str(x or "") for x in key) for key in present(extractor.extract(text, lang))}


class Example(NamedTuple):
    refs: tuple[ImageRef, ...]      # the images of the sample's last turn
    labels: set[str]                # 'pattern|side|level' its report names as present
    id: str                         # stable: a hash of the images' sha256
    modality: str


_SIDES = {"left": "right", "right": "left"}


def mirrored(label: str) -> str:
    """The label of a finding seen in a left-right mirrored image: 'patchy|left|upper' -> 'patchy|right|upper'."""
    pattern, side, level = label.split("|")
    return f"{pattern}|{_SIDES.get(side, side)}|{level}"


def finding_examples(dataset: Path, data: str) -> list[Example]:
    """An ``Example`` for every image sample of ``dataset/data``, where ``data`` may join several stage folders
    with ``+`` (``stage1+stage2+stage3``: every exam the stages hold, each once). Every view counts: a lateral
    radiograph alone cannot show the side, its frontal can."""
    extractor, out, seen = FindingExtractor(), [], set()
    rows = ((folder, shard, n, row) for folder in stage_folders(data)
            for shard, n, row in iter_shards(dataset / folder))
    for folder, shard, n, row in rows:
        images, turns = row.get("images") or [], row.get("turns") or []
        if not images or not turns:
            continue
        where = f"{dataset / folder / shard}:{n}"
        picked = turns[-1].get("images")
        picked = list(range(len(images))) if picked is None else picked
        if not picked:
            continue
        refs = tuple(image_ref(images[i], f"{where}: images[{i}]") for i in picked)
        key = "+".join(r.sha256 for r in refs)
        if key in seen:
            continue
        seen.add(key)
        answer = turns[-1].get("assistant") or ""
        out.append(Example(refs, labels_of(answer, row.get("output_keys") or [], row.get("lang", "zh"), extractor),
                           hashlib.sha256(key.encode()).hexdigest(), str(row.get("modality") or "")))
    return out


class FindingsHead(nn.Module):
    """Tower features [N, S, P, D] (+ slice mask) -> label logits [N, L]: max over real slices, then linear."""

    def __init__(self, patches: int, dim: int, n_labels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(0.2)
        self.out = nn.Linear(patches * dim, n_labels)

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        feats = feats.masked_fill(~mask[:, :, None, None], float("-inf")).amax(1)     # [N, P, D]
        return self.out(self.drop(self.norm(feats).flatten(1)))


class TokensHead(nn.Module):
    """The perceiver's visual tokens [N, L, D] -> label logits [N, L_labels]: one linear read of all tokens."""

    def __init__(self, tokens: int, dim: int, n_labels: int) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.2)
        self.out = nn.Linear(tokens * dim, n_labels)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(tokens.flatten(1)))


class FindingsPretrainer:
    def __init__(self, cfg: TrainConfig, stage: StageConfig, model: Any, processor: Any, dataset: Path,
                 cache_root: Path, stage_dir: Path, lineage: dict[str, Any]) -> None:
        self.cfg, self.stage, self.model, self.processor = cfg, stage, model, processor
        self.cache_root, self.stage_dir, self.lineage = cache_root, stage_dir, lineage
        examples = [e for e in finding_examples(dataset, stage.data)
                    if not stage.modalities or e.modality in stage.modalities]
        counts = Counter(lab for e in examples for lab in e.labels)
        self.labels = sorted(lab for lab, c in counts.items() if c >= MIN_LABEL)
        if not examples or not self.labels:
            which = f" of modality {'/'.join(stage.modalities)}" if stage.modalities else ""
            raise P2MedError(f"{dataset / stage.data}: no image sample{which} whose report names a finding "
                             f"{MIN_LABEL}+ times: nothing for objective findings to learn")
        held = [int(hashlib.sha256(e.id.encode()).hexdigest(), 16) % HELD_OUT == 0 for e in examples]
        self.train = [e for e, h in zip(examples, held) if not h]
        self.test = [e for e, h in zip(examples, held) if h]
        vision = model.vision
        self.through = stage.trainable.perceiver == "full"
        self.tower_trains = stage.trainable.vision == "full"
        model.vision.eval()
        if self.through:      # the perceiver sees every slice the language stages give it
            self.head = TokensHead(model.num_latents, model.perceiver.proj.out_features, len(self.labels))
            self.max_slices = processor.image_processor.max_slices
        else:
            self.head = FindingsHead(vision.num_patches, vision.dim, len(self.labels))
            self.max_slices = min(16, processor.image_processor.max_slices)
        self.pixels: dict[str, torch.Tensor] = {}

    def _target(self, labels: set[str]) -> torch.Tensor:
        return torch.tensor([lab in labels for lab in self.labels], dtype=torch.float32)

    def _pixels(self, ref: ImageRef) -> torch.Tensor:
        """[S, 3, H, W] normalised slices, S <= max_slices, kept in memory as float16 (the tower sees them every
        epoch: ~75 KB per radiograph at 112 px, ~1.2 MB per CT)."""
        if ref.sha256 not in self.pixels:
            item = load_image(self.cache_root, ref)
            arr = item.pixels[: item.true_slices or len(item.pixels)]
            if len(arr) > self.max_slices:
                arr = arr[np.linspace(0, len(arr) - 1, self.max_slices).round().astype(int)]
            self.pixels[ref.sha256] = self.processor.image_processor(ImageItem(arr), where=ref.array).half()
        return self.pixels[ref.sha256].float()

    def _logits(self, batch: list[Example], shift: bool, mirror: list[bool] | None = None) -> torch.Tensor:
        """Label logits [B, L]: each image of an exam scored alone, the exam's logit the maximum over its
        images (a finding is present when any view shows it). ``mirror[i]``: exam i's images flipped left-right."""
        mirror = mirror or [False] * len(batch)
        owner = [i for i, e in enumerate(batch) for _ in e.refs]
        slices = [self._pixels(ref).flip(3) if flip else self._pixels(ref)
                  for e, flip in zip(batch, mirror) for ref in e.refs]
        if shift:          # a few pixels of translation
            dy, dx = (int(v) for v in torch.randint(-3, 4, (2,)))
            slices = [torch.roll(s, (dy, dx), dims=(2, 3)) for s in slices]
        with torch.set_grad_enabled(self.tower_trains and torch.is_grad_enabled()):
            feats = self.model.vision(torch.cat(slices))                             # [sum S, P, D]
        S = max(len(s) for s in slices)
        grid = feats.new_zeros(len(slices), S, *feats.shape[1:])
        mask = torch.zeros(len(slices), S, dtype=torch.bool)
        at = 0
        for i, s in enumerate(slices):
            grid[i, : len(s)], mask[i, : len(s)] = feats[at: at + len(s)], True
            at += len(s)
        per_image = self.head(self.model.resample(grid, mask)) if self.through else self.head(grid, mask)
        index = torch.tensor(owner)[:, None].expand_as(per_image)
        return per_image.new_full((len(batch), per_image.shape[1]), float("-inf")).scatter_reduce(
            0, index, per_image, "amax")

    def _modules(self) -> list[nn.Module]:
        """What trains (and so switches between train and eval mode): a frozen tower stays in eval mode."""
        return ([self.model.vision] if self.tower_trains else []) + [self.head] + (
            [self.model.perceiver] if self.through else [])

    def accuracy(self, examples: list) -> dict[str, float]:
        """Exact-set accuracy over ``examples`` ("all") and per modality ("XR", "CT")."""
        if not examples:
            return {"all": float("nan")}
        for m in self._modules():
            m.eval()
        right: list[int] = []
        with torch.no_grad():
            for i in range(0, len(examples), self.cfg.batch_size):
                batch = examples[i: i + self.cfg.batch_size]
                pred = self._logits(batch, shift=False) > 0
                right += (pred == torch.stack([self._target(b.labels) > 0 for b in batch])).all(1).tolist()
        for m in self._modules():
            m.train()
        out = {"all": round(sum(right) / len(right), 4)}
        for mod in sorted({e.modality for e in examples}):
            hits = [r for r, e in zip(right, examples) if e.modality == mod]
            out[mod or "?"] = round(sum(hits) / len(hits), 4)
        return out

    def run(self) -> Path:
        torch.manual_seed(self.cfg.seed)
        lr = self.stage.lr
        groups = [{"params": list(self.head.parameters()), "lr": lr["perceiver" if self.through else "vision"]}]
        if self.tower_trains:
            groups.append({"params": [p for p in self.model.vision.parameters() if p.requires_grad],
                           "lr": lr["vision"]})
        if self.through:
            groups.append({"params": [p for p in self.model.perceiver.parameters() if p.requires_grad],
                           "lr": lr["perceiver"]})
        params = [p for g in groups for p in g["params"]]
        opt = torch.optim.AdamW(groups, weight_decay=self.cfg.weight_decay)
        steps_per_epoch = -(-len(self.train) // self.cfg.batch_size)
        total = self.stage.epochs * steps_per_epoch
        if self.stage.max_steps:
            total = min(total, self.stage.max_steps)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, [g["lr"] for g in groups], total_steps=max(total, 2))
        log.info("%s: findings pre-stage (%s), %d labels, %d train / %d held-out exams, %d steps", self.stage.name,
                 " + ".join(n for n, on in (("tower", self.tower_trains), ("perceiver", self.through)) if on),
                 len(self.labels), len(self.train),
                 len(self.test), total)
        rng, step, t0, history = np.random.default_rng(self.cfg.seed), 0, time.time(), []
        for m in self._modules():
            m.train()
        while step < total:
            order = rng.permutation(len(self.train))
            loss_sum = 0.0
            for i in range(0, len(order), self.cfg.batch_size):
                if step >= total:
                    break
                batch = [self.train[j] for j in order[i: i + self.cfg.batch_size]]
                flips = [bool(self.stage.mirror and e.modality == "XR" and rng.random() < 0.5) for e in batch]
                target = torch.stack([self._target({mirrored(lab) for lab in e.labels} if flip else e.labels)
                                      for e, flip in zip(batch, flips)])
                loss = F.binary_cross_entropy_with_logits(self._logits(batch, shift=True, mirror=flips), target)
                opt.zero_grad()
                loss.backward()
                if self.cfg.clip_norm:
                    torch.nn.utils.clip_grad_norm_(params, self.cfg.clip_norm)
                opt.step()
                sched.step()
                step += 1
                loss_sum += loss.item() * len(batch)
            row = {"stage": self.stage.name, "step": step, "epoch": len(history) + 1, "kind": "findings",
                   "loss": round(loss_sum / len(self.train), 5), "held_out_exact": self.accuracy(self.test),
                   "seconds": round(time.time() - t0, 1)}
            history.append(row)
            log.info("%s: epoch %d loss %.4f held-out exact-set accuracy %s (%.0f s)", self.stage.name,
                     row["epoch"], row["loss"], " ".join(f"{k} {v:.3f}" for k, v in row["held_out_exact"].items()),
                     row["seconds"])
        summary = {"labels": self.labels, "train_exams": len(self.train), "held_out_exams": len(self.test),
                   "train_exact": self.accuracy(self.train), "history": history}
        write_json(self.stage_dir / "findings.json", summary)
        final = self.stage_dir / "final"
        for m in self._modules():
            m.eval()
        save_training_checkpoint(self.model, self.processor, final, None,
                                 {**self.lineage, "step": step, "findings": {k: v for k, v in summary.items()
                                                                             if k != "history"}})
        return final
