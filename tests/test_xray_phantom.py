"""The synthetic chest radiograph: determinism, confinement of findings, anatomy sanity, stored values."""

from __future__ import annotations

import numpy as np
import pytest

from p2med.synth.findings import PATTERNS, SIDES, ZONES, Finding
from p2med.synth.xray_phantom import (XrayPhantomConfig, render, sample_anatomy, sample_finding, to_stored)

CFG = XrayPhantomConfig(image_size_range=(256, 256))          # small and square: fast and comparable
QUIET = XrayPhantomConfig(image_size_range=(256, 256), noise=0.0)
VALID = [(p, s, z) for p in PATTERNS for s in SIDES for z in ZONES if p != "effusion" or z == "lower"]


@pytest.fixture(scope="module")
def child():
    return sample_anatomy(np.random.default_rng(7), 5.0, CFG)


def geometry(out):
    """Midline column and hemithorax width (px) from the lung masks of a frontal render."""
    right_lo = np.flatnonzero(out.lung_masks["right"].any(axis=0))[0]
    left_hi = np.flatnonzero(out.lung_masks["left"].any(axis=0))[-1]
    return (right_lo + left_hi) / 2.0, (left_hi - right_lo) / 2.0


def test_same_seed_same_image_other_seed_other_noise(child):
    fs = [Finding("patchy", "right", "lower", 0.2, 1.0)]
    state = np.random.get_state()[1].copy()
    a = render(child, fs, "frontal", CFG, seed=3)
    b = render(child, fs, "frontal", CFG, seed=3)
    assert np.array_equal(np.random.get_state()[1], state)       # the global numpy state is never used
    assert a.image.dtype == np.float32 and a.image.shape == (256, 256)
    assert np.array_equal(a.image, b.image)
    assert a.zone_boxes == b.zone_boxes and a.lesion_boxes == b.lesion_boxes
    c = render(child, fs, "frontal", CFG, seed=4)
    assert not np.array_equal(a.image, c.image)
    assert a.zone_boxes == c.zone_boxes                           # same anatomy and position, other noise
    again = sample_anatomy(np.random.default_rng(7), 5.0, CFG)
    assert again == child


def test_image_size_comes_from_the_seed_within_range(child):
    cfg = XrayPhantomConfig(image_size_range=(200, 240))
    shapes = {render(child, [], "frontal", cfg, seed=s).image.shape for s in range(6)}
    assert len(shapes) > 1
    assert all(200 <= h <= 240 and 200 <= w <= 240 for h, w in shapes)


@pytest.mark.parametrize("pattern,side,zone", VALID)
def test_finding_changes_only_its_side_and_zone(child, pattern, side, zone):
    f = sample_finding(np.random.default_rng(1), pattern, side, zone, CFG)
    with_f = render(child, [f], "frontal", CFG, seed=11)
    without = render(child, [], "frontal", CFG, seed=11)
    diff = with_f.image - without.image
    r0, r1, c0, c1 = with_f.zone_boxes[(side, zone)]
    outside = np.ones(diff.shape, bool)
    outside[r0:r1, c0:c1] = False
    assert not diff[outside].any()                                # exactly zero outside the zone box
    lr0, lr1, lc0, lc1 = with_f.lesion_boxes[0]
    assert r0 <= lr0 < lr1 <= r1 and c0 <= lc0 < lc1 <= c1
    changed = np.abs(diff) > 0
    assert changed[lr0:lr1, lc0:lc1].sum() == changed.sum()       # the lesion box holds every changed pixel
    assert np.abs(diff[lr0:lr1, lc0:lc1]).mean() > 0.005          # and the change is meaningful
    assert diff.max() > 0.03


