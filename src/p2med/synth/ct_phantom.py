"""Synthetic pediatric chest CT in Hounsfield units, rendered analytically, with planted findings.

`sample_anatomy` draws one child's geometry once (millimetres, DICOM patient coordinates LPS: +x = patient
left, +y = posterior, +z = head); `render` evaluates the HU field at any axial slice positions, averaging
sub-planes across the slab thickness, so a 5 mm lung series, a 1 mm thin series and a contrast series of one
exam agree with each other; `render_localizer` projects the same field to a frontal scout. A finding is a soft,
irregular 3D field confined to its lobe (an effusion to the dependent base of its hemithorax); image noise
depends only on `seed`, the kernel and the slice position, so a volume rendered with and without a finding
differs exactly where the finding is.

It does not know DICOM: the writer stores `CtRender.hu` with a RescaleIntercept and files the truth.

This module is the public entry point (config, anatomy and finding sampling, `render`, `render_localizer`,
`landmarks`, slice noise); the parts live in `ct_geometry` (the anatomy as shapes, lobes, vessel trees),
`ct_scene` (one plane's HU, slabs), `ct_lungs`, `ct_bones`, `ct_tubes`, `ct_lesions` and `ct_primitives`.

Example::

    cfg = CtPhantomConfig()
    an = sample_anatomy(np.random.default_rng(0), age_years=6.0, cfg=cfg)
    z = np.arange(an.z_start_mm, an.z_end_mm, 5.0)             # ascending scan range, 5 mm apart
    out = render(an, [Finding("consolidation", "right", "lower", 0.2)], z, matrix=256, cfg=cfg)
    out.hu.shape, out.lesion_slices                            # (29, 256, 256) float32 HU, [(5, 8)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from p2med.synth.ct_geometry import geometry_of
from p2med.synth.ct_scene import render_clean
from p2med.synth.findings import CT_LOBES, SIDES, Finding, ct_valid

__all__ = ["CtPhantomConfig", "CtAnatomy", "CtRender", "sample_anatomy", "sample_finding", "render",
           "render_localizer", "landmarks"]


@dataclass
class CtPhantomConfig:
    """How hard and how noisy the synthetic CT is."""

    size_range: tuple[float, float] = (0.12, 0.35)  # lesion width as a fraction of the hemithorax width
    contrast_scale: float = 1.0  # scales the lesions' HU difference from lung (lower = harder)
    noise_hu_lung_kernel: float = 25.0  # noise std (HU) of a 5 mm slice, sharp lung kernel (thinner = noisier)
    noise_hu_soft_kernel: float = 10.0  # the same for a smooth soft-tissue kernel
    matrix: int = 256  # pixels per row/col the writer uses by default (render takes it as an argument)
    slice_interval_mm: float = 5.0  # centre-to-centre step of the 5 mm axial series (10: slices with 5 mm gaps)

    def __post_init__(self) -> None:
        sr = tuple(self.size_range)
        if len(sr) != 2 or not 0.0 < sr[0] <= sr[1] <= 0.6:
            raise ValueError(f"size_range must be (lo, hi) with 0 < lo <= hi <= 0.6, got {self.size_range}")
        if not self.contrast_scale > 0:
            raise ValueError(f"contrast_scale must be > 0, got {self.contrast_scale}")
        for name in ("noise_hu_lung_kernel", "noise_hu_soft_kernel"):
            if not 0.0 <= getattr(self, name) <= 500.0:
                raise ValueError(f"{name} must be in [0, 500] HU, got {getattr(self, name)}")
        if not (isinstance(self.matrix, int) and 32 <= self.matrix <= 1024):
            raise ValueError(f"matrix must be an int in [32, 1024], got {self.matrix!r}")
        if not 5.0 <= self.slice_interval_mm <= 15.0:      # below 5 mm the 5 mm slabs would overlap
            raise ValueError(f"slice_interval_mm must be in [5, 15] mm, got {self.slice_interval_mm}")


@dataclass(frozen=True)
class CtAnatomy:
    """One child's chest geometry in millimetres (LPS patient coordinates), reused for follow-up exams."""

    age_years: float  # age at sampling; bone mineral, thymus and lung density follow it
    seed: int  # drives the vessel and airway trees and the lesion shapes
    centre_x_mm: float  # body centre, left-right
    centre_y_mm: float  # body centre, anterior-posterior
    half_width_mm: float  # half the outer chest width
    half_depth_mm: float  # half the outer chest depth (infants round, adolescents flatter)
    back_flat: float  # the back lies flat on the table at centre_y + back_flat * half_depth
    fat_mm: float  # subcutaneous fat thickness
    muscle_mm: float  # chest-wall muscle thickness
    rib_mm: float  # rib thickness (radial)
    lung_height_mm: float  # lung apex to lowest costophrenic point
    z_base_mm: float  # lowest lung point (posterior costophrenic recess)
    z_apex_mm: float  # lung apex
    dome_right_mm: float  # right diaphragm dome height above z_base (higher than the left)
    dome_left_mm: float  # left dome height above z_base
    heart_ratio: float  # cardiothoracic ratio
    heart_angle_deg: float  # heart long axis, degrees from the left-right axis towards anterior
    aorta_radius_mm: float  # aortic radius
    trachea_radius_mm: float  # tracheal lumen radius
    vertebra_radius_mm: float  # vertebral body radius
    fissure_post_right: float  # oblique fissure height at the back, fraction of lung height (right lung)
    fissure_post_left: float  # the same for the left lung
    fissure_ant: float  # oblique fissure height at the front (both lungs)
    fissure_horizontal: float  # right horizontal fissure height, fraction of lung height
    thymus: float  # thymus size factor (1 = infant, ~0 = adolescent)
    lung_hu: float  # mean parenchymal HU (infants denser)
    table_gap_mm: float  # gap between the back and the table top
    fov_mm: float  # display field of view the writer should use
    z_start_mm: float  # recommended scan range, ascending: its lower end, below the lowest costophrenic point
    z_end_mm: float  # its upper end, a bit above the lung apex (z_start_mm < z_end_mm)

    def __post_init__(self) -> None:
        if not 0.0 <= self.age_years <= 18.0:
            raise ValueError(f"age_years must be in [0, 18], got {self.age_years}")
        if not self.z_start_mm < self.z_base_mm < self.z_apex_mm < self.z_end_mm:
            raise ValueError("z_start_mm < z_base_mm < z_apex_mm < z_end_mm must hold")
        if not self.fov_mm > 2 * self.half_width_mm:
            raise ValueError(f"fov_mm {self.fov_mm} must exceed the body width {2 * self.half_width_mm}")


