"""The frontal (AP/PA) chest radiograph of the X-ray phantom: outlines and density of one exam's anatomy.

What it is: `Frontal`, the frontal geometry of one exam (the child's `XrayAnatomy` after this exam's `Pose`):
lung envelopes with apices and diaphragm domes (the right one higher), mediastinum with aortic knob and infant
thymus, cardiac silhouette, hila; and its density on the coarse grid: soft tissue with shoulders and arms,
aerated lungs with markings, trachea and bronchi, stomach and bowel gas, spine, posterior and anterior ribs,
clavicles, humeri and scapulae. The image shows the patient's RIGHT on the IMAGE LEFT (x < 0 is the right).

What it does not know: findings (added afterwards by `xray_lesions.plant`), the detector (noise, windowing),
the lateral view (`xray_lateral`).

Example::

    chest = Frontal(anatomy, pose)
    frame = chest.frame(H, W, pose)
    X, Y = frame.grid(LOW)
    D, air = chest.density(X, Y, frame, textures(anatomy.key))   # [h, w] density, signed air (-right, +left)
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

_SIGN = {"right": -1.0, "left": 1.0}  # image x direction of each side on the frontal view (right = image left)
# bone densities of the frontal view (same units as xray_chest.TISSUE)
_SPINE = 0.11
_RIB = 0.085
_CLAVICLE = 0.15


class Frontal(Chest):
    """Frontal (AP/PA) geometry of one exam: the anatomy after this exam's positioning."""

    def __init__(self, a: XrayAnatomy, pose: Pose):
        self.a = a
        lh = a.lung_height * pose.insp
        self.lh = lh
        self.t = min(a.age_years / 16.0, 1.0)
        self.apex = {"right": 0.0, "left": a.apex_dy}
        self.base = {"right": lh, "left": lh + a.dome_gap}      # dome peaks: the right one is higher
        self.cp_depth = a.cp_depth
        du = 0.97 - a.dome_u                                     # dome = circular arc through the cp angle
        self.dome_r = (du * du + a.cp_depth ** 2) / (2 * a.cp_depth)
        # cardiac silhouette as a right and a left border per row: the right atrium bulges low on the right, the
        # left border runs down from the aortic knob and bulges out over the left ventricle to the apex
        w = 2.0 * a.ctr
        bottom = lh + 0.08
        self.heart_r = (w / 3.0, bottom - 0.22 * lh, 0.3 * lh, 0.26 * lh)          # half-width, row, up, down
        self.heart_l = (2.0 * w / 3.0, bottom - (0.16 + 0.1 * a.heart_tilt) * lh, (0.5 + 0.1 * a.heart_aspect) * lh,
                        0.2 * lh)
        self.hila = (np.array([a.hilum_right[0], a.hilum_left[0]], np.float32),
                     np.array([a.hilum_right[1], a.hilum_left[1] + a.apex_dy], np.float32) * pose.insp)
        chest = 1.0 + a.wall
        self.arm_r = 0.23 + 0.06 * self.t
        if a.arms_up:      # upper arms raised beside the head: capsule from the shoulder joint upwards
            self.arm = (chest - 0.05, -0.05, chest - 0.12, -3.0)
            self.shoulder = max(chest + 0.05, a.shoulder - 0.22)
        else:              # arms hanging along the chest
            x = chest + 0.02 + self.arm_r
            self.arm = (x - 0.06, 0.0, x + 0.04, 4.0)
            self.shoulder = max(x + 0.9 * self.arm_r, a.shoulder)

    def frame(self, H: int, W: int, pose: Pose) -> Frame:
        top, bottom, half_w = -0.62, self.lh + 0.85, 1.5
        ppu = min(H / (bottom - top), W / (2 * half_w)) * pose.zoom
        return Frame(H, W, ppu, -pose.dx, (top + bottom) / 2 - pose.dy, pose.theta)

    def dome_at(self, side: str, x) -> np.ndarray:
        du = np.minimum(np.abs(_SIGN[side] * x - self.a.dome_u), 0.999 * self.dome_r)
        return self.base[side] + self.dome_r - np.sqrt(self.dome_r ** 2 - du * du)

    def lateral_sign(self, side: str) -> float:
        return _SIGN[side]

    def mediastinum(self, side: str, y) -> np.ndarray:
        a, lh = self.a, self.lh
        thymus = a.thymus_right if side == "right" else a.thymus_left
        m = (a.med_right if side == "right" else a.med_left) + thymus * bump((y - 0.3 * lh) / (0.22 * lh))
        if side == "left":
            m = m + a.aortic_knob * bump((y - 0.27 * lh) / (0.09 * lh))
        return m

    def heart_border(self, side: str, y) -> np.ndarray:
        """Distance of the cardiac border from the midline on that side at row y (0 where there is no heart)."""
        half, yc, up, down = self.heart_r if side == "right" else self.heart_l
        t = (y - yc) / np.where(y < yc, up, down)
        return half * np.sqrt(np.clip(1.0 - t * t, 0.0, None))

    def in_heart(self, x, y) -> np.ndarray:
        return (x > -self.heart_border("right", y)) & (x < self.heart_border("left", y))

    def envelope(self, side: str, x, y) -> np.ndarray:
        """The lung outline before the mediastinum and heart are cut out."""
        u = _SIGN[side] * x
        ap, au = self.apex[side], self.a.apex_u
        yw = ap + 0.6 * (self.base[side] - ap)
        ax = np.where(u > au, 1.0 - au, au - 0.05)
        top = np.square((u - au) / ax) + np.square((y - yw) / (yw - ap)) < 1.0
        taper = np.square(np.clip((y - yw) / (self.base[side] + self.cp_depth - yw), 0.0, None))
        upper = np.where(y < yw, top, (u < 1.0 - 0.05 * taper) & (u > 0.03))
        return upper & (y < self.dome_at(side, x))

    def inside(self, side: str, x, y) -> np.ndarray:
        u = _SIGN[side] * x
        return self.envelope(side, x, y) & (u > self.mediastinum(side, y)) & ~self.in_heart(x, y)

    def body(self, X, Y) -> np.ndarray:
        """Soft-tissue path, 1 = the thickest part of the chest [h, w]."""
        a, lh = self.a, self.lh
        chest = 1.0 + a.wall
        ys, bs, ds = smooth_profile([            # (y, half-width, relative AP depth): neck, shoulders, chest, belly
            (-3.0, a.neck, 0.5), (-0.55, a.neck, 0.52), (-0.3, 0.4 * a.neck + 0.6 * chest + 0.1, 0.8),
            (-0.05, self.shoulder, 0.9), (0.25, chest + 0.03, 1.0), (lh + 0.2, chest, 1.0),
            (lh + 0.8, chest + 0.06, 1.05), (4.0, chest + 0.06, 1.05)])
        b = np.interp(Y, ys, bs).astype(np.float32)
        P = np.interp(Y, ys, ds).astype(np.float32) * np.cbrt(np.clip(1.0 - np.abs(X / b) ** 3, 0.0, None))
        U = np.abs(X)
        x0, y0, x1, y1 = self.arm
        rs = self.arm_r
        arm = np.sqrt(np.clip(1.0 - np.square(segment_dist(U, Y, x0, y0, x1, y1) / rs), 0.0, None))
        deltoid = np.sqrt(np.clip(1.0 - np.square((U - x0) / (1.3 * rs)) - np.square((Y - y0) / (1.2 * rs)), 0.0, None))
        thick = 1.5 * rs / (a.depth_ratio + a.wall)
        return np.maximum(P, thick * np.maximum(arm, deltoid))

    def density(self, X, Y, frame: Frame, tex: dict) -> tuple[np.ndarray, np.ndarray]:
        """Anatomy density and signed lung air (-right, +left) on the 1/LOW grid, both [h, w]."""
        a, lh = self.a, self.lh
        ppu_low = frame.ppu / LOW
        P = self.body(X, Y)
        D = TISSUE * P
        env_r, env_l = self.envelope("right", X, Y), self.envelope("left", X, Y)
        heart = self.in_heart(X, Y)
        lung_r = env_r & (-X > self.mediastinum("right", Y)) & ~heart
        lung_l = env_l & (X > self.mediastinum("left", Y)) & ~heart
        lung = lung_r | lung_l
        depth = np.sqrt(np.clip(ndimage.distance_transform_edt(lung) / (0.16 * ppu_low), 0.0, 1.0)).astype(np.float32)
        air = (TISSUE * AIR) * P * depth
        retro = (0.08 * TISSUE * AIR) * P * (heart & (env_r | env_l))  # lung behind the heart
        D -= air + retro
        # markings: vessels from the hila, fine parenchymal mottle, hilar shadows
        idx = np.flatnonzero(lung)
        xl, yl = X.ravel()[idx], Y.ravel()[idx]
        side_idx = lung_l.ravel()[idx].astype(np.int64)
        marks = vessels(xl, yl, side_idx, self.hila, tex, 0.0) + 0.06 * sample_grid(tex["mottle"], xl, yl)
        D.ravel()[idx] += MARKINGS * marks * depth.ravel()[idx]
        for i in (0, 1):
            add_blob(D, X, Y, frame, self.hila[0][i], self.hila[1][i], 0.1, 0.15, 0.06, 1.5)
        # trachea and main bronchi (air)
        tw = 0.05 + 0.025 * self.t
        carina = 0.33 * lh
        rs, cs = window(frame, LOW, D.shape, -0.5, 0.5, -1.5, carina + 0.3)
        xs, ys = X[rs, cs], Y[rs, cs]
        dist = np.where(ys < carina, np.abs(xs + 0.01), 9.0)
        for i in (0, 1):
            hx, hy = self.hila[0][i] * 0.75, self.hila[1][i] * 0.85
            dist = np.minimum(dist, segment_dist(xs, ys, -0.01, carina, hx, hy) / 0.7)
        D[rs, cs] -= 0.07 * np.sqrt(np.clip(1.0 - np.square(dist / tw), 0.0, None))
        # stomach bubble and bowel gas
        gas = tex["gas"]
        add_blob(D, X, Y, frame, 0.42 + 0.15 * gas[0, 0], self.base["left"] + 0.2 + 0.05 * gas[0, 1],
                 0.13 + 0.07 * gas[0, 2], 0.07 + 0.04 * gas[0, 3], -0.14)
        n_gas = int(round(2 + 10 * math.exp(-a.age_years / 2.0)))
        for g in gas[1:1 + n_gas]:
            add_blob(D, X, Y, frame, -0.8 + 1.6 * g[0], self.base["right"] + 0.4 + 0.7 * g[1],
                     0.05 + 0.06 * g[2], 0.04 + 0.05 * g[3], -0.1)
        D += a.contrast ** 2 * self.bones(X, Y, frame, 0.3 + 0.7 * depth)
        D *= a.contrast
        return D, np.where(lung_l, air, -air).astype(np.float32)

    def bones(self, X, Y, frame: Frame, conspicuity: np.ndarray) -> np.ndarray:
        """Bone density [h, w]; ribs are weighted by ``conspicuity`` (they stand out against aerated lung)."""
        a, lh = self.a, self.lh
        B = np.zeros_like(X)
        U = np.abs(X)
        # spine with vertebral bodies, disc spaces and pedicles
        sh = a.spine_half
        rs, cs = window(frame, LOW, B.shape, -sh, sh, -3.0, 4.0)
        xs, ys = X[rs, cs], Y[rs, cs]
        phase = (ys - 0.02) / a.rib_spacing
        seg = np.clip(1.5 * np.cos(2 * np.pi * phase) + 0.8, 0.0, 1.0)
        ped = np.clip(1.0 - np.hypot((np.abs(xs) - 0.66 * sh) / 0.04, (phase % 1.0 - 0.5) / 0.3), 0.0, 1.0)
        B[rs, cs] += _SPINE * (tube(xs, sh) * (0.8 + 0.2 * seg) + 0.3 * ped)
        # posterior ribs: from the spine up and out, curving down at the chest wall; faint anterior ribs
        sp, rise = a.rib_spacing, a.rib_rise
        rs, cs = window(frame, LOW, B.shape, -1.15, 1.15, -0.3, self.base["left"] + self.cp_depth + 0.2)
        u, y = U[rs, cs], Y[rs, cs]
        bend = np.clip(u - 0.72, 0.0, None)
        g = -rise * u * (1.5 - u) + 2.2 * bend * bend
        slope = -rise * (1.5 - 2 * u) + 4.4 * bend
        v = (y - g + 0.03) / sp
        k = np.floor(v + 0.5)
        d = (v - k) * sp / np.sqrt(1.0 + slope * slope)
        reach = ramp((u - 0.08) / 0.1) * ramp((1.09 - u) / 0.05)
        post = tube(d, 0.2 * sp) * ((k >= 0) & (k < 11)) * reach
        g1 = -rise * 1.05 * 0.45 + 2.2 * 0.33 ** 2
        va = (y - g1 - 0.5 * (1.05 - u) + 0.03 - 0.5 * sp) / sp
        ka = np.floor(va + 0.5)
        da = (va - ka) * sp / math.sqrt(1.0 + 0.5 ** 2)
        ant = tube(da, 0.2 * sp) * ((ka >= 0) & (ka < 7)) * ramp((u - 0.4) / 0.25) * ramp((1.08 - u) / 0.05)
        B[rs, cs] += _RIB * (post + 0.3 * ant) * conspicuity[rs, cs]
        # clavicles
        rs, cs = window(frame, LOW, B.shape, -1.3, 1.3, -0.35, a.clavicle_y + 0.2)
        u, y = U[rs, cs], Y[rs, cs]
        t = (u - 0.1) / 1.05
        yc = a.clavicle_y + (-0.02 - 0.06 * self.t - a.clavicle_y) * t + 0.03 * np.sin(2 * np.pi * t)
        half = 0.04 + 0.012 * (1 - t)
        B[rs, cs] += _CLAVICLE * tube(y - yc, half) * ramp(t / 0.04) * ramp((1.0 - t) / 0.05)
        # humerus along the arm, its head at the shoulder joint
        x0, y0, x1, y1 = self.arm
        rs, cs = window(frame, LOW, B.shape, -1.8, 1.8, min(y0, y1) - 0.2, max(y0, y1))
        u, y = U[rs, cs], Y[rs, cs]
        shaft = tube(segment_dist(u, y, x0 + 0.02, y0 + 0.1 * np.sign(y1 - y0), x1, y1), 0.28 * self.arm_r)
        head = tube(np.hypot(u - x0, y - y0), 0.55 * self.arm_r)
        B[rs, cs] += 0.14 * np.maximum(shaft, head)
        # scapulae: faint, over the upper lateral lung
        rs, cs = window(frame, LOW, B.shape, -1.2, 1.2, -0.15, 0.65 * lh)
        u, y = U[rs, cs], Y[rs, cs]
        edge = 0.74 + 0.12 * (y / (0.6 * lh))
        inside = (y < 0.6 * lh) & (y > -0.1)
        B[rs, cs] += (0.025 * ramp((u - edge) / 0.03) + 0.025 * tube(u - edge, 0.02)) * inside
        return B