def test_lateral_finding_sits_at_its_zone_height(child):
    rows = []
    for zone in ZONES:
        out = render(child, [Finding("consolidation", "left", zone, 0.2, 1.0)], "lateral", CFG, seed=2)
        base = render(child, [], "lateral", CFG, seed=2)
        assert out.zone_boxes[("right", zone)] == out.zone_boxes[("left", zone)]   # one shared field
        assert np.array_equal(out.lung_masks["right"], out.lung_masks["left"])
        r0, r1, c0, c1 = out.zone_boxes[("left", zone)]
        diff = out.image - base.image
        inside = np.zeros(diff.shape, bool)
        inside[r0:r1, c0:c1] = True
        assert diff.max() > 0.03 and not diff[~inside].any()
        lr0, lr1, _, _ = out.lesion_boxes[0]
        rows.append((lr0 + lr1) / 2)
    assert rows[0] < rows[1] < rows[2]
    eff = render(child, [Finding("effusion", "right", "lower", 0.2, 1.0)], "lateral", CFG, seed=2)
    base = render(child, [], "lateral", CFG, seed=2)
    r0, r1, c0, c1 = eff.zone_boxes[("right", "lower")]
    _, _, lc0, lc1 = eff.lesion_boxes[0]
    assert (eff.image - base.image).max() > 0.03
    assert (lc0 + lc1) / 2 > (c0 + c1) / 2                        # posterior sulcus: image right on a lateral


