"""The findings of the CT phantom: each lesion's HU, shape and place in its lobe, and its planting in a plane.

What it is: per pattern a target HU (contrast adds enhancement); `make_lesion` turns a `Finding` into a
`Lesion` whose shape depends only on the patient and on (pattern, side, zone, occurrence), not on the series:
a sum of rotated Gaussian blobs with a wavy outline (consolidation reaches the pleura, often with air
bronchograms; patchy is several patches; GGO a broad haze), or for an effusion a dependent layer at the base
of its hemithorax. `plant` applies every lesion that reaches a plane to the lung parenchyma, only inside the
lung and its lobe (an effusion: its side), and reports the pixels it changed.

What it does not know: how the lung is drawn (`ct_lungs` hands it the parenchyma and the lobe test), noise,
DICOM.

Example::

    lesions = make_lesions(geometry_of(anatomy), [Finding("ggo", "left", "upper", 0.25)], cfg, contrast=False)
    w = lesions[0].weight(g, X, Y, z)                    # [h, w] in 0..1 on a sub-grid, or None off the lesion
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from p2med.synth.ct_primitives import clip01, smoothstep, span
from p2med.synth.findings import CT_LOBES, Finding

if TYPE_CHECKING:
    from p2med.synth.ct_geometry import Geometry
    from p2med.synth.ct_phantom import CtPhantomConfig

# lesion target HU at strength 1 and the pattern's allowed range (contrast adds `enh`)
_LESION = {"patchy": dict(hu=-200.0, hi=0.0, enh=10.0), "consolidation": dict(hu=35.0, hi=50.0, enh=25.0),
           "ggo": dict(hu=-550.0, hi=-450.0, enh=0.0), "effusion": dict(hu=10.0, hi=20.0, enh=0.0)}


@dataclass
class Lesion:
    pattern: str
    side: str
    zone: str
    target: float  # HU the lesion core reaches
    box: tuple[float, float, float, float, float, float]  # x0, x1, y0, y1, z0, z1 (mm) outside which w = 0
    blobs: list = field(default_factory=list)  # (centre [3], M [3, 3], amplitude): amp * exp(-|M (p - c)|^2 / 2)
    waves: list = field(default_factory=list)  # (k [3], phase, amplitude): irregularity of the outline
    lo: float = 0.3  # field value where the lesion starts
    hi: float = 0.6  # field value where it is at full strength
    bronchi: list = field(default_factory=list)  # air-bronchogram segments (a [3], b [3])
    bronchus_mm: float = 1.0  # their radius
    dmax: float = 0.0  # effusion: thickness at the base (mm)
    height: float = 0.0  # effusion: height above z_base (mm)

    def weight(self, g: Geometry, X, Y, z: float):
        """Lesion weight in [0, 1] on a sub-grid (X [1, w], Y [h, 1]); exactly 0 where the lesion is absent."""
        if self.pattern == "effusion":
            a, b = (float(v) for v in g.cavity_axes(z))
            tau = max((z - g.zb) / self.height, 0.0)
            if tau >= 1.0:
                return None
            dx = X - g.xb
            yp = g.yc + b * np.sqrt(clip01(1.0 - (dx / a) ** 2))
            d = self.dmax * math.sqrt(1.0 - tau * tau) * (0.8 + 0.2 * clip01(np.abs(dx) / a))
            return smoothstep((Y - (yp - d)) / 1.5)
        f = None
        for c, m, amp in self.blobs:
            dx, dy, dz = X - float(c[0]), Y - float(c[1]), z - float(c[2])
            acc = None
            for i in range(3):
                u = float(m[i, 0]) * dx + (float(m[i, 1]) * dy + float(m[i, 2]) * dz)
                acc = u * u if acc is None else acc + u * u
            g_ = np.exp(-0.5 * acc)
            f = amp * g_ if f is None else f + amp * g_
        mod = 1.0
        for k, ph, amp in self.waves:
            mod = mod + amp * np.cos(float(k[0]) * X + (float(k[1]) * Y + (float(k[2]) * z + ph)))
        return smoothstep((f * mod - self.lo) / (self.hi - self.lo))

    def air(self, X, Y, z: float, px: float):
        """Air-bronchogram occupancy on the sub-grid (0 where none)."""
        occ = None
        for a, b in self.bronchi:
            d = b - a
            dd = float(d @ d)
            vx, vy, vz = X - float(a[0]), Y - float(a[1]), z - float(a[2])
            t = clip01((vx * float(d[0]) + (vy * float(d[1]) + vz * float(d[2]))) / dd)
            r2 = (vx - t * float(d[0])) ** 2 + (vy - t * float(d[1])) ** 2 + (vz - t * float(d[2])) ** 2
            o = clip01((self.bronchus_mm - np.sqrt(r2)) / px + 0.5)
            occ = o if occ is None else np.maximum(occ, o)
        return occ


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def make_lesion(g: Geometry, f: Finding, dup: int, cfg: CtPhantomConfig, contrast: bool) -> Lesion:
    """The lesion's shape depends on the patient and on (pattern, side, zone, occurrence), not on the series."""
    key = zlib.crc32(f"{f.pattern}|{f.side}|{f.zone}|{dup}".encode())
    rng = np.random.default_rng([g.an.seed, 2, key])
    spec = _LESION[f.pattern]
    p = g.an.lung_hu
    t_hu, hi = spec["hu"] + spec["enh"] * contrast, spec["hi"] + spec["enh"] * contrast
    gain = f.strength * cfg.contrast_scale
    if f.pattern == "effusion":
        gain = 1.0                       # fluid is fluid: strength does not thin it
    elif f.pattern == "consolidation":
        gain = min(1.0, 1.0 - 0.15 * (1.0 - gain))   # stays dense (about -100 HU at the faintest)
    target = min(p + (t_hu - p) * gain, hi)
    width = f.size * g.hemi_mm
    if f.pattern == "effusion":
        dmax = 1.1 * width
        height = min(0.55 * g.H, 3.0 * dmax + 0.1 * g.H)
        x0, x1 = (g.xb - g.a0 - 2, g.x_mid) if f.side == "right" else (g.x_mid, g.xb + g.a0 + 2)
        return Lesion(f.pattern, f.side, f.zone, target, (x0, x1, g.yc - dmax - 5, g.yc + g.b0 + 2,
                                                          g.zb - 5, g.zb + height), dmax=dmax, height=height)
    k = CT_LOBES.index((f.side, f.zone))
    pts, depth = g.lobe_candidates[k]
    if not len(pts):
        raise ValueError(f"lobe {f.side} {f.zone} is empty for this anatomy")
    # where it sits does not depend on its size, so a follow-up exam shows it grow or shrink in place;
    # consolidation reaches the pleura (a lobar/segmental wedge), the others sit anywhere in the lobe
    ref = 0.25 * g.hemi_mm
    want = (0.3, 0.6) if f.pattern == "consolidation" else (0.3, 10.0)
    good = np.nonzero((depth >= want[0] * ref) & (depth <= want[1] * ref))[0]
    if not len(good):
        good = np.argsort(np.abs(depth - want[0] * ref))[:5]
    if f.pattern == "consolidation":  # against the chest wall rather than the mediastinum
        lateral = np.abs(pts[good, 0] - g.xb)
        good = good[lateral >= np.median(lateral)]
    c = pts[int(rng.choice(good))]
    sig0 = width / 2.35
    n, scale, lo, hi_f = {"consolidation": ((2, 4), (0.6, 0.85), 0.35, 0.55),
                          "patchy": ((4, 8), (0.3, 0.5), 0.3, 0.8),
                          "ggo": ((1, 3), (0.8, 1.05), 0.2, 0.6)}[f.pattern]
    nb = int(rng.integers(*n))
    if f.pattern == "patchy":
        near = pts[np.linalg.norm(pts - c, axis=1) < 1.2 * ref]
        centres = [c] + [near[i] if len(near) > 1 else c + rng.normal(0, 0.4 * width, 3)
                         for i in rng.integers(0, max(len(near), 1), nb - 1)]
    else:
        centres = [c] + [c + rng.normal(0, 0.18 * width, 3) for _ in range(nb - 1)]
    blobs, reach = [], []
    for cc in centres:
        sig = sig0 * rng.uniform(*scale) * rng.uniform(0.8, 1.3, 3)
        sig[:2] = np.maximum(sig[:2], 3.5)  # even an infant's smallest lesion spans a few pixels and slices
        sig[2] = max(sig[2] * rng.uniform(0.9, 1.3), 4.5)
        rot = _random_rotation(rng) if f.pattern != "ggo" else np.eye(3)
        blobs.append((np.asarray(cc, float), np.diag(1.0 / sig) @ rot.T, float(rng.uniform(0.85, 1.1))))
        reach.append((cc, 3.2 * sig.max()))
    waves = []
    for _ in range(3):
        d = rng.normal(size=3)
        waves.append((d / np.linalg.norm(d) * 2 * np.pi / (width * rng.uniform(0.6, 1.2) + 4.0),
                      float(rng.uniform(0, 2 * np.pi)), 0.1 if f.pattern == "ggo" else 0.15))
    lo_ = np.min([cc - r for cc, r in reach], axis=0)
    hi_ = np.max([cc + r for cc, r in reach], axis=0)
    les = Lesion(f.pattern, f.side, f.zone, target, (lo_[0], hi_[0], lo_[1], hi_[1], lo_[2], hi_[2]), blobs,
                 waves, lo, hi_f)
    if f.pattern == "consolidation" and rng.random() < 0.7:
        u = c - g.hilum[f.side]
        u /= np.linalg.norm(u)
        start = c - 0.6 * width * u
        les.bronchi = [(start, c)]
        for _ in range(2):
            v = u + 0.7 * rng.normal(size=3)
            les.bronchi.append((c, c + 0.45 * width * v / np.linalg.norm(v)))
        les.bronchus_mm = float(np.clip(0.06 * width, 0.8, 2.0))
    return les


