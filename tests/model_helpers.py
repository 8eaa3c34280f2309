"""Tiny models built in code for the model tests (random weights, no downloads), and synthetic image items.

``mini_config()`` is far smaller than the tiny preset so each test builds a model in well under a second;
``mini_tokenizer()`` is a byte-level BPE trained once on synthetic reports. ``one_thread`` runs a test with one
torch thread: these models are too small for intra-op parallelism, and on a machine shared with other work two
spinning threads made them 5x slower.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from p2med.model.config import (LLMConfig, LoraConfig, ModelConfig, PerceiverConfig, TokenizerConfig,
                                TrainableConfig, VisionConfig)
from p2med.synth.findings import Finding
from p2med.synth.reports import write_report

VISION = {"image_size": 28, "patch_size": 7, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
          "num_attention_heads": 2}
LLM = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
       "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 2048}


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def mini_config(**trainable: str) -> ModelConfig:
    return ModelConfig(
        name="mini", vision=VisionConfig(path=None, hf_config=dict(VISION), feature_layer=-1),
        perceiver=PerceiverConfig(depth=2, heads=2, dim_head=16, ff_mult=2, max_slices=8),
        llm=LLMConfig(path=None, hf_config=dict(LLM)), lora=LoraConfig(r=4, alpha=8, dropout=0.0),
        tokenizer=TokenizerConfig(vocab_size=600, min_frequency=2),
        trainable=TrainableConfig(**{"vision": "frozen", "perceiver": "full", "llm": "lora", **trainable}))


def report_texts(n: int = 200, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        findings = [Finding(("patchy", "consolidation", "ggo")[i % 3], ("right", "left")[i % 2],
                            ("upper", "lower")[i % 2])] if i % 4 else []
        out += list(write_report(rng, ("XR", "CT")[i % 2], findings))
    return out


@functools.lru_cache(maxsize=1)
def mini_tokenizer():
    from p2med.model.tokenizer import train_tokenizer

    return train_tokenizer(report_texts(), vocab_size=600, min_frequency=2)


def mini_model(seed: int = 0, **trainable: str):
    from p2med.model.build import build_model

    torch.manual_seed(seed)
    model, processor, tok = build_model(mini_config(**trainable), tokenizer=mini_tokenizer())
    model.eval()
    return model, processor, tok


def randomize_lora(model: torch.nn.Module, seed: int = 1) -> None:
    """peft starts B at zero (the adapter is a no-op); give it weights so LoRA tests mean something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def image(slices: int, size: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((slices, size, size), dtype=np.float32)


def conversation(n_images: int = 1, answer: str | None = "右肺下野斑片影。", seed: int = 0,
                 slices: tuple[int, ...] = (1,)) -> dict:
    """One turn whose prompt holds ``n_images`` placeholders; ``answer`` None makes a generation prompt."""
    human = "[检查方式] X线 [图像] " + " ".join(["<image>"] * n_images) + " 请写报告"
    turn = {"human": human} if answer is None else {"human": human, "assistant": answer}
    images = [image(slices[i % len(slices)], seed=seed + i) for i in range(n_images)]
    return {"turns": [turn], "images": images, "lang": "zh"}