@dataclass
class CtRender:
    """A rendered volume and its truth."""

    hu: np.ndarray  # float32 [Z, H, W] HU; row = +y (anterior at row 0), col = +x (patient right at col 0)
    lesion_slices: list[tuple[int, int]]  # per finding: first and last slice index it changed ((-1, -1): none)
    lesion_boxes: list[tuple[int, int, int, int, int, int]]  # per finding (z0, z1, r0, r1, c0, c1), half-open
    lobe_masks: dict[tuple[str, str], np.ndarray] | None  # (side, zone) -> bool [Z, H, W]: voxel touches the lobe
    z_mm: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [Z] slice centres as rendered
    pixel_mm: float = 0.0  # in-plane pixel spacing
    origin_xy_mm: tuple[float, float] = (0.0, 0.0)  # (x, y) of the centre of pixel [0, 0]


def _interp_age(age: float, values: list[float]) -> float:
    return float(np.interp(age, [0, 1, 3, 6, 10, 14, 18], values))


def sample_anatomy(rng: np.random.Generator, age_years: float, cfg: CtPhantomConfig) -> CtAnatomy:
    """Draw one child's chest geometry; everything random about the patient is decided here."""
    if not isinstance(cfg, CtPhantomConfig):
        raise TypeError("cfg must be a CtPhantomConfig")
    age = float(age_years)
    if not 0.0 <= age <= 18.0:
        raise ValueError(f"age_years must be in [0, 18], got {age_years}")
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    width = _interp_age(age, [110, 140, 165, 190, 230, 270, 295]) * u(0.93, 1.07)
    a = width / 2
    depth_ratio = _interp_age(age, [0.88, 0.85, 0.80, 0.76, 0.72, 0.70, 0.68]) * u(0.95, 1.05)
    height = width * (0.6 + 0.18 * age / 18) * u(0.93, 1.07)
    z_base = -0.65 * height + u(-40, 40)
    dome_r = height * u(0.2, 0.25)
    fov = float(np.clip(width * u(1.1, 1.2) + 20, 180, 340))
    return CtAnatomy(
        age_years=age, seed=int(rng.integers(2**31 - 1)), centre_x_mm=u(-0.03, 0.03) * a,
        centre_y_mm=u(-0.04, 0.04) * a, half_width_mm=a, half_depth_mm=a * depth_ratio,
        back_flat=_interp_age(age, [0.97, 0.96, 0.95, 0.94, 0.93, 0.92, 0.92]), fat_mm=a * u(0.035, 0.07),
        muscle_mm=a * u(0.05, 0.075), rib_mm=a * u(0.045, 0.055), lung_height_mm=height, z_base_mm=z_base,
        z_apex_mm=z_base + height, dome_right_mm=dome_r, dome_left_mm=dome_r - height * u(0.03, 0.06),
        heart_ratio=_interp_age(age, [0.57, 0.55, 0.52, 0.50, 0.48, 0.47, 0.46]) * u(0.95, 1.05),
        heart_angle_deg=u(35, 50), aorta_radius_mm=0.04 * width * u(0.9, 1.1),
        trachea_radius_mm=0.024 * width * u(0.9, 1.1), vertebra_radius_mm=0.085 * a * u(0.95, 1.05),
        fissure_post_right=u(0.7, 0.78), fissure_post_left=u(0.72, 0.8), fissure_ant=u(-0.04, 0.06),
        fissure_horizontal=u(0.5, 0.58), thymus=math.exp(-age / 5) * u(0.7, 1.2),
        lung_hu=-815 + 75 * math.exp(-age / 3) + u(-15, 15), table_gap_mm=u(0.0, 3.0), fov_mm=fov,
        z_start_mm=z_base - height * u(0.04, 0.08), z_end_mm=z_base + height + height * u(0.06, 0.12))


