"""The synthetic pediatric chest CT: HU ranges, lobe confinement of findings, slab consistency, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from p2med.synth.ct_phantom import (CtPhantomConfig, landmarks, render, render_localizer, sample_anatomy,
                                    sample_finding)
from p2med.synth.findings import CT_LOBES, PATTERNS, SIDES, ZONES, Finding, ct_valid

CFG = CtPhantomConfig()
QUIET = CtPhantomConfig(noise_hu_lung_kernel=0.0, noise_hu_soft_kernel=0.0)
# every valid pattern x side x lobe (an effusion is basal: its "lobe" is that side's pleural space)
CASES = [(p, s, z) for p in PATTERNS for s in SIDES for z in ZONES
         if (p != "effusion" or z == "lower") and ct_valid(Finding(p, s, z))]


@pytest.fixture(scope="module")
def child():
    return sample_anatomy(np.random.default_rng(7), 6.0, CFG)


def _z5(an):
    return np.arange(an.z_start_mm, an.z_end_mm, 5.0)


def _roi(r, point, half=1, stat=np.mean):
    """Mean (or stat) HU of a (2 half + 1)^2 square around a landmark (x, y, z mm) in the nearest slice."""
    x, y, z = point
    k = int(np.argmin(np.abs(r.z_mm - z)))
    c = int(round((x - r.origin_xy_mm[0]) / r.pixel_mm))
    row = int(round((y - r.origin_xy_mm[1]) / r.pixel_mm))
    return float(stat(r.hu[k, row - half:row + half + 1, c - half:c + half + 1]))


@pytest.fixture(scope="module")
def small(child):
    """Baseline at 128 px (no findings) shared by the confinement cases."""
    return render(child, [], _z5(child), matrix=128, seed=3, cfg=CFG)


def test_deterministic_and_no_global_state(child):
    z = _z5(child)[10:16]
    f = [Finding("consolidation", "right", "lower", 0.3)]
    np.random.seed(0)
    a = render(child, f, z, matrix=96, seed=5, cfg=CFG)
    np.random.seed(1)
    b = render(child, f, z, matrix=96, seed=5, cfg=CFG)
    assert a.hu.dtype == np.float32 and a.hu.shape == (6, 96, 96)
    assert np.array_equal(a.hu, b.hu) and a.lesion_boxes == b.lesion_boxes
    assert sample_anatomy(np.random.default_rng(7), 6.0, CFG) == child
    c = render(child, f, z, matrix=96, seed=6, cfg=CFG)
    assert not np.array_equal(a.hu, c.hu)  # the noise follows the seed


def test_hu_ranges_and_contrast(child):
    z = _z5(child)
    nc = render(child, [], z, matrix=256, seed=1, with_masks=True, cfg=CFG)
    ce = render(child, [], z, matrix=256, seed=1, contrast=True, kernel="soft", cfg=CFG)
    air = np.concatenate([nc.hu[:, :12, :12].ravel(), nc.hu[:, :12, -12:].ravel()])
    assert abs(air.mean() + 1000) < 30
    lung = np.zeros(nc.hu.shape, bool)
    for m in nc.lobe_masks.values():
        lung |= m
    core = lung.copy()  # away from the lung edges (partial volume with the chest wall)
    for ax in (1, 2):
        core &= np.roll(lung, 3, ax) & np.roll(lung, -3, ax)
    assert -900 <= nc.hu[core].mean() <= -650
    lm = landmarks(child)
    assert 0 <= _roi(nc, lm["muscle"]) <= 100
    assert nc.hu.max() > 400  # bone
    assert _roi(ce, lm["aorta"]) - _roi(nc, lm["aorta"]) > 100
    assert _roi(ce, lm["left_ventricle"]) - _roi(nc, lm["left_ventricle"]) > 100
    assert _roi(ce, lm["liver"]) - _roi(nc, lm["liver"]) > 30
    assert _roi(nc, lm["trachea"]) < -800
    for side in SIDES:
        assert -950 <= _roi(nc, lm[f"{side}_lung"], 3, np.median) <= -650  # parenchyma around the vessels


@pytest.mark.parametrize("pattern,side,zone", CASES)
def test_finding_confined_to_its_lobe(child, small, pattern, side, zone):
    f = Finding(pattern, side, zone, size=0.3, strength=1.0)
    r = render(child, [f], small.z_mm, matrix=128, seed=3, with_masks=True, cfg=CFG)
    diff = r.hu - small.hu
    changed = diff != 0
    if pattern == "effusion":
        allowed = np.zeros(changed.shape, bool)
        for (s, _), m in r.lobe_masks.items():
            if s == side:
                allowed |= m
    else:
        allowed = r.lobe_masks[(side, zone)]
    assert changed.any()
    assert not (changed & ~allowed).any(), "the finding changed voxels outside its lobe"
    k0, k1 = r.lesion_slices[0]
    assert k1 - k0 >= 1  # spans at least two 5 mm slices
    z0, z1, r0, r1, c0, c1 = r.lesion_boxes[0]
    box = np.zeros(changed.shape, bool)
    box[z0:z1, r0:r1, c0:c1] = True
    assert not (changed & ~box).any() and (z0, z1 - 1) == (k0, k1)
    # the side: patient right is image left
    cols = np.nonzero(changed)[2]
    assert (cols.mean() < 64) == (side == "right")
    # the pattern's density where it changed the image most
    strong = np.abs(diff) >= 0.7 * np.abs(diff).max()
    mean = r.hu[strong].mean()
    lo, hi = {"consolidation": (-100, 120), "ggo": (-700, -400), "effusion": (-20, 40), "patchy": (-450, 50)}[pattern]
    assert lo <= mean <= hi, f"{pattern}: {mean:.0f} HU"


def test_upper_lobes_lie_above_lower_lobes(child, small):
    def z_centre(f):
        r = render(child, [f], small.z_mm, matrix=128, seed=3, cfg=CFG)
        k = np.nonzero(r.hu != small.hu)[0]
        return float(r.z_mm[k].mean())

    for side in SIDES:
        for pattern in ("consolidation", "ggo"):
            up = z_centre(Finding(pattern, side, "upper", 0.25))
            low = z_centre(Finding(pattern, side, "lower", 0.25))
            assert up > low, (side, pattern)


def test_lobe_masks_follow_the_lobes(child, small):
    r = render(child, [], small.z_mm, matrix=128, with_masks=True, cfg=CFG)
    zc = {lobe: float(r.z_mm[np.nonzero(m)[0]].mean()) for lobe, m in r.lobe_masks.items()}
    cols = {lobe: float(np.nonzero(m)[2].mean()) for lobe, m in r.lobe_masks.items()}
    for side in SIDES:
        assert zc[(side, "upper")] > zc[(side, "lower")]
        assert all((cols[(s, zn)] < 64) == (s == "right") for s, zn in CT_LOBES)
    rows = {lobe: float(np.nonzero(m)[1].mean()) for lobe, m in r.lobe_masks.items()}
    assert rows[("right", "middle")] < rows[("right", "lower")]  # the middle lobe is anterior


def test_thin_slices_average_to_the_thick_slice(child):
    zc = child.z_base_mm + 0.45 * child.lung_height_mm + np.array([0.0, 5.0, 10.0])
    f = [Finding("ggo", "left", "upper", 0.3)]
    thick = render(child, f, zc, matrix=128, thickness_mm=5.0, cfg=QUIET)
    zt = (zc[:, None] + np.arange(-2.0, 3.0)[None, :]).ravel()
    thin = render(child, f, zt, matrix=128, thickness_mm=1.0, cfg=QUIET)
    avg = thin.hu.reshape(3, 5, 128, 128).mean(axis=1)
    assert np.abs(avg - thick.hu).max() < 0.1
    # with noise (independent per series) the agreement holds on 4x4 blocks
    thick_n = render(child, f, zc, matrix=128, thickness_mm=5.0, seed=1, cfg=CFG)
    thin_n = render(child, f, zt, matrix=128, thickness_mm=1.0, seed=2, cfg=CFG)
    d = thin_n.hu.reshape(3, 5, 128, 128).mean(axis=1) - thick_n.hu
    body = thick.hu > -950  # outside, clipping at -1024 biases thin (noisier) slices upwards
    blocks = (d * body).reshape(3, 32, 4, 32, 4).sum(axis=(2, 4)) / np.maximum(
        body.reshape(3, 32, 4, 32, 4).sum(axis=(2, 4)), 1)
    assert abs(d[body].mean()) < 3 and np.abs(blocks).mean() < 12


def test_z_order_does_not_matter(child):
    z = _z5(child)[8:20]
    f = [Finding("patchy", "left", "lower", 0.3)]
    a = render(child, f, z, matrix=96, seed=4, cfg=CFG)
    b = render(child, f, z[::-1], matrix=96, seed=4, cfg=CFG)
    assert np.array_equal(a.hu[::-1], b.hu)
    n = len(z) - 1
    assert b.lesion_slices[0] == (n - a.lesion_slices[0][1], n - a.lesion_slices[0][0])


def test_kernels_and_noise(child):
    z = _z5(child)[5:8]
    lung = render(child, [], z, matrix=128, seed=2, kernel="lung", cfg=CFG)
    soft = render(child, [], z, matrix=128, seed=2, kernel="soft", cfg=CFG)
    clean = render(child, [], z, matrix=128, cfg=QUIET)
    n_lung, n_soft = (r.hu[:, :10, :] - clean.hu[:, :10, :] for r in (lung, soft))
    assert n_soft.std() < n_lung.std()
    assert 15 < n_lung.std() < 35  # about cfg.noise_hu_lung_kernel at 5 mm


def test_age_scaling():
    rng = np.random.default_rng(0)
    infant = sample_anatomy(rng, 0.3, CFG)
    teen = sample_anatomy(rng, 16.0, CFG)
    assert infant.fov_mm < teen.fov_mm and 180 <= infant.fov_mm and teen.fov_mm <= 340
    assert infant.lung_height_mm < teen.lung_height_mm
    assert infant.half_depth_mm / infant.half_width_mm > teen.half_depth_mm / teen.half_width_mm
    assert infant.z_end_mm > infant.z_apex_mm > infant.z_base_mm > infant.z_start_mm
    r = render(infant, [sample_finding(rng, "consolidation", "right", "middle", CFG)],
               np.arange(infant.z_start_mm, infant.z_end_mm, 5.0), matrix=128, cfg=CFG)
    assert r.lesion_slices[0][0] >= 0


def test_sample_finding_ranges():
    rng = np.random.default_rng(1)
    cfg = CtPhantomConfig(size_range=(0.15, 0.2))
    fs = [sample_finding(rng, "ggo", "left", "lower", cfg) for _ in range(50)]
    assert all(0.15 <= f.size <= 0.2 and 0.7 <= f.strength <= 1.3 for f in fs)
    with pytest.raises(ValueError, match="lobe"):
        sample_finding(rng, "ggo", "left", "middle", cfg)


def test_contrast_scale_lowers_lesion_contrast(child, small):
    f = [Finding("patchy", "left", "lower", 0.3)]
    z = small.z_mm
    full = render(child, f, z, matrix=128, seed=3, cfg=CFG) .hu - small.hu
    half = render(child, f, z, matrix=128, seed=3, cfg=CtPhantomConfig(contrast_scale=0.5)).hu - small.hu
    assert 0 < np.abs(half).sum() < 0.7 * np.abs(full).sum()


def test_localizer(child):
    img, geo = render_localizer(child, [Finding("consolidation", "right", "lower", 0.3)], rows=256, cols=192,
                                cfg=CFG)
    assert img.shape == (256, 192) and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
    assert geo["z_max_mm"] > geo["z_min_mm"] and geo["pixel_spacing_mm"][0] > 0
    lm = landmarks(child)
    s = geo["pixel_spacing_mm"][0]
    row = lambda z: int(round((geo["z_max_mm"] - z) / s))  # noqa: E731
    col = lambda x: int(round((x - geo["x_first_mm"]) / s))  # noqa: E731
    lung = img[row(lm["left_lung"][2]), col(lm["left_lung"][0])]
    liver = img[row(lm["liver"][2]) + 5, col(lm["liver"][0])]
    assert lung < liver


def test_config_errors_name_the_field(child):
    for kwargs, name in (({"size_range": (0.4, 0.2)}, "size_range"), ({"contrast_scale": 0.0}, "contrast_scale"),
                         ({"noise_hu_lung_kernel": -1.0}, "noise_hu_lung_kernel"),
                         ({"noise_hu_soft_kernel": -1.0}, "noise_hu_soft_kernel"), ({"matrix": 8}, "matrix")):
        with pytest.raises(ValueError, match=name):
            CtPhantomConfig(**kwargs)
    z = _z5(child)[:2]
    with pytest.raises(ValueError, match="kernel"):
        render(child, [], z, matrix=64, kernel="bone", cfg=CFG)
    with pytest.raises(ValueError, match="thickness_mm"):
        render(child, [], z, matrix=64, thickness_mm=0.0, cfg=CFG)
    with pytest.raises(ValueError, match="matrix"):
        render(child, [], z, matrix=7, cfg=CFG)
    with pytest.raises(ValueError, match="lobe"):
        render(child, [Finding("ggo", "left", "middle")], z, matrix=64, cfg=CFG)
    with pytest.raises(ValueError, match="age_years"):
        sample_anatomy(np.random.default_rng(0), 25.0, CFG)


def test_faint_effusion_is_still_fluid_and_consolidation_still_dense(child, small):
    z = small.z_mm
    for pattern, lo, hi in (("effusion", -20, 40), ("consolidation", -120, 80)):
        out = render(child, [Finding(pattern, "right", "lower", 0.3, strength=0.7)], z, matrix=128, seed=3,
                     cfg=CtPhantomConfig(contrast_scale=0.8)).hu
        diff = out - small.hu
        core = out[diff > 0.9 * diff.max()]
        assert lo < float(np.median(core)) < hi, (pattern, float(np.median(core)))
