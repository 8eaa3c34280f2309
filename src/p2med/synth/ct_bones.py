"""The bones of one CT plane: vertebrae with discs and posterior elements, ribs and costal cartilage, sternum, scapulae.

What it is: `spine` draws the vertebral body (cortex brighter than the marrow, discs between), the canal with
CSF, and the laminae, transverse and spinous processes; `rib_ring` selects once per slab the chest-wall band
that may hold bone; `ribs` draws the twelve ribs sloping down from the spine to their cartilages, the ossified
sternal segments and, high up, the scapulae. Mineral density follows the child's age (`Geometry.bone_k`).

What it does not know: the clavicles (tubes, `ct_tubes`), soft tissue, lungs, noise.

Example::

    ring = rib_ring(scene, z - 2.5, z + 2.5)              # per slab
    spine(scene, z, hu)                                  # hu [h, w] crop HU, changed in place
    ribs(scene, z, hu, a, b, ring)                       # a, b: cavity half-axes at z (mm)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from p2med.synth.ct_primitives import clip01, soft_occ, span

if TYPE_CHECKING:
    from p2med.synth.ct_scene import Scene


def spine(scene: Scene, z: float, hu: np.ndarray) -> None:
    """Vertebral body or disc, canal and posterior elements at z into the crop hu [h, w] (in place)."""
    g, t, px = scene.g, scene.t, scene.px
    r = g.rvb
    cs, rs = span(scene.X, g.xb - 2.3 * r, g.xb + 2.3 * r), span(scene.Y, g.y_vb - 1.3 * r, g.y_vb + 3.6 * r)
    x, y = scene.X[cs], scene.Y[rs]
    sub = hu[rs, cs]
    phase = ((g.z_t1 - z) / g.hv) % 1.0
    gap = min(phase, 1.0 - phase) * g.hv  # mm to the nearest disc centre
    bone = min(max((gap - 0.13 * g.hv) / 1.0 + 0.5, 0.0), 1.0)
    qb = (((y - g.y_vb) / r) ** 2)[:, None] + (((x - g.xb) / (1.15 * r)) ** 2)[None, :]
    occ = soft_occ(qb, r, px)
    cortex = clip01((qb - 0.8) * 8.0)
    body = t["disc"] + bone * (g.bone_k * (240.0 + cortex * 560.0) - t["disc"])
    sub += occ * (body - sub)
    rc = 0.55 * r
    yc_ = g.y_vb + 1.05 * r + rc
    qc = (((y - yc_) / rc) ** 2)[:, None] + (((x - g.xb) / rc) ** 2)[None, :]
    lam = min(max(min(phase - 0.1, 0.8 - phase) * g.hv / 1.0 + 0.5, 0.0), 1.0)  # posterior elements
    if lam > 0:
        ring = soft_occ(qc / (1.0 + 0.55 * r / rc) ** 2, rc + 0.55 * r, px)
        ax = np.abs(x - g.xb)
        tp = clip01((0.22 * r - np.abs(y - (yc_ - 0.2 * r))) / px + 0.5)[:, None] * \
            clip01((2.1 * r - ax) / px + 0.5)[None, :]
        sp = clip01((0.17 * r - ax) / px + 0.5)[None, :] * \
            clip01((yc_ + rc + 1.3 * r - y) / px + 0.5)[:, None] * (y > yc_)[:, None]
        post = np.maximum(np.maximum(ring, tp), sp) * lam
        sub += post * (g.bone_k * 500.0 - sub)
    sub += soft_occ(qc, rc, px) * (t["csf"] - sub)


def _ring_band(scene: Scene, z, a, b):
    """(q_in, q_out, delta, scap) of the chest-wall band holding ribs, costal cartilage and (high up) the
    scapulae: its inner and outer normalised radius, the rib thickness in those units, whether scapulae show."""
    g = scene.g
    tt = (z - g.zb) / g.H
    delta = g.an.rib_mm / (0.5 * (a + b))
    scap = 0.42 < tt < 1.02
    return 1.0 - 2 * scene.px / b, 1.0 + delta + (0.09 if scap else 0.0) + 2 * scene.px / a, delta, scap


def rib_ring(scene: Scene, z0: float, z1: float):
    """Crop pixels that may hold ribs anywhere in the slab [z0, z1]: (rows, cols, x, y) relative to the
    cavity centre; evaluated once per slab, refined per plane."""
    g = scene.g
    (a0, b0), (a1, b1) = (tuple(float(v) for v in g.cavity_axes(z)) for z in (z0, z1))
    q_in = min(_ring_band(scene, z, a, b)[0] for z, a, b in ((z0, a0, b0), (z1, a1, b1)))
    q_out = max(_ring_band(scene, z, a, b)[1] for z, a, b in ((z0, a0, b0), (z1, a1, b1), (0.5 * (z0 + z1), a0, b0)))
    ai, bi, ao, bo = min(a0, a1) * q_in, min(b0, b1) * q_in, max(a0, a1) * q_out, max(b0, b1) * q_out
    cs, rs = span(scene.X, g.xb - ao, g.xb + ao), span(scene.Y, g.yc - bo, g.yc + bo)
    x, y = (scene.X[cs] - g.xb).astype(np.float32), (scene.Y[rs] - g.yc).astype(np.float32)
    x2, y2 = x * x, y * y
    ri, ci = np.nonzero(((y2 / (bo * bo))[:, None] + (x2 / (ao * ao))[None, :] < 1.0)
                        & ((y2 / (bi * bi))[:, None] + (x2 / (ai * ai))[None, :] > 1.0))
    return ri + rs.start, ci + cs.start, x[ci], y[ri]


def ribs(scene: Scene, z: float, hu: np.ndarray, a: float, b: float, ring) -> None:
    """Ribs, costal cartilage, sternum and scapulae at z into the crop hu [h, w] (in place); ring from rib_ring."""
    g, t, px = scene.g, scene.t, scene.px
    tt = (z - g.zb) / g.H
    delta, scap = _ring_band(scene, z, a, b)[2:]
    rows, cols, x, y = ring  # everything below is 0 away from the bones, so no per-plane selection
    if not len(rows):
        return
    qn = np.sqrt((y / b) ** 2 + (x / a) ** 2)
    th = np.arctan2(np.abs(x) / a, y / b)  # 0 = posterior midline, pi = anterior
    # ribs: rib i's centre line at angle th sits at z_i(th) = rib_top - i * hv - drop * slope(th); the
    # nearest rib to the plane follows from one rounding
    slope = np.maximum(th - 0.08 * np.pi, 0.0) * (1.0 / (0.7 * np.pi))
    u = (g.rib_z[0] - z - g.rib_drop * slope) * (1.0 / g.hv)  # [n] rib coordinate
    i = np.rint(u).astype(np.int64)
    ok = (i >= 0) & (i < 12) & (th > 0.05 * np.pi)
    i = np.clip(i, 0, 11)
    ok &= th < g.rib_cart[i]
    zeta = (u - i) * (g.hv / g.rib_h)
    rho = (qn - (1.0 + delta / 2)) * (2.0 / delta)
    rn = np.sqrt(rho * rho + zeta * zeta)
    occ = (clip01((1.0 - rn) * (0.5 * g.an.rib_mm / px) + 0.5) * ok).astype(np.float32)
    bone = g.bone_k * (220.0 + 520.0 * clip01((rn - 0.55) * 5.0))
    val = np.where(th > g.rib_end[i], t["cartilage"], bone).astype(np.float32)
    if scap:
        q0 = 1.0 + delta + 0.06
        band = clip01((0.03 - np.abs(qn - q0 - 0.015)) * a / px + 0.5)
        band *= clip01((0.1 * np.pi - np.abs(th - 0.3 * np.pi)) * a / px + 0.5)
        band *= min(max((tt - 0.42) * g.H / 2.0, 0.0), 1.0) * min(max((1.02 - tt) * g.H / 2.0, 0.0), 1.0)
        pick = band > occ
        val = np.where(pick, g.bone_k * 520.0, val).astype(np.float32)
        occ = np.maximum(occ, band).astype(np.float32)
    # sternum: ossified segments in cartilage, in the anterior chest wall
    if 0.2 < tt < 0.9:
        ys_ = -b - 0.55 * g.an.rib_mm
        hw = (0.16 if tt > 0.78 else 0.1) * g.a0
        qs = ((y - ys_) / (0.55 * g.an.rib_mm)) ** 2 + (x / hw) ** 2
        so = soft_occ(qs, 0.55 * g.an.rib_mm, px)
        ph = ((z - g.zb - 0.2 * g.H) / (0.12 * g.H)) % 1.0
        ossified = min(max(min(ph, 0.75 - ph) * 0.12 * g.H / 1.0 + 0.5, 0.0), 1.0)
        sval = t["cartilage"] + ossified * (g.bone_k * 380.0 - t["cartilage"])
        pick = so > occ
        val = np.where(pick, sval, val).astype(np.float32)
        occ = np.maximum(occ, so).astype(np.float32)
    cur = hu[rows, cols]
    hu[rows, cols] = cur + occ * (val - cur)
