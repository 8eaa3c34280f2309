"""Generation: the KV cache changes nothing, a left-padded batch decodes what each conversation decodes alone,
streaming pieces add up to the answer, sampling is seeded, and merged LoRA equals the adapter."""

from __future__ import annotations

import pytest
import torch
from model_helpers import conversation, image, mini_model, randomize_lora, one_thread  # noqa: F401 (fixture)

from p2med.model.generate import GenerationConfig, generate, generate_ids, stream, text_pieces

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def mini():
    model, processor, tok = mini_model(seed=3)
    randomize_lora(model)
    return model, processor, tok


def _prior_conversation(seed: int) -> dict:
    """A follow-up: the prior exam and its report, then the new exam to report (two CT series)."""
    return {"turns": [{"human": "[图像] <image> 请写报告", "assistant": "左肺下叶实变，考虑大叶性肺炎。"},
                      {"human": "复查 [图像] <image> <image> 请写报告"}],
            "images": [image(4, seed=seed), image(3, seed=seed + 1), image(6, seed=seed + 2)], "lang": "zh"}


CONVERSATIONS = [conversation(n_images=1, answer=None, seed=10), _prior_conversation(20),
                 conversation(n_images=2, answer=None, seed=30, slices=(2, 5))]


def _tokens(model, processor, conv, cfg):
    batch = processor.collate([processor.encode(conv["turns"], conv["images"], conv["lang"])], padding_side="left")
    return [int(t[0]) for t in generate_ids(model, batch, cfg, processor.tokenizer.eos_token_id)]


def test_kv_cache_generation_equals_no_cache(mini):
    model, processor, _ = mini
    for conv in CONVERSATIONS:
        cached = _tokens(model, processor, conv, GenerationConfig(max_new_tokens=12, use_cache=True))
        uncached = _tokens(model, processor, conv, GenerationConfig(max_new_tokens=12, use_cache=False))
        assert cached == uncached and len(cached) >= 1


def test_batched_generation_equals_one_at_a_time(mini):
    model, processor, _ = mini
    cfg = GenerationConfig(max_new_tokens=12)
    together = generate(model, processor, CONVERSATIONS, cfg)
    alone = [generate(model, processor, [c], cfg)[0] for c in CONVERSATIONS]
    assert together == alone
    assert len(set(alone)) > 1  # the conversations are really different


def test_stream_pieces_concatenate_to_the_answer(mini):
    model, processor, _ = mini
    cfg = GenerationConfig(max_new_tokens=12)
    conv = CONVERSATIONS[1]
    pieces = list(stream(model, processor, conv, cfg))
    assert "".join(pieces) == generate(model, processor, [conv], cfg)[0]
    assert all(pieces) and not any(p.endswith("\ufffd") for p in pieces[:-1])


def test_pieces_hold_back_a_character_split_over_byte_tokens(mini):
    _, processor, tok = mini
    byte_ids = tok.encode("鑫", add_special_tokens=False)  # never seen in training: one token per UTF-8 byte
    assert len(byte_ids) == 3
    head = tok.encode("肺", add_special_tokens=False)
    pieces = list(text_pieces(tok, head + byte_ids + head + [tok.eos_token_id] + head))
    assert pieces == ["肺", "鑫", "肺"]
    # bytes that never complete a character come out once, at the end, as decode gives them
    pieces = list(text_pieces(tok, head + byte_ids[:2]))
    assert "".join(pieces) == tok.decode(head + byte_ids[:2]) and pieces[0] == "肺"


def test_generation_stops_at_eos(mini):
    model, processor, tok = mini
    bias = torch.zeros(len(tok))
    bias[tok.eos_token_id] = 1e4   # force EOS as the first token
    head = model.llm.model.get_output_embeddings()
    head.bias = torch.nn.Parameter(bias)
    try:
        assert generate(model, processor, [CONVERSATIONS[0]], GenerationConfig(max_new_tokens=20)) == [""]
        assert _tokens(model, processor, CONVERSATIONS[0], GenerationConfig(max_new_tokens=20)) == [tok.eos_token_id]
    finally:
        head.bias = None


def test_sampling_is_seeded_and_differs_from_greedy(mini):
    model, processor, _ = mini
    conv = CONVERSATIONS[0]
    sample = GenerationConfig(max_new_tokens=12, do_sample=True, temperature=2.0, top_k=50, top_p=0.95, seed=7)
    a = _tokens(model, processor, conv, sample)
    assert a == _tokens(model, processor, conv, sample)
    others = {tuple(_tokens(model, processor, conv, GenerationConfig(
        max_new_tokens=12, do_sample=True, temperature=2.0, seed=s))) for s in range(4)}
    assert len(others) > 1


def test_merged_lora_equals_unmerged():
    model, processor, _ = mini_model(seed=5)
    randomize_lora(model)
    conv = conversation(n_images=1, slices=(3,))
    batch = processor.collate([processor.encode(conv["turns"], conv["images"], "zh")])
    with torch.no_grad():
        before = model(**batch).logits
        base = model.llm.model.get_base_model()
        model.merge_lora()
        after = model(**batch).logits
    assert model.llm.model is base and "llm" in model.stored_parts
    assert not any("lora_" in n for n, _ in model.named_parameters())
    assert torch.allclose(before, after, atol=1e-4)


def test_trainable_sets_per_part():
    model, _, _ = mini_model(vision="frozen", perceiver="full", llm="lora")
    groups = {part: {n for n, p in getattr(model, part).named_parameters() if p.requires_grad}
              for part in ("vision", "perceiver", "llm")}
    assert not groups["vision"]
    assert groups["perceiver"] == {n for n, _ in model.perceiver.named_parameters()}
    assert groups["llm"] and all("lora_" in n for n in groups["llm"])
    from p2med.model.config import TrainableConfig

    model.set_trainable(TrainableConfig(vision="lora", perceiver="frozen", llm="frozen"))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("vision.") and "lora_" in n for n in trainable)
