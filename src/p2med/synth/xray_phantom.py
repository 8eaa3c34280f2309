"""A synthetic pediatric chest radiograph with planted findings: the test bed of the imaging pipeline.

What it is: a fast procedural renderer (numpy + scipy.ndimage) of a frontal (AP/PA) or lateral chest X-ray of
a child aged 0-18 y: body outline with shoulders and arms, two lung fields with vessels fanning out from the
hila, heart (cardiothoracic ratio ~0.5-0.6, larger in infants), mediastinum with the thymus in infants,
trachea, spine, posterior and faint anterior ribs, clavicles, diaphragm domes (the right one higher),
costophrenic angles, stomach and bowel gas. Findings (`p2med.synth.findings.Finding`) are added in the density
domain, confined to the lung field of their side within their zone; the density -> intensity mapping and the
quantum noise are pointwise, so an image with and without a finding differ only inside that region.

What it does not know: real projection physics (densities are additive "display-like" units, scatter is a
smooth fog computed from the anatomy alone), pathology beyond the four patterns, lines, tubes, text.

Conventions: the frontal image is displayed as radiologists read it, the patient's RIGHT on the IMAGE LEFT; the
lateral has anterior on the image left. Intensities are float32 in 0..1 with 1 = white (bone, dense).
Geometry is in "units" of the inner thoracic half-width (the lateral-most lung edge is at 1 unit from the
midline); lung apex at y = 0, y grows downwards, the right dome peak at y = ``lung_height``.

Example::

    rng = np.random.default_rng(0)
    cfg = XrayPhantomConfig()
    child = sample_anatomy(rng, age_years=4.0, cfg=cfg)
    f = sample_finding(rng, "consolidation", "right", "lower", cfg)
    out = render(child, [f], "frontal", cfg, seed=11)         # out.image: float32 [H, W]
    follow_up = render(child, [], "frontal", cfg, seed=12, jitter=1)   # same child, repositioned
    stored = to_stored(out.image, bits=12, monochrome1=False)  # uint16 [H, W]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from p2med.synth.findings import SIDES, ZONES, Finding

VIEWS = ("frontal", "lateral")
_SIGN = {"right": -1.0, "left": 1.0}  # image x direction of each side on the frontal view (right = image left)

# Density model (additive "display-like" units before the log mapping; 0 = air)
_TISSUE = 0.86        # soft tissue at the thickest part of the chest
_AIR = 0.70           # fraction of that the aerated lung removes at full lung depth
_SPINE = 0.11
_RIB = 0.085
_CLAVICLE = 0.15
_MARKINGS = 0.16      # vessel markings near the hila (fade to the periphery)
_KAPPA = 2.6          # transmission = exp(-_KAPPA * density)
_WINDOW = (0.10, 1.02)  # log-signal window mapped to display 0..1 (air below 0.10 is black)
_GAMMA = 1.15
_NOISE_REF_DENSITY = 0.30  # cfg.noise is the display noise std at this density (aerated lung) and mean exposure

# Pattern -> (fraction of the lung air replaced at full occupancy = the contrast, edge blur as a fraction of the
# lesion width). GGO is the subtlest, consolidation and effusion the densest.
_PATTERN = {"ggo": (0.32, 0.1), "patchy": (0.62, 0.1), "consolidation": (0.72, 0.1), "effusion": (0.92, 0.04)}
# Pattern -> lesion texture: (grain of its random field as a fraction of the width, field weight, threshold,
# threshold softness).
# consolidation: one lumpy, homogeneous cloud; patchy: the field breaks it into several ill-defined patches;
# ggo: a broad faint haze (vessels stay visible because the haze is added to them, not replacing them)
_CLOUD = {"consolidation": (0.12, 0.25, 0.15, 0.55), "patchy": (0.1, 0.7, 0.5, 0.6), "ggo": (0.15, 0.15, 0.0, 1.0)}
_LOW = 2  # anatomy is rendered at 1/_LOW resolution, then upsampled (it is smooth; lesions are full resolution)


@dataclass
class XrayPhantomConfig:
    size_range: tuple[float, float] = (0.08, 0.25)       # lesion width as a fraction of the hemithorax width
    contrast_scale: float = 1.0                          # multiplies every pattern's contrast (lower = harder)
    noise: float = 0.02                                  # quantum-noise std (fraction of full scale) in aerated
    #                                                      lung at exposure 1; denser parts and lower exposures
    #                                                      are noisier (std ~ 1 / sqrt(detected signal))
    exposure_range: tuple[float, float] = (0.8, 1.25)    # relative exposure per image (more: darker, less noise)
    image_size_range: tuple[int, int] = (448, 640)       # output rows/cols in pixels (square or near-square)

    def __post_init__(self) -> None:
        self.size_range = tuple(float(v) for v in self.size_range)
        self.exposure_range = tuple(float(v) for v in self.exposure_range)
        self.image_size_range = tuple(int(v) for v in self.image_size_range)
        lo, hi = self.size_range
        if not 0.0 < lo <= hi <= 0.6:
            raise ValueError(f"size_range must be (lo, hi) with 0 < lo <= hi <= 0.6 (fractions of the hemithorax "
                             f"width), got {self.size_range}")
        if not self.contrast_scale > 0:
            raise ValueError(f"contrast_scale must be > 0, got {self.contrast_scale}")
        if not 0.0 <= self.noise <= 0.2:
            raise ValueError(f"noise must be in [0, 0.2] (std as a fraction of full scale), got {self.noise}")
        lo, hi = self.exposure_range
        if not 0.0 < lo <= hi:
            raise ValueError(f"exposure_range must be (lo, hi) with 0 < lo <= hi, got {self.exposure_range}")
        lo, hi = self.image_size_range
        if not 64 <= lo <= hi <= 4096:
            raise ValueError(f"image_size_range must be (lo, hi) pixels with 64 <= lo <= hi <= 4096, "
                             f"got {self.image_size_range}")


@dataclass(frozen=True)
class XrayAnatomy:
    """Everything random about one child's chest; sample once per patient and reuse for every exam."""

    age_years: float
    habitus: float          # patient-size factor (1 = typical for the age); larger: more scatter, less contrast
    thorax_mm: float        # inner thoracic half-width in mm (1 unit)
    lung_height: float      # right lung apex to right dome peak, units (infants ~1.3: short round chest)
    dome_gap: float         # how much lower the left dome peak is, units
    dome_u: float           # dome peak distance from the midline, units
    cp_depth: float         # lateral costophrenic angle below the dome peak, units
    apex_u: float           # lung apex distance from the midline, units
    apex_dy: float          # left apex height minus right apex height, units
    ctr: float              # cardiothoracic ratio (heart width / inner thoracic width)
    heart_aspect: float     # how tall the cardiac silhouette is (its upper left border, 0.72-0.86)
    heart_tilt: float       # how high the left ventricle bulges (0.15-0.45; lower in infants' horizontal heart)
    med_right: float        # upper mediastinum border right of the midline, units
    med_left: float         # upper mediastinum border left of the midline, units
    aortic_knob: float      # bulge of the aortic knob into the left lung, units
    thymus_right: float     # thymic bulge into the right upper lung (infants; 0 later), units
    thymus_left: float      # thymic bulge into the left upper lung, units
    hilum_right: tuple[float, float]  # (x, y) of the right hilum, units
    hilum_left: tuple[float, float]   # (x, y) of the left hilum (higher than the right), units
    wall: float             # chest-wall soft-tissue thickness beyond the ribs, units
    depth_ratio: float      # chest AP depth / transverse width (infants ~1: round chest)
    shoulder: float         # half-width at the shoulders, units
    neck: float             # half-width of the neck, units
    arms_up: bool           # arms raised beside the head (else hanging along the chest)
    rib_spacing: float      # posterior rib spacing, units
    rib_rise: float         # how much a posterior rib rises from the spine to its top (flat in infants), units
    clavicle_y: float       # height of the clavicles' medial ends, units
    spine_half: float       # half-width of the vertebral bodies, units
    contrast: float         # overall subject contrast (lower in larger patients: harder beam)
    scatter: float          # scatter fraction (more in larger patients)
    rotation_deg: float     # patient rotation in the image plane at the reference position
    shift: tuple[float, float]  # (x, y) offset of the chest in the field at the reference position, units
    key: int                # seeds this child's textures (vessels, bowel gas) and the per-exam jitter

    def __post_init__(self) -> None:
        if not 0.0 <= self.age_years <= 18.0:
            raise ValueError(f"age_years must be in [0, 18], got {self.age_years}")
        if not 0.5 <= self.habitus <= 2.0:
            raise ValueError(f"habitus must be in [0.5, 2], got {self.habitus}")
        if not 0.35 <= self.ctr <= 0.75:
            raise ValueError(f"ctr must be in [0.35, 0.75], got {self.ctr}")
        if not 0.8 <= self.lung_height <= 2.4:
            raise ValueError(f"lung_height must be in [0.8, 2.4] units, got {self.lung_height}")

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class XrayRender:
    image: np.ndarray  # float32 [H, W] in 0..1; 1 = white (bone, dense), 0 = black (air)
    zone_boxes: dict[tuple[str, str], tuple[int, int, int, int]]  # (side, zone) -> (r0, r1, c0, c1) half-open
    lesion_boxes: list[tuple[int, int, int, int]]  # per finding, bbox of the pixels it changed (half-open)
    lung_masks: dict[str, np.ndarray]  # side -> bool [H, W] (lateral: both sides are the one shared field)
    pixel_spacing_mm: float


