"""Configuration of ``p2med build``: SPEC section 3's thresholds (scaled by one factor), the benchmark sizes,
length limits, multi-round conversations, sharding. Shipped as ``configs/build/default.yaml``.
Example: ``load_config(BuildConfig, None, ["scale=0.05", "benchmark.xray_single=20"])``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..config import check
from .dedup import DedupConfig


@dataclass
class Thresholds:
    """Count thresholds of SPEC section 3 at scale 1 (the paper's hospital); every one is multiplied by
    ``BuildConfig.scale``. "min"/"max" bound a category's size for it to be sampled; "cap" is per category."""

    stage2_outpatient_min: int = 325    # outpatient categories with 325..5,000 stage-1 samples
    stage2_outpatient_max: int = 5000
    stage2_outpatient_cap: int = 500    # at most 500 per category
    stage2_inpatient_min: int = 41      # inpatient categories with over 40 samples (per record level)
    stage3_xray_min: int = 100          # X-ray categories with 100..2,000 samples
    stage3_xray_max: int = 2000
    stage3_xray_cap: int = 500          # up to 500 per category
    stage3_outpatient_min: int = 325    # outpatient categories with 325..5,000 samples
    stage3_outpatient_max: int = 5000
    stage3_outpatient_cap: int = 200    # up to 200 per category
    stage3_inpatient_min: int = 40      # inpatient categories with 40..500 samples (per record level)
    stage3_inpatient_max: int = 500

    def scaled(self, scale: float) -> dict[str, int]:
        """Each threshold times ``scale``: minima and caps rounded up (never 0), maxima rounded up."""
        return {k: max(1, math.ceil(v * scale - 1e-9)) for k, v in asdict(self).items()}


@dataclass
class BenchmarkConfig:
    """P2Med-MBench sizes (SPEC section 7); fewer data give a smaller benchmark with a warning."""

    xray_single: int = 100        # X-ray exams at unique time points (no priors)
    xray_mrc_patients: int = 10   # patients whose several X-ray exams of one visit are all benchmark samples
    ct_report: int = 121
    outpatient: int = 100
    first_course: int = 100
    attending_round: int = 100
    chief_round: int = 100
    max_patient_share: float = 0.25   # benchmark samples come from at most this share of the patients

    def __post_init__(self) -> None:
        for k, v in asdict(self).items():
            check(v >= 0, f"benchmark.{k}", f"must be >= 0, got {v}")
        check(0 < self.max_patient_share <= 1, "benchmark.max_patient_share",
              f"must be in (0, 1], got {self.max_patient_share}")


@dataclass
class BuildConfig:
    seed: int = 0                  # sampling and benchmark selection
    scale: float = 1.0             # multiplies every count threshold (a small hospital: e.g. 0.01)
    thresholds: Thresholds = field(default_factory=Thresholds)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    max_tokens: int = 4000         # drop records longer than this (prompt + output, images excluded)
    tokenizer: str | None = None   # HF tokenizer folder for counting tokens; None: the character proxy
    mrc: bool = True               # multi-round conversations (all exams of one modality in one visit)
    shard_size: int = 5000         # samples per shard file
    prompts: str | None = None     # prompt templates YAML (default configs/prompts/default.yaml)
    categories: str | None = None  # category dictionary YAML (default configs/clinical/categories.yaml)
    dedup: DedupConfig = field(default_factory=DedupConfig)   # near-deduplication of outpatient records

    def __post_init__(self) -> None:
        check(self.scale > 0, "scale", f"must be > 0, got {self.scale}")
        check(self.max_tokens > 0, "max_tokens", f"must be > 0, got {self.max_tokens}")
        check(self.shard_size > 0, "shard_size", f"must be > 0, got {self.shard_size}")
