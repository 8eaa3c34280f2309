"""HU + windowing against a hand computation, and the banded resize against scikit-image's resize."""

from __future__ import annotations

import numpy as np
import pytest

from p2med.imaging.cache import to_float16
from p2med.imaging.config import IngestConfig
from p2med.imaging.ingest import ingest_files
from p2med.imaging.resize import Resizer, resize_matrix
from p2med.imaging.window import clip_stored, ct_window, fix_stored, voi_window, window_split

from imaging_factory import ct_series


def hand_window(stored: np.ndarray, slope: float, intercept: float, level: float, width: float) -> np.ndarray:
    """The paper's rule written out in float64: HU, then (HU - (level - width/2)) / width clipped to 0..1."""
    hu = stored.astype(np.float64) * slope + intercept
    return np.clip((hu - (level - width / 2)) / width, 0.0, 1.0)


@pytest.mark.parametrize("slope,intercept", [(1.0, -1024.0), (1.0, 0.0), (0.5, -1000.0), (2.0, -3000.5)])
def test_ct_window_matches_hand_computation(slope, intercept):
    stored = np.arange(-2048, 4096, dtype=np.int16).reshape(64, 96)
    want = hand_window(stored, slope, intercept, -500.0, 1200.0)
    got = ct_window(stored, slope, intercept, -1100.0, 100.0)
    assert got.dtype == np.float32 and np.abs(got - want).max() <= 1e-6
    s_lo, s_hi, a, b = window_split(slope, intercept, -1100.0, 100.0)
    split = a * clip_stored(stored.copy(), s_lo, s_hi).astype(np.float64) + b
    assert np.abs(split - want).max() <= 1e-6


def test_ingested_ct_equals_hand_window_when_no_resize_is_needed(tmp_path):
    """At image_size = the matrix the resize is the identity, so the whole path must equal the hand window."""
    rng = np.random.default_rng(0)
    hu = rng.integers(-1500, 600, size=(6, 32, 32)).astype(np.float32)
    files = ct_series(tmp_path / "s", n=6, size=32, hu=hu, signed=True, intercept=0.0)
    res = ingest_files(files, IngestConfig(image_size=32, min_slices=3))
    (entry, arr), = res.images
    assert entry["role"] == "nc" and arr.shape == (6, 32, 32)
    assert np.abs(arr - hand_window(hu, 1.0, 0.0, -500.0, 1200.0)).max() <= 1e-6


def test_stored_bits_are_masked_and_sign_extended_like_pydicom():
    raw = np.array([0x0FFF, 0x0800, 0x07FF, 0xF800], "<u2").view("<i2").copy()
    assert fix_stored(raw, 12, True).tolist() == [-1, -2048, 2047, -2048]
    raw = np.array([0xF0FF, 0x1000, 5, 0x8FFF], "<u2")
    assert fix_stored(raw, 12, False).tolist() == [255, 0, 5, 4095]


def test_voi_window_follows_the_dicom_formulas():
    x = np.array([0.0, 100.0, 511.5, 1023.0, 4095.0], np.float32)
    c, w = 512.0, 1024.0
    linear = np.clip((x - (c - 0.5)) / (w - 1) + 0.5, 0, 1)
    assert np.abs(voi_window(x, c, w) - linear).max() <= 1e-6
    exact = np.clip((x - c) / w + 0.5, 0, 1)
    assert np.abs(voi_window(x, c, w, "LINEAR_EXACT") - exact).max() <= 1e-6
    sigmoid = 1 / (1 + np.exp(-4 * (x - c) / w))
    assert np.abs(voi_window(x, c, w, "SIGMOID") - sigmoid).max() <= 1e-6


@pytest.mark.parametrize("shape,out", [((512, 512), (336, 336)), ((1024, 1000), (336, 336)), ((300, 200), (336, 336)),
                                       ((64, 48), (16, 24))])
def test_banded_resize_equals_scikit_image(shape, out):
    skimage_transform = pytest.importorskip("skimage.transform")
    rng = np.random.default_rng(1)
    img = rng.random(shape).astype(np.float32)
    want = skimage_transform.resize(img.astype(np.float64), out, order=1, anti_aliasing=True)
    got = Resizer(*shape, *out)(img[None])[0]
    assert got.shape == out and np.abs(got - want).max() <= 1e-5


@pytest.mark.parametrize("n_in,n_out", [(512, 336), (4000, 336), (300, 336), (336, 336), (64, 16), (7, 3), (3, 336),
                                         (2, 1), (1, 4)])
def test_resize_matrix_equals_scipy_filter_and_zoom_of_the_identity(n_in, n_out):
    """The operator written out from scipy's definitions is scipy's gaussian_filter1d + zoom (what skimage calls)."""
    from scipy import ndimage

    sigma = max(0.0, (n_in / n_out - 1.0) / 2.0)
    want = np.eye(n_in)
    if sigma > 1e-15:
        want = ndimage.gaussian_filter1d(want, sigma, axis=0, mode="mirror")
    if n_in != n_out:
        want = ndimage.zoom(want, (n_out / n_in, 1.0), order=1, mode="mirror", grid_mode=True)
    got = resize_matrix(n_in, n_out)
    assert got.shape == want.shape == (n_out, n_in) and np.abs(got - want).max() <= 1e-12


def test_resize_weights_sum_to_one():
    """What lets the window's affine map move after the resize."""
    for n_in, n_out in ((512, 336), (333, 336), (2048, 336)):
        assert np.abs(resize_matrix(n_in, n_out).sum(axis=1) - 1).max() < 1e-9


def test_letterbox_keeps_the_aspect_ratio_and_pads_with_zero():
    img = np.ones((1, 100, 200), np.float32)
    r = Resizer.for_image(100, 200, 64, letterbox=True, spacing=(1.0, 1.0))
    out = r.image(img)
    assert out.shape == (1, 64, 64)
    rows = np.flatnonzero(out[0].max(axis=1) > 0.5)
    assert out[0, :, 32].max() == pytest.approx(1.0) and len(rows) == 32
    assert out[0, 0].max() == 0 and out[0, -1].max() == 0


def test_fast_float16_cast_is_bit_identical_to_numpy():
    rng = np.random.default_rng(2)
    bits = np.concatenate([rng.integers(0, 0x3F800001, 2_000_000), np.arange(0, 0x38800000, 4099),
                           np.arange(0x387FF000, 0x38801000), np.arange(0x3F7FF000, 0x3F800001)]).astype(np.uint32)
    y = bits.view(np.float32)                                 # all of [0, 1]: subnormal, normal, ties, 1.0
    assert np.array_equal(to_float16(y).view(np.uint16), y.astype(np.float16).view(np.uint16))
    scratch = np.empty(y.shape, np.int32)
    assert np.array_equal(to_float16(y, scratch=scratch).view(np.uint16), y.astype(np.float16).view(np.uint16))
    outside = np.array([-1.0, -1e-30, -3e-5, 1.0000001, 2.0, 7e-5, 3e-5, 0.0], np.float32)   # clamped to 0..1
    assert np.array_equal(to_float16(outside).view(np.uint16),
                          np.clip(outside, 0, 1).astype(np.float16).view(np.uint16))
    strided = np.zeros((2, 8, 8), np.float16)
    to_float16(np.full((2, 4, 4), 0.3, np.float32), out=strided[:, 2:6, 2:6])
    assert strided[:, 2:6, 2:6].min() == np.float16(0.3) and strided[:, 0].max() == 0
