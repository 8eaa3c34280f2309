"""The perceiver box: a Flamingo-style resampler from patch features of S slices to 32 visual tokens.

SPEC section 5 (Decision): learnable temporal (slice/frame index) and positional (patch index) embeddings, at
unit scale, are added to the patch features (layer-normalised first, so that position weighs the same whatever
the tower's feature scale), which are projected to the LLM's width and flattened; then ``depth`` layers in
which ``num_latents`` learnable latents attend to [features; latents] and pass a feed-forward (Alayrac et al.,
"Flamingo", 2022, section 2.1; the same block as open_flamingo's ``PerceiverResampler``). Padded slices are
masked out of attention, so an item padded to a batch's longest series gives the same tokens as alone.
It knows nothing about pixels or text.

Example::

    p = PerceiverResampler(dim_vision=192, num_patches=64, dim=256, cfg=PerceiverConfig(depth=2))
    tokens = p(torch.randn(3, 40, 64, 192), slice_mask)   # [3, 32, 256] whatever the slice count
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..common.errors import P2MedError
from .config import PerceiverConfig


class PerceiverAttention(nn.Module):
    """Latents [N, L, D] attend to [media; latents] [N, M + L, D]; media positions can be masked out."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, media: torch.Tensor, latents: torch.Tensor, media_mask: torch.Tensor) -> torch.Tensor:
        """media [N, M, D], latents [N, L, D], media_mask [N, M] (True = attend) -> [N, L, D]."""
        N, L, _ = latents.shape
        media, latents = self.norm_media(media), self.norm_latents(latents)
        q = self.to_q(latents)                                        # [N, L, inner]
        k, v = self.to_kv(torch.cat([media, latents], dim=1)).chunk(2, dim=-1)  # [N, M + L, inner] each
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))  # [N, h, *, d]
        keep = torch.cat([media_mask, media_mask.new_ones(N, L)], dim=1)  # [N, M + L]; latents always kept
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])  # [N, h, L, d]
        return self.to_out(out.transpose(1, 2).flatten(2))            # [N, L, D]


def feed_forward(dim: int, mult: int) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, mult * dim, bias=False), nn.GELU(),
                         nn.Linear(mult * dim, dim, bias=False))


class PerceiverResampler(nn.Module):
    """Patch features [N, S, P, D_vision] of N images -> [N, num_latents, dim] visual tokens."""

    def __init__(self, dim_vision: int, num_patches: int, dim: int, cfg: PerceiverConfig):
        super().__init__()
        self.cfg = cfg
        self.num_patches = num_patches
        # unit scale, as Flamingo's: they are added to layer-normalised features (forward), so that where a patch
        # lies weighs as much as what it shows, whatever the tower's feature scale (docs/demo.md)
        self.temporal = nn.Parameter(torch.randn(cfg.max_slices, dim_vision))  # slice/frame index
        self.positional = nn.Parameter(torch.randn(num_patches, dim_vision))   # patch index
        self.proj = nn.Linear(dim_vision, dim)
        self.latents = nn.Parameter(torch.randn(cfg.num_latents, dim))
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim, cfg.heads, cfg.dim_head), feed_forward(dim, cfg.ff_mult)])
            for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, features: torch.Tensor, slice_mask: torch.Tensor | None = None) -> torch.Tensor:
        """features [N, S, P, D_vision], slice_mask [N, S] (True = a real slice) -> [N, num_latents, dim]."""
        N, S, P, _ = features.shape
        if S > self.cfg.max_slices or P != self.num_patches:
            raise P2MedError(f"perceiver input has {S} slices x {P} patches; it takes at most "
                             f"{self.cfg.max_slices} slices (the processor subsamples) of {self.num_patches}")
        if slice_mask is None:
            slice_mask = features.new_ones((N, S), dtype=torch.bool)
        x = F.layer_norm(features, features.shape[-1:])                 # [N, S, P, Dv], unit scale per patch
        x = x + self.temporal[:S, None, :] + self.positional[None, :, :]
        x = self.proj(x).flatten(1, 2)                                 # [N, S*P, D]
        media_mask = slice_mask.bool().repeat_interleave(P, dim=1)     # [N, S*P]
        latents = self.latents.expand(N, -1, -1)                       # [N, L, D]
        for attn, ff in self.layers:
            latents = attn(x, latents, media_mask) + latents
            latents = ff(latents) + latents
        return self.norm(latents)                                      # [N, L, D]
