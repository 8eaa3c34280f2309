"""Generation: greedy or sampled, with a KV cache, stopping at EOS; batched (left padding) or streamed.

A conversation to answer is ``{"turns": [...], "images": [...], "lang": "zh"}`` whose last turn has no
"assistant": earlier turns (priors, with their images and reports) are part of the prompt, as in training's
multi-round conversations. Positions count unmasked tokens, so a left-padded batch decodes exactly what each
conversation decodes alone. The loop is ours (not HF ``generate``): it feeds embeddings with visual tokens,
streams, and runs without a cache for the equality test. It does not know about serving or evaluation.

Example::

    conv = {"turns": [{"human": "[图像] <image> 请写报告"}], "images": [item], "lang": "zh"}
    [report] = generate(model, processor, [conv], GenerationConfig(max_new_tokens=200))
    for piece in stream(model, processor, conv):
        print(piece, end="", flush=True)
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import torch

from ..config import check
from .mllm import P2MedModel
from .processor import P2MedProcessor


@dataclass
class GenerationConfig:
    max_new_tokens: int = 512  # stop after this many tokens if EOS has not come
    do_sample: bool = False    # False: greedy
    temperature: float = 1.0   # sampling: logits / temperature
    top_k: int = 0             # sampling: keep the k most likely tokens (0: all)
    top_p: float = 1.0         # sampling: keep the smallest set with this much probability
    seed: int = 0              # sampling: the generator's seed
    use_cache: bool = True     # KV cache (False recomputes the whole sequence each step)

    def __post_init__(self) -> None:
        check(self.max_new_tokens >= 1, "max_new_tokens", f"must be >= 1, got {self.max_new_tokens}")
        check(self.temperature > 0, "temperature", f"must be > 0, got {self.temperature}")
        check(self.top_k >= 0, "top_k", f"must be >= 0, got {self.top_k}")
        check(0 < self.top_p <= 1, "top_p", f"must be in (0, 1], got {self.top_p}")


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def pick_tokens(logits: torch.Tensor, cfg: GenerationConfig, gen: torch.Generator) -> torch.Tensor:
    """logits [B, V] -> next token ids [B]."""
    if not cfg.do_sample:
        return logits.argmax(-1)
    logits = logits.float() / cfg.temperature
    if cfg.top_k:
        kth = logits.topk(min(cfg.top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # [B, 1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if cfg.top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs > cfg.top_p                                   # keeps the first token
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    return torch.multinomial(logits.softmax(-1), 1, generator=gen).squeeze(-1)


def generate_ids(model: P2MedModel, batch: dict[str, torch.Tensor], cfg: GenerationConfig,
                 eos_id: int) -> Iterator[torch.Tensor]:
    """Yield the next token of every row [B] per step; a finished row repeats EOS. The batch comes from
    ``processor.collate(..., padding_side="left")``."""
    with eval_mode(model):
        visual = model.visual_tokens(batch.get("pixel_values"), batch.get("image_features"), batch.get("slice_mask"))
        x = model.embed(batch["input_ids"], batch["image_mask"], visual)   # [B, T, D]
        mask = batch["attention_mask"]                                     # [B, T]
        gen = torch.Generator(device=x.device).manual_seed(cfg.seed)
        done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        cache, new = None, x
        for _ in range(cfg.max_new_tokens):
            logits, cache = model.llm(new if cfg.use_cache else x, mask, past_key_values=cache,
                                      use_cache=cfg.use_cache)              # [B, t, V]
            token = pick_tokens(logits[:, -1], cfg, gen).masked_fill(done, eos_id)  # [B]
            yield token
            done |= token == eos_id
            if done.all():
                return
            new = model.llm.embed(token[:, None])                         # [B, 1, D]
            x = torch.cat([x, new], dim=1) if not cfg.use_cache else x
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)


def model_batch(model: P2MedModel, processor: P2MedProcessor, conversations: Sequence[dict]) -> dict[str, torch.Tensor]:
    """Conversations -> the left-padded batch on the model's device that ``generate_ids`` and the decoders take."""
    samples = [processor.encode(c["turns"], c.get("images", ()), c.get("lang", "zh")) for c in conversations]
    device = next(model.parameters()).device
    return {k: v.to(device) for k, v in processor.collate(samples, padding_side="left").items()}


def generate(model: P2MedModel, processor: P2MedProcessor, conversations: Sequence[dict],
             cfg: GenerationConfig | None = None) -> list[str]:
    """The assistant's next answer for each conversation (batched with left padding)."""
    cfg = cfg or GenerationConfig()
    tok = processor.tokenizer
    rows: list[list[int]] = [[] for _ in conversations]
    finished = [False] * len(conversations)
    for step in generate_ids(model, model_batch(model, processor, conversations), cfg, tok.eos_token_id):
        for b, t in enumerate(step.tolist()):
            finished[b] = finished[b] or t == tok.eos_token_id
            if not finished[b]:
                rows[b].append(t)
    return [tok.decode(r, skip_special_tokens=True) for r in rows]


def stream(model: P2MedModel, processor: P2MedProcessor, conversation: dict,
           cfg: GenerationConfig | None = None) -> Iterator[str]:
    """Text pieces of one answer as they are decoded; their concatenation is ``generate``'s text."""
    cfg = cfg or GenerationConfig()
    tok: Any = processor.tokenizer
    steps = (int(step[0]) for step in generate_ids(model, model_batch(model, processor, [conversation]), cfg,
                                                    tok.eos_token_id))
    yield from text_pieces(tok, steps)


def text_pieces(tok: Any, token_ids: Iterable[int]) -> Iterator[str]:
    """Decode token ids incrementally up to the EOS token. A piece is held back while the text ends inside a
    multi-byte character (decoded as U+FFFD); bytes that never complete one are given at the end, as
    ``decode`` gives them."""
    ids: list[int] = []
    sent = 0
    for t in token_ids:
        if t == tok.eos_token_id:
            break
        ids.append(t)
        text = tok.decode(ids, skip_special_tokens=True)
        if len(text) > sent and not text.endswith("\ufffd"):
            yield text[sent:]
            sent = len(text)
    text = tok.decode(ids, skip_special_tokens=True)
    if len(text) > sent:
        yield text[sent:]