def sample_anatomy(rng: np.random.Generator, age_years: float, cfg: XrayPhantomConfig) -> XrayAnatomy:
    """One child's chest at ``age_years`` (0-18); ``cfg`` is accepted for symmetry (sizes are age-driven)."""
    a = float(np.clip(age_years, 0.0, 18.0))
    t = min(a / 16.0, 1.0)                      # maturity 0 (newborn) .. 1 (adolescent)
    infant = math.exp(-a / 1.5)                 # 1 at birth, ~0 after 5 y
    habitus = float(np.clip(rng.lognormal(0.0, 0.12), 0.75, 1.4))
    u = rng.uniform
    thymus = max(0.0, 1.0 - a / 3.0) * u(0.08, 0.32)
    lung_height = 1.28 + 0.6 * t ** 0.8 + rng.normal(0, 0.05)
    return XrayAnatomy(
        age_years=a, habitus=habitus,
        thorax_mm=(50.0 + 85.0 * (1 - math.exp(-a / 7.0))) * habitus ** 0.5,
        lung_height=float(np.clip(lung_height, 1.1, 2.1)),
        dome_gap=u(0.035, 0.08) * lung_height, dome_u=u(0.4, 0.5), cp_depth=u(0.17, 0.27),
        apex_u=u(0.38, 0.46), apex_dy=rng.normal(0, 0.02),
        ctr=float(np.clip(0.49 + 0.09 * math.exp(-a / 3.0) + rng.normal(0, 0.02), 0.42, 0.66)),
        heart_aspect=u(0.72, 0.86), heart_tilt=u(0.15, 0.35) + 0.1 * t,
        med_right=u(0.10, 0.14), med_left=u(0.12, 0.16), aortic_knob=(0.02 + 0.05 * t) * u(0.6, 1.2),
        thymus_right=thymus * u(0.6, 1.3), thymus_left=thymus * u(0.3, 1.0),
        hilum_right=(-u(0.2, 0.27), u(0.46, 0.54) * lung_height),
        hilum_left=(u(0.22, 0.3), u(0.4, 0.47) * lung_height),
        wall=float(np.clip(0.11 + 0.05 * infant + 0.25 * (habitus - 1.0), 0.06, 0.26)),
        depth_ratio=0.95 - 0.22 * t + rng.normal(0, 0.03),
        shoulder=1.32 + 0.12 * t + u(-0.04, 0.04), neck=0.36 + 0.04 * t + u(-0.03, 0.03),
        arms_up=bool(rng.random() < 0.35 + 0.4 * infant),
        rib_spacing=lung_height * u(0.098, 0.108), rib_rise=0.08 + 0.22 * t + u(-0.02, 0.02),
        clavicle_y=u(0.06, 0.14) * lung_height, spine_half=u(0.11, 0.13),
        contrast=float(np.clip(1.0 - 0.08 * t - 0.25 * (habitus - 1.0), 0.78, 1.08)),
        scatter=float(np.clip(0.04 + 0.14 * t + 0.3 * (habitus - 1.0), 0.02, 0.35)),
        rotation_deg=rng.normal(0, 1.0), shift=(rng.normal(0, 0.03), rng.normal(0, 0.03)),
        key=int(rng.integers(2**31)),
    )


