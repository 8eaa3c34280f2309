"""Training configuration: the run (data, batches, optimizer, checkpoints) and its stages as data.

A stage says which parts train (``frozen | lora | full`` per part, the model's ``TrainableConfig``), their
learning rates, and how long; each stage starts from the previous stage's ``final`` checkpoint folder. It
imports no torch. Presets live in ``configs/train/`` (``paper.yaml``: stage 1 perceiver only, ``practical.yaml``:
stage 1 perceiver + LoRA, ``tiny.yaml``: the CPU demo).
Example: ``load_config(TrainConfig, "configs/train/tiny.yaml", ["dataset=runs/ds", "out=runs/train"])``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..config import check
from ..model.config import TrainableConfig

PARTS = ("vision", "perceiver", "llm")


@dataclass
class StageConfig:
    name: str = "stage1"            # folder under `out` and label in logs/metrics
    data: str = "stage1"            # subfolder of the dataset holding this stage's samples-*.jsonl shards
    #                                 (objective findings: several joined by +, e.g. stage1+stage2+stage3)
    trainable: TrainableConfig = field(default_factory=TrainableConfig)  # frozen | lora | full per part
    lr: dict[str, float] = field(default_factory=lambda: {"perceiver": 1e-4, "llm": 2e-4})  # part -> peak
    #                                 learning rate; every part that trains needs one
    epochs: int = 1                 # passes over the stage's samples
    max_steps: int = 0              # stop after this many optimizer steps (0: no cap)
    objective: Literal["language", "findings"] = "language"  # language: next-token loss on the answers;
    #                                 findings: the tower (+ perceiver) learns the report's findings (train/findings.py)
    modalities: list[str] = field(default_factory=list)  # objective findings: only exams of these modalities
    #                                 (e.g. [XR]; empty: every image exam)
    mirror: bool = False            # objective findings: each radiograph exam is mirrored left-right half the time
    #                                 and its findings' sides swapped (twice the views for a small tower; CT never)

    def __post_init__(self) -> None:
        check(bool(self.name) and "/" not in self.name, "stages[].name", f"a folder name, got {self.name!r}")
        check(self.epochs >= 1, f"stages.{self.name}.epochs", f"must be >= 1, got {self.epochs}")
        check(self.max_steps >= 0, f"stages.{self.name}.max_steps", f"must be >= 0, got {self.max_steps}")
        unknown = sorted(set(self.lr) - set(PARTS))
        check(not unknown, f"stages.{self.name}.lr", f"unknown part(s) {unknown}; parts are {list(PARTS)}")
        for part in PARTS:
            if getattr(self.trainable, part) != "frozen":
                check(self.lr.get(part, 0) > 0, f"stages.{self.name}.lr.{part}",
                      f"{part} trains ({getattr(self.trainable, part)}) and needs a learning rate > 0")
        check(any(getattr(self.trainable, p) != "frozen" for p in PARTS), f"stages.{self.name}.trainable",
              "every part is frozen: nothing would train")
        check(self.objective in ("language", "findings"), f"stages.{self.name}.objective",
              f"must be language or findings, got {self.objective!r}")
        check(self.objective == "findings" or not self.modalities, f"stages.{self.name}.modalities",
              "only objective findings chooses modalities (a language stage trains on every sample of its data)")
        check(self.objective == "findings" or not self.mirror, f"stages.{self.name}.mirror",
              "only objective findings mirrors images (a report's sides would contradict a mirrored image)")
        check(self.objective == "findings" or "+" not in self.data, f"stages.{self.name}.data",
              f"one folder for a language stage, got {self.data!r} (only objective findings joins folders)")
        if self.objective == "findings":
            check(self.trainable.llm == "frozen" and "lora" not in (self.trainable.vision, self.trainable.perceiver),
                  f"stages.{self.name}.trainable", "objective findings trains the vision tower, the perceiver or "
                  "both, never the LLM: {vision: full | frozen, perceiver: full | frozen, llm: frozen}")


@dataclass
class FeatureCacheConfig:
    enabled: bool = True            # cache the frozen vision encoder's features (float16) across epochs/stages
    dir: str = ""                   # cache folder ("": OUT/features); one subfolder per encoder+preprocessing
    budget_gb: float = 64.0         # beyond this estimated size, the remaining images' features are recomputed

    def __post_init__(self) -> None:
        check(self.budget_gb >= 0, "feature_cache.budget_gb", f"must be >= 0, got {self.budget_gb}")


@dataclass
class DistributedConfig:
    strategy: Literal["ddp", "fsdp"] = "ddp"  # torchrun: replicate (DDP) or shard the LLM's layers (FSDP, 8B)
    backend: Literal["auto", "gloo", "nccl"] = "auto"  # auto: nccl with CUDA, gloo on CPU


@dataclass
class TrainConfig:
    model: str = "tiny"             # model preset (configs/model/NAME.yaml) or a model YAML path
    model_overrides: list[str] = field(default_factory=list)  # key=value overrides of the model config
    dataset: str = ""               # DATASET folder written by `p2med build` (stage*/samples-*.jsonl, manifest)
    images: str = ""                # the ingest cache ("": the one the dataset manifest names)
    out: str = ""                   # output folder: OUT/<stage>/checkpoints/step-N, OUT/<stage>/final, logs
    seed: int = 0                   # model init, data order (with the epoch), dropout
    batch_size: int = 8             # samples per micro-batch, global: split across torchrun ranks
    grad_accum: int = 1             # micro-batches per optimizer step
    length_group: int = 16          # shuffled windows of length_group batches are sorted by length, then cut
    weight_decay: float = 0.0       # AdamW weight decay
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # AdamW betas
    warmup_ratio: float = 0.03      # linear warmup over this share of a stage's steps, then cosine to 0
    clip_norm: float = 1.0          # gradient-norm clipping (0: off)
    unpad: bool = True              # run a batch as length buckets (same gradient, less padding computed)
    checkpoint_every: int = 100     # optimizer steps between checkpoints (also written at a stage's end)
    keep_checkpoints: int = 2       # step checkpoints kept per stage (older ones deleted)
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on GPU, fp32 on CPU
    gradient_checkpointing: Literal["auto", "on", "off"] = "auto"  # auto: on with a GPU
    progress: bool = True           # tqdm bar (rank 0)
    tensorboard: bool = True        # TensorBoard scalars in OUT/<stage>/tb (rank 0)
    threads: int = 0                # torch intra-op threads per process (0: torch's default)
    feature_cache: FeatureCacheConfig = field(default_factory=FeatureCacheConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    stages: list[StageConfig] = field(default_factory=lambda: [StageConfig()])

    def __post_init__(self) -> None:
        check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        check(self.grad_accum >= 1, "grad_accum", f"must be >= 1, got {self.grad_accum}")
        check(self.length_group >= 1, "length_group", f"must be >= 1, got {self.length_group}")
        check(0.0 <= self.warmup_ratio < 1.0, "warmup_ratio", f"must be in [0, 1), got {self.warmup_ratio}")
        check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas",
              f"need two values in [0, 1), got {self.betas}")
        check(self.clip_norm >= 0, "clip_norm", f"must be >= 0, got {self.clip_norm}")
        check(self.checkpoint_every >= 1, "checkpoint_every", f"must be >= 1, got {self.checkpoint_every}")
        check(self.keep_checkpoints >= 1, "keep_checkpoints", f"must be >= 1, got {self.keep_checkpoints}")
        check(self.threads >= 0, "threads", f"must be >= 0, got {self.threads}")
        check(bool(self.stages), "stages", "give at least one stage")
        names = [s.name for s in self.stages]
        check(len(set(names)) == len(names), "stages", f"stage names must be unique, got {names}")
