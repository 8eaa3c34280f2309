"""The lungs in one CT plane: outline, parenchyma, fissures, vessels and airways, lobes, and the findings in them.

What it is: `lungs` cuts the lung occupancy out of the thoracic cavity (minus the mediastinal column and
envelope, above the diaphragm, inside the apical caps), fills it with parenchyma whose HU rises towards the
dependent back, draws the oblique and (right) horizontal fissures, blends in the intrapulmonary arteries and
bronchi, has `ct_lesions.plant` add the findings inside their lobes, and returns the lobe masks if asked.

What it does not know: the rest of the plane (`ct_scene`), the lesions' shapes, noise.

Example::

    lobes, changes, (rs, cs) = lungs(scene, z, v, cs, rs, xc, yc, cav, above, True, tubes)
    # v [h, w] HU of the cavity box, changed in place; lobes[(side, zone)] bool [h, w];
    # changes: (finding index, r0, r1, c0, c1) in image pixels
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from p2med.synth.ct_lesions import plant
from p2med.synth.ct_primitives import clip01, soft_occ
from p2med.synth.findings import CT_LOBES

if TYPE_CHECKING:
    from p2med.synth.ct_scene import Scene


def lungs(scene: Scene, z: float, v: np.ndarray, cs: slice, rs: slice, xc: np.ndarray, yc: np.ndarray,
          cav: np.ndarray, above, want_lobes: bool, tubes: dict):
    """Blend the lungs at z into v [h, w] (the cavity box rs, cs of the crop; xc [w], yc [h] its mm).

    cav: cavity occupancy [h, w]; above: 1.0 or the above-diaphragm occupancy [h, w]; tubes: per class the
    splat of this plane. Returns (lobe masks if want_lobes, lesion changes, (rs, cs)).
    """
    g, t, px = scene.g, scene.t, scene.px
    cw = g.column_halfwidth(z, yc).astype(np.float32)
    med = clip01((cw[:, None] - np.abs(xc - g.x_mid)[None, :]) / px + 0.5)
    for e in g.envelope:
        r = scene.ell(e, z, xc, yc)
        if r:
            np.maximum(med[r[0], r[1]], r[2], out=med[r[0], r[1]])
    lung = cav * (1.0 - med)
    if not isinstance(above, float):
        lung *= above
    right = xc < g.x_mid  # [w] patient right = image left
    nr = int(right.sum())
    sc = float(g.apex_scale(z))
    if sc < 1.0:
        for side, sl in (("right", slice(0, nr)), ("left", slice(nr, len(xc)))):
            ex, ey, eax, eay = g.apex_env(side)
            if sc <= 0.0:
                lung[:, sl] = 0.0
                continue
            qe = (((yc - ey) / (eay * sc)) ** 2)[:, None] + (((xc[sl] - ex) / (eax * sc)) ** 2)[None, :]
            lung[:, sl] *= soft_occ(qe, eax * sc, px)
    if sc <= 0.0 or z < g.zb - 1.0:
        return {}, [], (rs, cs)
    # parenchyma with a dependent gradient, fissure lines, vessels and airways
    pa = (g.an.lung_hu + 40.0 * np.clip((yc - g.yc) / g.b0, -1.0, 1.0)).astype(np.float32)
    hl = np.empty(cav.shape, np.float32)
    hl[:] = pa[:, None]
    sides = {"right": slice(0, nr), "left": slice(nr, len(xc))}
    fis = {}  # side -> (z - row term [h], column term [w of that side])
    for side, sl in sides.items():
        row, col = g.fissure_terms(side, yc, xc[sl])
        dr, col = (z - row).astype(np.float32), col.astype(np.float32)
        fis[side] = (dr, col)
        band = np.nonzero((dr > -3.0) & (dr < float(col.max(initial=0.0)) + 3.0))[0]
        if len(band):  # fissure line, only on the rows it crosses
            bs = slice(band[0], band[-1] + 1)
            d = dr[bs, None] - col[None, :]
            hl[bs, sl] += 70.0 * np.exp(-(d * d) * 2.0)
    dzh = (z - g.horizontal_z(yc)).astype(np.float32)
    band = np.nonzero(np.abs(dzh) < 3.0)[0]
    if len(band) and nr:
        bs = slice(band[0], band[-1] + 1)
        dr, col = fis["right"]
        hl[bs, :nr] += (70.0 * np.exp(-(dzh[bs] ** 2) * 2.0))[:, None] * ((dr[bs, None] - col[None, :]) > 0)
    for cls in ("pulart", "airwall", "airlumen"):
        buf, (r0, r1, c0, c1), (ro, co) = tubes[cls]
        r0, r1, c0, c1 = max(r0, rs.start), min(r1, rs.stop), max(c0, cs.start), min(c1, cs.stop)
        if r0 < r1 and c0 < c1:
            sub = hl[r0 - rs.start:r1 - rs.start, c0 - cs.start:c1 - cs.start]
            sub += buf[r0 - ro:r1 - ro, c0 - co:c1 - co] * (t[cls] - sub)

    def cond(side, zone, rsl, csl):
        """Lobe condition on a sub-box of the lung box (hard; shared by lesions and masks)."""
        sl = sides[side]
        c0, c1 = max(csl.start, sl.start), min(csl.stop, sl.stop)
        out = np.zeros((rsl.stop - rsl.start, csl.stop - csl.start), bool)
        if c0 >= c1:
            return out
        dr, col = fis[side]
        lower = (dr[rsl, None] - col[None, c0 - sl.start:c1 - sl.start]) < 0
        if zone == "lower":
            m = lower
        elif side == "left":
            m = ~lower
        else:
            mid = ~lower & (dzh[rsl, None] < 0)
            m = mid if zone == "middle" else ~lower & ~mid
        out[:, c0 - csl.start:c1 - csl.start] = m
        return out

    changes = plant(scene.lesions, g, z, hl, lung, cond, xc, yc, nr, px,
                    (scene.rs.start + rs.start, scene.cs.start + cs.start))
    v += lung * (hl - v)
    lobes = {}
    if want_lobes:
        full = slice(0, len(yc)), slice(0, len(xc))
        inside = lung > 0
        for side, zone in CT_LOBES:
            lobes[(side, zone)] = inside & cond(side, zone, *full)
    return lobes, changes, (rs, cs)
