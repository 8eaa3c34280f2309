"""The language-model box: any HF causal LM (LLaMA, Qwen, ...) from a local folder or built from a config.

It wraps, never subclasses, an ``AutoModelForCausalLM`` (or the peft model LoRA turns it into, lora.py) and
offers what the composed model needs: token embeddings, and a forward from embeddings with explicit positions
(so left-padded batches get the same positions as single sequences) and an optional KV cache. It knows nothing
about images or the conversation template.

Example::

    lm = LanguageModel.from_config({"model_type": "llama", "hidden_size": 256, ...}, vocab_size=4096)
    x = lm.embed(ids)                                        # [B, T, 256]
    logits, cache = lm(x, attention_mask, use_cache=True)    # [B, T, 4096]
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..common.errors import P2MedError


class LanguageModel(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model  # a transformers causal LM, or a peft model wrapping one

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @classmethod
    def from_config(cls, hf_config: dict[str, Any], vocab_size: int | None = None, special: dict | None = None,
                    attn_implementation: str = "sdpa", dtype: torch.dtype = torch.float32) -> "LanguageModel":
        """Random weights; ``vocab_size`` and the special ids (bos/eos/pad_token_id) come from the tokenizer."""
        from transformers import AutoConfig, AutoModelForCausalLM

        kwargs = dict(hf_config)
        model_type = kwargs.pop("model_type")
        if vocab_size is not None:
            kwargs["vocab_size"] = vocab_size
        kwargs.update(special or {})
        try:
            config = AutoConfig.for_model(model_type, **kwargs)
        except (KeyError, TypeError, ValueError) as exc:
            raise P2MedError(f"llm.hf_config is not a valid {model_type!r} config: {exc}") from exc
        model = AutoModelForCausalLM.from_config(config, attn_implementation=attn_implementation, dtype=dtype)
        return cls(model)

    @classmethod
    def from_pretrained(cls, folder: str, attn_implementation: str = "sdpa",
                        dtype: torch.dtype = torch.float32) -> "LanguageModel":
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=dtype,
                                                     attn_implementation=attn_implementation)
        return cls(model)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """input_ids [B, T] -> [B, T, D]."""
        return self.model.get_input_embeddings()(input_ids)

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                position_ids: torch.Tensor | None = None, past_key_values: Any = None,
                use_cache: bool = False) -> tuple[torch.Tensor, Any]:
        """inputs_embeds [B, t, D] (t new positions), attention_mask [B, T_past + t] -> logits [B, t, V], cache.

        Without ``position_ids`` they count the unmasked positions (left padding then changes nothing).
        """
        if position_ids is None:
            t = inputs_embeds.shape[1]
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -t:]  # [B, t]
        out = self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids,
                         past_key_values=past_key_values, use_cache=use_cache)
        return out.logits, out.past_key_values
