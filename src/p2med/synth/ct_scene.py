"""The CT phantom's HU field: one axial plane at a time, and slabs of planes into a noise-free volume.

What it is: `Scene` holds the z-independent parts on one in-plane grid (table, fat and muscle of the body wall)
and composes a plane at z: thoracic cavity, diaphragm with the abdomen below (liver, spleen, stomach with its
gas bubble), heart and thymus, the tube classes (great vessels, airways, oesophagus), then the lungs with
their findings (`ct_lungs`), the spine, ribs, sternum and scapulae (`ct_bones`) and the clavicles.
`render_clean` averages sub-planes across each slab's thickness, so series of different thickness of one exam
agree, and collects each lesion's extent and, if asked, the lobe masks.

What it does not know: noise, clipping, the stored representation (`ct_phantom.render` does those), DICOM.

Example::

    hu, ext, masks = render_clean(anatomy, findings, zs, grid, grid, 5.0, False, True, cfg)
    # hu [Z, ny, nx] float32 HU; ext [n, 6] (z0, z1, r0, r1, c0, c1) per finding; masks[(side, zone)] bool [Z, ny, nx]
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from p2med.synth.ct_bones import rib_ring, ribs, spine
from p2med.synth.ct_geometry import TUBE_CLASSES, geometry_of
from p2med.synth.ct_lesions import make_lesions
from p2med.synth.ct_lungs import lungs
from p2med.synth.ct_primitives import Ellipsoid, clip01, soft_occ, span
from p2med.synth.ct_tubes import splat
from p2med.synth.findings import CT_LOBES, Finding

if TYPE_CHECKING:
    from p2med.synth.ct_geometry import Geometry
    from p2med.synth.ct_lesions import Lesion
    from p2med.synth.ct_phantom import CtAnatomy, CtPhantomConfig

# (non-contrast, contrast-enhanced) HU of each tissue; contrast = portal-venous-like chest phase
_HU = {"fat": (-95.0, -90.0), "muscle": (50.0, 62.0), "mediastinum": (-88.0, -80.0), "neck": (40.0, 60.0),
       "diaphragm": (45.0, 65.0), "abdomen": (-45.0, -30.0), "liver": (60.0, 110.0), "spleen": (48.0, 120.0),
       "stomach_wall": (40.0, 75.0), "stomach_fluid": (12.0, 12.0), "myocardium": (45.0, 110.0),
       "left_heart": (40.0, 235.0), "right_heart": (40.0, 185.0), "thymus": (45.0, 70.0),
       "sysart": (40.0, 230.0), "pulart": (40.0, 190.0), "vein": (40.0, 180.0), "airwall": (10.0, 20.0),
       "airlumen": (-1000.0, -1000.0), "soft": (35.0, 50.0), "bone": (480.0, 480.0), "csf": (15.0, 15.0),
       "cartilage": (110.0, 110.0), "disc": (85.0, 90.0)}


class Scene:
    """The HU field on one in-plane grid: z-independent parts once, then one axial plane at a time."""

    def __init__(self, g: Geometry, lesions: list[Lesion], xs: np.ndarray, ys: np.ndarray, contrast: bool):
        self.g, self.lesions, self.xs, self.ys = g, lesions, xs, ys
        self.t = {k: v[1] if contrast else v[0] for k, v in _HU.items()}
        self.px = px = float(min(xs[1] - xs[0], ys[1] - ys[0]))
        self.cs = span(xs, g.xb - g.A - 3 * px, g.xb + g.A + 3 * px)
        self.rs = span(ys, g.yb - g.B - 3 * px, g.y_back + 3 * px)
        self.X, self.Y = xs[self.cs], ys[self.rs]  # [w] crop columns, [h] crop rows (mm)
        self.base = self._base()  # [ny, nx]
        self._cyl: dict = {}  # cached sections of vertical cylinders

    def _base(self) -> np.ndarray:
        g, t, px = self.g, self.t, self.px
        x, y = self.xs[None, :], self.ys[:, None]
        img = np.full((len(self.ys), len(self.xs)), -1000.0, np.float32)
        # table: carbon skins around a foam core, a shallow cradle under the back
        top = g.y_back + g.an.table_gap_mm + 0.5 - (x - g.xb) ** 2 / 1600.0
        d = y - top
        width = clip01((230.0 - np.abs(x)) / px + 0.5)
        for lo, hi, hu in ((0.0, 12.0, 150.0), (1.8, 10.2, -900.0)):
            occ = clip01((d - lo) / px + 0.5) * clip01((hi - d) / px + 0.5) * width
            img += occ * (hu - img)
        for inset, hu in ((0.0, t["fat"]), (g.an.fat_mm, t["muscle"])):
            a, b = g.A - inset, g.B - inset
            q = ((x - g.xb) / a) ** 2 + ((y - g.yb) / b) ** 2
            occ = soft_occ(q, min(a, b), px) * clip01((g.y_back - inset - y) / px + 0.5)
            img += occ * (hu - img)
        return img.astype(np.float32)

    def plane(self, z: float, tubes: dict, want_lobes: bool, ring):
        """HU [h, w] of the crop at z, the lung box (rows, cols), lobe masks if wanted, lesion changes."""
        g, t, px, X, Y = self.g, self.t, self.px, self.X, self.Y
        f32 = np.float32
        hu = self.base[self.rs, self.cs].copy()
        tt = (z - g.zb) / g.H
        a, b = (float(v) for v in g.cavity_axes(z))
        cs, rs = span(X, g.xb - a - 2 * px, g.xb + a + 2 * px), span(Y, g.yc - b - 2 * px, g.yc + b + 2 * px)
        xc, yc = X[cs], Y[rs]
        xr, yr = xc[None, :], yc[:, None]
        q = (((yc - g.yc) / b) ** 2)[:, None] + (((xc - g.xb) / a) ** 2)[None, :]
        cav = soft_occ(q, min(a, b), px)
        v = hu[rs, cs]
        # diaphragm: above = thorax, below = abdomen, in between the muscle
        if z < g.dome_top:
            zd = g.dia_surface(xr, yr).astype(f32)
            above = clip01(z - zd + 0.5)
            below = clip01(zd - (g.t_dia + z) + 0.5)
            dia = t["diaphragm"]
            fill = dia + above * (t["mediastinum"] - dia) + below * (t["abdomen"] - dia)
        else:
            above, below = 1.0, None
            k = min(max((tt - 0.85) / 0.12, 0.0), 1.0)
            fill = t["mediastinum"] + k * (t["neck"] - t["mediastinum"])
        v += cav * (fill - v)
        if below is not None:
            self._abdomen(z, v, xc, yc, cav * below)
        self._heart(z, v, xc, yc, above, cav)
        for cls in ("sysart", "pulart", "vein", "soft", "airwall", "airlumen"):
            self._tube(hu, tubes[cls], t[cls])
        lobes, changes, lung_box = lungs(self, z, v, cs, rs, xc, yc, cav, above, want_lobes, tubes)
        spine(self, z, hu)
        ribs(self, z, hu, a, b, ring)
        self._tube(hu, tubes["bone"], t["bone"] * g.bone_k)
        return hu, lung_box, lobes, changes

    def _tube(self, hu, tb, value):
        buf, (r0, r1, c0, c1), (ro, co) = tb
        if r0 < r1 and c0 < c1:
            sub = hu[r0:r1, c0:c1]
            sub += buf[r0 - ro:r1 - ro, c0 - co:c1 - co] * (value - sub)

    def ell(self, e: Ellipsoid, z: float, xc, yc):
        """(row slice, col slice, occupancy, q) of ellipsoid e on the grid xc/yc, or None."""
        sec = e.section(z)
        if sec is None:
            return None
        if math.isfinite(e.az):
            return self._ell_section(e, sec, xc, yc)
        # a vertical cylinder has the same section at every z: computed once on the crop, then cut to xc/yc
        if id(e) not in self._cyl:
            self._cyl[id(e)] = self._ell_section(e, sec, self.X, self.Y)
        hit = self._cyl[id(e)]
        if hit is None:
            return None
        rs0, cs0, occ, q = hit
        oy, ox = int(np.searchsorted(self.Y, yc[0])), int(np.searchsorted(self.X, xc[0]))
        r0, r1 = max(rs0.start - oy, 0), min(rs0.stop - oy, len(yc))
        c0, c1 = max(cs0.start - ox, 0), min(cs0.stop - ox, len(xc))
        if r0 >= r1 or c0 >= c1:
            return None
        cut = (slice(r0 + oy - rs0.start, r1 + oy - rs0.start), slice(c0 + ox - cs0.start, c1 + ox - cs0.start))
        return slice(r0, r1), slice(c0, c1), occ[cut], q[cut]

    def _ell_section(self, e: Ellipsoid, sec, xc, yc):
        scale, qz = sec
        x0, x1, y0, y1 = e.bbox(scale)
        cs, rs = span(xc, x0, x1), span(yc, y0, y1)
        if cs.start >= cs.stop or rs.start >= rs.stop:
            return None
        q = e.q(xc[cs][None, :], yc[rs][:, None], qz)
        return rs, cs, soft_occ(q, min(e.ax, e.ay) / max(scale, 0.2), self.px), q

    def _abdomen(self, z, v, xc, yc, ab):
        g, t, px = self.g, self.t, self.px
        xlb = g.xb - 0.1 * g.a0 + 0.5 * g.a0 * clip01((g.yc + 0.2 * g.b0 - yc) / g.b0)
        liver = clip01((xlb.astype(np.float32)[:, None] - xc[None, :]) / px + 0.5) * ab
        v += liver * (t["liver"] - v)
        e = self.ell(g.spleen, z, xc, yc)
        if e:
            rs, cs, occ, _ = e
            sub = v[rs, cs]
            sub += occ * ab[rs, cs] * (t["spleen"] - sub)
        e = self.ell(g.stomach, z, xc, yc)
        if e:
            rs, cs, occ, q = e
            sub = v[rs, cs]
            inner = soft_occ(q * 1.25, min(g.stomach.ax, g.stomach.ay), px)
            gas = clip01((g.stomach.cy - 0.25 * g.stomach.ay - yc[rs]) / px + 0.5)[:, None]
            content = t["stomach_fluid"] + gas * (-1000.0 - t["stomach_fluid"])
            val = t["stomach_wall"] + inner * (content - t["stomach_wall"])
            sub += occ * ab[rs, cs] * (val - sub)

    def _heart(self, z, v, xc, yc, above, cav):
        """Heart (myocardium around right-heart blood, a thick-walled left ventricle, the left atrium) and
        thymus, all inside the thorax above the diaphragm."""
        g, t = self.g, self.t
        wall = {"heart": 0.08, "lv": 0.3, "la": 0.1}
        for name, inner in (("heart", "right_heart"), ("lv", "left_heart"), ("la", "left_heart")):
            e = getattr(g, name)
            r = self.ell(e, z, xc, yc)
            if not r:
                continue
            rs, cs, occ, q = r
            occ = occ * cav[rs, cs] if isinstance(above, float) else occ * cav[rs, cs] * above[rs, cs]
            w = wall[name] * min(e.ax, e.ay)
            blood = soft_occ(q / (1.0 - w / min(e.ax, e.ay)) ** 2, min(e.ax, e.ay) - w, self.px)
            val = t["myocardium"] + blood * (t[inner] - t["myocardium"])
            sub = v[rs, cs]
            sub += occ * (val - sub)
        if g.an.thymus > 0.05:
            r = self.ell(g.thymus, z, xc, yc)
            if r:
                rs, cs, occ, _ = r
                sub = v[rs, cs]
                sub += occ * cav[rs, cs] * (t["thymus"] - sub)


def render_clean(an: CtAnatomy, findings: list[Finding], zs: np.ndarray, xs: np.ndarray, ys: np.ndarray,
                 thickness: float, contrast: bool, with_masks: bool, cfg: CtPhantomConfig):
    """Noise-free HU [Z, ny, nx] at slab centres zs (any order), lesion extents [n, 6] and lobe masks."""
    g = geometry_of(an)
    scene = Scene(g, make_lesions(g, findings, cfg, contrast), xs, ys, contrast)
    n_sub = int(np.clip(round(thickness), 1, 5))
    offs = ((np.arange(n_sub) + 0.5) / n_sub - 0.5) * thickness
    nz = len(zs)
    out = np.empty((nz, len(ys), len(xs)), np.float32)
    out[:] = scene.base
    masks = {lobe: np.zeros(out.shape, bool) for lobe in CT_LOBES} if with_masks else None
    ext = np.array([[nz, -1, 10**9, -1, 10**9, -1]] * len(scene.lesions))
    rs0, cs0 = scene.rs, scene.cs
    xw, yh = scene.X, scene.Y
    per_chunk = max(1, 24 // n_sub)  # slices whose tube splats are computed together
    for k0 in range(0, nz, per_chunk):
        ks = range(k0, min(nz, k0 + per_chunk))
        zsub = (zs[k0:ks.stop, None] + offs[None, :]).ravel()
        tubes_all = {cls: splat(*g.spheres[cls], zsub, xw, yh, scene.px) for cls in TUBE_CLASSES}
        for k in ks:
            acc = np.zeros((len(yh), len(xw)), np.float32)
            ring = rib_ring(scene, float(zs[k] + offs[0]), float(zs[k] + offs[-1]))
            for j in range(n_sub):
                i = (k - k0) * n_sub + j
                tubes = {cls: (buf[i], box[i], off) for cls, (buf, box, off) in tubes_all.items()}
                hu, (lr, lc), lobes, changes = scene.plane(float(zsub[i]), tubes, with_masks, ring)
                acc += hu
                for li, r0, r1, c0, c1 in changes:
                    e = ext[li]
                    e[0], e[1] = min(e[0], k), max(e[1], k)
                    e[2], e[3], e[4], e[5] = min(e[2], r0), max(e[3], r1), min(e[4], c0), max(e[5], c1)
                if masks is not None and lobes:
                    rr = slice(rs0.start + lr.start, rs0.start + lr.stop)
                    cc = slice(cs0.start + lc.start, cs0.start + lc.stop)
                    for lobe, m in lobes.items():
                        masks[lobe][k, rr, cc] |= m
            out[k, rs0, cs0] = acc / n_sub
    return out, ext, masks
