"""Where the X-ray phantom's anatomy lands in the image: one exam's pose, the pixel <-> anatomy map, the coarse grid.

What it is: `Pose` (this exam's shift, rotation, magnification and inspiration, drawn from the child's key and the
exam's jitter), `Frame` (the affine map between pixels (r, c) of an [H, W] image and anatomy units (x, y)), the
1/LOW grid the smooth anatomy is rendered on and its x2 upsampling, and the windowed ellipse drawing on that grid.

What it does not know: what is drawn (the views' anatomy is in `xray_frontal` / `xray_lateral`), how big the
chest is in millimetres, or the detector (noise, windowing: `xray_phantom.render`).

Example::

    pose = pose_of(anatomy, jitter=1)                   # a follow-up exam: slightly repositioned
    frame = Frame(H=512, W=480, ppu=160.0, x0=0.0, y0=0.6, theta=pose.theta)
    X, Y = frame.grid(LOW)                              # [256, 240] anatomy units of the coarse pixel centres
    r, c = frame.to_pix(np.array([0.5]), np.array([1.0]))   # where a point of the right lung base lands
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from p2med.synth.xray_phantom import XrayAnatomy

LOW = 2  # anatomy is rendered at 1/LOW resolution, then upsampled (it is smooth; lesions are full resolution)


@dataclass(frozen=True)
class Pose:
    dx: float       # chest offset in the field, units
    dy: float
    theta: float    # in-plane rotation, radians
    zoom: float     # magnification / collimation factor
    insp: float     # inspiration depth (scales the lung height)


def pose_of(anat: XrayAnatomy, jitter: int) -> Pose:
    dx, dy = anat.shift
    theta, zoom, insp = math.radians(anat.rotation_deg), 1.0, 1.0
    if jitter:
        r = np.random.default_rng([anat.key, 2, int(jitter) % 2**32])
        dx, dy = dx + r.normal(0, 0.035), dy + r.normal(0, 0.035)
        theta += math.radians(r.normal(0, 1.5))
        zoom = math.exp(r.normal(0, 0.035))
        insp = float(np.clip(1.0 + r.normal(0, 0.035), 0.92, 1.08))
    return Pose(dx, dy, theta, zoom, insp)


@dataclass(frozen=True)
class Frame:
    """Affine map between pixels (r, c) of an [H, W] image and anatomy units (x, y)."""

    H: int
    W: int
    ppu: float      # pixels per unit
    x0: float       # anatomy point at the image centre
    y0: float
    theta: float

    def to_anat(self, r: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """r: [h, 1] or [n], c: [1, w] or [n] pixel coordinates (broadcast) -> x, y in units."""
        ct, st = math.cos(self.theta), math.sin(self.theta)
        xr = (c - (self.W - 1) / 2.0) / self.ppu
        yr = (r - (self.H - 1) / 2.0) / self.ppu
        return (self.x0 + ct * xr - st * yr).astype(np.float32), (self.y0 + st * xr + ct * yr).astype(np.float32)

    def to_pix(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ct, st = math.cos(self.theta), math.sin(self.theta)
        dx, dy = np.asarray(x) - self.x0, np.asarray(y) - self.y0
        return (-st * dx + ct * dy) * self.ppu + (self.H - 1) / 2.0, (ct * dx + st * dy) * self.ppu + (self.W - 1) / 2.0

    def grid(self, factor: int) -> tuple[np.ndarray, np.ndarray]:
        """Anatomy coordinates of the pixel centres of the 1/factor grid: x, y [ceil(H/f), ceil(W/f)]."""
        h, w = -(-self.H // factor), -(-self.W // factor)
        r = ((np.arange(h, dtype=np.float32) + 0.5) * factor - 0.5)[:, None]
        c = ((np.arange(w, dtype=np.float32) + 0.5) * factor - 0.5)[None, :]
        return self.to_anat(r, c)


def up2(a: np.ndarray, H: int, W: int) -> np.ndarray:
    """Bilinear x2 upsampling on pixel centres (out[2i] = .75 a[i] + .25 a[i-1]), cropped to [H, W]."""
    p = np.concatenate([a[:1], a, a[-1:]], axis=0)
    rows = np.empty((2 * a.shape[0], a.shape[1]), np.float32)
    rows[0::2] = 0.75 * a + 0.25 * p[:-2]
    rows[1::2] = 0.75 * a + 0.25 * p[2:]
    p = np.concatenate([rows[:, :1], rows, rows[:, -1:]], axis=1)
    out = np.empty((rows.shape[0], 2 * a.shape[1]), np.float32)
    out[:, 0::2] = 0.75 * rows + 0.25 * p[:, :-2]
    out[:, 1::2] = 0.75 * rows + 0.25 * p[:, 2:]
    return out[:H, :W]


def window(frame: Frame, f: int, shape: tuple[int, int], x_lo, x_hi, y_lo, y_hi) -> tuple[slice, slice]:
    """Rows/cols of the 1/f grid covering the anatomy box [x_lo, x_hi] x [y_lo, y_hi] (rotation-safe)."""
    r, c = frame.to_pix(np.array([x_lo, x_lo, x_hi, x_hi]), np.array([y_lo, y_hi, y_lo, y_hi]))
    r, c = (r + 0.5) / f - 0.5, (c + 0.5) / f - 0.5
    r0, r1 = max(int(np.floor(r.min())) - 1, 0), min(int(np.ceil(r.max())) + 2, shape[0])
    c0, c1 = max(int(np.floor(c.min())) - 1, 0), min(int(np.ceil(c.max())) + 2, shape[1])
    return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))


def add_blob(D, X, Y, frame, cx, cy, rx, ry, amp, power=0.5):
    """D += amp * (1 - rho^2)^power inside the ellipse (cx, cy, rx, ry), evaluated only in its window."""
    rs, cs = window(frame, LOW, D.shape, cx - rx, cx + rx, cy - ry, cy + ry)
    rho2 = np.square((X[rs, cs] - cx) / rx) + np.square((Y[rs, cs] - cy) / ry)
    D[rs, cs] += amp * np.clip(1.0 - rho2, 0.0, None) ** power
