"""Stored pixel values -> 0..1 display values: HU + the CT window, header VOI windows, percentile windows.

CT (SPEC section 2): HU = stored * RescaleSlope + RescaleIntercept, then ``(HU - lo) / (hi - lo)`` clipped to 0..1
with lo, hi = level -/+ width / 2 (paper: -1100, 100); ``window_split`` gives the same as a clip of the stored
values and an affine map, which the fast CT path runs around the resize. Radiographs: the header's VOI LUT
sequence or window (DICOM PS3.3 C.11.2.1.2: LINEAR, LINEAR_EXACT, SIGMOID) when present, else a robust percentile
window;
MONOCHROME1 is inverted afterwards so that 1 is always white. Everything is float32 and works in place on
chunks of slices. It does not know files or geometry.
Example: ``ct_window(stored, slope=1.0, intercept=-1024.0, lo=-1100.0, hi=100.0)`` -> float32 in 0..1.
"""

from __future__ import annotations

import numpy as np


def fix_stored(raw: np.ndarray, bits_stored: int | None, signed: bool) -> np.ndarray:
    """Mask unused high bits (unsigned) or sign-extend from BitsStored (signed), in place, as pydicom does."""
    bits = raw.dtype.itemsize * 8
    if not bits_stored or bits_stored >= bits:
        return raw
    if signed:
        u = raw.view(np.dtype(f"<u{raw.dtype.itemsize}"))
        shift = bits - bits_stored
        np.left_shift(u, u.dtype.type(shift), out=u)
        np.right_shift(raw, raw.dtype.type(shift), out=raw)   # arithmetic shift on the signed view
    else:
        np.bitwise_and(raw, raw.dtype.type((1 << bits_stored) - 1), out=raw)   # typed: numpy's fast loop
    return raw


def ct_window(stored: np.ndarray, slope: float, intercept: float, lo: float, hi: float,
              out: np.ndarray | None = None) -> np.ndarray:
    """``clip((stored * slope + intercept - lo) / (hi - lo), 0, 1)`` as float32 [..., H, W] (the reference form)."""
    width = hi - lo
    out = np.multiply(stored, np.float32(slope / width), out=out, dtype=np.float32)
    out += np.float32((intercept - lo) / width)
    return np.clip(out, np.float32(0.0), np.float32(1.0), out=out)


def window_split(slope: float, intercept: float, lo: float, hi: float) -> tuple[float, float, float, float]:
    """(s_lo, s_hi, a, b) with ``window(x) == a * clip(x, s_lo, s_hi) + b`` for stored values x.

    The clip moves to the stored values and the scaling after the resize: a resize whose weights sum to 1
    commutes with ``a * x + b``, so the cheap affine runs on the smaller output and the clip on 16-bit integers.
    """
    a = slope / (hi - lo)
    b = (intercept - lo) / (hi - lo)
    s_lo, s_hi = (lo - intercept) / slope, (hi - intercept) / slope
    return (min(s_lo, s_hi), max(s_lo, s_hi), a, b)


def clip_stored(raw: np.ndarray, s_lo: float, s_hi: float, out: np.ndarray | None = None) -> np.ndarray:
    """``clip(raw, s_lo, s_hi)`` as float32. On integer input with whole bounds inside the dtype's range the clip
    runs in place on the integers (half the bytes) before one conversion pass; ``raw`` may be modified."""
    if raw.dtype.kind in "iu" and float(s_lo).is_integer() and float(s_hi).is_integer():
        info = np.iinfo(raw.dtype)
        lo_i, hi_i = int(s_lo), int(s_hi)
        if hi_i >= info.min and lo_i <= info.max:
            kind = raw.dtype.type                       # typed bounds keep numpy on its fast integer clip
            np.clip(raw, kind(max(lo_i, info.min)), kind(min(hi_i, info.max)), out=raw)
            if out is None:
                return raw.astype(np.float32)
            np.copyto(out, raw, casting="unsafe")
            return out
    if out is None:
        out = raw.astype(np.float32)
    else:
        np.copyto(out, raw, casting="unsafe")
    return np.clip(out, np.float32(s_lo), np.float32(s_hi), out=out)


def hu(stored: np.ndarray, slope: float | None, intercept: float | None) -> np.ndarray:
    """Hounsfield units as float32 (slope 1 and intercept 0 when the header has none)."""
    s = 1.0 if slope is None else slope
    i = 0.0 if intercept is None else intercept
    return stored.astype(np.float32) * np.float32(s) + np.float32(i)


def voi_window(x: np.ndarray, center: float, width: float, function: str | None = None) -> np.ndarray:
    """The header's window applied to modality values ``x`` -> float32 0..1 (PS3.3 C.11.2.1.2/3)."""
    x = np.asarray(x, dtype=np.float32)
    fn = (function or "LINEAR").upper()
    if fn == "SIGMOID":
        return (1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))).astype(np.float32)
    if fn == "LINEAR_EXACT":
        y = (x - center) / width + 0.5
    else:
        if width < 1:
            width = 1.0
        y = (x - (center - 0.5)) / (width - 1) + 0.5
    return np.clip(y, 0.0, 1.0).astype(np.float32)


def percentile_window(x: np.ndarray, lo_pct: float, hi_pct: float) -> tuple[np.ndarray, float, float]:
    """Map the [lo_pct, hi_pct] percentiles of ``x`` to 0..1 (clipped); returns (image, lo value, hi value).

    Percentiles come from every 4th pixel in each direction (enough for a robust estimate, 16x cheaper).
    """
    sample = x[::4, ::4] if x.ndim == 2 and min(x.shape) >= 64 else x
    lo, hi = (float(v) for v in np.percentile(sample, [lo_pct, hi_pct]))
    if hi <= lo:
        lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.zeros(x.shape, np.float32), lo, hi
    y = (np.asarray(x, np.float32) - np.float32(lo)) * np.float32(1.0 / (hi - lo))
    return np.clip(y, 0.0, 1.0, out=y), lo, hi


def invert(y: np.ndarray) -> np.ndarray:
    """MONOCHROME1 -> MONOCHROME2 on a 0..1 image (in place)."""
    np.subtract(np.float32(1.0), y, out=y)
    return y
