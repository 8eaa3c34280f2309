"""A plain decoder for serving Llama-family LLMs (Llama, Qwen2, Mistral with default RoPE): the same maths as
transformers' modules, read from the merged weights into fused matrices, with a preallocated KV cache.

Why: on CPU a tiny LLM's decode step in HF ``generate`` (peft-wrapped) is mostly Python overhead (about 25 ms
where reading the weights takes about 5 ms). Here one step is ~10 tensor ops per layer: fused QKV and
gate/up projections, RoPE from precomputed tables, ``scaled_dot_product_attention`` over the cache, no
mask or cache objects rebuilt per step. Positions count unmasked tokens as in ``p2med.model.generate`` (left
padding changes nothing). It does not know other architectures: ``decoder_for`` returns None for them and
the engine uses ``p2med.model.generate.generate_ids``. It takes the weights as they are when built
(``model.merge_lora()`` first).

``quantize="int8"`` stores every linear weight of the LLM (lm_head included) as int8 per output channel and
quantizes activations per call (fbgemm's dynamic quantized linear, the kernel behind
``torch.ao.quantization.quantize_dynamic``): less than half the float32 step time on CPU, where a decode
step is bound by reading the weights; answers may differ from the float32 ones (bench/serve_int8_agreement.py
measures how often). Torch marks these ops deprecated; the pinned torch 2.13 has them. Example::

    decode = decoder_for(model)                  # FastDecoder or None; decoder_for(model, "int8") for int8
    for token in decode(model, batch, GenerationConfig(max_new_tokens=64), eos_id): ...   # token [B]
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from ..model.generate import GenerationConfig, eval_mode, pick_tokens

SUPPORTED = ("llama", "qwen2", "mistral")
QUANTIZE = ("none", "int8")
Linear = Callable[[torch.Tensor], torch.Tensor]


def _float_linear(w: torch.Tensor, b: torch.Tensor | None) -> Linear:
    return lambda x: F.linear(x, w, b)


def _int8_linear(w: torch.Tensor, b: torch.Tensor | None) -> Linear:
    """x -> x W^T + b with W int8 per output channel, x quantized per call (fbgemm); float32 inside."""
    scale = (w.detach().float().abs().amax(1).clamp(min=1e-8) / 127).double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)             # "quantized tensors are deprecated"
        q = torch.quantize_per_channel(w.detach().float(), scale, torch.zeros(len(scale), dtype=torch.long), 0,
                                       torch.qint8)
    packed = torch.ops.quantized.linear_prepack(q, None if b is None else b.detach().float())
    dtype = w.dtype
    if dtype == torch.float32:
        return lambda x: torch.ops.quantized.linear_dynamic(x, packed, True)
    return lambda x: torch.ops.quantized.linear_dynamic(x.float(), packed, True).to(dtype)


def _rms(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    return F.rms_norm(x, w.shape, w, eps)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, H, t, hd]; cos/sin [B, 1, t, hd] (rotate-half convention of HF Llama)."""
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


