"""Configuration of ``p2med demo``: the two synthetic hospitals, curation, training and evaluation sizes.
Shipped as ``configs/demo/default.yaml`` (the full demo) and ``configs/demo/reduced.yaml`` (the one inside
``make test``). Example: ``load_config(DemoConfig, "configs/demo/default.yaml", ["train_patients=100"])``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import check


@dataclass
class DemoConfig:
    train_patients: int = 1400         # the training hospital
    train_seed: int = 0
    held_out_patients: int = 200       # the held-out hospital: another seed, never trained on
    held_out_seed: int = 1
    synth: str = "configs/synth/demo.yaml"       # both hospitals' settings (patients and seed set above)
    synth_overrides: list[str] = field(default_factory=list)   # key=value for both hospitals
    train_synth_overrides: list[str] = field(default_factory=list)   # then these for the training hospital only
    build_scale: float = 0.05          # SPEC section 3 thresholds times this for the training hospital
    train: str = "configs/train/demo.yaml"       # the training config (tiny-conv: findings pre-stages + 3 stages)
    train_overrides: list[str] = field(default_factory=list)
    max_new_tokens: int = 160          # per answer at evaluation
    eval_batch_size: int = 16
    examples: int = 8                  # example answers shown in the report
    baselines: bool = True             # logistic regression on pixels, bag of words on records

    def __post_init__(self) -> None:
        for name in ("train_patients", "held_out_patients", "max_new_tokens", "eval_batch_size"):
            check(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        check(self.train_seed != self.held_out_seed, "held_out_seed", "must differ from train_seed (held out)")
        check(self.build_scale > 0, "build_scale", f"must be > 0, got {self.build_scale}")
