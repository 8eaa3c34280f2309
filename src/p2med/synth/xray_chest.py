"""What the two X-ray views share: the tissue densities, lung zones, lung extents along a row, lesion placement.

What it is: the density model's tissue constants and `Chest`, the base of `Frontal` and `Lateral`. A view sets
``apex`` / ``base`` (lung apex and dome-peak heights per side) and provides ``inside(side, x, y)``; `Chest`
derives the upper/middle/lower zones (thirds from apex to base; the lower one reaches below the dome peak into
the costophrenic angle), the longest lung run along an anatomy row, and where a lesion of a given width fits.

What it does not know: the outlines themselves (`inside` comes from the view), pixels, the findings' shapes.

Example::

    chest = Frontal(anatomy, pose_of(anatomy, 0))
    chest.zone_range("right", "middle")                 # (y_lo, y_hi) in units
    cx, cy, h = chest.place("right", "lower", 0.2, rng)  # a lesion 0.2 units wide fitted into the right base
"""

from __future__ import annotations

import numpy as np

from p2med.synth.findings import ZONES

# Density model (additive "display-like" units before the log mapping; 0 = air)
TISSUE = 0.86        # soft tissue at the thickest part of the chest
AIR = 0.70           # fraction of that the aerated lung removes at full lung depth
MARKINGS = 0.16      # vessel markings near the hila (fade to the periphery)


class Chest:
    """Shared machinery of the two views: zones, lung extents along a row, lesion placement."""

    apex: dict
    base: dict

    def zone_range(self, side: str, zone: str) -> tuple[float, float]:
        a, b = self.apex[side], self.base[side]
        k = ZONES.index(zone)
        lo = a + k * (b - a) / 3.0
        return lo, (a + (k + 1) * (b - a) / 3.0 if k < 2 else b + 0.5)

    def zone_index(self, side: str, y: np.ndarray) -> np.ndarray:
        a, b = self.apex[side], self.base[side]
        return np.clip(np.floor((y - a) * (3.0 / (b - a))), 0, 2).astype(np.int8)

    def extent(self, side: str, y: float) -> tuple[float, float] | None:
        """Longest run of lung along the anatomy row y: (x_lo, x_hi) in units, or None."""
        xs = np.linspace(-1.4, 1.4, 561, dtype=np.float32)
        m = self.inside(side, xs, np.full_like(xs, y))
        if not m.any():
            return None
        edges = np.flatnonzero(np.diff(np.concatenate([[0], m.astype(np.int8), [0]])))
        starts, ends = edges[0::2], edges[1::2]
        j = int(np.argmax(ends - starts))
        return float(xs[starts[j]]), float(xs[ends[j] - 1])

    def place(self, side: str, zone: str, w: float, rng: np.random.Generator) -> tuple[float, float, float]:
        """Centre (x, y) and height of a lesion of width w in that zone, fitted into the lung where possible."""
        lo, hi = self.zone_range(side, zone)
        if zone == "lower":
            hi = self.base[side]
        h = min(w * rng.uniform(0.75, 1.2), 0.9 * (hi - lo))
        bias = 0.6 if zone == "upper" else 0.5  # the apex is narrow: keep upper lesions low in their zone
        x_min, x_max = self.x_range(zone)
        best = None
        for _ in range(8):                      # a height where the lung is wide enough for the lesion
            cy = rng.uniform(lo + h * bias, max(hi - h / 2, lo + h * bias))
            runs = [r for r in (self.extent(side, y) for y in (cy - 0.3 * h, cy, cy + 0.3 * h)) if r is not None]
            if not runs:
                continue
            x_lo, x_hi = max(max(r[0] for r in runs), x_min), min(min(r[1] for r in runs), x_max)
            if best is None or x_hi - x_lo > best[2] - best[1]:
                best = (cy, x_lo, x_hi)
            if x_hi - x_lo >= w:
                break
        if best is None:
            return 0.0, (lo + hi) / 2, h
        cy, x_lo, x_hi = best
        cx = rng.uniform(x_lo + w / 2, x_hi - w / 2) if x_hi - x_lo > w else (x_lo + x_hi) / 2
        return cx, cy, h

    def x_range(self, zone: str) -> tuple[float, float]:
        """Where along x a lesion of that zone may sit (the lateral view puts lower-zone ones posteriorly)."""
        return -9.0, 9.0