def make_lesions(g: Geometry, findings: list[Finding], cfg: CtPhantomConfig, contrast: bool) -> list[Lesion]:
    seen: dict[tuple[str, str, str], int] = {}
    out = []
    for f in findings:
        key = (f.pattern, f.side, f.zone)
        out.append(make_lesion(g, f, seen.get(key, 0), cfg, contrast))
        seen[key] = seen.get(key, 0) + 1
    return out


def plant(lesions: list[Lesion], g: Geometry, z: float, hl: np.ndarray, lung: np.ndarray, cond, xc: np.ndarray,
          yc: np.ndarray, nr: int, px: float, origin: tuple[int, int]) -> list[tuple[int, int, int, int, int]]:
    """Add every lesion reaching plane z to the lung parenchyma hl [h, w] (HU, in place).

    Only where the lung is (lung [h, w] > 0) and within the lesion's lobe (cond(side, zone, rows, cols) -> bool
    sub-box), an effusion within its side (columns [:nr] are the right lung). xc [w], yc [h]: the box's mm;
    origin: image (row, col) of hl[0, 0]. Returns (lesion index, r0, r1, c0, c1) in image pixels per lesion
    that changed something, half-open.
    """
    changes = []
    for i, les in enumerate(lesions):
        x0, x1, y0, y1, z0, z1 = les.box
        if not z0 <= z <= z1:
            continue
        lc, lr = span(xc, x0, x1), span(yc, y0, y1)
        if lc.start >= lc.stop or lr.start >= lr.stop:
            continue
        w = les.weight(g, xc[lc][None, :], yc[lr][:, None], z)
        if w is None:
            continue
        if les.pattern == "effusion":
            sl = slice(0, nr) if les.side == "right" else slice(nr, len(xc))
            m = np.zeros(w.shape, bool)
            m[:, max(sl.start, lc.start) - lc.start:max(min(sl.stop, lc.stop) - lc.start, 0)] = True
        else:
            m = cond(les.side, les.zone, lr, lc)
        w = w * m * (lung[lr, lc] > 0)
        sub = hl[lr, lc]
        if les.pattern == "ggo":
            delta = w * np.maximum(les.target - sub, 0.0)
        elif les.bronchi:
            air = les.air(xc[lc][None, :], yc[lr][:, None], z, px)
            delta = w * ((1.0 - air) * (les.target - sub) + air * (-1000.0 - sub))
        else:
            delta = w * (les.target - sub)
        delta = delta.astype(np.float32)
        changed = delta != 0
        if changed.any():
            rows, cols = np.nonzero(changed.any(axis=1))[0], np.nonzero(changed.any(axis=0))[0]
            o_r, o_c = origin[0] + lr.start, origin[1] + lc.start
            changes.append((i, o_r + rows[0], o_r + rows[-1] + 1, o_c + cols[0], o_c + cols[-1] + 1))
            sub += delta
    return changes