@pytest.mark.parametrize("age", [0.3, 5.0, 15.0])
def test_anatomy_looks_like_a_chest(age):
    child = sample_anatomy(np.random.default_rng(int(age * 10)), age, QUIET)
    out = render(child, [], "frontal", QUIET, seed=0)
    img, right, left = out.image, out.lung_masks["right"], out.lung_masks["left"]
    mid, hemi = geometry(out)
    lung = img[right | left].mean()
    rows_r = np.flatnonzero(right.any(axis=1))
    top, bottom = rows_r[0], rows_r[-1]
    # heart: between the lungs in the lower part of the chest; it extends more to the image right (patient left)
    heart_rows = [r for r in range(int(top + 0.65 * (bottom - top)), int(top + 0.85 * (bottom - top)))
                  if right[r].any() and left[r].any()]
    gaps = [(np.flatnonzero(right[r])[-1], np.flatnonzero(left[r])[0]) for r in heart_rows]
    assert np.mean([(a + b) / 2 for a, b in gaps]) > mid + 0.03 * hemi
    heart = np.mean([img[r, a + 2:b - 1].mean() for r, (a, b) in zip(heart_rows, gaps)])
    # upper mediastinum: between the lungs in the upper third
    med_rows = [r for r in range(int(top + 0.2 * (bottom - top)), int(top + 0.33 * (bottom - top)))
                if right[r].any() and left[r].any()]
    mediastinum = np.mean([img[r, np.flatnonzero(right[r])[-1] + 2:np.flatnonzero(left[r])[0] - 1].mean()
                           for r in med_rows])
    # domes: at the same distance from the midline the right lung ends higher; below it lies the bright abdomen
    offsets = np.linspace(0.45, 0.75, 7) * hemi
    low_r = [np.flatnonzero(right[:, int(round(mid - o))])[-1] for o in offsets]
    low_l = [np.flatnonzero(left[:, int(round(mid + o))])[-1] for o in offsets]
    assert np.mean(low_r) < np.mean(low_l)
    gap = int(0.12 * hemi)
    diaphragm = np.mean([img[r + gap // 2:r + gap, int(round(mid - o))].mean() for r, o in zip(low_r, offsets)])
    corners = [img[:12, :12], img[:12, -12:], img[-12:, :12], img[-12:, -12:]]
    background = min(c.mean() for c in corners)
    assert background < lung < min(heart, mediastinum, diaphragm)
    assert lung + 0.15 < min(heart, diaphragm)
    assert background < 0.05


def test_opacities_brighten_and_ggo_is_the_subtlest(child):
    base = render(child, [], "frontal", QUIET, seed=5)
    gain = {}
    for pattern in ("ggo", "patchy", "consolidation"):
        out = render(child, [Finding(pattern, "right", "middle", 0.22, 1.0)], "frontal", QUIET, seed=5)
        r0, r1, c0, c1 = out.lesion_boxes[0]
        gain[pattern] = (out.image - base.image)[r0:r1, c0:c1].mean()
    assert 0 < gain["ggo"] < gain["patchy"] < gain["consolidation"]
    eff = render(child, [Finding("effusion", "left", "lower", 0.22, 1.0)], "frontal", QUIET, seed=5)
    r0, r1, c0, c1 = eff.lesion_boxes[0]
    assert (eff.image - base.image)[r0:r1, c0:c1].mean() > gain["ggo"]
    weak = render(child, [Finding("consolidation", "right", "middle", 0.22, 1.0)], "frontal",
                  XrayPhantomConfig(image_size_range=(256, 256), noise=0.0, contrast_scale=0.4), seed=5)
    r0, r1, c0, c1 = weak.lesion_boxes[0]
    assert 0 < (weak.image - base.image)[r0:r1, c0:c1].mean() < gain["consolidation"]


@pytest.mark.parametrize("pattern,side,zone", [("consolidation", "right", "lower"), ("patchy", "left", "middle"),
                                               ("ggo", "right", "upper"), ("effusion", "left", "lower")])
def test_lesion_width_tracks_size(child, pattern, side, zone):
    base = render(child, [], "frontal", QUIET, seed=1)
    _, hemi = geometry(base)
    widths = []
    for size in (0.1, 0.2, 0.3):
        out = render(child, [Finding(pattern, side, zone, size, 1.0)], "frontal", QUIET, seed=1)
        r0, r1, c0, c1 = out.lesion_boxes[0]
        widths.append((c1 - c0) / hemi)
        assert 0.75 * size <= widths[-1] <= 1.6 * size, (size, widths[-1])
    assert widths[0] < widths[1] < widths[2]


def test_follow_up_is_the_same_child_repositioned(child):
    ref = render(child, [], "frontal", CFG, seed=1)
    a = render(child, [], "frontal", CFG, seed=1, jitter=1)
    b = render(child, [], "frontal", CFG, seed=1, jitter=1)
    assert np.array_equal(a.image, b.image) and not np.array_equal(a.image, ref.image)
    for side in SIDES:
        area, area_ref = a.lung_masks[side].sum(), ref.lung_masks[side].sum()
        assert abs(area / area_ref - 1) < 0.25
    other = sample_anatomy(np.random.default_rng(8), 5.0, CFG)
    assert other != child


def test_spacing_grows_with_age():
    cfg = XrayPhantomConfig(image_size_range=(256, 256))
    infant = render(sample_anatomy(np.random.default_rng(1), 0.2, cfg), [], "frontal", cfg, seed=0)
    teen = render(sample_anatomy(np.random.default_rng(1), 16.0, cfg), [], "frontal", cfg, seed=0)
    assert 0 < infant.pixel_spacing_mm < teen.pixel_spacing_mm


@pytest.mark.parametrize("field,value", [("size_range", (0.3, 0.1)), ("size_range", (0.0, 0.2)),
                                         ("contrast_scale", 0.0), ("noise", -0.1),
                                         ("exposure_range", (0.0, 1.0)), ("image_size_range", (10, 20)),
                                         ("image_size_range", (600, 500))])
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        XrayPhantomConfig(**{field: value})


def test_bad_view_and_finding_sampling(child):
    with pytest.raises(ValueError, match="view"):
        render(child, [], "oblique", CFG, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        f = sample_finding(rng, "ggo", "left", "upper", CFG)
        assert CFG.size_range[0] <= f.size <= CFG.size_range[1] and 0.7 <= f.strength <= 1.3
    with pytest.raises(ValueError, match="basal"):
        sample_finding(rng, "effusion", "left", "upper", CFG)


def test_to_stored_range_and_monochrome1(child):
    ramp = np.linspace(0.0, 1.0, 101, dtype=np.float32)
    mono2 = to_stored(ramp)
    assert mono2.dtype == np.uint16 and mono2[0] == 0 and mono2[-1] == 4095
    assert np.all(np.diff(mono2.astype(int)) >= 0)
    mono1 = to_stored(ramp, monochrome1=True)
    assert np.array_equal(mono1.astype(int), 4095 - mono2.astype(int))     # high value = black
    assert to_stored(ramp, bits=16)[-1] == 65535 and to_stored(ramp, bits=8)[-1] == 255
    img = render(child, [], "frontal", CFG, seed=0).image
    assert 0.0 <= img.min() and img.max() <= 1.0
    stored = to_stored(img)
    assert stored.max() <= 4095 and np.array_equal(stored, np.rint(img * 4095).astype(np.uint16))
    with pytest.raises(ValueError, match="bits"):
        to_stored(img, bits=17)