def sample_finding(rng: np.random.Generator, pattern: str, side: str, zone: str,
                   cfg: CtPhantomConfig) -> Finding:
    """A finding of the given kind with size in cfg.size_range and strength ~ U(0.7, 1.3)."""
    lo, hi = cfg.size_range
    f = Finding(pattern, side, zone, size=float(rng.uniform(lo, hi)), strength=float(rng.uniform(0.7, 1.3)))
    if not ct_valid(f):
        raise ValueError(f"({side}, {zone}) is not a CT lobe: valid lobes are {CT_LOBES}")
    return f


def _check_findings(findings: list[Finding]) -> None:
    for f in findings:
        if not isinstance(f, Finding):
            raise TypeError(f"findings must be Finding objects, got {type(f).__name__}")
        if not ct_valid(f):
            raise ValueError(f"finding ({f.side}, {f.zone}) names no CT lobe: valid lobes are {CT_LOBES}")


def _noise(seed: int, kernel: str, z: float, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Correlated noise [H, W] of one slice; depends only on (seed, kernel, z). Uniform draws (4x cheaper than
    normal ones) become near-Gaussian once the kernel has summed nine of them."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 1 if kernel == "lung" else 2,
                                 int(round(z * 1000.0)) + 2**40])
    n = rng.random(shape, dtype=np.float32)
    n -= np.float32(0.5)
    n *= np.float32(math.sqrt(12.0))  # unit variance
    passes, gain = (1, 1 / 0.375) if kernel == "lung" else (2, 1 / 0.2734)  # [1 2 1]/4 per pass; keeps std
    for _ in range(passes):
        n[1:-1] = (n[:-2] + n[2:]) * 0.25 + n[1:-1] * 0.5
        n[:, 1:-1] = (n[:, :-2] + n[:, 2:]) * 0.25 + n[:, 1:-1] * 0.5
    n *= np.float32(sigma * gain)
    return n


