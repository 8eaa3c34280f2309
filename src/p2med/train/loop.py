"""One training stage: the batch plan, AdamW with warmup + cosine, accumulation, clipping, checkpoints, logs.

An optimizer step takes ``grad_accum`` global micro-batches of the plan; each rank runs its share of each.
The loss is normalised by the global number of assistant tokens of the whole step, which every rank knows
from the plan without communicating (every rank tokenised every sample), so the gradient does not depend on
how the step is split across ranks, micro-batches or length buckets: each backward adds ``sum of token
losses * world / N`` (DDP averages over ranks). With ``unpad`` a micro-batch runs as length buckets
(``sampler.length_buckets``) instead of one batch padded to its longest sample. Image features come from the
frozen-encoder cache (``features.py``) or, when the tower trains, pixels go through it. Dropout is seeded by
(seed, stage, step, rank), so a resumed run repeats an uninterrupted one exactly. It does not know stages'
order or where checkpoints come from (run.py).

Example::

    trainer = StageTrainer(cfg, stage, model, processor, data, cache_root, feature_cache, dist, out)
    trainer.run(state=None)          # or the state of the last checkpoint: continues from its step
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..common.errors import P2MedError
from ..model.conversation import IGNORE
from .checkpoint import prune, save_training_checkpoint, step_name
from .config import PARTS, StageConfig, TrainConfig
from .data import StageData, TrainSample, load_image
from .distributed import (Dist, clip_grad_norm, full_state, is_sharded, load_full_optimizer_state, no_sync,
                          sync_replicated_grads, unwrap, wrap)
from .features import FeatureCache
from .metrics import MetricsLog
from .sampler import Plan, length_buckets, plan_batches, shard

log = logging.getLogger(__name__)


def cosine_with_warmup(total: int, warmup_ratio: float):
    """lr multiplier after ``s`` scheduler steps: linear warmup over ceil(ratio * total) steps, then cosine to 0."""
    warmup = math.ceil(warmup_ratio * total)

    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * min(s - warmup, total - warmup) / max(1, total - warmup)))

    return factor


def param_groups(model: torch.nn.Module, stage: StageConfig, weight_decay: float) -> list[dict[str, Any]]:
    """One AdamW group per trainable part with that part's learning rate; parameters sorted by name."""
    groups = []
    named = sorted((n, p) for n, p in model.named_parameters() if p.requires_grad)
    for part in PARTS:
        params = [p for n, p in named if n.split(".", 1)[0] == part]
        if params:
            groups.append({"params": params, "lr": stage.lr[part], "weight_decay": weight_decay, "part": part})
    return groups


