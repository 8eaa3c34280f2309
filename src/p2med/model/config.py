"""The model's configuration: one small dataclass per box of the architecture, checked on construction.

It knows shapes, where weights live and what trains; it imports no torch, so the CLI and the config tests can
load every preset cheaply. Presets live in ``configs/model/`` (``tiny.yaml`` for CPU, ``paper.yaml`` for the
8B shape, ``qwen2-7b.yaml`` for a Qwen-class LLM).
Example: ``load_config(ModelConfig, preset_path("tiny"), ["llm.hf_config.num_hidden_layers=2"])``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..common.errors import P2MedError
from ..config import check

PRESETS_DIR = Path(__file__).resolve().parents[3] / "configs" / "model"
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


@dataclass
class VisionConfig:
    path: str | None = "weights/clip-vit-large-patch14-336"  # local folder holding an HF vision tower
    #                                      (config.json + safetensors; relative to the working directory);
    #                                      None: build it from hf_config with random weights
    weights: str = "CLIP ViT-L/14-336 (openai/clip-vit-large-patch14-336)"  # what belongs at `path` (errors)
    class_name: str = "CLIPVisionModel"  # transformers class of the tower (CLIPVisionModel, SiglipVisionModel)
    hf_config: dict[str, Any] = field(default_factory=dict)  # the tower's HF config when built from config
    #                                      (also what model-info counts when `path` is missing)
    feature_layer: int = -2              # hidden state fed to the perceiver: -1 = last layer, -2 = the one before
    use_cls: bool = False                # keep the CLS token as one more "patch" (towers that have one)

    def __post_init__(self) -> None:
        check(self.path is not None or bool(self.hf_config), "vision",
              "give vision.path (a local HF folder) or vision.hf_config (build from config)")
        check(self.feature_layer != 0, "vision.feature_layer", "0 is the patch embedding, not a layer output")


@dataclass
class ProcessorConfig:
    mean: list[float] = field(default_factory=lambda: list(CLIP_MEAN))  # per-channel mean after gray -> RGB
    std: list[float] = field(default_factory=lambda: list(CLIP_STD))    # per-channel std after gray -> RGB
    resize: Literal["bilinear", "bicubic"] = "bilinear"  # how a slice is resized to the tower's image size

    def __post_init__(self) -> None:
        check(len(self.mean) == 3 and len(self.std) == 3, "processor.mean/std", "need 3 values each (RGB)")
        check(all(s > 0 for s in self.std), "processor.std", f"must be positive, got {self.std}")


@dataclass
class PerceiverConfig:
    num_latents: int = 32   # visual tokens per <image> (SPEC section 5: 32)
    depth: int = 6          # resampler layers (latents attend to [features; latents], then a feed-forward)
    heads: int = 8          # attention heads
    dim_head: int = 64      # width of one head (inner width = heads * dim_head)
    ff_mult: int = 4        # feed-forward inner width = ff_mult * perceiver width (= the LLM's width)
    max_slices: int = 64    # temporal-embedding size; longer series are subsampled evenly, with a warning

    def __post_init__(self) -> None:
        for name in ("num_latents", "depth", "heads", "dim_head", "ff_mult", "max_slices"):
            check(getattr(self, name) >= 1, f"perceiver.{name}", f"must be >= 1, got {getattr(self, name)}")


@dataclass
class LLMConfig:
    path: str | None = "weights/chinese-llama-2-7b"  # local folder holding an HF causal LM (relative to the
    #                              working directory); None: build from hf_config with random weights
    weights: str = "Chinese-LLaMA-2-7B (hfl/chinese-llama-2-7b)"  # what belongs at `path`, named in errors
    hf_config: dict[str, Any] = field(default_factory=dict)  # {"model_type": "llama", ...} when built from
    #                              config (vocab_size then comes from the tokenizer); counted by model-info
    attn_implementation: Literal["sdpa", "eager"] = "sdpa"  # attention kernel of the LLM

    def __post_init__(self) -> None:
        check(self.path is not None or "model_type" in self.hf_config, "llm",
              "give llm.path (a local HF folder) or llm.hf_config with a model_type (build from config)")


@dataclass
class LoraConfig:
    r: int = 16              # rank of A and B (W' = W + A B^T * alpha / r)
    alpha: int = 32          # scaling numerator
    dropout: float = 0.05    # dropout on the LoRA branch's input while training
    targets: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])  # LLM
    vision_targets: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "out_proj"])
    #                          modules of the vision tower when trainable.vision is "lora"

    def __post_init__(self) -> None:
        check(self.r >= 1, "lora.r", f"must be >= 1, got {self.r}")
        check(self.alpha > 0, "lora.alpha", f"must be > 0, got {self.alpha}")
        check(0.0 <= self.dropout < 1.0, "lora.dropout", f"must be in [0, 1), got {self.dropout}")
        check(bool(self.targets), "lora.targets", "name at least one module")


@dataclass
class TokenizerConfig:
    path: str | None = None  # local tokenizer folder; None: the LLM's folder (llm.path), or, for an LLM built
    #                          from config, a tokenizer passed to build_model (see train_tokenizer)
    vocab_size: int = 4096   # target size when training a BPE tokenizer on the export's text
    min_frequency: int = 3   # a merge needs this many occurrences (keeps rare strings such as names out)

    def __post_init__(self) -> None:
        check(self.vocab_size >= 300, "tokenizer.vocab_size", f"must be >= 300 (256 bytes + specials), "
              f"got {self.vocab_size}")
        check(self.min_frequency >= 1, "tokenizer.min_frequency", f"must be >= 1, got {self.min_frequency}")


@dataclass
class ConversationConfig:
    roles: dict[str, list[str]] = field(default_factory=lambda: {
        "zh": ["Human: ", "Assistant: "], "en": ["Human: ", "Assistant: "]})  # lang -> [human, assistant]
    #                          prefixes; the stop token after each turn is the tokenizer's EOS (SPEC section 4)
    add_bos: bool = True     # start with the tokenizer's BOS when it has one

    def __post_init__(self) -> None:
        for lang, pair in self.roles.items():
            check(len(pair) == 2 and all(pair), f"conversation.roles.{lang}",
                  f"needs [human prefix, assistant prefix], got {pair}")


@dataclass
class TrainableConfig:
    vision: Literal["frozen", "lora", "full"] = "frozen"  # the paper keeps the encoder frozen in every stage
    perceiver: Literal["frozen", "full"] = "full"
    llm: Literal["frozen", "lora", "full"] = "lora"


@dataclass
class ModelConfig:
    name: str = "paper"                                   # preset name, stored in checkpoints
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"  # weights' dtype (fp32 on CPU: bf16 is ~100x
    #                                                       slower there)
    vision: VisionConfig = field(default_factory=VisionConfig)
    processor: ProcessorConfig = field(default_factory=ProcessorConfig)
    perceiver: PerceiverConfig = field(default_factory=PerceiverConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    conversation: ConversationConfig = field(default_factory=ConversationConfig)
    trainable: TrainableConfig = field(default_factory=TrainableConfig)

    def __post_init__(self) -> None:
        check(bool(self.name), "name", "must not be empty")


def preset_path(name: str) -> Path:
    """``configs/model/NAME.yaml`` of this checkout; a missing preset names the ones that exist."""
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")) if PRESETS_DIR.is_dir() else []
        raise P2MedError(f"model preset {name!r} not found at {path}; known presets: {known} "
                         "(or pass --config FILE)")
    return path
