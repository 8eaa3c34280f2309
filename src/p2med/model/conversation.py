"""The conversation template (SPEC section 4) and the collator that pads samples into batches.

Token layout of a conversation, with <STOP> = the tokenizer's EOS and each ``<image>`` = ``num_latents`` slots
that the model fills with the perceiver's output (the placeholder itself is never embedded or predicted)::

    [BOS] "Human: " X_p <image slots> X_p' <STOP> "Assistant: " X_o <STOP> "Human: " ... <STOP> "Assistant: " ...

Labels are -100 everywhere except the assistant's tokens and the <STOP> after them. A last turn without an
assistant text ends with "Assistant: " (a generation prompt). The rendered prompt text comes from curation;
this file only knows the roles, the stop token and the image slots.

Example::

    turns = [{"human": "[检查方式] X线 [图像] <image> 请写报告", "assistant": "右肺下野斑片影。"}]
    enc = encode_conversation(turns, tokenizer, ConversationConfig(), num_latents=32, lang="zh")
    enc.input_ids, enc.labels, enc.image_starts          # labels != -100 only on "右肺下野斑片影。" + EOS
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from ..common.errors import P2MedError
from .config import ConversationConfig

IMAGE = "<image>"
IGNORE = -100


@dataclass
class Encoded:
    input_ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)     # IGNORE except assistant tokens and their stop token
    image_mask: list[bool] = field(default_factory=list)  # True on the slots the perceiver's tokens fill
    image_starts: list[int] = field(default_factory=list)  # first slot of each <image>, in order

    @property
    def n_images(self) -> int:
        return len(self.image_starts)

    def add(self, ids: list[int], learn: bool = False, image: bool = False) -> None:
        self.input_ids += ids
        self.labels += ids if learn else [IGNORE] * len(ids)
        self.image_mask += [image] * len(ids)


def pad_id(tokenizer: Any) -> int:
    """The id that fills padding and image slots (never embedded: masked out or replaced)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def encode_conversation(turns: Sequence[dict], tokenizer: Any, cfg: ConversationConfig, num_latents: int,
                        lang: str) -> Encoded:
    """Token ids, labels and image slots of ``turns`` ([{"human": ..., "assistant": ...}, ...])."""
    if lang not in cfg.roles:
        raise P2MedError(f"conversation lang {lang!r} has no roles; configured: {sorted(cfg.roles)}")
    if not turns:
        raise P2MedError("a conversation needs at least one turn")
    if tokenizer.eos_token_id is None:
        raise P2MedError("the tokenizer has no EOS token, which the template uses as the stop token")
    human, assistant = cfg.roles[lang]
    eos, filler = tokenizer.eos_token_id, pad_id(tokenizer)

    def tok(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    enc = Encoded()
    if cfg.add_bos and tokenizer.bos_token_id is not None:
        enc.add([tokenizer.bos_token_id])
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("human"), str):
            raise P2MedError(f"turn {i + 1}: expected {{'human': str, 'assistant': str}}, got {turn!r:.80}")
        enc.add(tok(human))
        for j, piece in enumerate(turn["human"].split(IMAGE)):
            if j:
                enc.image_starts.append(len(enc.input_ids))
                enc.add([filler] * num_latents, image=True)
            if piece:
                enc.add(tok(piece))
        enc.add([eos])
        enc.add(tok(assistant))
        answer = turn.get("assistant")
        if answer is None:
            if i != len(turns) - 1:
                raise P2MedError(f"turn {i + 1} has no assistant text; only the last turn may be a prompt")
            break
        if not isinstance(answer, str) or IMAGE in answer:
            raise P2MedError(f"turn {i + 1}: the assistant text must be a string without {IMAGE}")
        enc.add(tok(answer) + [eos], learn=True)
    return enc


def collate(samples: Sequence[dict], pad_id: int, padding_side: str = "right") -> dict[str, torch.Tensor]:
    """Pad samples (from ``P2MedProcessor.encode``) into one modality-homogeneous batch.

    Returns input_ids, labels, image_mask, attention_mask [B, T] and, for image batches, pixel_values
    [N, S, 3, h, w] (or image_features [N, S, P, D]) with slice_mask [N, S]: the images of all samples in
    order, padded to the longest series with zeros that the mask excludes.
    """
    if not samples:
        raise P2MedError("cannot collate an empty batch")
    if padding_side not in ("left", "right"):
        raise P2MedError(f"padding_side must be left or right, got {padding_side!r}")
    with_images = [bool(s["image_mask"].any()) for s in samples]
    if any(with_images) and not all(with_images):
        raise P2MedError("a batch mixes image-text and text-only samples; batches must be modality-homogeneous "
                         "(SPEC section 6): group them with homogeneous_batches")
    T = max(len(s["input_ids"]) for s in samples)
    out = {"input_ids": torch.full((len(samples), T), pad_id, dtype=torch.long),
           "labels": torch.full((len(samples), T), IGNORE, dtype=torch.long),
           "image_mask": torch.zeros((len(samples), T), dtype=torch.bool),
           "attention_mask": torch.zeros((len(samples), T), dtype=torch.long)}
    for b, s in enumerate(samples):
        n = len(s["input_ids"])
        cols = slice(T - n, T) if padding_side == "left" else slice(0, n)
        out["input_ids"][b, cols] = s["input_ids"]
        out["labels"][b, cols] = s["labels"]
        out["image_mask"][b, cols] = s["image_mask"]
        out["attention_mask"][b, cols] = 1
    if all(with_images):
        kinds = {k for s in samples for k in ("pixel_values", "image_features") if k in s}
        if len(kinds) != 1:
            raise P2MedError(f"image samples must all carry pixel_values or all image_features, got {sorted(kinds)}")
        key = kinds.pop()
        out[key], out["slice_mask"] = pad_slices([x for s in samples for x in s[key]])
    return out


def pad_slices(items: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack per-image tensors [S_i, ...] into [N, S_max, ...] with zeros after S_i, and slice_mask [N, S_max]."""
    S = max(x.shape[0] for x in items)
    stacked = items[0].new_zeros((len(items), S, *items[0].shape[1:]))
    mask = torch.zeros((len(items), S), dtype=torch.bool)
    for i, x in enumerate(items):
        stacked[i, : x.shape[0]] = x
        mask[i, : x.shape[0]] = True
    return stacked, mask


def homogeneous_batches(has_images: Sequence[bool], batch_size: int, seed: int = 0,
                        shuffle: bool = True) -> list[list[int]]:
    """Sample indices grouped into batches that are all image-text or all text (SPEC section 6)."""
    rng = random.Random(seed)
    batches = []
    for kind in (True, False):
        idx = [i for i, h in enumerate(has_images) if bool(h) == kind]
        if shuffle:
            rng.shuffle(idx)
        batches += [idx[k: k + batch_size] for k in range(0, len(idx), batch_size)]
    if shuffle:
        rng.shuffle(batches)
    return batches
