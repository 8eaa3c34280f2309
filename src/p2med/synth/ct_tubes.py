"""Tubes of the CT phantom (vessels, airways, oesophagus, clavicles) cut by axial planes: sphere splatting.

What it is: `splat` takes a tube class as a union of spheres (centres [N, 3], radii [N], from
`Geometry.spheres`) and a stack of planes, and returns each plane's soft occupancy (discs max-combined, with a
one-pixel partial-volume edge; sub-pixel discs weighted by their area) in one buffer with per-plane boxes, so
the renderer blends a class into a plane in one step.

What it does not know: which class it is drawing or its HU, the anatomy, the lungs.

Example::

    buf, boxes, (r_off, c_off) = splat(*g.spheres["pulart"], zsub, xs, ys, px)   # buf [P, h, w] float32
    r0, r1, c0, c1 = boxes[0]                            # plane 0 touches crop rows r0:r1, cols c0:c1
    occ = buf[0, r0 - r_off:r1 - r_off, c0 - c_off:c1 - c_off]
"""

from __future__ import annotations

import numpy as np

from p2med.synth.ct_primitives import clip01


def splat(c: np.ndarray, r: np.ndarray, zs: np.ndarray, xs: np.ndarray, ys: np.ndarray, px: float):
    """Soft occupancy of a union of spheres cut by the planes zs (each sphere cuts a plane in a disc; discs
    are max-combined): a buffer [P, h, w] whose pixel [i, j] is crop pixel (i + r_off, j + c_off), the
    per-plane boxes [P, 4] (r0, r1, c0, c1 in crop pixels; empty when r0 >= r1) and (r_off, c_off)."""
    p_n, ny, nx = len(zs), len(ys), len(xs)
    boxes = np.tile(np.array([ny, 0, nx, 0]), (p_n, 1))
    order = np.argsort(zs, kind="stable")
    zsorted = zs[order]
    lo = np.searchsorted(zsorted, c[:, 2] - r, "left")
    cnt = np.searchsorted(zsorted, c[:, 2] + r, "right") - lo
    sel = np.nonzero(cnt)[0]
    if not len(sel):
        return np.zeros((p_n, 1, 1), np.float32), boxes, (0, 0)
    cnt = cnt[sel]
    s = np.repeat(sel, cnt)
    plane = order[np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt) + lo[s]]
    rho2 = r[s] ** 2 - (zs[plane] - c[s, 2]) ** 2
    dx, dy = float(xs[1] - xs[0]), float(ys[1] - ys[0])
    fx, fy = (c[s, 0] - float(xs[0])) / dx, (c[s, 1] - float(ys[0])) / dy
    rho = np.sqrt(np.maximum(rho2, 0.0))
    hx = np.ceil((rho + 0.5 * px) / dx).astype(np.int64)
    hy = np.ceil((rho + 0.5 * px) / dy).astype(np.int64)
    ix0, iy0 = np.rint(fx).astype(np.int64), np.rint(fy).astype(np.int64)
    keep = (rho2 > 0) & (ix0 + hx >= 0) & (ix0 - hx < nx) & (iy0 + hy >= 0) & (iy0 - hy < ny)
    if not keep.any():
        return np.zeros((p_n, 1, 1), np.float32), boxes, (0, 0)
    plane, rho, fx, fy, hx, hy, ix0, iy0 = (v[keep] for v in (plane, rho, fx, fy, hx, hy, ix0, iy0))
    np.minimum.at(boxes[:, 0], plane, np.clip(iy0 - hy, 0, ny))
    np.maximum.at(boxes[:, 1], plane, np.clip(iy0 + hy + 1, 0, ny))
    np.minimum.at(boxes[:, 2], plane, np.clip(ix0 - hx, 0, nx))
    np.maximum.at(boxes[:, 3], plane, np.clip(ix0 + hx + 1, 0, nx))
    r_off, c_off = int((iy0 - hy).min()), int((ix0 - hx).min())
    wy, wx = int((iy0 + hy).max()) + 1 - r_off, int((ix0 + hx).max()) + 1 - c_off
    buf = np.zeros(p_n * wy * wx, np.float32)
    area = np.minimum(1.0, (rho / (0.5642 * px)) ** 2).astype(np.float32)  # sub-pixel discs: coverage ~ area
    rho = rho.astype(np.float32)
    ddx0, ddy0 = ((ix0 - fx) * dx).astype(np.float32), ((iy0 - fy) * dy).astype(np.float32)
    base = (plane * wy + iy0 - r_off) * wx + ix0 - c_off
    key = hy * 1000 + hx
    for kval in np.unique(key):
        grp = np.nonzero(key == kval)[0]
        gy, gx = int(kval) // 1000, int(kval) % 1000
        oy = np.arange(-gy, gy + 1)
        ox = np.arange(-gx, gx + 1)
        offs = (oy[:, None] * wx + ox[None, :]).ravel()  # [wy * wx] flat window offsets
        oyf, oxf = (oy * dy).astype(np.float32), (ox * dx).astype(np.float32)
        per = max(1, 400000 // len(offs))
        for i0 in range(0, len(grp), per):
            gi = grp[i0:i0 + per]
            ey = (ddy0[gi, None] + oyf[None, :]) ** 2  # [n, wy]
            ex = (ddx0[gi, None] + oxf[None, :]) ** 2  # [n, wx]
            d = np.sqrt(ey[:, :, None] + ex[:, None, :]).reshape(len(gi), -1)
            occ = clip01((rho[gi, None] - d) * (1.0 / px) + 0.5) * area[gi, None]
            np.maximum.at(buf, (base[gi, None] + offs[None, :]).ravel(), occ.ravel())
    return buf.reshape(p_n, wy, wx), boxes, (r_off, c_off)