def step_seed(seed: int, stage: str, step: int, rank: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{stage}:{step}:{rank}".encode()).digest()[:8], "little") >> 1


class StageTrainer:
    def __init__(self, cfg: TrainConfig, stage: StageConfig, model: Any, processor: Any, data: StageData,
                 cache_root: Path, features: FeatureCache | None, dist: Dist, stage_dir: Path,
                 lineage: dict[str, Any]):
        self.cfg, self.stage, self.model, self.processor = cfg, stage, model, processor
        self.data, self.cache_root, self.features, self.dist = data, cache_root, features, dist
        self.stage_dir, self.lineage = stage_dir, lineage
        samples = data.samples
        self.skip_text = stage.trainable.llm == "frozen"  # text batches would give no trainable part a gradient
        self.plan: Plan = plan_batches([s.length for s in samples], [s.has_images for s in samples],
                                       cfg.batch_size, cfg.seed, stage.epochs, cfg.length_group, dist.world,
                                       self.skip_text)
        steps = math.ceil(len(self.plan.batches) / cfg.grad_accum)
        self.total_steps = min(steps, stage.max_steps) if stage.max_steps else steps
        self.task_index = {t: i for i, t in enumerate(data.tasks)}
        cuda = dist.device.type == "cuda"
        self.bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and cuda)
        if cfg.gradient_checkpointing == "on" or (cfg.gradient_checkpointing == "auto" and cuda):
            unwrap(model).llm.model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False})
        self.trains_vision = stage.trainable.vision != "frozen"
        self.sharded = dist.active and cfg.distributed.strategy == "fsdp"
        # FSDP: rank 0 keeps an unsharded CPU copy to write checkpoints from the gathered state
        self.plain = copy.deepcopy(model).cpu() if self.sharded and dist.main else None
        self.model_w = wrap(model, dist, cfg.distributed.strategy)
        self.opt = torch.optim.AdamW(param_groups(model, stage, cfg.weight_decay), betas=tuple(cfg.betas))
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, cosine_with_warmup(self.total_steps,
                                                                                       cfg.warmup_ratio))

    # ---- one rank's share of a batch -> model inputs
    def _sample_dict(self, s: TrainSample) -> dict[str, Any]:
        out = {"input_ids": torch.tensor(s.input_ids), "labels": torch.tensor(s.labels),
               "image_mask": torch.tensor(s.image_mask)}
        if s.images and self.trains_vision:
            out["pixel_values"] = [self.processor.image_processor(load_image(self.cache_root, r), where=r.array)
                                   for r in s.images]
        elif s.images:
            out["image_features"] = [self.features.features(self.cache_root, r) for r in s.images]
        return out

    def _forward_backward(self, samples: list[TrainSample], n_global: int, sync: bool,
                          tally: torch.Tensor) -> None:
        batch = self.processor.collate([self._sample_dict(s) for s in samples])
        batch = {k: v.to(self.dist.device) for k, v in batch.items()}
        labels = batch.pop("labels")
        ctx = torch.autocast(self.dist.device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with no_sync(self.model_w, skip=not sync), ctx:
            out = self.model_w(**batch)
            target = labels[:, 1:]                                                     # [B, T-1]
            ce = F.cross_entropy(out.logits[:, :-1].flatten(0, 1).float(), target.flatten(),
                                 ignore_index=IGNORE, reduction="none").view(target.shape)  # [B, T-1]
            per_sample = ce.sum(1)                                                     # [B]
            (per_sample.sum() * self.dist.world / n_global).backward()
        for s, loss in zip(samples, per_sample.detach().cpu()):
            tally[self.task_index[s.task], 0] += loss
            tally[self.task_index[s.task], 1] += s.n_targets

    def step(self, micro: list[list[int]], step: int) -> dict[str, Any]:
        """One optimizer step over global micro-batches ``micro`` (this rank runs its share); the step's figures."""
        samples = self.data.samples
        n_global = sum(samples[i].n_targets for batch in micro for i in batch)
        torch.manual_seed(step_seed(self.cfg.seed, self.stage.name, step, self.dist.rank))
        units = []
        for batch in micro:
            mine = [samples[i] for i in shard(batch, self.dist.rank, self.dist.world)]
            # FSDP gathers each layer per forward: every rank must run as many forwards, so no buckets
            bucket = self.cfg.unpad and not self.sharded
            pieces = length_buckets([s.length for s in mine]) if bucket else [list(range(len(mine)))]
            units += [[mine[j] for j in piece] for piece in pieces]
        tally = torch.zeros((len(self.task_index), 2), dtype=torch.float64)
        self.opt.zero_grad(set_to_none=True)
        for k, unit in enumerate(units):
            self._forward_backward(unit, max(n_global, 1), sync=k == len(units) - 1, tally=tally)
        params = [p for g in self.opt.param_groups for p in g["params"]]
        if self.sharded:
            sync_replicated_grads(params, self.dist)
        if self.cfg.clip_norm:
            clip_grad_norm(params, self.cfg.clip_norm, self.dist, self.sharded)
        lrs = {g["part"]: g["lr"] for g in self.opt.param_groups}
        self.opt.step()
        self.sched.step()
        tally = self.dist.sum(tally)
        return {"loss": float(tally[:, 0].sum() / max(tally[:, 1].sum(), 1)),
                "loss_by_task": {t: float(tally[i, 0] / tally[i, 1]) for t, i in self.task_index.items()
                                 if tally[i, 1] > 0},
                "tokens": int(tally[:, 1].sum()), "samples": sum(len(b) for b in micro), "lr": lrs,
                "kind": "image" if samples[micro[0][0]].has_images else "text"}

    # ---- the stage
    def run(self, state: dict[str, Any] | None) -> int:
        """Train from the start or from ``state`` (a checkpoint's trainer state); returns the steps done."""
        start = 0
        if state is not None:
            if state.get("optimizer_format", "torch") != ("fsdp_full" if self.sharded else "torch"):
                raise P2MedError(f"{self.stage.name}: the checkpoint was written with another distributed strategy "
                                 "(FSDP vs DDP / one process); resume with the strategy that wrote it")
            if self.sharded:
                load_full_optimizer_state(self.model, self.opt, state["optimizer"])
            else:
                self.opt.load_state_dict(state["optimizer"])
            self.sched.load_state_dict(state["scheduler"])
            start = int(state["step"])
        self.model.train()
        ga = self.cfg.grad_accum
        logger = MetricsLog(self.stage_dir, self.dist.main, self.cfg.tensorboard, self.cfg.progress,
                            self.total_steps, start, self.stage.name)
        if self.dist.main and (self.plan.skipped_text or self.plan.dropped_small):
            log.info("%s: %d text-only batches skipped (the LLM is frozen: they give no gradient); %d batches "
                     "smaller than %d ranks dropped", self.stage.name, self.plan.skipped_text,
                     self.plan.dropped_small, self.dist.world)
        try:
            for step in range(start + 1, self.total_steps + 1):
                t0 = time.perf_counter()
                micro = self.plan.batches[(step - 1) * ga: step * ga]
                row = self.step(micro, step)
                row = {"stage": self.stage.name, "step": step, "epoch": self.plan.epochs[(step - 1) * ga], **row,
                       "samples_per_s": row["samples"] / max(time.perf_counter() - t0, 1e-9)}
                logger.step(row)
                if step % self.cfg.checkpoint_every == 0 and step < self.total_steps:
                    self.checkpoint(step)
        finally:
            logger.close()
        return self.total_steps

    def summary(self) -> dict[str, Any]:
        sharded = sum(is_sharded(p) for p in self.model.parameters())
        return {"steps": self.total_steps, "batches": len(self.plan.batches), "sharded_tensors": sharded,
                "skipped_text_batches": self.plan.skipped_text, "dropped_small_batches": self.plan.dropped_small,
                "world_size": self.dist.world}

    def checkpoint(self, step: int) -> None:
        ckdir = self.stage_dir / "checkpoints"
        self.save(ckdir / step_name(step), step, {**self.lineage, "step": step, **self.summary()}, with_state=True)
        if self.dist.main:
            prune(ckdir, self.cfg.keep_checkpoints)
        self.dist.barrier()

    def save(self, folder: Path, step: int, lineage: dict[str, Any], with_state: bool) -> None:
        """Rank 0 writes the checkpoint folder; under FSDP every rank first takes part in gathering the state."""
        if self.sharded:
            model_state, optim_state = full_state(self.model, self.opt)
            model, fmt = self.plain, "fsdp_full"
            if self.dist.main:
                model.load_state_dict(model_state)
        else:
            model, optim_state, fmt = unwrap(self.model), self.opt.state_dict(), "torch"
        state = {"step": step, "optimizer": optim_state, "optimizer_format": fmt,
                 "scheduler": self.sched.state_dict()} if with_state else None
        if self.dist.main:
            save_training_checkpoint(model, self.processor, folder, state, lineage)
