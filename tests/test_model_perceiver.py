"""The image path: 32 visual tokens per <image> whatever the slice count, temporal embeddings make slice order
matter, padded slices are masked out, and the processor turns image items into the tower's input."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from model_helpers import conversation, image, mini_config, mini_model, mini_tokenizer, one_thread  # noqa: F401 (fixture)

from p2med.common.errors import P2MedError
from p2med.model.config import PerceiverConfig
from p2med.model.perceiver import PerceiverResampler
from p2med.model.processor import ImageItem

pytestmark = pytest.mark.usefixtures("one_thread")


def _perceiver(seed: int = 0) -> PerceiverResampler:
    torch.manual_seed(seed)
    return PerceiverResampler(dim_vision=16, num_patches=9, dim=24,
                              cfg=PerceiverConfig(depth=2, heads=2, dim_head=8, ff_mult=2, max_slices=12)).eval()


@pytest.mark.parametrize("slices", [1, 2, 7, 12])
def test_32_tokens_per_image_whatever_the_slice_count(slices):
    p = _perceiver()
    out = p(torch.randn(3, slices, 9, 16))
    assert out.shape == (3, 32, 24)


def test_every_image_slot_group_is_32_tokens_through_the_processor():
    model, processor, _ = mini_model()
    conv = conversation(n_images=3, slices=(1, 5, 8))
    sample = processor.encode(conv["turns"], conv["images"], "zh")
    assert int(sample["image_mask"].sum()) == 3 * 32
    batch = processor.collate([sample])
    visual = model.visual_tokens(batch["pixel_values"], slice_mask=batch["slice_mask"])
    assert visual.shape == (3, 32, model.llm.hidden_size)


def test_slice_order_changes_the_output_through_the_temporal_embedding():
    p = _perceiver()
    x = torch.randn(1, 6, 9, 16)
    reversed_x = x.flip(1)
    with torch.no_grad():
        assert not torch.allclose(p(x), p(reversed_x), atol=1e-4)
        p.temporal.zero_()  # without temporal embeddings the resampler is blind to order
        assert torch.allclose(p(x), p(reversed_x), atol=1e-5)


def test_masked_padding_slices_do_not_change_the_output():
    p = _perceiver()
    x = torch.randn(1, 4, 9, 16)
    padded = torch.cat([x, torch.randn(1, 5, 9, 16) * 10], dim=1)      # garbage in the padding
    mask = torch.tensor([[True] * 4 + [False] * 5])
    with torch.no_grad():
        assert torch.allclose(p(x), p(padded, mask), atol=1e-5)
        assert not torch.allclose(p(x), p(padded), atol=1e-4)         # unmasked, the padding would count


def test_padding_in_a_batch_and_true_slices_do_not_change_visual_tokens():
    model, processor, _ = mini_model()
    ct, xr = image(5, seed=1), image(1, seed=2)
    padded_ct = ImageItem(np.concatenate([ct, np.zeros((3, 40, 40), np.float32)]), true_slices=5)

    def tokens(images):
        conv = conversation(n_images=len(images))
        batch = processor.collate([processor.encode(conv["turns"], images, "zh")])
        with torch.no_grad():
            return model.visual_tokens(batch["pixel_values"], slice_mask=batch["slice_mask"])

    alone_ct, alone_xr = tokens([ct]), tokens([xr])
    together = tokens([xr, padded_ct])                                 # the X-ray is padded to 5 slices
    assert torch.allclose(together[0], alone_xr[0], atol=1e-5)
    assert torch.allclose(together[1], alone_ct[0], atol=1e-5)


def test_cached_features_give_the_same_logits_as_pixels():
    model, processor, _ = mini_model()
    conv = conversation(n_images=2, slices=(1, 4))
    batch = processor.collate([processor.encode(conv["turns"], conv["images"], "zh")])
    with torch.no_grad():
        feats = model.encode_images(batch["pixel_values"], batch["slice_mask"])   # [N, S, P, D_vision]
        a = model(**batch).logits
        b = model(**{k: v for k, v in batch.items() if k != "pixel_values"}, image_features=feats).logits
    assert feats.shape[:2] == batch["slice_mask"].shape
    assert torch.equal(a, b)


def test_processor_resizes_repeats_gray_and_normalises():
    _, processor, _ = mini_model()
    ip = processor.image_processor
    px = ip(ImageItem(np.full((3, 50, 70), 0.5, np.float32)))
    assert px.shape == (3, 3, ip.image_size, ip.image_size)
    for c in range(3):
        assert torch.allclose(px[:, c], torch.full_like(px[:, c], (0.5 - ip.cfg.mean[c]) / ip.cfg.std[c]), atol=1e-5)


def test_processor_rejects_unwindowed_values_and_bad_true_slices():
    _, processor, _ = mini_model()
    with pytest.raises(P2MedError, match="windowed to 0..1"):
        processor.image_processor(np.full((1, 8, 8), 400.0, np.float32))
    with pytest.raises(P2MedError, match="true_slices"):
        processor.image_processor(ImageItem(image(2), true_slices=3))


def test_long_series_are_subsampled_to_the_temporal_embedding_size(caplog):
    _, processor, _ = mini_model()
    max_slices = processor.image_processor.max_slices
    with caplog.at_level(logging.WARNING):
        px = processor.image_processor(image(max_slices * 2 + 1))
        again = processor.image_processor(image(max_slices + 3))       # every epoch reads the series again
    assert px.shape[0] == again.shape[0] == max_slices and caplog.text.count("subsampling evenly") == 1


def test_image_count_must_match_placeholders():
    _, processor, _ = mini_model()
    conv = conversation(n_images=2)
    with pytest.raises(P2MedError, match="2 <image> placeholder"):
        processor.encode(conv["turns"], conv["images"][:1], "zh")


RESNET = dict(image_size=48, num_channels=3, embedding_size=8, hidden_sizes=[8, 16, 24], depths=[1, 1, 1],
              layer_type="basic")


def test_a_convolutional_tower_gives_its_feature_map_cells_as_patches():
    from p2med.model.build import build_model
    from p2med.model.vision import VisionEncoder

    enc = VisionEncoder.from_config("ResNetModel", RESNET, -2, False)
    # 48 px: stem /4 -> 12, stages /1, /2, /2 -> 12, 6, 3; layer -2 is the 6 x 6 map of 16 channels
    assert (enc.dim, enc.num_patches, enc.image_size) == (16, 36, 48)
    feats = enc(torch.rand(5, 3, 48, 48))
    assert feats.shape == (5, 36, 16)
    cfg = mini_config(vision="full")
    cfg.vision.class_name, cfg.vision.hf_config, cfg.vision.feature_layer = "ResNetModel", dict(RESNET), -2
    model, processor, tok = build_model(cfg, tokenizer=mini_tokenizer())
    sample = processor.encode(conversation()["turns"], conversation()["images"], "zh")
    batch = processor.collate([sample])
    loss = model(**batch).loss_sum
    loss.backward()                                   # the tower trains (trainable.vision=full)
    assert next(model.vision.tower.parameters()).grad is not None
    with pytest.raises(P2MedError, match="image_size"):
        VisionEncoder.from_config("ResNetModel", {k: v for k, v in RESNET.items() if k != "image_size"}, -1, False)
