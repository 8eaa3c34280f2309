"""One child's CT anatomy as shapes: organ primitives, tube paths, lung outline and lobes, vessel and airway trees.

What it is: `Geometry`, everything derived from a `CtAnatomy` once (and cached per anatomy by `geometry_of`):
the thoracic cavity narrowing to the apices, the two diaphragm domes, the mediastinum (heart with left
ventricle and atrium, thymus, aorta and its branches, venae cavae, pulmonary arteries, trachea, oesophagus,
clavicles) and the envelope the lungs stop at; oblique and horizontal fissures dividing the lobes; a random
point cloud labelled by lobe, from which territory-splitting arterial, venous and bronchial trees grow; tubes
as spheres sampled along their paths; and per lobe candidate lesion centres with their depth. Coordinates are
millimetres, LPS (+x = patient left, +y = posterior, +z = head).

What it does not know: HU values, pixels and slices (`ct_scene` renders these shapes), findings.

Example::

    g = geometry_of(anatomy)
    label = g.lung_points(x, y, z)                       # [n] index into CT_LOBES, -1 outside the lungs
    centres, radii = g.spheres["pulart"]                 # [N, 3], [N] sorted by z
    pts, depth = g.lobe_candidates[CT_LOBES.index(("right", "lower"))]   # [<=200, 3], [<=200] mm
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np

from p2med.synth.ct_primitives import Ellipsoid
from p2med.synth.findings import CT_LOBES, SIDES

if TYPE_CHECKING:
    from p2med.synth.ct_phantom import CtAnatomy

TUBE_CLASSES = ("sysart", "pulart", "vein", "soft", "airwall", "airlumen", "bone")


class Geometry:
    """Everything derived from a CtAnatomy: organ primitives, tube paths, lung trees, lobe geometry."""

    def __init__(self, an: CtAnatomy):
        self.an = an
        rng = np.random.default_rng([an.seed, 1])
        self.A, self.B, self.xb, self.yb = an.half_width_mm, an.half_depth_mm, an.centre_x_mm, an.centre_y_mm
        self.H, self.zb = an.lung_height_mm, an.z_base_mm
        self.y_back = self.yb + an.back_flat * self.B
        self.rvb = an.vertebra_radius_mm
        w_lat = an.fat_mm + an.muscle_mm + an.rib_mm
        w_ant = an.fat_mm + 0.55 * an.muscle_mm + an.rib_mm
        w_post = max(an.fat_mm + 2.0 * an.muscle_mm + an.rib_mm, an.fat_mm + 2.6 * self.rvb)
        self.a0 = self.A - w_lat
        cav_ant, cav_post = self.yb - self.B + w_ant, self.y_back - w_post
        self.b0, self.yc = (cav_post - cav_ant) / 2, (cav_post + cav_ant) / 2
        self.y_vb = self.yc + self.b0 - 0.85 * self.rvb
        self.hv = self.H * 1.12 / 11  # vertebra + disc height (T1..T12 span the lungs)
        self.z_t1 = an.z_apex_mm + 0.05 * self.H
        self.t_dia = 1.5 + 0.01 * self.H
        self.dome_top = self.zb + max(an.dome_right_mm, an.dome_left_mm) + 0.2 * self.H + 3.0
        self.bone_k = 0.75 + 0.25 * min(an.age_years / 10.0, 1.0)  # infants' bones are less mineralised
        self.hemi_mm = self.a0  # hemithorax width (lesion size unit)
        self.z_car = self.zb + 0.62 * self.H  # carina
        self.x_mid = self.xb - 0.02 * self.a0  # the lungs' dividing line (inside the mediastinum)
        self.paths: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {c: [] for c in TUBE_CLASSES}
        self._mediastinum()
        # abdomen below the domes
        a0, b0, yc, xb, H, zb = self.a0, self.b0, self.yc, self.xb, self.H, self.zb
        self.stomach = Ellipsoid(xb + 0.4 * a0, yc - 0.12 * b0, zb + 0.02 * H, 0.3 * a0, 0.38 * b0, 0.22 * H)
        self.spleen = Ellipsoid(xb + 0.62 * a0, yc + 0.5 * b0, zb - 0.03 * H, 0.24 * a0, 0.34 * b0, 0.2 * H,
                                math.radians(-30))
        # ribs: rib i leaves the spine at rib_z[i] and slopes down by rib_drop towards its anterior end
        self.rib_z = self.z_t1 - 0.35 * self.hv - np.arange(12) * self.hv
        self.rib_drop = 2.9 * self.hv
        self.rib_end = np.pi * np.array([0.78] * 7 + [0.74, 0.7, 0.66, 0.5, 0.42])  # bone ends (angle)
        self.rib_cart = np.pi * np.array([0.97] * 7 + [0.9, 0.86, 0.8, 0.5, 0.42])  # cartilage ends
        self.rib_h = max(0.2 * self.hv, 1.2)  # rib half-height
        self.lungs_tree(rng)

    def _mediastinum(self) -> None:
        """Heart, thymus, great vessels, airways and oesophagus, and the envelope the lungs stop at."""
        an, a0, b0, yc, xb, H, zb = self.an, self.a0, self.b0, self.yc, self.xb, self.H, self.zb
        ra, rt = an.aorta_radius_mm, an.trachea_radius_mm
        # heart: rotated ellipsoid, long axis anterior-left
        self.heart = Ellipsoid(xb + 0.1 * a0, yc - 0.28 * b0, zb + 0.28 * H, an.heart_ratio * a0,
                               0.78 * an.heart_ratio * a0, 0.28 * H, math.radians(an.heart_angle_deg))
        h = self.heart
        ca, sa = math.cos(h.angle), math.sin(h.angle)
        self.lv = Ellipsoid(h.cx + 0.3 * h.ay * sa, h.cy + 0.3 * h.ay * ca, h.cz - 0.05 * h.az, 0.68 * h.ax,
                            0.6 * h.ay, 0.75 * h.az, h.angle)  # left ventricle, posterior-left in the heart
        self.la = Ellipsoid(h.cx - 0.1 * h.ax, h.cy + 0.85 * h.ay, h.cz + 0.5 * h.az, 0.42 * h.ax, 0.32 * h.ay,
                            0.32 * h.az)  # left atrium, behind the heart's upper part
        self.thymus = Ellipsoid(xb + 0.02 * a0, yc - 0.55 * b0, zb + 0.72 * H, (0.14 + 0.22 * an.thymus) * a0,
                                (0.2 + 0.2 * an.thymus) * b0, 0.2 * H)
        # tube paths [(points [M, 3], radii [M])] per class
        top, bottom = an.z_end_mm + 40.0, an.z_start_mm - 40.0
        y_tr = self.y_vb - self.rvb - 1.1 * rt - 3.0 - rt  # trachea in front of the oesophagus
        p_tr = np.array([[xb - 0.1 * rt, y_tr, top], [xb - 0.1 * rt, y_tr, self.z_car]])
        self.carina = p_tr[-1]
        x_da, y_da = xb + self.rvb + 0.55 * ra, self.y_vb - 0.55 * self.rvb
        z_arch = self.z_car + 0.04 * H
        aa0 = np.array([xb + 0.02 * a0, yc - 0.1 * b0, self.heart.cz + 0.45 * self.heart.az])
        aa1 = np.array([xb - 0.07 * a0, yc - 0.32 * b0, z_arch])
        da0 = np.array([x_da, y_da, z_arch])
        phi = np.linspace(0, np.pi, 13)[:, None]
        arch = aa1 + (da0 - aa1) * (1 - np.cos(phi)) / 2 + np.sin(phi) * np.array([0.06 * a0, 0, 0.09 * H])
        desc = np.array([da0, [x_da, y_da, zb], [xb + 0.3 * self.rvb, self.y_vb - self.rvb - ra - 1, bottom]])
        aorta = np.vstack([aa0[None], arch, desc[1:]])
        self.arch_top = arch[6]
        branches = [np.array([arch[k], arch[k] * [1, 1, 0] + [dx, 0, top]])
                    for k, dx in ((3, -0.02 * a0), (6, 0.0), (9, 0.02 * a0))]
        sv = (xb - 0.2 * a0, yc - 0.22 * b0)
        svc = np.array([[sv[0], sv[1], top], [sv[0], sv[1] + 0.05 * b0, self.heart.cz + 0.35 * self.heart.az]])
        ivc = np.array([[xb - 0.2 * a0, yc + 0.1 * b0, bottom],
                        [xb - 0.2 * a0, yc + 0.1 * b0, self.heart.cz - 0.4 * self.heart.az]])
        # pulmonary arteries to the hila, where the lung trees start
        self.hilum = {"right": np.array([xb - 0.2 * a0, y_tr - 0.12 * b0, zb + 0.53 * H]),
                      "left": np.array([xb + 0.22 * a0, y_tr - 0.14 * b0, zb + 0.57 * H])}
        pa0 = np.array([xb + 0.16 * a0, yc - 0.36 * b0, self.heart.cz + 0.55 * self.heart.az])
        bif = np.array([xb + 0.06 * a0, yc - 0.08 * b0, self.z_car - 0.04 * H])
        lpa_mid = (bif + self.hilum["left"]) / 2 + [0, 0, 0.04 * H]
        es = np.array([[xb + 0.25 * self.rvb, self.y_vb - self.rvb - 0.6 * rt - 1, top],
                       [xb + 0.3 * self.rvb, self.y_vb - self.rvb - 0.6 * rt - 1, zb + 0.2 * H],
                       [xb + 0.3 * a0, yc - 0.05 * b0, zb + 0.02 * H]])
        add = lambda cls, pts, r: self.paths[cls].append(  # noqa: E731
            (np.asarray(pts, float), np.broadcast_to(np.asarray(r, float), (len(pts),)).copy()))
        add("sysart", aorta, ra)
        for br in branches:
            add("sysart", br, 0.33 * ra)
        add("vein", svc, 0.6 * ra)
        add("vein", ivc, 0.75 * ra)
        add("pulart", [pa0, bif], 0.95 * ra)
        add("pulart", [bif, self.hilum["right"]], 0.7 * ra)
        add("pulart", [bif, lpa_mid, self.hilum["left"]], 0.7 * ra)
        add("soft", es, 0.55 * rt)
        wall = lambda r: r + 0.12 * r + 0.4  # noqa: E731
        add("airlumen", p_tr, rt)
        add("airwall", p_tr, wall(rt))
        # clavicles: sternal notch to shoulders
        z_cl = an.z_apex_mm - 0.02 * H
        for s in (-1, 1):
            cl = [[xb + s * 0.12 * a0, yc - b0 - 0.5 * an.rib_mm, z_cl],
                  [xb + s * 0.6 * self.A, yc - 0.9 * b0, z_cl + 0.04 * H],
                  [xb + s * (self.A - an.fat_mm - 0.5 * an.muscle_mm), yc - 0.55 * b0, z_cl + 0.08 * H]]
            add("bone", cl, 0.03 * self.A)
        # mediastinal envelope the lungs stop at (fat margins around the organs)
        m = 2.0 + 0.01 * self.A
        self.envelope = [
            Ellipsoid(self.heart.cx, self.heart.cy, self.heart.cz, self.heart.ax + m, self.heart.ay + m,
                      self.heart.az + m, self.heart.angle),
            Ellipsoid(self.thymus.cx, self.thymus.cy, self.thymus.cz, self.thymus.ax + m, self.thymus.ay + m,
                      self.thymus.az),
            Ellipsoid(self.la.cx, self.la.cy, self.la.cz, self.la.ax + m, self.la.ay + m, self.la.az + m),
            Ellipsoid(float(self.arch_top[0]) - 0.02 * a0, float(self.arch_top[1]), z_arch + 0.03 * H,
                      0.2 * a0 + ra, 0.4 * b0 + ra, 0.1 * H + ra),
            Ellipsoid(x_da, y_da, 0.0, ra + m, ra + m, math.inf, z1=z_arch),
            Ellipsoid(sv[0], sv[1] + 0.03 * b0, 0.0, 0.6 * ra + m, 0.6 * ra + m + 0.03 * b0, math.inf,
                      z0=self.heart.cz),
            Ellipsoid(xb - 0.2 * a0, yc + 0.1 * b0, 0.0, 0.75 * ra + m, 0.75 * ra + m, math.inf,
                      z1=self.heart.cz - 0.3 * self.heart.az),
            Ellipsoid(xb, self.y_vb, 0.0, 1.15 * self.rvb + m, self.rvb + m, math.inf),
        ]

    # ---- shape functions shared by the renderer and the point sampler (x, y broadcast; z scalar or array)
    def cavity_axes(self, z):
        t = (z - self.zb) / self.H
        s = np.clip((t - 0.3) / 0.8, 0.0, 1.0) ** 1.3
        return self.a0 * (1.0 - 0.42 * s), self.b0 * (1.0 - 0.22 * s)

    def dia_surface(self, x, y):
        """Lower lung boundary z_d(x, y): two domes (right higher), lowest at the back (= z_base)."""
        an = self.an
        dx = x - self.xb
        ax = np.abs(dx) - 0.45 * self.a0
        ux = ax / np.where(ax > 0, 0.55 * self.a0, 1.0 * self.a0)
        uy = (y - (self.yc - 0.1 * self.b0)) / self.b0
        dome = an.dome_left_mm + (an.dome_right_mm - an.dome_left_mm) / (1.0 + np.exp(dx / (0.08 * self.a0)))
        lift = 0.18 * self.H * np.clip((self.yc - y) / self.b0, 0.0, 1.0) ** 2
        return self.zb + dome * np.sqrt(np.clip(1.0 - ux * ux - uy * uy, 0.0, 1.0)) + lift

    def apex_env(self, side: str):
        s = -1.0 if side == "right" else 1.0
        return (self.xb + s * 0.5 * self.a0, self.yc + 0.15 * self.b0, 0.62 * self.a0, 1.2 * self.b0)

    def apex_scale(self, z):
        t = (z - self.zb) / self.H
        return np.where(t > 0.6, np.sqrt(np.clip(1.0 - ((t - 0.6) / 0.4) ** 2, 0.0, 1.0)), 1.0)

    def column_halfwidth(self, z, y):
        """Half-width of the mediastinum between the lungs: narrow low down (the heart bulges on its own),
        widest just anterior of the middle above the hila (great vessels and trachea)."""
        t = (z - self.zb) / self.H
        yn = (y - self.yc) / self.b0
        return self.a0 * (0.055 + 0.12 * np.clip((t - 0.45) / 0.15, 0.0, 1.0) * np.exp(-((yn + 0.05) / 0.5) ** 2))

    def fissure_terms(self, side: str, y, x):
        """Oblique fissure height z_f(x, y) = row term(y) + column term(x): from high at the back to the
        front of the base; the lower lobe lies below it."""
        an = self.an
        rise = np.clip((y - self.yc) / self.b0 * 0.5 + 0.5, 0.0, 1.0) ** 0.85
        post = an.fissure_post_right if side == "right" else an.fissure_post_left
        return (self.zb + self.H * (an.fissure_ant + (post - an.fissure_ant) * rise),
                0.04 * self.H * np.abs(x - self.xb) / self.a0)

    def fissure_z(self, side: str, x, y):
        row, col = self.fissure_terms(side, y, x)
        return row + col

    def horizontal_z(self, y):
        return self.zb + self.H * (self.an.fissure_horizontal + 0.03 * (y - self.yc) / self.b0)

    def lung_points(self, x, y, z) -> np.ndarray:
        """Lobe label per point: index into CT_LOBES, or -1 outside the lungs (hard boundaries)."""
        a, b = self.cavity_axes(z)
        inside = ((x - self.xb) / a) ** 2 + ((y - self.yc) / b) ** 2 < 1.0
        for e in self.envelope:
            dz = (z - e.cz) / e.az if math.isfinite(e.az) else 0.0
            inside &= ~((e.q(x, y, 0.0) + dz * dz < 1.0) & (z >= e.z0) & (z <= e.z1))
        inside &= np.abs(x - self.x_mid) > self.column_halfwidth(z, y)
        inside &= z > self.dia_surface(x, y)
        right = x < self.x_mid
        sc = self.apex_scale(z)
        for side, m in (("right", right), ("left", ~right)):
            ex, ey, eax, eay = self.apex_env(side)
            inside &= ~m | (((x - ex) / (eax * sc + 1e-6)) ** 2 + ((y - ey) / (eay * sc + 1e-6)) ** 2 < 1.0)
        label = np.full(np.shape(inside), -1)
        for k, (side, zone) in enumerate(CT_LOBES):
            m = inside & (right if side == "right" else ~right) & self.lobe_cond(side, zone, x, y, z)
            label[m] = k
        return label

    def lobe_cond(self, side: str, zone: str, x, y, z):
        lower = z < self.fissure_z(side, x, y)
        if zone == "lower":
            return lower
        if side == "left":
            return ~lower
        middle = ~lower & (z < self.horizontal_z(y))
        return middle if zone == "middle" else ~lower & ~middle

    # ---- lung point cloud and vascular / bronchial trees
    def lungs_tree(self, rng: np.random.Generator) -> None:
        n = 60000
        p = np.column_stack([rng.uniform(self.xb - self.a0, self.xb + self.a0, n),
                             rng.uniform(self.yc - self.b0, self.yc + self.b0, n),
                             rng.uniform(self.zb, self.an.z_apex_mm, n)])
        lab = self.lung_points(p[:, 0], p[:, 1], p[:, 2])
        self.cloud, self.cloud_label = p, lab
        ra, rt = self.an.aorta_radius_mm, self.an.trachea_radius_mm
        r_min = 0.35 + 0.002 * self.A
        veins = {"right": np.array([self.xb - 0.15 * self.a0, self.yc + 0.05 * self.b0, self.zb + 0.4 * self.H]),
                 "left": np.array([self.xb + 0.2 * self.a0, self.yc + 0.05 * self.b0, self.zb + 0.43 * self.H])}
        for side in SIDES:
            ids = [k for k, (s, _) in enumerate(CT_LOBES) if s == side]
            keep = np.isin(lab, ids)
            pts_all, lab_all = p[keep], lab[keep]
            root = self.hilum[side]
            # arteries from the hilum and veins to the left atrium, each filling the lobes' territories
            trees = []
            for origin, sl, r0 in ((root, slice(0, 4000), 0.7 * ra), (veins[side], slice(4000, 8000), 0.6 * ra)):
                pts, plab = pts_all[sl], lab_all[sl]
                segs: list[tuple[np.ndarray, np.ndarray, float, int]] = []
                for k in ids:
                    if (plab == k).sum() >= 4:
                        self._grow(origin, pts[plab == k], max(len(pts), 1), r0, r_min, 0, segs, rng)
                leaf = np.array([gen < 0 for *_, gen in segs])
                if leaf.any():  # leaves overshoot their territory's centroid while that stays in the lung
                    st, en = np.array([sg[0] for sg in segs]), np.array([sg[1] for sg in segs])
                    tip = en + 0.5 * (en - st)
                    ok = leaf & (self.lung_points(tip[:, 0], tip[:, 1], tip[:, 2]) >= 0)
                    segs = [(a, tip[i] if ok[i] else b, r, abs(gen) - 1 if gen < 0 else gen)
                            for i, (a, b, r, gen) in enumerate(segs)]
                trees.append(segs)
                for a, b, r, _ in segs:
                    self.paths["pulart"].append((np.stack([a, b]), np.array([r, r])))
            # main bronchus from the carina to the hilum; lobar bronchi run beside the arteries
            br = np.array([self.carina, root + np.array([0.0, 0.6, -0.3]) * (0.62 * ra + 0.75 * rt)])
            self.paths["airlumen"].append((br, np.array([0.72 * rt, 0.6 * rt])))
            self.paths["airwall"].append((br, np.array([0.72 * rt, 0.6 * rt]) * 1.12 + 0.4))
            offs = rng.normal(size=3)
            for a, b, r, gen in trees[0]:
                rb = 0.8 * r
                if gen <= 5 and rb >= 0.55 + 0.002 * self.A:
                    u = np.cross(b - a, offs)
                    u /= np.linalg.norm(u) + 1e-9
                    seg = np.stack([a, b]) + u * (r + rb + 0.3)
                    self.paths["airlumen"].append((seg, np.array([rb, rb])))
                    self.paths["airwall"].append((seg, np.array([1.2 * rb + 0.3] * 2)))

    def _grow(self, start, pts, n_total, r_root, r_min, gen, segs, rng) -> None:
        """Territory-splitting tree: a branch heads for its territory's centroid, then the territory is
        halved across its longest axis; radius follows Murray's law (r^3 ~ territory)."""
        r = r_root * (len(pts) / n_total) ** (1 / 3)
        c = pts.mean(axis=0)
        if len(pts) <= 10 or r < r_min or gen > 14:
            segs.append((start, c, max(r, r_min), -1 - gen))  # a leaf; extended towards the pleura later
            return
        end = start + (c - start) * float(rng.uniform(0.4, 0.6))
        segs.append((start, end, r, gen))
        d = pts - c
        axis = np.linalg.eigh(d.T @ d)[1][:, -1]
        proj = d @ axis
        cut = float(np.median(proj))
        for half in (proj <= cut, proj > cut):
            if half.sum():
                self._grow(end, pts[half], n_total, r_root, r_min, gen + 1, segs, rng)

    @functools.cached_property
    def spheres(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each tube class as spheres sampled along its paths: centres [N, 3] and radii [N], sorted by z."""
        out = {}
        for cls, paths in self.paths.items():
            a = np.vstack([p[:-1] for p, _ in paths])  # [S, 3] segment starts
            b = np.vstack([p[1:] for p, _ in paths])
            ra = np.concatenate([r[:-1] for _, r in paths])
            rb = np.concatenate([r[1:] for _, r in paths])
            step = np.maximum(0.5 * np.minimum(ra, rb), 0.8)  # spheres overlap enough to read as a tube
            k = np.maximum(np.ceil(np.linalg.norm(b - a, axis=1) / step).astype(np.int64), 1)
            seg = np.repeat(np.arange(len(k)), k + 1)
            f = ((np.arange(len(seg)) - np.repeat(np.cumsum(k + 1) - (k + 1), k + 1)) / k[seg])[:, None]
            c = a[seg] + (b - a)[seg] * f
            r = ra[seg] + (rb - ra)[seg] * f[:, 0]
            o = np.argsort(c[:, 2], kind="stable")
            out[cls] = (c[o], r[o])
        return out

    @functools.cached_property
    def lobe_candidates(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per lobe: up to 200 interior points and their distance (mm) to the nearest point outside the lobe."""
        rng = np.random.default_rng([self.an.seed, 3])
        other_all = self.cloud
        out = {}
        for k in range(len(CT_LOBES)):
            pts = self.cloud[self.cloud_label == k]
            other = other_all[self.cloud_label != k]
            other = other[rng.choice(len(other), min(len(other), 6000), replace=False)]
            pts = pts[rng.choice(len(pts), min(len(pts), 200), replace=False)] if len(pts) else pts
            d2 = (pts * pts).sum(1)[:, None] + (other * other).sum(1)[None, :] - 2.0 * pts @ other.T
            out[k] = (pts, np.sqrt(np.maximum(d2.min(axis=1), 0.0)) if len(pts) else np.zeros(0))
        return out


@functools.lru_cache(maxsize=8)
def geometry_of(an: CtAnatomy) -> Geometry:
    return Geometry(an)