class FastDecoder:
    def __init__(self, hf: Any, quantize: str = "none") -> None:
        if quantize not in QUANTIZE:
            raise ValueError(f"quantize must be one of {QUANTIZE}, got {quantize!r}")
        if quantize == "int8" and "fbgemm" not in torch.backends.quantized.supported_engines:
            raise RuntimeError("quantize=int8 needs torch's fbgemm quantized engine (x86 CPUs); use quantize=none")
        linear = _int8_linear if quantize == "int8" else _float_linear
        self.quantize = quantize
        c = hf.config
        self.eps = float(c.rms_norm_eps)
        self.heads = int(c.num_attention_heads)
        self.kv_heads = int(getattr(c, "num_key_value_heads", None) or self.heads)
        self.head_dim = int(getattr(c, "head_dim", None) or c.hidden_size // self.heads)
        rotary = hf.model.rotary_emb
        self.inv_freq, self.rope_scale = rotary.inv_freq.float().cpu(), float(rotary.attention_scaling)
        self.dtype, self.device = hf.model.norm.weight.dtype, hf.model.norm.weight.device
        self._tables(int(c.max_position_embeddings))
        self.layers = []
        for layer in hf.model.layers:
            a, m = layer.self_attn, layer.mlp
            bias = [p.bias for p in (a.q_proj, a.k_proj, a.v_proj)]
            self.layers.append({
                "ln1": layer.input_layernorm.weight, "ln2": layer.post_attention_layernorm.weight,
                "qkv": linear(torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]),   # [(H+2Hkv)*hd, D]
                              torch.cat(bias) if all(b is not None for b in bias) else None),
                "o": linear(a.o_proj.weight, None),
                "gu": linear(torch.cat([m.gate_proj.weight, m.up_proj.weight]), None),        # [2I, D]
                "down": linear(m.down_proj.weight, None)})
        self.norm = hf.model.norm.weight
        self.embed = hf.get_input_embeddings().weight
        self.lm_head = linear(hf.get_output_embeddings().weight, None)

    @classmethod
    def supports(cls, hf: Any) -> bool:
        c = getattr(hf, "config", None)
        rope = getattr(c, "rope_parameters", None) or {}
        return (getattr(c, "model_type", None) in SUPPORTED and getattr(c, "hidden_act", None) == "silu"
                and rope.get("rope_type", "default") == "default" and not getattr(c, "sliding_window", None)
                and hasattr(getattr(hf, "model", None), "rotary_emb") and not hasattr(hf, "peft_config"))

    def _tables(self, n: int) -> None:
        """cos/sin of RoPE for positions 0..n-1 [n, hd], computed once (HF computes them every step)."""
        freqs = torch.arange(n, dtype=torch.float32)[:, None] * self.inv_freq                 # [n, hd/2]
        emb = torch.cat((freqs, freqs), dim=-1)                                              # [n, hd]
        self.cos = (emb.cos() * self.rope_scale).to(self.device, self.dtype)
        self.sin = (emb.sin() * self.rope_scale).to(self.device, self.dtype)

    def _rope(self, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pos [B, t] -> cos, sin [B, 1, t, hd] from the tables."""
        return self.cos[pos][:, None], self.sin[pos][:, None]

    def _forward(self, h: torch.Tensor, pos: torch.Tensor, keys: list, values: list, at: int,
                 mask: torch.Tensor) -> torch.Tensor:
        """h [B, t, D] at cache slots at..at+t, pos [B, t], mask [B, 1, t, at+t] (True = attend) -> logits of the
        last position [B, V]."""
        B, t, _ = h.shape
        hd, H, Hkv = self.head_dim, self.heads, self.kv_heads
        cos, sin = self._rope(pos)
        for i, L in enumerate(self.layers):
            x = _rms(h, L["ln1"], self.eps)
            qkv = L["qkv"](x)                                                 # [B, t, (H+2Hkv)*hd]
            q, k, v = qkv.split([H * hd, Hkv * hd, Hkv * hd], dim=-1)
            q = _rotate(q.view(B, t, H, hd).transpose(1, 2), cos, sin)       # [B, H, t, hd]
            keys[i][:, :, at:at + t] = _rotate(k.view(B, t, Hkv, hd).transpose(1, 2), cos, sin)
            values[i][:, :, at:at + t] = v.view(B, t, Hkv, hd).transpose(1, 2)
            att = F.scaled_dot_product_attention(q, keys[i][:, :, :at + t], values[i][:, :, :at + t],
                                                 attn_mask=mask, enable_gqa=Hkv != H)   # [B, H, t, hd]
            h = h + L["o"](att.transpose(1, 2).reshape(B, t, H * hd))
            gate, up = L["gu"](_rms(h, L["ln2"], self.eps)).chunk(2, dim=-1)  # [B, t, I] each
            h = h + L["down"](F.silu(gate) * up)
        return self.lm_head(_rms(h[:, -1], self.norm, self.eps))            # [B, V]

    def __call__(self, model: Any, batch: dict[str, torch.Tensor], cfg: GenerationConfig,
                 eos_id: int) -> Iterator[torch.Tensor]:
        """Same contract as ``generate_ids``: the next token of every row [B] per step; finished rows repeat EOS."""
        with eval_mode(model), torch.inference_mode():
            visual = model.visual_tokens(batch.get("pixel_values"), batch.get("image_features"),
                                         batch.get("slice_mask"))
            h = model.embed(batch["input_ids"], batch["image_mask"], visual)    # [B, T, D]
            valid = batch["attention_mask"].bool()                             # [B, T]
            B, T, _ = h.shape
            total = T + cfg.max_new_tokens
            if total > self.cos.shape[0]:
                self._tables(total)
            shape = (B, self.kv_heads, total, self.head_dim)
            keys = [h.new_zeros(shape) for _ in self.layers]
            values = [h.new_zeros(shape) for _ in self.layers]
            keep = torch.zeros(B, total, dtype=torch.bool, device=h.device)    # which cache slots are real
            keep[:, :T] = valid
            pos = (valid.long().cumsum(-1) - 1).clamp(min=0)                  # [B, T]
            causal = torch.ones(T, T, dtype=torch.bool, device=h.device).tril()
            mask = causal[None, None] & valid[:, None, None, :]                 # [B, 1, T, T]
            mask |= torch.eye(T, dtype=torch.bool, device=h.device)            # padded rows attend to themselves
            logits = self._forward(h, pos, keys, values, 0, mask)
            gen = torch.Generator(device=h.device).manual_seed(cfg.seed)
            done = torch.zeros(B, dtype=torch.bool, device=h.device)
            next_pos = valid.long().sum(-1, keepdim=True)                       # [B, 1]
            for step in range(cfg.max_new_tokens):
                token = pick_tokens(logits, cfg, gen).masked_fill(done, eos_id)      # [B]
                yield token
                done |= token == eos_id
                if done.all() or step + 1 == cfg.max_new_tokens:
                    return
                at = T + step
                keep[:, at] = True
                h = F.embedding(token[:, None], self.embed)                    # [B, 1, D]
                logits = self._forward(h, next_pos, keys, values, at, keep[:, None, None, :at + 1])
                next_pos = next_pos + 1


def decoder_for(model: Any, quantize: str = "none") -> FastDecoder | None:
    """The fast decoder for the model's LLM when its architecture is supported, else None."""
    hf = model.llm.model
    return FastDecoder(hf, quantize) if FastDecoder.supports(hf) else None
