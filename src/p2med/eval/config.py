"""Configuration of ``p2med eval``: generation, the judge, statistics, breakdowns and the knowledge check.

Shipped default: ``configs/eval/default.yaml``; ``key=value`` overrides on the CLI (``judge.max_retries=3``).
The judge is off unless a backend is named: then its columns say "not run", never a number.
Example: ``load_config(EvalConfig, None, ["judge.backend=openai", "judge.url=http://127.0.0.1:8000/v1"])``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..clinical.findings import PATTERNS
from ..config import check


@dataclass
class JudgeConfig:
    backend: Literal["none", "openai", "hf"] = "none"  # none | any OpenAI-compatible endpoint | a local HF folder
    url: str = ""                    # openai: base URL with /v1, e.g. http://127.0.0.1:8000/v1 (a vLLM server)
    model: str = ""                  # openai: the model name the endpoint serves
    path: str = ""                   # hf: folder of a causal LM (config.json + weights + tokenizer)
    api_key_env: str = "P2MED_JUDGE_API_KEY"  # environment variable holding the endpoint's key, if it needs one
    timeout_s: float = 120.0         # per call; a timeout counts as a failed attempt
    max_retries: int = 2             # extra attempts after a failure (garbage, out-of-range score, timeout)
    max_new_tokens: int = 512        # room for the analysis and the score line
    exemplars: str = ""              # one-shot exemplars YAML; "" = configs/eval/judge_exemplars.yaml
    position_swap: bool = True       # judge again with reference and candidate swapped (position bias)
    repeats: int = 0                 # extra judgings per item at repeat_temperature (score variance); 0 = off
    repeat_temperature: float = 0.7  # temperature of the repeats (the main judging is always temperature 0)
    repeat_subset: int = 20          # number of samples that get the repeats (first ones in benchmark order)

    def __post_init__(self) -> None:
        check(self.backend != "openai" or bool(self.url), "judge.url", "the openai backend needs a base URL")
        check(self.backend != "hf" or bool(self.path), "judge.path", "the hf backend needs a model folder")
        check(self.timeout_s > 0, "judge.timeout_s", f"must be > 0, got {self.timeout_s}")
        check(0 <= self.max_retries <= 10, "judge.max_retries", f"must be 0..10, got {self.max_retries}")
        check(self.max_new_tokens > 0, "judge.max_new_tokens", f"must be > 0, got {self.max_new_tokens}")
        check(self.repeats >= 0 and self.repeat_subset >= 0, "judge.repeats", "repeats and subset must be >= 0")
        check(0 < self.repeat_temperature <= 2, "judge.repeat_temperature", "must be in (0, 2]")


@dataclass
class EvalConfig:
    batch_size: int = 4              # samples per generation call (left-padded batches)
    max_new_tokens: int = 512        # per generated answer
    seed: int = 0                    # bootstrap resampling and MCQ question sampling
    confidence: float = 0.95         # of every interval
    bootstrap_resamples: int = 2000  # paired comparisons
    critical_findings: list[str] = field(default_factory=lambda: ["effusion", "consolidation", "pneumothorax"])
    examples_per_task: int = 2       # example outputs beside references in the report
    mcq_limit: int = 200             # questions per knowledge-check source (seeded sample); 0 = all
    mcq_max_new_tokens: int = 8      # an answer letter needs few tokens
    judge: JudgeConfig = field(default_factory=JudgeConfig)

    def __post_init__(self) -> None:
        check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        check(self.max_new_tokens >= 1, "max_new_tokens", f"must be >= 1, got {self.max_new_tokens}")
        check(0.5 <= self.confidence < 1, "confidence", f"must be in [0.5, 1), got {self.confidence}")
        check(self.bootstrap_resamples >= 100, "bootstrap_resamples", "must be >= 100")
        bad = [p for p in self.critical_findings if p not in PATTERNS]
        check(not bad, "critical_findings", f"unknown pattern(s) {bad}; known: {list(PATTERNS)}")
        check(self.examples_per_task >= 0 and self.mcq_limit >= 0, "examples_per_task/mcq_limit", "must be >= 0")
