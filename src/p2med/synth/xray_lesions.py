"""The findings of the X-ray phantom: each pattern's shape and contrast, and its confinement to lung and zone.

What it is: per pattern a contrast (the fraction of the lung air it replaces) and an edge blur; `occupancy`
builds one finding's soft occupancy in anatomy units (a meniscus at the costophrenic angle for an effusion; an
elliptical envelope modulated by a lesion-local random field for the others, placed by `Chest.place`);
`plant` blurs it at full resolution and adds it to the density only where the lung mask of its side and its
zone are, so an image with and without the finding differs only there. Its randomness depends only on the
image seed and the finding's index.

What it does not know: the anatomy outlines (it asks the view's `Chest`), the detector, the report text.

Example::

    box = plant(Finding("consolidation", "right", "lower", 0.18), 0, chest, frame, air, masks["right"],
                zone_boxes[("right", "lower")], D, seed, cfg)   # D [H, W] changed in place; box = (r0, r1, c0, c1)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from p2med.synth.findings import ZONES, Finding
from p2med.synth.xray_chest import Chest
from p2med.synth.xray_frame import Frame
from p2med.synth.xray_primitives import ramp

if TYPE_CHECKING:
    from p2med.synth.xray_phantom import XrayPhantomConfig

# Pattern -> (fraction of the lung air replaced at full occupancy = the contrast, edge blur as a fraction of the
# lesion width). GGO is the subtlest, consolidation and effusion the densest.
_PATTERN = {"ggo": (0.32, 0.1), "patchy": (0.62, 0.1), "consolidation": (0.72, 0.1), "effusion": (0.92, 0.04)}
# Pattern -> lesion texture: (grain of its random field as a fraction of the width, field weight, threshold,
# threshold softness).
# consolidation: one lumpy, homogeneous cloud; patchy: the field breaks it into several ill-defined patches;
# ggo: a broad faint haze (vessels stay visible because the haze is added to them, not replacing them)
_CLOUD = {"consolidation": (0.12, 0.25, 0.15, 0.55), "patchy": (0.1, 0.7, 0.5, 0.6), "ggo": (0.15, 0.15, 0.0, 1.0)}


def occupancy(f: Finding, chest: Chest, rng: np.random.Generator, margin: float):
    """(occupancy function of anatomy (x, y), anatomy bbox (x0, x1, y0, y1)) of one finding, before blurring.

    The visible width is about f.size units (1 unit = the hemithorax width): blobs fill a footprint f.size wide
    whose soft edge and blur (``margin`` each side) reach a little beyond it.
    """
    w = f.size
    if f.pattern == "effusion":
        s = chest.lateral_sign(f.side)
        probe = chest.base[f.side] + 0.6 * chest.cp_depth
        run = chest.extent(f.side, probe) or chest.extent(f.side, chest.base[f.side])
        u_wall = max(s * run[0], s * run[1])
        u0 = u_wall - w
        top = chest.zone_range(f.side, "lower")[0]
        floor_y = float(chest.dome_at(f.side, s * u_wall))
        hm = min(rng.uniform(0.6, 1.2) * w + 0.06, 0.85 * (floor_y - top))

        def occ(x, y):
            u = s * x
            t = np.clip((u - u0) / max(u_wall - u0, 1e-3), 0.0, None)
            y_m = chest.dome_at(f.side, x) - 0.04 - hm * t ** 1.6          # meniscus, rising laterally
            return (ramp((y - y_m) / 0.025) * ramp((u - u0) / 0.02)).astype(np.float32)

        xs = sorted((s * (u0 - margin), s * (u_wall + 0.15)))
        return occ, (xs[0], xs[1], floor_y - hm - 0.1, floor_y + 0.1)

    cx, cy, h = chest.place(f.side, f.zone, w, rng)
    we, he = 0.5 * w, 0.5 * h        # footprint half-sizes (the visible part is ~w wide)
    rot = rng.uniform(-0.5, 0.5)
    cr, sr = math.cos(rot), math.sin(rot)
    ext = math.hypot(we, he) + margin
    grain, weight, threshold, soft = _CLOUD[f.pattern]
    n = 40                                                             # lesion-local random field, ~N(0, 1)
    field = ndimage.gaussian_filter(rng.standard_normal((n, n)), grain * w * (n - 1) / (2 * ext), mode="wrap")
    field = (field / (field.std() + 1e-9)).astype(np.float32)

    def occ(x, y):
        lx = (x - cx) * cr + (y - cy) * sr
        ly = (y - cy) * cr - (x - cx) * sr
        env = ramp((1.0 - np.hypot(lx / we, ly / he)) / 0.55)          # soft elliptical envelope
        noise = ndimage.map_coordinates(field, [(ly + ext) * ((n - 1) / (2 * ext)), (lx + ext) * ((n - 1) / (2 * ext))],
                                        order=1, mode="nearest")
        if f.pattern == "ggo":       # a broad haze, gently uneven
            o = env * np.clip(1.0 + weight * noise, 0.5, 1.5)
        else:                        # a cloud: envelope + lumpy field, softly thresholded (patchy: broken up)
            o = ramp((env + weight * noise - threshold) / soft) * ramp(env / 0.2)
        return (o / max(float(o.max()), 1e-6)).astype(np.float32)

    return occ, (cx - ext, cx + ext, cy - ext, cy + ext)


def plant(f: Finding, i: int, chest: Chest, frame: Frame, air: np.ndarray, lung: np.ndarray,
          box: tuple[int, int, int, int], D: np.ndarray, seed: int, cfg: XrayPhantomConfig):
    """Add one finding to D [H, W] in place, only inside lung & zone; returns the bbox of the changed pixels."""
    rng = np.random.default_rng([seed, 3, i])
    contrast, blur_frac = _PATTERN[f.pattern]
    blur = max(blur_frac * f.size, 1.0 / frame.ppu)                     # units
    margin = 2.0 * blur
    occ_fn, (x0, x1, y0, y1) = occupancy(f, chest, rng, margin)
    rows, cols = frame.to_pix(np.array([x0, x0, x1, x1]), np.array([y0, y1, y0, y1]))
    r0, r1 = max(int(rows.min()) - 2, box[0]), min(int(np.ceil(rows.max())) + 3, box[1])
    c0, c1 = max(int(cols.min()) - 2, box[2]), min(int(np.ceil(cols.max())) + 3, box[3])
    if r1 <= r0 or c1 <= c0:
        return (0, 0, 0, 0)
    x, y = frame.to_anat(np.arange(r0, r1, dtype=np.float32)[:, None], np.arange(c0, c1, dtype=np.float32)[None, :])
    occ = ndimage.gaussian_filter(occ_fn(x, y), blur * frame.ppu, truncate=2.0)       # [h, w]
    region = lung[r0:r1, c0:c1] & (chest.zone_index(f.side, y) == ZONES.index(f.zone))
    amp = contrast * f.strength * cfg.contrast_scale
    add = np.minimum(amp * occ, 1.0) * np.abs(air[r0:r1, c0:c1]) * region
    D[r0:r1, c0:c1] += add
    rr, cc = np.flatnonzero(add.any(axis=1)), np.flatnonzero(add.any(axis=0))
    if rr.size == 0:
        return (0, 0, 0, 0)
    return (r0 + int(rr[0]), r0 + int(rr[-1]) + 1, c0 + int(cc[0]), c0 + int(cc[-1]) + 1)
