"""The batch plan, length buckets, the schedule, the feature cache and the training config, without training."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from model_helpers import mini_model
from train_helpers import write_dataset

from p2med.common.errors import P2MedError
from p2med.config import ConfigError, from_dict
from p2med.train.config import StageConfig, TrainConfig
from p2med.train.data import load_image, load_stage, resolve_cache
from p2med.train.features import FeatureCache
from p2med.train.loop import cosine_with_warmup
from p2med.train.sampler import length_buckets, plan_batches, shard

kinds = st.lists(st.tuples(st.integers(1, 500), st.booleans()), min_size=1, max_size=80)


@settings(max_examples=60, deadline=None)
@given(kinds, st.integers(1, 9), st.integers(1, 4), st.integers(0, 3), st.integers(1, 3))
def test_every_batch_is_modality_homogeneous_and_each_sample_used_once_per_epoch(items, bs, group, seed, world):
    lengths, images = [n for n, _ in items], [h for _, h in items]
    plan = plan_batches(lengths, images, bs, seed, epochs=2, length_group=group, world=world)
    for batch in plan.batches:
        assert len({images[i] for i in batch}) == 1          # all image-text or all text
        assert world <= len(batch) <= bs
        parts = [shard(batch, r, world) for r in range(world)]
        assert sum(parts, []) == batch and all(parts)          # ranks' shares partition the batch
    for epoch in (0, 1):
        used = sorted(i for b, e in zip(plan.batches, plan.epochs) if e == epoch for i in b)
        dropped = len(items) - len(used)
        assert len(set(used)) == len(used) and dropped <= plan.dropped_small * (world - 1)
    assert plan_batches(lengths, images, bs, seed, 2, group, world).batches == plan.batches  # deterministic


def test_plan_groups_lengths_shuffles_by_epoch_and_skips_text_when_asked():
    lengths = [(i * 37) % 400 + 10 for i in range(256)]
    images = [i % 3 == 0 for i in range(256)]
    plan = plan_batches(lengths, images, 8, seed=1, epochs=2, length_group=8)
    first, second = plan.batches[:32], [b for b, e in zip(plan.batches, plan.epochs) if e == 1][:32]
    assert first != second                                     # another order each epoch
    grouped = sum(max(lengths[i] for i in b) * len(b) for b in plan.batches)
    random = plan_batches(lengths, images, 8, seed=1, epochs=2, length_group=1)
    ungrouped = sum(max(lengths[i] for i in b) * len(b) for b in random.batches)
    assert grouped < ungrouped                                 # less padding computed
    skipped = plan_batches(lengths, images, 8, seed=1, epochs=1, length_group=8, skip_text=True)
    assert all(images[b[0]] for b in skipped.batches)
    assert skipped.skipped_text == math.ceil(images.count(False) / 8)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 2000), min_size=1, max_size=24))
def test_length_buckets_partition_the_batch_and_never_cost_more_than_padding(lengths):
    buckets = length_buckets(lengths, overhead=64)
    assert sorted(i for b in buckets for i in b) == list(range(len(lengths)))
    cost = sum(len(b) * max(lengths[i] for i in b) for b in buckets) + 64 * (len(buckets) - 1)
    assert cost <= len(lengths) * max(lengths)


def test_cosine_schedule_warms_up_then_decays_to_zero():
    f = cosine_with_warmup(100, 0.03)
    values = [f(s) for s in range(101)]
    assert values[0] < values[1] < values[2] == 1.0            # 3 warmup steps
    assert all(a >= b for a, b in zip(values[2:], values[3:]))
    assert values[100] == pytest.approx(0.0, abs=1e-12)


def test_feature_cache_reuses_features_and_is_invalidated_by_a_new_encoder(tmp_path):
    ds = write_dataset(tmp_path, n_xray=3, n_ct=2, n_text=1, stages=("stage1",))
    model, processor, _ = mini_model()
    data = load_stage(ds, "stage1", processor)
    refs = [r for s in data.samples for r in s.images]
    cache = FeatureCache(tmp_path / "features", model, processor.image_processor, budget_bytes=1e9)
    est = cache.admit(refs)
    v = model.vision
    assert est.total_bytes == sum(min(r.true_slices, 8) for r in refs) * v.num_patches * v.dim * 2
    root = resolve_cache(ds, "")
    first = [cache.features(root, r) for r in refs]
    assert cache.misses == len(refs) and cache.hits == 0
    again = [cache.features(root, r) for r in refs]
    assert cache.hits == len(refs)
    assert all(torch.equal(a, b) for a, b in zip(first, again))   # a hit returns what the miss returned
    px = processor.image_processor(load_image(root, refs[0]))
    with torch.no_grad():
        direct = model.encode_images(px[None])[0]
    assert torch.allclose(first[0], direct, rtol=1e-2, atol=1e-3)  # float16 of the tower's own output
    old = cache.dir
    with torch.no_grad():
        next(model.vision.parameters()).add_(0.01)                # another encoder: another identity
    changed = FeatureCache(tmp_path / "features", model, processor.image_processor, budget_bytes=1e9)
    assert changed.key != cache.key and not old.exists()
    processor.image_processor.cfg.resize = "bicubic"             # other preprocessing: another identity
    assert FeatureCache(tmp_path / "features", model, processor.image_processor, 1e9).key != changed.key


def test_feature_cache_budget_bounds_what_is_stored(tmp_path):
    ds = write_dataset(tmp_path, n_xray=4, n_ct=0, n_text=0, stages=("stage1",))
    model, processor, _ = mini_model()
    refs = [r for s in load_stage(ds, "stage1", processor).samples for r in s.images]
    per_image = model.vision.num_patches * model.vision.dim * 2
    cache = FeatureCache(tmp_path / "f", model, processor.image_processor, budget_bytes=2.5 * per_image)
    est = cache.admit(refs)
    assert est.admitted == 2 and est.admitted_bytes <= 2.5 * per_image
    for r in refs * 2:
        cache.features(resolve_cache(ds, ""), r)
    assert len(list(cache.dir.rglob("*.npy"))) == 2
    assert cache.hits == 2 and cache.misses == 6                 # the other two are recomputed each time


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"stages\.s1\.lr\.llm"):
        StageConfig(name="s1", trainable=from_dict(type(StageConfig().trainable), {"llm": "lora"}),
                    lr={"perceiver": 1e-4})
    with pytest.raises(ConfigError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match="nothing would train"):
        from_dict(StageConfig, {"trainable": {"vision": "frozen", "perceiver": "frozen", "llm": "frozen"}})


def test_bad_shard_line_names_file_and_line(tmp_path):
    ds = write_dataset(tmp_path, n_xray=1, n_ct=0, n_text=1, stages=("stage1",))
    shard_file = ds / "stage1" / "samples-00001.jsonl"
    shard_file.write_text(shard_file.read_text(encoding="utf-8") + "{broken\n", encoding="utf-8")
    _, processor, _ = mini_model()
    with pytest.raises(P2MedError, match=r"samples-00001\.jsonl:2"):
        load_stage(ds, "stage1", processor)


def test_a_later_stage_needs_the_previous_stage_and_stage_names_are_checked(tmp_path):
    from train_helpers import train_config

    from p2med.train.run import train

    ds = write_dataset(tmp_path, n_xray=1, n_ct=0, n_text=1)
    cfg = train_config(tmp_path, ds, tmp_path / "out")
    with pytest.raises(P2MedError, match=r"run stage 1 first \(--stage 1\)"):
        train(cfg, stage=2)
    with pytest.raises(P2MedError, match="stages 1..3"):
        train(cfg, stage="7")
