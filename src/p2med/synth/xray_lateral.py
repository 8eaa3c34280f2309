"""The lateral chest radiograph of the X-ray phantom: outlines and density of one exam's anatomy.

What it is: `Lateral`, the lateral geometry of one exam: x is the AP axis (anterior = image left), the two lungs
overlap into one shared field bounded by the two diaphragm domes and the deep posterior sulcus; heart, hilum,
trachea, stomach and bowel gas, vertebral bodies with posterior elements, oblique posterior ribs and the
sternum with its ossification centres. Both sides map to the one shared lung field: a finding of either side
is confined to that field within its zone, and an effusion fills the posterior sulcus.

What it does not know: which lung a point belongs to (the view cannot tell them apart), findings, the detector.

Example::

    chest = Lateral(anatomy, pose)
    frame = chest.frame(H, W, pose)
    X, Y = frame.grid(LOW)
    D, air = chest.density(X, Y, frame, textures(anatomy.key))   # [h, w] density, lung air (>= 0)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from p2med.synth.xray_chest import AIR, MARKINGS, TISSUE, Chest
from p2med.synth.xray_frame import LOW, Frame, Pose, add_blob, window
from p2med.synth.xray_primitives import bump, ramp, sample_grid, segment_dist, smooth_profile, tube, vessels

if TYPE_CHECKING:
    from p2med.synth.xray_phantom import XrayAnatomy


class Lateral(Chest):
    """Lateral geometry: x is the AP axis (anterior = image left), the two lungs overlap into one field."""

    def __init__(self, a: XrayAnatomy, pose: Pose):
        self.a = a
        lh = a.lung_height * pose.insp
        self.lh = lh
        self.dep = a.depth_ratio                     # AP half-depth of the thorax, units
        base = lh + 0.5 * a.dome_gap
        self.apex = {"right": 0.0, "left": 0.0}
        self.base = {"right": base, "left": base}     # zones of the shared field: apex to the mean dome peak
        self.domes = {"right": lh, "left": lh + a.dome_gap}
        self.cp_depth = 0.25 + 0.5 * a.cp_depth       # the posterior sulcus is deeper than the lateral angle
        self.peak = -0.35 * self.dep
        dep = self.dep
        self.heart = (-0.5 * dep, lh - 0.25 * a.ctr, (0.5 + 0.5 * a.ctr) * dep, 0.75 * a.ctr * lh * a.heart_aspect)
        self.hila = (np.array([0.05 * dep], np.float32), np.array([0.45 * lh], np.float32))

    def frame(self, H: int, W: int, pose: Pose) -> Frame:
        top, bottom, half_w = -0.62, self.lh + 0.85, 1.5
        ppu = min(H / (bottom - top), W / (2 * half_w)) * pose.zoom
        return Frame(H, W, ppu, 0.1 - pose.dx, (top + bottom) / 2 - pose.dy, pose.theta)

    def dome_at(self, side: str, x) -> np.ndarray:
        dx = x - self.peak
        k_ant = 0.12 / (self.dep + self.peak) ** 2
        k_post = self.cp_depth / (self.dep * 0.95 - self.peak) ** 2
        return self.domes[side] + np.where(dx > 0, k_post, k_ant) * dx * dx

    def x_range(self, zone: str) -> tuple[float, float]:
        return (-0.15 * self.dep, 9.0) if zone == "lower" else (-9.0, 9.0)    # lower lobes lie posteriorly

    def lateral_sign(self, side: str) -> float:
        return 1.0  # an effusion fills the posterior sulcus

    def inside(self, side: str, x, y) -> np.ndarray:
        dep, lh = self.dep, self.lh
        cx, ax = 0.02 * dep, 0.96 * dep
        shape = np.abs((x - cx) / ax) ** 3 + np.abs((y - 0.75 * lh) / (0.75 * lh)) ** 2.2 < 1.0
        return shape & (y < self.dome_at("left", x))

    def body(self, X, Y) -> np.ndarray:
        a, lh, dep = self.a, self.lh, self.dep
        belly = 0.05 + 0.1 * math.exp(-a.age_years / 3.0)
        w = a.wall
        ys, fr, bk, dp = smooth_profile([        # (y, front x, back x, relative path): neck, chest, belly
            (-3.0, -0.28, 0.5, 0.5), (-0.5, -0.3, 0.55, 0.55), (-0.1, -0.75 * dep - w, dep + w, 0.95),
            (0.45 * lh, -dep - w, dep + w + 0.03, 1.0), (lh + 0.3, -dep - w - 0.03, dep + w, 1.0),
            (lh + 1.0, -dep - w - belly, dep + w - 0.05, 1.0), (4.0, -dep - w - belly, dep + w - 0.05, 1.0)])
        front, back = np.interp(Y, ys, fr).astype(np.float32), np.interp(Y, ys, bk).astype(np.float32)
        mid, half = (front + back) / 2, (back - front) / 2
        P = np.interp(Y, ys, dp).astype(np.float32) * np.cbrt(np.clip(1.0 - np.abs((X - mid) / half) ** 3, 0.0, None))
        # shoulders and raised arms overlap the upper chest
        return P + 0.4 * bump((Y + 0.1) / 0.6) * bump((X - 0.05) / (0.9 * dep)) * (P > 0)

    def density(self, X, Y, frame: Frame, tex: dict) -> tuple[np.ndarray, np.ndarray]:
        """Anatomy density and lung air (non-negative, shared field) on the 1/LOW grid, both [h, w]."""
        a, lh, dep = self.a, self.lh, self.dep
        ppu_low = frame.ppu / LOW
        P = self.body(X, Y)
        D = TISSUE * P
        lung = self.inside("left", X, Y)
        depth = np.sqrt(np.clip(ndimage.distance_transform_edt(lung) / (0.2 * ppu_low), 0.0, 1.0)).astype(np.float32)
        both = 0.55 + 0.45 * ramp((self.dome_at("right", X) - Y) / 0.03)     # under the right dome: left lung only
        hx, hy, ah, bh = self.heart
        ct, st = math.cos(-0.3), math.sin(-0.3)
        dx, dy = X - hx, Y - hy
        rho = np.sqrt(np.square((dx * ct + dy * st) / ah) + np.square((dy * ct - dx * st) / bh))
        heart = 1.0 - 0.5 * ramp((1.0 - rho) / 0.5)                          # the lungs flank the heart
        air = (TISSUE * AIR) * P * depth * both * heart
        D -= air
        idx = np.flatnonzero(lung)
        xl, yl = X.ravel()[idx], Y.ravel()[idx]
        side_idx = (xl > self.hila[0][0]).astype(np.int64)
        hila = (np.repeat(self.hila[0], 2), np.repeat(self.hila[1], 2))
        marks = 0.7 * vessels(xl, yl, side_idx, hila, tex, 0.1) + 0.06 * sample_grid(tex["mottle"], xl, yl)
        D.ravel()[idx] += MARKINGS * marks * depth.ravel()[idx]
        add_blob(D, X, Y, frame, self.hila[0][0], self.hila[1][0], 0.2, 0.16, 0.07, 1.5)
        # trachea
        carina = 0.33 * lh
        rs, cs = window(frame, LOW, D.shape, -0.6, 0.5, -1.5, carina)
        xs, ys = X[rs, cs], Y[rs, cs]
        dist = segment_dist(xs, ys, -0.25 * dep, -1.5, 0.0, carina)
        D[rs, cs] -= 0.06 * np.sqrt(np.clip(1.0 - np.square(dist / 0.065), 0.0, None)) * ramp((carina - ys) / 0.1)
        gas = tex["gas"]
        add_blob(D, X, Y, frame, -0.1 * dep + 0.2 * gas[0, 0], self.domes["left"] + 0.15, 0.15, 0.07, -0.12)
        n_gas = int(round(2 + 10 * math.exp(-a.age_years / 2.0)))
        for g in gas[1:1 + n_gas]:
            add_blob(D, X, Y, frame, -0.8 * dep + 1.3 * dep * g[0], lh + 0.45 + 0.7 * g[1],
                     0.05 + 0.06 * g[2], 0.04 + 0.05 * g[3], -0.1)
        D += a.contrast ** 2 * self.bones(X, Y, frame, 0.4 + 0.6 * depth)
        D *= a.contrast
        return D, air

    def bones(self, X, Y, frame: Frame, conspicuity: np.ndarray) -> np.ndarray:
        a, lh, dep = self.a, self.lh, self.dep
        B = np.zeros_like(X)
        # vertebral bodies (disc spaces between them) and the posterior elements, following the thoracic curve
        rs, cs = window(frame, LOW, B.shape, 0.2 * dep, dep + 0.3, -3.0, 4.0)
        xs, ys = X[rs, cs], Y[rs, cs]
        shift = 0.06 * np.sin(np.pi * np.clip((ys + 0.3) / (lh + 0.8), 0.0, 1.0))    # kyphosis
        x0, x1 = 0.45 * dep + shift, 0.8 * dep + shift
        size = 0.7 + 0.3 * ramp((ys + 0.3) / 0.5)                                   # smaller cervical bodies
        phase = (ys - 0.02) / a.rib_spacing
        seg = np.clip(2.2 * np.cos(2 * np.pi * phase) + 1.4, 0.0, 1.0)
        body = ramp((xs - x0) / 0.04) * ramp((x0 + (x1 - x0) * size - xs) / 0.04)
        post = np.exp(-np.square((xs - x1 - 0.17) / 0.07))
        B[rs, cs] += 0.12 * body * (0.55 + 0.45 * seg) + 0.05 * post * (0.6 + 0.4 * seg)
        # posterior ribs, oblique
        rs, cs = window(frame, LOW, B.shape, -0.2, dep + 0.1, -0.2, lh + 0.4)
        xs, ys = X[rs, cs], Y[rs, cs]
        v = (ys - 0.35 * (xs - dep)) / a.rib_spacing
        d = (v - np.floor(v + 0.5)) * a.rib_spacing
        B[rs, cs] += 0.035 * tube(d, 0.2 * a.rib_spacing) * ramp((xs + 0.1) / 0.3) * conspicuity[rs, cs]
        # sternum with its ossification centres
        rs, cs = window(frame, LOW, B.shape, -dep - 0.2, -dep + 0.2, 0.0, lh)
        xs, ys = X[rs, cs], Y[rs, cs]
        seg = np.clip(2.0 * np.cos(2 * np.pi * ys / (0.2 * lh)) + 0.5, 0.0, 1.0)
        B[rs, cs] += 0.07 * tube(xs + dep + 0.5 * a.wall - 0.02, 0.04) * seg * ramp((ys - 0.05 * lh) / 0.05) * \
            ramp((0.85 * lh - ys) / 0.05)
        return B
