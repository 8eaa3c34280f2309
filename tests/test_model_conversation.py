"""The conversation template: labels cover exactly the assistant spans and their stop tokens; image slots are
never learnt; the collator pads and keeps batches modality-homogeneous."""

from __future__ import annotations

import pytest
import torch
from model_helpers import conversation, image, mini_model, mini_tokenizer, one_thread  # noqa: F401 (fixture)

from p2med.common.errors import P2MedError
from p2med.model.config import ConversationConfig
from p2med.model.conversation import IGNORE, encode_conversation, homogeneous_batches

TURNS = [{"human": "[图像] <image> 请写报告", "assistant": "右肺下野斑片影。"},
         {"human": "复查 <image> <image> 与前片比较", "assistant": "较前吸收好转。"},
         {"human": "只有文字", "assistant": "心肺膈未见明显异常。"}]

pytestmark = pytest.mark.usefixtures("one_thread")


def _runs(mask: list[bool]) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, m in enumerate(mask + [False]):
        if m and start is None:
            start = i
        if not m and start is not None:
            runs.append((start, i))
            start = None
    return runs


def test_labels_are_exactly_the_assistant_spans_and_their_stop_tokens():
    tok = mini_tokenizer()
    enc = encode_conversation(TURNS, tok, ConversationConfig(), num_latents=32, lang="zh")
    labelled = [lab != IGNORE for lab in enc.labels]
    runs = _runs(labelled)
    assert len(runs) == len(TURNS)
    for (a, b), turn in zip(runs, TURNS):
        assert enc.labels[a:b] == enc.input_ids[a:b]
        assert enc.input_ids[b - 1] == tok.eos_token_id                        # the stop token is learnt
        assert tok.decode(enc.input_ids[a:b - 1]) == turn["assistant"]
        assert tok.decode(enc.input_ids[:a]).endswith("Assistant: ")          # the role prefix is not
    assert not any(m and lab for m, lab in zip(enc.image_mask, labelled))
    assert sum(enc.image_mask) == 3 * 32 and enc.n_images == 3
    assert all(enc.image_mask[s: s + 32] == [True] * 32 for s in enc.image_starts)
    # every human turn ends with the stop token, which is not a target
    assert enc.input_ids.count(tok.eos_token_id) == 2 * len(TURNS)


def test_a_last_turn_without_answer_is_a_generation_prompt():
    tok = mini_tokenizer()
    enc = encode_conversation(TURNS[:1] + [{"human": "复查 <image>"}], tok, ConversationConfig(), 32, "zh")
    assert tok.decode(enc.input_ids[-8:]).endswith("Assistant: ")
    assert sum(lab != IGNORE for lab in enc.labels) == len(tok(TURNS[0]["assistant"])["input_ids"]) + 1
    with pytest.raises(P2MedError, match="only the last turn"):
        encode_conversation([{"human": "a"}, TURNS[0]], tok, ConversationConfig(), 32, "zh")


def test_unknown_language_and_image_in_answer_are_errors():
    tok = mini_tokenizer()
    with pytest.raises(P2MedError, match="lang 'fr'"):
        encode_conversation(TURNS, tok, ConversationConfig(), 32, "fr")
    with pytest.raises(P2MedError, match="without <image>"):
        encode_conversation([{"human": "x", "assistant": "<image>"}], tok, ConversationConfig(), 32, "zh")


@pytest.mark.parametrize("side", ["right", "left"])
def test_collate_pads_ids_labels_and_slices(side):
    _, processor, tok = mini_model()
    a = conversation(n_images=1, slices=(3,), answer="右肺下野斑片影，考虑支气管肺炎。")
    b = conversation(n_images=2, slices=(1,), answer="未见异常。")
    samples = [processor.encode(c["turns"], c["images"], "zh") for c in (a, b)]
    batch = processor.collate(samples, padding_side=side)
    T = max(len(s["input_ids"]) for s in samples)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape == (2, T)
    for row, s in enumerate(samples):
        n = len(s["input_ids"])
        cols = slice(T - n, T) if side == "left" else slice(0, n)
        assert torch.equal(batch["input_ids"][row, cols], s["input_ids"])
        assert int(batch["attention_mask"][row].sum()) == n
        assert (batch["labels"][row][batch["attention_mask"][row] == 0] == IGNORE).all()
    assert batch["pixel_values"].shape[:2] == (3, 3)
    assert batch["slice_mask"].tolist() == [[True] * 3, [True, False, False], [True, False, False]]


def test_batches_are_modality_homogeneous():
    _, processor, _ = mini_model()
    with_image = processor.encode(conversation()["turns"], [image(1)], "zh")
    text_only = processor.encode([{"human": "主诉：咳嗽3天", "assistant": "支气管肺炎"}], lang="zh")
    with pytest.raises(P2MedError, match="modality-homogeneous"):
        processor.collate([with_image, text_only])
    assert "pixel_values" not in processor.collate([text_only, text_only])
    has_images = [True, False, True, True, False, False, True]
    batches = homogeneous_batches(has_images, batch_size=2, seed=0)
    assert sorted(i for b in batches for i in b) == list(range(len(has_images)))
    assert all(len({has_images[i] for i in b}) == 1 for b in batches)


def test_tokenizer_round_trips_chinese_and_has_the_stop_token():
    tok = mini_tokenizer()
    text = "右肺下野见小斑片状密度增高影，边界模糊。考虑支气管肺炎；罕见字：龘"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    assert tok.eos_token == "</s>" and tok.eos_token_id is not None and tok.pad_token_id is not None