def sample_finding(rng: np.random.Generator, pattern: str, side: str, zone: str, cfg: XrayPhantomConfig) -> Finding:
    """A finding of that pattern/side/zone with size drawn from ``cfg.size_range`` and strength ~ U(0.7, 1.3)."""
    lo, hi = cfg.size_range
    return Finding(pattern, side, zone, size=float(rng.uniform(lo, hi)), strength=float(rng.uniform(0.7, 1.3)))


def to_stored(image: np.ndarray, bits: int = 12, monochrome1: bool = False) -> np.ndarray:
    """Display image (0..1, 1 = white) -> uint16 stored values 0..2**bits-1; MONOCHROME1 inverts (high = black)."""
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be in [1, 16], got {bits}")
    top = 2**bits - 1
    v = np.rint(np.clip(image, 0.0, 1.0) * top).astype(np.uint16)
    return (top - v).astype(np.uint16) if monochrome1 else v


# ----------------------------------------------------------------------------------------------------------------
# Pose, frame and small helpers


@dataclass(frozen=True)
class _Pose:
    dx: float       # chest offset in the field, units
    dy: float
    theta: float    # in-plane rotation, radians
    zoom: float     # magnification / collimation factor
    insp: float     # inspiration depth (scales the lung height)


def _pose(anat: XrayAnatomy, jitter: int) -> _Pose:
    dx, dy = anat.shift
    theta, zoom, insp = math.radians(anat.rotation_deg), 1.0, 1.0
    if jitter:
        r = np.random.default_rng([anat.key, 2, int(jitter) % 2**32])
        dx, dy = dx + r.normal(0, 0.035), dy + r.normal(0, 0.035)
        theta += math.radians(r.normal(0, 1.5))
        zoom = math.exp(r.normal(0, 0.035))
        insp = float(np.clip(1.0 + r.normal(0, 0.035), 0.92, 1.08))
    return _Pose(dx, dy, theta, zoom, insp)