def _grid(matrix: int, fov: float) -> np.ndarray:
    px = fov / matrix
    return (-fov / 2 + (np.arange(matrix) + 0.5) * px).astype(np.float32)


def render(anatomy: CtAnatomy, findings: list[Finding], z_mm: np.ndarray, *, matrix: int,
           fov_mm: float | None = None, thickness_mm: float = 5.0, contrast: bool = False, kernel: str = "lung",
           seed: int = 0, with_masks: bool = False, cfg: CtPhantomConfig) -> CtRender:
    """Axial slices centred at z_mm (any order and spacing), each a slab of thickness_mm.

    Returns HU float32 [Z, matrix, matrix]: row r at y = -fov/2 + (r + 0.5) * fov / matrix (anterior first),
    column c at x = -fov/2 + (c + 0.5) * fov / matrix (patient right first). kernel "lung" is sharper and
    noisier, "soft" smoother and quieter; noise std scales with sqrt(5 mm / thickness).
    """
    if not isinstance(cfg, CtPhantomConfig):
        raise TypeError("cfg must be a CtPhantomConfig")
    if kernel not in ("lung", "soft"):
        raise ValueError(f"kernel must be 'lung' or 'soft', got {kernel!r}")
    if not (isinstance(matrix, (int, np.integer)) and 32 <= matrix <= 1024):
        raise ValueError(f"matrix must be an int in [32, 1024], got {matrix!r}")
    if not 0.3 <= thickness_mm <= 20.0:
        raise ValueError(f"thickness_mm must be in [0.3, 20], got {thickness_mm}")
    fov = float(anatomy.fov_mm if fov_mm is None else fov_mm)
    if not 50.0 <= fov <= 600.0:
        raise ValueError(f"fov_mm must be in [50, 600], got {fov_mm}")
    _check_findings(findings)
    zs = np.asarray(z_mm, dtype=np.float64).ravel()
    grid = _grid(int(matrix), fov)
    hu, ext, masks = render_clean(anatomy, findings, zs, grid, grid, thickness_mm, contrast, with_masks, cfg)
    sigma = (cfg.noise_hu_lung_kernel if kernel == "lung" else cfg.noise_hu_soft_kernel)
    sigma *= math.sqrt(5.0 / thickness_mm)
    if sigma > 0:
        for k, z in enumerate(zs):
            hu[k] += _noise(seed, kernel, float(z), hu.shape[1:], sigma)
    np.clip(hu, -1024.0, 3071.0, out=hu)
    slices, boxes = [], []
    for e in ext:
        if e[1] < 0:
            slices.append((-1, -1))
            boxes.append((-1, -1, -1, -1, -1, -1))
        else:
            slices.append((int(e[0]), int(e[1])))
            boxes.append((int(e[0]), int(e[1]) + 1, int(e[2]), int(e[3]), int(e[4]), int(e[5])))
    return CtRender(hu=hu, lesion_slices=slices, lesion_boxes=boxes, lobe_masks=masks, z_mm=zs.copy(),
                    pixel_mm=fov / matrix, origin_xy_mm=(float(grid[0]), float(grid[0])))


