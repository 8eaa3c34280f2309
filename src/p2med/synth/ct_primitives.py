"""Small numeric pieces of the CT phantom: soft occupancies, clipping, index spans, the ellipsoid primitive.

What it is: `soft_occ` (a partial-volume edge one pixel wide for a squared normalised radius), `clip01` (an
in-place clip of a fresh temporary), `smoothstep`, `span` (the index range of an ascending axis within
[lo, hi]) and `Ellipsoid` (an optionally rotated ellipsoid, or a vertical cylinder when ``az`` is infinite,
with its axial sections).

What it does not know: anatomy, HU values, pixel grids beyond the axis arrays it is handed.

Example::

    e = Ellipsoid(cx=0.0, cy=-20.0, cz=-60.0, ax=40.0, ay=30.0, az=35.0)
    scale, qz = e.section(-50.0)                         # the plane z = -50 mm cuts it
    cols = span(xs, *e.bbox(scale)[:2])                  # columns of the grid it may touch
    occ = soft_occ(e.q(xs[cols][None, :], ys[:, None], qz), min(e.ax, e.ay), px=1.0)   # [h, w] in 0..1
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def soft_occ(q, r_mm: float, px: float):
    """Soft occupancy of {q <= 1} where q is a squared normalised radius with radius r_mm at the edge."""
    k = r_mm / (2.0 * px)
    return clip01(0.5 + k - k * q)


def clip01(x):
    """Clip a fresh temporary array to [0, 1] in place (cheaper than np.clip on small arrays)."""
    np.minimum(x, 1.0, out=x)
    return np.maximum(x, 0.0, out=x)


def smoothstep(v):
    v = clip01(v)
    return v * v * (3.0 - 2.0 * v)


def span(axis: np.ndarray, lo: float, hi: float) -> slice:
    """Indices of an ascending axis with lo <= value <= hi."""
    return slice(int(np.searchsorted(axis, lo, "left")), int(np.searchsorted(axis, hi, "right")))


@dataclass(frozen=True)
class Ellipsoid:
    cx: float
    cy: float
    cz: float
    ax: float
    ay: float
    az: float
    angle: float = 0.0  # in-plane rotation (radians) of the ax axis from +x towards -y (anterior)
    z0: float = -1e9  # hard z limits (cylinders: az = inf)
    z1: float = 1e9

    def section(self, z: float):
        """(scale, qz) of the axial section at z, or None when the plane misses it."""
        if not self.z0 <= z <= self.z1:
            return None
        qz = ((z - self.cz) / self.az) ** 2 if math.isfinite(self.az) else 0.0
        return None if qz >= 1.0 else (math.sqrt(1.0 - qz), qz)

    def bbox(self, scale: float) -> tuple[float, float, float, float]:
        r = max(self.ax, self.ay) * scale + 1.0
        return self.cx - r, self.cx + r, self.cy - r, self.cy + r

    def q(self, x, y, qz: float):
        """Squared normalised radius; x and y broadcast (row/column vectors or point arrays)."""
        dx, dy = x - self.cx, y - self.cy
        if self.angle:
            c, s = math.cos(self.angle), math.sin(self.angle)
            dx, dy = dx * c - dy * s, dx * s + dy * c
        return (dx / self.ax) ** 2 + (dy / self.ay) ** 2 + qz