@dataclass(frozen=True)
class _Frame:
    """Affine map between pixels (r, c) of an [H, W] image and anatomy units (x, y)."""

    H: int
    W: int
    ppu: float      # pixels per unit
    x0: float       # anatomy point at the image centre
    y0: float
    theta: float

    def to_anat(self, r: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """r: [h, 1] or [n], c: [1, w] or [n] pixel coordinates (broadcast) -> x, y in units."""
        ct, st = math.cos(self.theta), math.sin(self.theta)
        xr = (c - (self.W - 1) / 2.0) / self.ppu
        yr = (r - (self.H - 1) / 2.0) / self.ppu
        return (self.x0 + ct * xr - st * yr).astype(np.float32), (self.y0 + st * xr + ct * yr).astype(np.float32)

    def to_pix(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ct, st = math.cos(self.theta), math.sin(self.theta)
        dx, dy = np.asarray(x) - self.x0, np.asarray(y) - self.y0
        return (-st * dx + ct * dy) * self.ppu + (self.H - 1) / 2.0, (ct * dx + st * dy) * self.ppu + (self.W - 1) / 2.0

    def grid(self, factor: int) -> tuple[np.ndarray, np.ndarray]:
        """Anatomy coordinates of the pixel centres of the 1/factor grid: x, y [ceil(H/f), ceil(W/f)]."""
        h, w = -(-self.H // factor), -(-self.W // factor)
        r = ((np.arange(h, dtype=np.float32) + 0.5) * factor - 0.5)[:, None]
        c = ((np.arange(w, dtype=np.float32) + 0.5) * factor - 0.5)[None, :]
        return self.to_anat(r, c)


def _up2(a: np.ndarray, H: int, W: int) -> np.ndarray:
    """Bilinear x2 upsampling on pixel centres (out[2i] = .75 a[i] + .25 a[i-1]), cropped to [H, W]."""
    p = np.concatenate([a[:1], a, a[-1:]], axis=0)
    rows = np.empty((2 * a.shape[0], a.shape[1]), np.float32)
    rows[0::2] = 0.75 * a + 0.25 * p[:-2]
    rows[1::2] = 0.75 * a + 0.25 * p[2:]
    p = np.concatenate([rows[:, :1], rows, rows[:, -1:]], axis=1)
    out = np.empty((rows.shape[0], 2 * a.shape[1]), np.float32)
    out[:, 0::2] = 0.75 * rows + 0.25 * p[:, :-2]
    out[:, 1::2] = 0.75 * rows + 0.25 * p[:, 2:]
    return out[:H, :W]


def _bump(t):
    """Smooth bump, 1 at t = 0 and 0 for |t| >= 1."""
    return np.square(np.clip(1.0 - np.square(t), 0.0, None))


def _ramp(t):
    """Smoothstep of clip(t, 0, 1)."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _tube(d, half):
    """Projected density profile of a tube of half-thickness ``half`` at signed distance ``d`` (bright rim)."""
    q = np.square(d / half)
    return np.sqrt(np.clip(1.0 - q, 0.0, None)) * (0.55 + 0.45 * np.minimum(q, 1.0))


@lru_cache(maxsize=64)
def _textures(key: int) -> dict:
    """This child's fixed random textures: vessel tree tables, parenchymal mottle, wiggle, bowel gas."""
    r = np.random.default_rng([key, 1])
    layers = []
    for n, r_lo, r_hi, length, width, amp in ((10, 0.0, 0.08, (0.15, 0.35), 0.028, 1.0),
                                              (20, 0.1, 0.3, (0.15, 0.35), 0.019, 0.85),
                                              (40, 0.25, 0.5, (0.12, 0.3), 0.013, 0.65),
                                              (72, 0.4, 0.75, (0.08, 0.22), 0.009, 0.5)):
        start = r.uniform(r_lo, r_hi, (2, n))
        layers.append(dict(n=n, phase=r.uniform(0, 1, 2), start=start.astype(np.float32),
                           end=(start + r.uniform(*length, (2, n))).astype(np.float32), width=width,
                           amp=(amp * r.uniform(0.4, 1.0, (2, n)) * (r.random((2, n)) < 0.85)).astype(np.float32),
                           drift=r.uniform(-0.25, 0.25, (2, n)).astype(np.float32) / max(length[1], 0.3)))
    mottle = ndimage.gaussian_filter(r.standard_normal((72, 72)), 1.2)
    mottle = (mottle / mottle.std()).astype(np.float32)
    wiggle = [(r.uniform(3, 12), r.uniform(3, 12), r.uniform(0, 2 * np.pi), r.uniform(0.02, 0.045)) for _ in range(6)]
    gas = r.uniform(0, 1, (16, 5)).astype(np.float32)
    return dict(layers=layers, mottle=mottle, wiggle=wiggle, gas=gas)


def _sample_grid(tex: np.ndarray, x: np.ndarray, y: np.ndarray, x_lo=-1.4, y_lo=-0.6, span=3.2) -> np.ndarray:
    """Bilinear lookup of a texture laid over the anatomy square [x_lo, x_lo+span] x [y_lo, y_lo+span]."""
    n = tex.shape[0] - 1
    return ndimage.map_coordinates(tex, [(y - y_lo) / span * n, (x - x_lo) / span * n], order=1, mode="nearest")


def _smooth_profile(points, step=0.01, sigma=0.1):
    """Piecewise-linear (y, v1, v2, ...) control points, Gaussian-smoothed along y: (ys, [v1], [v2], ...)."""
    pts = np.asarray(points, dtype=np.float64)
    ys = np.arange(pts[0, 0], pts[-1, 0] + step, step)
    return (ys, *(ndimage.gaussian_filter1d(np.interp(ys, pts[:, 0], pts[:, k]), sigma / step, mode="nearest")
                  for k in range(1, pts.shape[1])))


def _window(frame: _Frame, f: int, shape: tuple[int, int], x_lo, x_hi, y_lo, y_hi) -> tuple[slice, slice]:
    """Rows/cols of the 1/f grid covering the anatomy box [x_lo, x_hi] x [y_lo, y_hi] (rotation-safe)."""
    r, c = frame.to_pix(np.array([x_lo, x_lo, x_hi, x_hi]), np.array([y_lo, y_hi, y_lo, y_hi]))
    r, c = (r + 0.5) / f - 0.5, (c + 0.5) / f - 0.5
    r0, r1 = max(int(np.floor(r.min())) - 1, 0), min(int(np.ceil(r.max())) + 2, shape[0])
    c0, c1 = max(int(np.floor(c.min())) - 1, 0), min(int(np.ceil(c.max())) + 2, shape[1])
    return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))


def _add_blob(D, X, Y, frame, cx, cy, rx, ry, amp, power=0.5):
    """D += amp * (1 - rho^2)^power inside the ellipse (cx, cy, rx, ry), evaluated only in its window."""
    rs, cs = _window(frame, _LOW, D.shape, cx - rx, cx + rx, cy - ry, cy + ry)
    rho2 = np.square((X[rs, cs] - cx) / rx) + np.square((Y[rs, cs] - cy) / ry)
    D[rs, cs] += amp * np.clip(1.0 - rho2, 0.0, None) ** power


def _segment_dist(x, y, ax, ay, bx, by):
    """Distance of points (x, y) to the segment a-b."""
    vx, vy = bx - ax, by - ay
    t = np.clip(((x - ax) * vx + (y - ay) * vy) / (vx * vx + vy * vy + 1e-12), 0.0, 1.0)
    return np.hypot(x - ax - t * vx, y - ay - t * vy)


def _vessels(x, y, side_idx, hila, tex, r_min: float) -> np.ndarray:
    """Vessel/bronchial markings fanning out from the hila, brighter and thicker centrally. x, y, side_idx: [n]."""
    hx, hy = hila[0][side_idx], hila[1][side_idx]
    sgn = np.where(side_idx == 1, 1.0, -1.0).astype(np.float32)
    dx, dy = (x - hx) * sgn, y - hy
    r = np.hypot(dx, dy)
    theta = np.arctan2(dy, dx)
    for fx, fy, ph, amp in tex["wiggle"]:
        theta = theta + amp * np.sin(fx * x + fy * y + ph)
    out = np.zeros_like(x)
    for lay in tex["layers"]:
        n = lay["n"]
        t = theta * (n / (2 * np.pi)) + lay["phase"][side_idx]
        k = np.floor(t)
        kk = side_idx * n + (k.astype(np.int64) % n)
        start, end, amp = lay["start"].ravel()[kk], lay["end"].ravel()[kk], lay["amp"].ravel()[kk]
        drift = lay["drift"].ravel()[kk] * (r - start)                    # rays bend away from the radial
        d = np.abs(t - k - 0.5 - drift) * (2 * np.pi / n) * r             # distance to the nearest ray
        gate = _ramp((r - start - r_min) / 0.06) * _ramp((end - r) / 0.12)
        out += amp * gate * np.clip(1.0 - np.square(d / lay["width"]), 0.0, None)
    return out * np.exp(-r / 0.55)


class _Chest:
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


class _Frontal(_Chest):
    """Frontal (AP/PA) geometry of one exam: the anatomy after this exam's positioning."""

    def __init__(self, a: XrayAnatomy, pose: _Pose):
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

    def frame(self, H: int, W: int, pose: _Pose) -> _Frame:
        top, bottom, half_w = -0.62, self.lh + 0.85, 1.5
        ppu = min(H / (bottom - top), W / (2 * half_w)) * pose.zoom
        return _Frame(H, W, ppu, -pose.dx, (top + bottom) / 2 - pose.dy, pose.theta)

    def dome_at(self, side: str, x) -> np.ndarray:
        du = np.minimum(np.abs(_SIGN[side] * x - self.a.dome_u), 0.999 * self.dome_r)
        return self.base[side] + self.dome_r - np.sqrt(self.dome_r ** 2 - du * du)

    def lateral_sign(self, side: str) -> float:
        return _SIGN[side]

    def mediastinum(self, side: str, y) -> np.ndarray:
        a, lh = self.a, self.lh
        thymus = a.thymus_right if side == "right" else a.thymus_left
        m = (a.med_right if side == "right" else a.med_left) + thymus * _bump((y - 0.3 * lh) / (0.22 * lh))
        if side == "left":
            m = m + a.aortic_knob * _bump((y - 0.27 * lh) / (0.09 * lh))
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
        ys, bs, ds = _smooth_profile([            # (y, half-width, relative AP depth): neck, shoulders, chest, belly
            (-3.0, a.neck, 0.5), (-0.55, a.neck, 0.52), (-0.3, 0.4 * a.neck + 0.6 * chest + 0.1, 0.8),
            (-0.05, self.shoulder, 0.9), (0.25, chest + 0.03, 1.0), (lh + 0.2, chest, 1.0),
            (lh + 0.8, chest + 0.06, 1.05), (4.0, chest + 0.06, 1.05)])
        b = np.interp(Y, ys, bs).astype(np.float32)
        P = np.interp(Y, ys, ds).astype(np.float32) * np.cbrt(np.clip(1.0 - np.abs(X / b) ** 3, 0.0, None))
        U = np.abs(X)
        x0, y0, x1, y1 = self.arm
        rs = self.arm_r
        arm = np.sqrt(np.clip(1.0 - np.square(_segment_dist(U, Y, x0, y0, x1, y1) / rs), 0.0, None))
        deltoid = np.sqrt(np.clip(1.0 - np.square((U - x0) / (1.3 * rs)) - np.square((Y - y0) / (1.2 * rs)), 0.0, None))
        thick = 1.5 * rs / (a.depth_ratio + a.wall)
        return np.maximum(P, thick * np.maximum(arm, deltoid))

    def density(self, X, Y, frame: _Frame, tex: dict) -> tuple[np.ndarray, np.ndarray]:
        """Anatomy density and signed lung air (-right, +left) on the 1/_LOW grid, both [h, w]."""
        a, lh = self.a, self.lh
        ppu_low = frame.ppu / _LOW
        P = self.body(X, Y)
        D = _TISSUE * P
        env_r, env_l = self.envelope("right", X, Y), self.envelope("left", X, Y)
        heart = self.in_heart(X, Y)
        lung_r = env_r & (-X > self.mediastinum("right", Y)) & ~heart
        lung_l = env_l & (X > self.mediastinum("left", Y)) & ~heart
        lung = lung_r | lung_l
        depth = np.sqrt(np.clip(ndimage.distance_transform_edt(lung) / (0.16 * ppu_low), 0.0, 1.0)).astype(np.float32)
        air = (_TISSUE * _AIR) * P * depth
        retro = (0.08 * _TISSUE * _AIR) * P * (heart & (env_r | env_l))  # lung behind the heart
        D -= air + retro
        # markings: vessels from the hila, fine parenchymal mottle, hilar shadows
        idx = np.flatnonzero(lung)
        xl, yl = X.ravel()[idx], Y.ravel()[idx]
        side_idx = lung_l.ravel()[idx].astype(np.int64)
        marks = _vessels(xl, yl, side_idx, self.hila, tex, 0.0) + 0.06 * _sample_grid(tex["mottle"], xl, yl)
        D.ravel()[idx] += _MARKINGS * marks * depth.ravel()[idx]
        for i in (0, 1):
            _add_blob(D, X, Y, frame, self.hila[0][i], self.hila[1][i], 0.1, 0.15, 0.06, 1.5)
        # trachea and main bronchi (air)
        tw = 0.05 + 0.025 * self.t
        carina = 0.33 * lh
        rs, cs = _window(frame, _LOW, D.shape, -0.5, 0.5, -1.5, carina + 0.3)
        xs, ys = X[rs, cs], Y[rs, cs]
        dist = np.where(ys < carina, np.abs(xs + 0.01), 9.0)
        for i in (0, 1):
            hx, hy = self.hila[0][i] * 0.75, self.hila[1][i] * 0.85
            dist = np.minimum(dist, _segment_dist(xs, ys, -0.01, carina, hx, hy) / 0.7)
        D[rs, cs] -= 0.07 * np.sqrt(np.clip(1.0 - np.square(dist / tw), 0.0, None))
        # stomach bubble and bowel gas
        gas = tex["gas"]
        _add_blob(D, X, Y, frame, 0.42 + 0.15 * gas[0, 0], self.base["left"] + 0.2 + 0.05 * gas[0, 1],
                  0.13 + 0.07 * gas[0, 2], 0.07 + 0.04 * gas[0, 3], -0.14)
        n_gas = int(round(2 + 10 * math.exp(-a.age_years / 2.0)))
        for g in gas[1:1 + n_gas]:
            _add_blob(D, X, Y, frame, -0.8 + 1.6 * g[0], self.base["right"] + 0.4 + 0.7 * g[1],
                      0.05 + 0.06 * g[2], 0.04 + 0.05 * g[3], -0.1)
        D += a.contrast ** 2 * self.bones(X, Y, frame, 0.3 + 0.7 * depth)
        D *= a.contrast
        return D, np.where(lung_l, air, -air).astype(np.float32)

    def bones(self, X, Y, frame: _Frame, conspicuity: np.ndarray) -> np.ndarray:
        """Bone density [h, w]; ribs are weighted by ``conspicuity`` (they stand out against aerated lung)."""
        a, lh = self.a, self.lh
        B = np.zeros_like(X)
        U = np.abs(X)
        # spine with vertebral bodies, disc spaces and pedicles
        sh = a.spine_half
        rs, cs = _window(frame, _LOW, B.shape, -sh, sh, -3.0, 4.0)
        xs, ys = X[rs, cs], Y[rs, cs]
        phase = (ys - 0.02) / a.rib_spacing
        seg = np.clip(1.5 * np.cos(2 * np.pi * phase) + 0.8, 0.0, 1.0)
        ped = np.clip(1.0 - np.hypot((np.abs(xs) - 0.66 * sh) / 0.04, (phase % 1.0 - 0.5) / 0.3), 0.0, 1.0)
        B[rs, cs] += _SPINE * (_tube(xs, sh) * (0.8 + 0.2 * seg) + 0.3 * ped)
        # posterior ribs: from the spine up and out, curving down at the chest wall; faint anterior ribs
        sp, rise = a.rib_spacing, a.rib_rise
        rs, cs = _window(frame, _LOW, B.shape, -1.15, 1.15, -0.3, self.base["left"] + self.cp_depth + 0.2)
        u, y = U[rs, cs], Y[rs, cs]
        bend = np.clip(u - 0.72, 0.0, None)
        g = -rise * u * (1.5 - u) + 2.2 * bend * bend
        slope = -rise * (1.5 - 2 * u) + 4.4 * bend
        v = (y - g + 0.03) / sp
        k = np.floor(v + 0.5)
        d = (v - k) * sp / np.sqrt(1.0 + slope * slope)
        reach = _ramp((u - 0.08) / 0.1) * _ramp((1.09 - u) / 0.05)
        post = _tube(d, 0.2 * sp) * ((k >= 0) & (k < 11)) * reach
        g1 = -rise * 1.05 * 0.45 + 2.2 * 0.33 ** 2
        va = (y - g1 - 0.5 * (1.05 - u) + 0.03 - 0.5 * sp) / sp
        ka = np.floor(va + 0.5)
        da = (va - ka) * sp / math.sqrt(1.0 + 0.5 ** 2)
        ant = _tube(da, 0.2 * sp) * ((ka >= 0) & (ka < 7)) * _ramp((u - 0.4) / 0.25) * _ramp((1.08 - u) / 0.05)
        B[rs, cs] += _RIB * (post + 0.3 * ant) * conspicuity[rs, cs]
        # clavicles
        rs, cs = _window(frame, _LOW, B.shape, -1.3, 1.3, -0.35, a.clavicle_y + 0.2)
        u, y = U[rs, cs], Y[rs, cs]
        t = (u - 0.1) / 1.05
        yc = a.clavicle_y + (-0.02 - 0.06 * self.t - a.clavicle_y) * t + 0.03 * np.sin(2 * np.pi * t)
        half = 0.04 + 0.012 * (1 - t)
        B[rs, cs] += _CLAVICLE * _tube(y - yc, half) * _ramp(t / 0.04) * _ramp((1.0 - t) / 0.05)
        # humerus along the arm, its head at the shoulder joint
        x0, y0, x1, y1 = self.arm
        rs, cs = _window(frame, _LOW, B.shape, -1.8, 1.8, min(y0, y1) - 0.2, max(y0, y1))
        u, y = U[rs, cs], Y[rs, cs]
        shaft = _tube(_segment_dist(u, y, x0 + 0.02, y0 + 0.1 * np.sign(y1 - y0), x1, y1), 0.28 * self.arm_r)
        head = _tube(np.hypot(u - x0, y - y0), 0.55 * self.arm_r)
        B[rs, cs] += 0.14 * np.maximum(shaft, head)
        # scapulae: faint, over the upper lateral lung
        rs, cs = _window(frame, _LOW, B.shape, -1.2, 1.2, -0.15, 0.65 * lh)
        u, y = U[rs, cs], Y[rs, cs]
        edge = 0.74 + 0.12 * (y / (0.6 * lh))
        inside = (y < 0.6 * lh) & (y > -0.1)
        B[rs, cs] += (0.025 * _ramp((u - edge) / 0.03) + 0.025 * _tube(u - edge, 0.02)) * inside
        return B


class _Lateral(_Chest):
    """Lateral geometry: x is the AP axis (anterior = image left), the two lungs overlap into one field."""

    def __init__(self, a: XrayAnatomy, pose: _Pose):
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

    def frame(self, H: int, W: int, pose: _Pose) -> _Frame:
        top, bottom, half_w = -0.62, self.lh + 0.85, 1.5
        ppu = min(H / (bottom - top), W / (2 * half_w)) * pose.zoom
        return _Frame(H, W, ppu, 0.1 - pose.dx, (top + bottom) / 2 - pose.dy, pose.theta)

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
        ys, fr, bk, dp = _smooth_profile([        # (y, front x, back x, relative path): neck, chest, belly
            (-3.0, -0.28, 0.5, 0.5), (-0.5, -0.3, 0.55, 0.55), (-0.1, -0.75 * dep - w, dep + w, 0.95),
            (0.45 * lh, -dep - w, dep + w + 0.03, 1.0), (lh + 0.3, -dep - w - 0.03, dep + w, 1.0),
            (lh + 1.0, -dep - w - belly, dep + w - 0.05, 1.0), (4.0, -dep - w - belly, dep + w - 0.05, 1.0)])
        front, back = np.interp(Y, ys, fr).astype(np.float32), np.interp(Y, ys, bk).astype(np.float32)
        mid, half = (front + back) / 2, (back - front) / 2
        P = np.interp(Y, ys, dp).astype(np.float32) * np.cbrt(np.clip(1.0 - np.abs((X - mid) / half) ** 3, 0.0, None))
        # shoulders and raised arms overlap the upper chest
        return P + 0.4 * _bump((Y + 0.1) / 0.6) * _bump((X - 0.05) / (0.9 * dep)) * (P > 0)

    def density(self, X, Y, frame: _Frame, tex: dict) -> tuple[np.ndarray, np.ndarray]:
        """Anatomy density and lung air (non-negative, shared field) on the 1/_LOW grid, both [h, w]."""
        a, lh, dep = self.a, self.lh, self.dep
        ppu_low = frame.ppu / _LOW
        P = self.body(X, Y)
        D = _TISSUE * P
        lung = self.inside("left", X, Y)
        depth = np.sqrt(np.clip(ndimage.distance_transform_edt(lung) / (0.2 * ppu_low), 0.0, 1.0)).astype(np.float32)
        both = 0.55 + 0.45 * _ramp((self.dome_at("right", X) - Y) / 0.03)     # under the right dome: left lung only
        hx, hy, ah, bh = self.heart
        ct, st = math.cos(-0.3), math.sin(-0.3)
        dx, dy = X - hx, Y - hy
        rho = np.sqrt(np.square((dx * ct + dy * st) / ah) + np.square((dy * ct - dx * st) / bh))
        heart = 1.0 - 0.5 * _ramp((1.0 - rho) / 0.5)                          # the lungs flank the heart
        air = (_TISSUE * _AIR) * P * depth * both * heart
        D -= air
        idx = np.flatnonzero(lung)
        xl, yl = X.ravel()[idx], Y.ravel()[idx]
        side_idx = (xl > self.hila[0][0]).astype(np.int64)
        hila = (np.repeat(self.hila[0], 2), np.repeat(self.hila[1], 2))
        marks = 0.7 * _vessels(xl, yl, side_idx, hila, tex, 0.1) + 0.06 * _sample_grid(tex["mottle"], xl, yl)
        D.ravel()[idx] += _MARKINGS * marks * depth.ravel()[idx]
        _add_blob(D, X, Y, frame, self.hila[0][0], self.hila[1][0], 0.2, 0.16, 0.07, 1.5)
        # trachea
        carina = 0.33 * lh
        rs, cs = _window(frame, _LOW, D.shape, -0.6, 0.5, -1.5, carina)
        xs, ys = X[rs, cs], Y[rs, cs]
        dist = _segment_dist(xs, ys, -0.25 * dep, -1.5, 0.0, carina)
        D[rs, cs] -= 0.06 * np.sqrt(np.clip(1.0 - np.square(dist / 0.065), 0.0, None)) * _ramp((carina - ys) / 0.1)
        gas = tex["gas"]
        _add_blob(D, X, Y, frame, -0.1 * dep + 0.2 * gas[0, 0], self.domes["left"] + 0.15, 0.15, 0.07, -0.12)
        n_gas = int(round(2 + 10 * math.exp(-a.age_years / 2.0)))
        for g in gas[1:1 + n_gas]:
            _add_blob(D, X, Y, frame, -0.8 * dep + 1.3 * dep * g[0], lh + 0.45 + 0.7 * g[1],
                      0.05 + 0.06 * g[2], 0.04 + 0.05 * g[3], -0.1)
        D += a.contrast ** 2 * self.bones(X, Y, frame, 0.4 + 0.6 * depth)
        D *= a.contrast
        return D, air

    def bones(self, X, Y, frame: _Frame, conspicuity: np.ndarray) -> np.ndarray:
        a, lh, dep = self.a, self.lh, self.dep
        B = np.zeros_like(X)
        # vertebral bodies (disc spaces between them) and the posterior elements, following the thoracic curve
        rs, cs = _window(frame, _LOW, B.shape, 0.2 * dep, dep + 0.3, -3.0, 4.0)
        xs, ys = X[rs, cs], Y[rs, cs]
        shift = 0.06 * np.sin(np.pi * np.clip((ys + 0.3) / (lh + 0.8), 0.0, 1.0))    # kyphosis
        x0, x1 = 0.45 * dep + shift, 0.8 * dep + shift
        size = 0.7 + 0.3 * _ramp((ys + 0.3) / 0.5)                                   # smaller cervical bodies
        phase = (ys - 0.02) / a.rib_spacing
        seg = np.clip(2.2 * np.cos(2 * np.pi * phase) + 1.4, 0.0, 1.0)
        body = _ramp((xs - x0) / 0.04) * _ramp((x0 + (x1 - x0) * size - xs) / 0.04)
        post = np.exp(-np.square((xs - x1 - 0.17) / 0.07))
        B[rs, cs] += 0.12 * body * (0.55 + 0.45 * seg) + 0.05 * post * (0.6 + 0.4 * seg)
        # posterior ribs, oblique
        rs, cs = _window(frame, _LOW, B.shape, -0.2, dep + 0.1, -0.2, lh + 0.4)
        xs, ys = X[rs, cs], Y[rs, cs]
        v = (ys - 0.35 * (xs - dep)) / a.rib_spacing
        d = (v - np.floor(v + 0.5)) * a.rib_spacing
        B[rs, cs] += 0.035 * _tube(d, 0.2 * a.rib_spacing) * _ramp((xs + 0.1) / 0.3) * conspicuity[rs, cs]
        # sternum with its ossification centres
        rs, cs = _window(frame, _LOW, B.shape, -dep - 0.2, -dep + 0.2, 0.0, lh)
        xs, ys = X[rs, cs], Y[rs, cs]
        seg = np.clip(2.0 * np.cos(2 * np.pi * ys / (0.2 * lh)) + 0.5, 0.0, 1.0)
        B[rs, cs] += 0.07 * _tube(xs + dep + 0.5 * a.wall - 0.02, 0.04) * seg * _ramp((ys - 0.05 * lh) / 0.05) * \
            _ramp((0.85 * lh - ys) / 0.05)
        return B


# ----------------------------------------------------------------------------------------------------------------
# Findings


def _occupancy(f: Finding, chest: _Chest, rng: np.random.Generator, margin: float):
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
            return (_ramp((y - y_m) / 0.025) * _ramp((u - u0) / 0.02)).astype(np.float32)

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
        env = _ramp((1.0 - np.hypot(lx / we, ly / he)) / 0.55)          # soft elliptical envelope
        noise = ndimage.map_coordinates(field, [(ly + ext) * ((n - 1) / (2 * ext)), (lx + ext) * ((n - 1) / (2 * ext))],
                                        order=1, mode="nearest")
        if f.pattern == "ggo":       # a broad haze, gently uneven
            o = env * np.clip(1.0 + weight * noise, 0.5, 1.5)
        else:                        # a cloud: envelope + lumpy field, softly thresholded (patchy: broken up)
            o = _ramp((env + weight * noise - threshold) / soft) * _ramp(env / 0.2)
        return (o / max(float(o.max()), 1e-6)).astype(np.float32)

    return occ, (cx - ext, cx + ext, cy - ext, cy + ext)


def _plant(f: Finding, i: int, chest: _Chest, frame: _Frame, air: np.ndarray, lung: np.ndarray,
           box: tuple[int, int, int, int], D: np.ndarray, seed: int, cfg: XrayPhantomConfig):
    """Add one finding to D [H, W] in place, only inside lung & zone; returns the bbox of the changed pixels."""
    rng = np.random.default_rng([seed, 3, i])
    contrast, blur_frac = _PATTERN[f.pattern]
    blur = max(blur_frac * f.size, 1.0 / frame.ppu)                     # units
    margin = 2.0 * blur
    occ_fn, (x0, x1, y0, y1) = _occupancy(f, chest, rng, margin)
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


# ----------------------------------------------------------------------------------------------------------------
# Rendering


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rr, cc = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rr.size == 0:
        return (0, 0, 0, 0)
    return (int(rr[0]), int(rr[-1]) + 1, int(cc[0]), int(cc[-1]) + 1)


def render(anatomy: XrayAnatomy, findings: list[Finding], view: str, cfg: XrayPhantomConfig, seed: int,
           jitter: int = 0) -> XrayRender:
    """Render one radiograph of ``anatomy`` with ``findings``.

    view: "frontal" (AP or PA: the same geometry here) or "lateral". seed draws this image's size, exposure and
    noise (independently of the findings); jitter: 0 = the child's reference position, any other value a small
    reproducible change of position, rotation, magnification and inspiration (a follow-up exam).
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    rng = np.random.default_rng(seed)
    lo, hi = cfg.image_size_range
    H = int(rng.integers(lo, hi + 1))
    W = int(np.clip(round(H * rng.uniform(0.92, 1.08)), lo, hi))
    e_lo, e_hi = cfg.exposure_range
    exposure = float(np.exp(rng.uniform(math.log(e_lo), math.log(e_hi))))
    z = rng.standard_normal((H, W), dtype=np.float32)                   # [H, W] quantum noise, finding-free

    pose = _pose(anatomy, jitter)
    chest = _Frontal(anatomy, pose) if view == "frontal" else _Lateral(anatomy, pose)
    frame = chest.frame(H, W, pose)
    X, Y = frame.grid(_LOW)                                              # [h, w] anatomy units
    D_low, air_low = chest.density(X, Y, frame, _textures(anatomy.key))
    D_low = ndimage.gaussian_filter(D_low, 0.8)                          # geometric unsharpness (anatomy only)
    trans = np.exp(-_KAPPA * D_low)
    coarse = ndimage.gaussian_filter(trans[::4, ::4], 0.3 * frame.ppu / (4 * _LOW), mode="nearest")
    fog = ndimage.zoom(coarse, (trans.shape[0] / coarse.shape[0], trans.shape[1] / coarse.shape[1]), order=1,
                       grid_mode=True, mode="nearest")[: trans.shape[0], : trans.shape[1]]
    D, air, fog = (_up2(a, H, W) for a in (D_low, air_low, fog.astype(np.float32)))   # [H, W] each

    thr = 0.01
    if view == "frontal":
        masks = {"right": air < -thr, "left": air > thr}
    else:
        shared = air > thr
        masks = {"right": shared, "left": shared}
    zone_boxes = {}
    for side in SIDES:
        r0, r1, c0, c1 = _bbox(masks[side])
        _, y = frame.to_anat(np.arange(r0, r1, dtype=np.float32)[:, None], np.arange(c0, c1, dtype=np.float32)[None, :])
        zi = chest.zone_index(side, y)
        sub = masks[side][r0:r1, c0:c1]
        for k, zone in enumerate(ZONES):
            b = _bbox(sub & (zi == k))
            zone_boxes[(side, zone)] = (b[0] + r0, b[1] + r0, b[2] + c0, b[3] + c0) if b[1] else (0, 0, 0, 0)

    lesion_boxes = [_plant(f, i, chest, frame, air, masks[f.side], zone_boxes[(f.side, f.zone)], D, seed, cfg)
                    for i, f in enumerate(findings)]

    # pointwise: density -> detected quanta (+ scatter fog) -> log signal + quantum noise -> display
    q = exposure * (np.exp(-_KAPPA * D) + anatomy.scatter * fog)
    lo_w, hi_w = _WINDOW
    c_noise = cfg.noise * (hi_w - lo_w) * math.exp(-0.5 * _KAPPA * _NOISE_REF_DENSITY)
    L = -np.log(q) * (1.0 / _KAPPA) + z * (c_noise / np.sqrt(q))
    image = np.clip((L - lo_w) * (1.0 / (hi_w - lo_w)), 0.0, 1.0) ** _GAMMA
    return XrayRender(image=image.astype(np.float32), zone_boxes=zone_boxes, lesion_boxes=lesion_boxes,
                      lung_masks=masks, pixel_spacing_mm=anatomy.thorax_mm / frame.ppu)