def render_localizer(anatomy: CtAnatomy, findings: list[Finding], *, rows: int = 512, cols: int = 384,
                     cfg: CtPhantomConfig) -> tuple[np.ndarray, dict]:
    """Frontal (AP) scout: float32 [rows, cols] in 0..1 (bright = attenuating) and its geometry.

    Row 0 is the most superior row, column 0 the patient's right; columns are centred on x = 0. The geometry
    dict gives the square pixel spacing (mm, (row, col)), z_max_mm / z_min_mm of the first and last row centres
    and x_first_mm / x_last_mm of the first and last column centres.
    """
    if not isinstance(cfg, CtPhantomConfig):
        raise TypeError("cfg must be a CtPhantomConfig")
    if not (32 <= rows <= 4096 and 32 <= cols <= 4096):
        raise ValueError(f"rows and cols must be in [32, 4096], got {rows}, {cols}")
    _check_findings(findings)
    g = geometry_of(anatomy)
    z_hi, z_lo = anatomy.z_end_mm + 0.15 * g.H, anatomy.z_start_mm - 0.15 * g.H
    x_half = 0.5 * max(anatomy.fov_mm, 2 * g.A + 60.0)
    s = max((z_hi - z_lo) / rows, 2 * x_half / cols)
    zc = 0.5 * (z_hi + z_lo)
    zs = zc + ((rows - 1) / 2 - np.arange(rows)) * s  # descending: superior first
    xs = ((np.arange(cols) - (cols - 1) / 2) * s).astype(np.float32)  # centred on x = 0
    y0, y1 = g.yb - g.B - 4.0, g.y_back + anatomy.table_gap_mm + 14.0
    ny = 96
    ys = (y0 + (np.arange(ny) + 0.5) * (y1 - y0) / ny).astype(np.float32)
    # render every other row at the full column spacing, then fill the rows in between
    sub = zs[::2]
    hu, _, _ = render_clean(anatomy, findings, sub, xs, ys, 2 * s, False, False, cfg)
    path = (np.clip(hu + 1000.0, 0.0, None) / 1000.0).sum(axis=1) * ((y1 - y0) / ny / 10.0)  # cm of water
    full = np.empty((rows, cols), np.float64)
    full[::2] = path
    full[1::2] = 0.5 * (path + np.vstack([path[1:], path[-1:]]))[: rows // 2]
    img = (full / max(float(full.max()), 1e-6)) ** 1.2  # brightness ~ attenuation path, as a radiograph
    rng = np.random.default_rng([anatomy.seed, 5])
    img = np.clip(img + rng.normal(0, 0.01, img.shape), 0.0, 1.0).astype(np.float32)
    geo = {"pixel_spacing_mm": (float(s), float(s)), "rows": rows, "cols": cols,
           "z_max_mm": float(zs[0]), "z_min_mm": float(zs[-1]),  # z of the first (top) and last row centres
           "x_first_mm": float(xs[0]), "x_last_mm": float(xs[-1]),  # x of the first and last column centres
           "view": "AP"}
    return img, geo


def landmarks(anatomy: CtAnatomy) -> dict[str, tuple[float, float, float]]:
    """Points (x, y, z mm) inside named structures, for tests and sanity checks of a rendered volume."""
    g = geometry_of(anatomy)
    out = {}
    h = g.heart
    c, s = math.cos(h.angle), math.sin(h.angle)
    out["left_ventricle"] = (h.cx + 0.45 * h.ay * s, h.cy + 0.45 * h.ay * c, h.cz)
    zd = g.zb + 0.5 * g.H
    out["aorta"] = (g.xb + g.rvb + 0.55 * g.an.aorta_radius_mm, g.y_vb - 0.55 * g.rvb, zd)
    out["liver"] = (g.xb - 0.45 * g.a0, g.yc, g.zb - 0.02 * g.H)
    out["vertebra"] = (g.xb, g.y_vb, zd)
    zm = g.zb + 0.35 * g.H
    out["muscle"] = (g.xb + float(g.cavity_axes(zm)[0]) + g.an.rib_mm + 0.5 * g.an.muscle_mm, g.yc, zm)
    out["trachea"] = (float(g.carina[0]), float(g.carina[1]), g.z_car + 0.15 * g.H)
    for side in SIDES:
        k = CT_LOBES.index((side, "lower"))
        pts, depth = g.lobe_candidates[k]
        p = pts[int(np.argmax(depth))]
        out[f"{side}_lung"] = (float(p[0]), float(p[1]), float(p[2]))
    return {k: tuple(float(x) for x in v) for k, v in out.items()}
