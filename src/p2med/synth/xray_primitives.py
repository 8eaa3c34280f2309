"""Drawing primitives of the X-ray phantom: smooth profiles, tubes, a child's fixed textures, vessel markings.

What it is: pointwise profile functions (`bump`, `ramp`, `tube`), the distance to a segment, Gaussian-smoothed
piecewise-linear outlines (`smooth_profile`), one child's cached random textures (vessel tree tables, parenchymal
mottle, wiggle, bowel gas; `textures(key)`) and the vessel/bronchial markings fanning out from the hila.

What it does not know: pixels or the image frame (everything here is in anatomy units), which view is drawn,
the density scale (callers multiply by the tissue constants of `xray_chest`).

Example::

    tex = textures(anatomy.key)                         # same dict for every exam of this child
    marks = vessels(x, y, side_idx, hila, tex, 0.0)     # [n] marking strength at lung points x, y [n]
    t = ramp((y - 0.5) / 0.1)                           # smoothstep from 0 (y <= 0.5) to 1 (y >= 0.6)
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage


def bump(t):
    """Smooth bump, 1 at t = 0 and 0 for |t| >= 1."""
    return np.square(np.clip(1.0 - np.square(t), 0.0, None))


def ramp(t):
    """Smoothstep of clip(t, 0, 1)."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def tube(d, half):
    """Projected density profile of a tube of half-thickness ``half`` at signed distance ``d`` (bright rim)."""
    q = np.square(d / half)
    return np.sqrt(np.clip(1.0 - q, 0.0, None)) * (0.55 + 0.45 * np.minimum(q, 1.0))


@lru_cache(maxsize=64)
def textures(key: int) -> dict:
    """This child's fixed random textures: vessel tree tables, parenchymal mottle, wiggle, bowel gas."""
    r = np.random.default_rng([key, 1])
    layers = []
    for n, r_lo, r_hi, length, width, amp in ((10, 0.0, 0.08, (0.15, 0.35), 0.028, 1.0),
                                              (20, 0.1, 0.3, (0.15, 0.35), 0.019, 0.85),
                                              (40, 0.25, 0.5, (0.12, 0.3), 0.013, 0.65),
                                              (72, 0.4, 0.75, (0.08, 0.22), 0.009, 0.5)):
        start = r.uniform(r_lo, r_hi, (2, n))
        layers.append(dict(n=n, phase=r.uniform(0, 1, 2), start=start.astype(np.float32),
                           end=(start + r.uniform(*length, (2, n))).astype(np.float32), width=width,
                           amp=(amp * r.uniform(0.4, 1.0, (2, n)) * (r.random((2, n)) < 0.85)).astype(np.float32),
                           drift=r.uniform(-0.25, 0.25, (2, n)).astype(np.float32) / max(length[1], 0.3)))
    mottle = ndimage.gaussian_filter(r.standard_normal((72, 72)), 1.2)
    mottle = (mottle / mottle.std()).astype(np.float32)
    wiggle = [(r.uniform(3, 12), r.uniform(3, 12), r.uniform(0, 2 * np.pi), r.uniform(0.02, 0.045)) for _ in range(6)]
    gas = r.uniform(0, 1, (16, 5)).astype(np.float32)
    return dict(layers=layers, mottle=mottle, wiggle=wiggle, gas=gas)


def sample_grid(tex: np.ndarray, x: np.ndarray, y: np.ndarray, x_lo=-1.4, y_lo=-0.6, span=3.2) -> np.ndarray:
    """Bilinear lookup of a texture laid over the anatomy square [x_lo, x_lo+span] x [y_lo, y_lo+span]."""
    n = tex.shape[0] - 1
    return ndimage.map_coordinates(tex, [(y - y_lo) / span * n, (x - x_lo) / span * n], order=1, mode="nearest")


def smooth_profile(points, step=0.01, sigma=0.1):
    """Piecewise-linear (y, v1, v2, ...) control points, Gaussian-smoothed along y: (ys, [v1], [v2], ...)."""
    pts = np.asarray(points, dtype=np.float64)
    ys = np.arange(pts[0, 0], pts[-1, 0] + step, step)
    return (ys, *(ndimage.gaussian_filter1d(np.interp(ys, pts[:, 0], pts[:, k]), sigma / step, mode="nearest")
                  for k in range(1, pts.shape[1])))


def segment_dist(x, y, ax, ay, bx, by):
    """Distance of points (x, y) to the segment a-b."""
    vx, vy = bx - ax, by - ay
    t = np.clip(((x - ax) * vx + (y - ay) * vy) / (vx * vx + vy * vy + 1e-12), 0.0, 1.0)
    return np.hypot(x - ax - t * vx, y - ay - t * vy)


def vessels(x, y, side_idx, hila, tex, r_min: float) -> np.ndarray:
    """Vessel/bronchial markings fanning out from the hila, brighter and thicker centrally. x, y, side_idx: [n]."""
    hx, hy = hila[0][side_idx], hila[1][side_idx]
    sgn = np.where(side_idx == 1, 1.0, -1.0).astype(np.float32)
    dx, dy = (x - hx) * sgn, y - hy
    r = np.hypot(dx, dy)
    theta = np.arctan2(dy, dx)
    for fx, fy, ph, amp in tex["wiggle"]:
        theta = theta + amp * np.sin(fx * x + fy * y + ph)
    out = np.zeros_like(x)
    for lay in tex["layers"]:
        n = lay["n"]
        t = theta * (n / (2 * np.pi)) + lay["phase"][side_idx]
        k = np.floor(t)
        kk = side_idx * n + (k.astype(np.int64) % n)
        start, end, amp = lay["start"].ravel()[kk], lay["end"].ravel()[kk], lay["amp"].ravel()[kk]
        drift = lay["drift"].ravel()[kk] * (r - start)                    # rays bend away from the radial
        d = np.abs(t - k - 0.5 - drift) * (2 * np.pi / n) * r             # distance to the nearest ray
        gate = ramp((r - start - r_min) / 0.06) * ramp((end - r) / 0.12)
        out += amp * gate * np.clip(1.0 - np.square(d / lay["width"]), 0.0, None)
    return out * np.exp(-r / 0.55)
