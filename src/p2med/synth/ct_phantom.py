"""Synthetic pediatric chest CT in Hounsfield units, rendered analytically, with planted findings.

`sample_anatomy` draws one child's geometry once (millimetres, DICOM patient coordinates LPS: +x = patient
left, +y = posterior, +z = head); `render` evaluates the HU field at any axial slice positions, averaging
sub-planes across the slab thickness, so a 5 mm lung series, a 1 mm thin series and a contrast series of one
exam agree with each other; `render_localizer` projects the same field to a frontal scout. A finding is a soft,
irregular 3D field confined to its lobe (an effusion to the dependent base of its hemithorax); image noise
depends only on `seed`, the kernel and the slice position, so a volume rendered with and without a finding
differs exactly where the finding is.

It does not know DICOM: the writer stores `CtRender.hu` with a RescaleIntercept and files the truth.
Example::

    cfg = CtPhantomConfig()
    an = sample_anatomy(np.random.default_rng(0), age_years=6.0, cfg=cfg)
    z = np.arange(an.z_start_mm, an.z_end_mm, 5.0)             # ascending scan range, 5 mm apart
    out = render(an, [Finding("consolidation", "right", "lower", 0.2)], z, matrix=256, cfg=cfg)
    out.hu.shape, out.lesion_slices                            # (29, 256, 256) float32 HU, [(5, 8)]
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from p2med.synth.findings import CT_LOBES, SIDES, Finding, ct_valid

__all__ = ["CtPhantomConfig", "CtAnatomy", "CtRender", "sample_anatomy", "sample_finding", "render",
           "render_localizer", "landmarks"]

# (non-contrast, contrast-enhanced) HU of each tissue; contrast = portal-venous-like chest phase
_HU = {"fat": (-95.0, -90.0), "muscle": (50.0, 62.0), "mediastinum": (-88.0, -80.0), "neck": (40.0, 60.0),
       "diaphragm": (45.0, 65.0), "abdomen": (-45.0, -30.0), "liver": (60.0, 110.0), "spleen": (48.0, 120.0),
       "stomach_wall": (40.0, 75.0), "stomach_fluid": (12.0, 12.0), "myocardium": (45.0, 110.0),
       "left_heart": (40.0, 235.0), "right_heart": (40.0, 185.0), "thymus": (45.0, 70.0),
       "sysart": (40.0, 230.0), "pulart": (40.0, 190.0), "vein": (40.0, 180.0), "airwall": (10.0, 20.0),
       "airlumen": (-1000.0, -1000.0), "soft": (35.0, 50.0), "bone": (480.0, 480.0), "csf": (15.0, 15.0),
       "cartilage": (110.0, 110.0), "disc": (85.0, 90.0)}
# lesion target HU at strength 1 and the pattern's allowed range (contrast adds `enh`)
_LESION = {"patchy": dict(hu=-200.0, hi=0.0, enh=10.0), "consolidation": dict(hu=35.0, hi=50.0, enh=25.0),
           "ggo": dict(hu=-550.0, hi=-450.0, enh=0.0), "effusion": dict(hu=10.0, hi=20.0, enh=0.0)}
_TUBE_CLASSES = ("sysart", "pulart", "vein", "soft", "airwall", "airlumen", "bone")


@dataclass
class CtPhantomConfig:
    """How hard and how noisy the synthetic CT is."""

    size_range: tuple[float, float] = (0.12, 0.35)  # lesion width as a fraction of the hemithorax width
    contrast_scale: float = 1.0  # scales the lesions' HU difference from lung (lower = harder)
    noise_hu_lung_kernel: float = 25.0  # noise std (HU) of a 5 mm slice, sharp lung kernel (thinner = noisier)
    noise_hu_soft_kernel: float = 10.0  # the same for a smooth soft-tissue kernel
    matrix: int = 256  # pixels per row/col the writer uses by default (render takes it as an argument)

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


# ----------------------------------------------------------------------------------------------- geometry
def _occ(q, r_mm: float, px: float):
    """Soft occupancy of {q <= 1} where q is a squared normalised radius with radius r_mm at the edge."""
    k = r_mm / (2.0 * px)
    return _c01(0.5 + k - k * q)


def _c01(x):
    """Clip a fresh temporary array to [0, 1] in place (cheaper than np.clip on small arrays)."""
    np.minimum(x, 1.0, out=x)
    return np.maximum(x, 0.0, out=x)


def _smoothstep(v):
    v = _c01(v)
    return v * v * (3.0 - 2.0 * v)


def _span(axis: np.ndarray, lo: float, hi: float) -> slice:
    """Indices of an ascending axis with lo <= value <= hi."""
    return slice(int(np.searchsorted(axis, lo, "left")), int(np.searchsorted(axis, hi, "right")))


@dataclass(frozen=True)
class _Ellipsoid:
    cx: float
    cy: float
    cz: float
    ax: float
    ay: float
    az: float
    angle: float = 0.0  # in-plane rotation (radians) of the ax axis from +x towards -y (anterior)
    z0: float = -1e9  # hard z limits (cylinders: az = inf)
    z1: float = 1e9

    def section(self, z: float):
        """(scale, qz) of the axial section at z, or None when the plane misses it."""
        if not self.z0 <= z <= self.z1:
            return None
        qz = ((z - self.cz) / self.az) ** 2 if math.isfinite(self.az) else 0.0
        return None if qz >= 1.0 else (math.sqrt(1.0 - qz), qz)

    def bbox(self, scale: float) -> tuple[float, float, float, float]:
        r = max(self.ax, self.ay) * scale + 1.0
        return self.cx - r, self.cx + r, self.cy - r, self.cy + r

    def q(self, x, y, qz: float):
        """Squared normalised radius; x and y broadcast (row/column vectors or point arrays)."""
        dx, dy = x - self.cx, y - self.cy
        if self.angle:
            c, s = math.cos(self.angle), math.sin(self.angle)
            dx, dy = dx * c - dy * s, dx * s + dy * c
        return (dx / self.ax) ** 2 + (dy / self.ay) ** 2 + qz


class _Geometry:
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
        self.paths: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {c: [] for c in _TUBE_CLASSES}
        self._mediastinum()
        # abdomen below the domes
        a0, b0, yc, xb, H, zb = self.a0, self.b0, self.yc, self.xb, self.H, self.zb
        self.stomach = _Ellipsoid(xb + 0.4 * a0, yc - 0.12 * b0, zb + 0.02 * H, 0.3 * a0, 0.38 * b0, 0.22 * H)
        self.spleen = _Ellipsoid(xb + 0.62 * a0, yc + 0.5 * b0, zb - 0.03 * H, 0.24 * a0, 0.34 * b0, 0.2 * H,
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
        self.heart = _Ellipsoid(xb + 0.1 * a0, yc - 0.28 * b0, zb + 0.28 * H, an.heart_ratio * a0,
                                0.78 * an.heart_ratio * a0, 0.28 * H, math.radians(an.heart_angle_deg))
        h = self.heart
        ca, sa = math.cos(h.angle), math.sin(h.angle)
        self.lv = _Ellipsoid(h.cx + 0.3 * h.ay * sa, h.cy + 0.3 * h.ay * ca, h.cz - 0.05 * h.az, 0.68 * h.ax,
                             0.6 * h.ay, 0.75 * h.az, h.angle)  # left ventricle, posterior-left in the heart
        self.la = _Ellipsoid(h.cx - 0.1 * h.ax, h.cy + 0.85 * h.ay, h.cz + 0.5 * h.az, 0.42 * h.ax, 0.32 * h.ay,
                             0.32 * h.az)  # left atrium, behind the heart's upper part
        self.thymus = _Ellipsoid(xb + 0.02 * a0, yc - 0.55 * b0, zb + 0.72 * H, (0.14 + 0.22 * an.thymus) * a0,
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
        branches = [np.array([arch[k] + [0, 0, 0], arch[k] * [1, 1, 0] + [dx, 0, top]])
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
            _Ellipsoid(self.heart.cx, self.heart.cy, self.heart.cz, self.heart.ax + m, self.heart.ay + m,
                       self.heart.az + m, self.heart.angle),
            _Ellipsoid(self.thymus.cx, self.thymus.cy, self.thymus.cz, self.thymus.ax + m, self.thymus.ay + m,
                       self.thymus.az),
            _Ellipsoid(self.la.cx, self.la.cy, self.la.cz, self.la.ax + m, self.la.ay + m, self.la.az + m),
            _Ellipsoid(float(self.arch_top[0]) - 0.02 * a0, float(self.arch_top[1]), z_arch + 0.03 * H,
                       0.2 * a0 + ra, 0.4 * b0 + ra, 0.1 * H + ra),
            _Ellipsoid(x_da, y_da, 0.0, ra + m, ra + m, math.inf, z1=z_arch),
            _Ellipsoid(sv[0], sv[1] + 0.03 * b0, 0.0, 0.6 * ra + m, 0.6 * ra + m + 0.03 * b0, math.inf,
                       z0=self.heart.cz),
            _Ellipsoid(xb - 0.2 * a0, yc + 0.1 * b0, 0.0, 0.75 * ra + m, 0.75 * ra + m, math.inf,
                       z1=self.heart.cz - 0.3 * self.heart.az),
            _Ellipsoid(xb, self.y_vb, 0.0, 1.15 * self.rvb + m, self.rvb + m, math.inf),
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
def _geometry(an: CtAnatomy) -> _Geometry:
    return _Geometry(an)


# ----------------------------------------------------------------------------------------------- lesions
@dataclass
class _Lesion:
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

    def weight(self, g: _Geometry, X, Y, z: float, px: float):
        """Lesion weight in [0, 1] on a sub-grid (X [1, w], Y [h, 1]); exactly 0 where the lesion is absent."""
        if self.pattern == "effusion":
            a, b = (float(v) for v in g.cavity_axes(z))
            tau = max((z - g.zb) / self.height, 0.0)
            if tau >= 1.0:
                return None
            dx = X - g.xb
            yp = g.yc + b * np.sqrt(_c01(1.0 - (dx / a) ** 2))
            d = self.dmax * math.sqrt(1.0 - tau * tau) * (0.8 + 0.2 * _c01(np.abs(dx) / a))
            return _smoothstep((Y - (yp - d)) / 1.5)
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
        return _smoothstep((f * mod - self.lo) / (self.hi - self.lo))

    def air(self, X, Y, z: float, px: float):
        """Air-bronchogram occupancy on the sub-grid (0 where none)."""
        occ = None
        for a, b in self.bronchi:
            d = b - a
            dd = float(d @ d)
            vx, vy, vz = X - float(a[0]), Y - float(a[1]), z - float(a[2])
            t = _c01((vx * float(d[0]) + (vy * float(d[1]) + vz * float(d[2]))) / dd)
            r2 = (vx - t * float(d[0])) ** 2 + (vy - t * float(d[1])) ** 2 + (vz - t * float(d[2])) ** 2
            o = _c01((self.bronchus_mm - np.sqrt(r2)) / px + 0.5)
            occ = o if occ is None else np.maximum(occ, o)
        return occ


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def _make_lesion(g: _Geometry, f: Finding, dup: int, cfg: CtPhantomConfig, contrast: bool) -> _Lesion:
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
        return _Lesion(f.pattern, f.side, f.zone, target, (x0, x1, g.yc - dmax - 5, g.yc + g.b0 + 2,
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
    les = _Lesion(f.pattern, f.side, f.zone, target, (lo_[0], hi_[0], lo_[1], hi_[1], lo_[2], hi_[2]), blobs,
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


# ----------------------------------------------------------------------------------------------- tubes
def _splat(c: np.ndarray, r: np.ndarray, zs: np.ndarray, xs: np.ndarray, ys: np.ndarray, px: float):
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
            occ = _c01((rho[gi, None] - d) * (1.0 / px) + 0.5) * area[gi, None]
            np.maximum.at(buf, (base[gi, None] + offs[None, :]).ravel(), occ.ravel())
    return buf.reshape(p_n, wy, wx), boxes, (r_off, c_off)


# ----------------------------------------------------------------------------------------------- scene
class _Scene:
    """The HU field on one in-plane grid: z-independent parts once, then one axial plane at a time."""

    def __init__(self, g: _Geometry, lesions: list[_Lesion], xs: np.ndarray, ys: np.ndarray, contrast: bool):
        self.g, self.lesions, self.xs, self.ys = g, lesions, xs, ys
        self.t = {k: v[1] if contrast else v[0] for k, v in _HU.items()}
        self.px = px = float(min(xs[1] - xs[0], ys[1] - ys[0]))
        self.cs = _span(xs, g.xb - g.A - 3 * px, g.xb + g.A + 3 * px)
        self.rs = _span(ys, g.yb - g.B - 3 * px, g.y_back + 3 * px)
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
        width = _c01((230.0 - np.abs(x)) / px + 0.5)
        for lo, hi, hu in ((0.0, 12.0, 150.0), (1.8, 10.2, -900.0)):
            occ = _c01((d - lo) / px + 0.5) * _c01((hi - d) / px + 0.5) * width
            img += occ * (hu - img)
        for inset, hu in ((0.0, t["fat"]), (g.an.fat_mm, t["muscle"])):
            a, b = g.A - inset, g.B - inset
            q = ((x - g.xb) / a) ** 2 + ((y - g.yb) / b) ** 2
            occ = _occ(q, min(a, b), px) * _c01((g.y_back - inset - y) / px + 0.5)
            img += occ * (hu - img)
        return img.astype(np.float32)

    def plane(self, z: float, tubes: dict, want_lobes: bool, ring):
        """HU of the crop at z; the lung occupancy and its box; lesion changes; lobe conditions if wanted."""
        g, t, px, X, Y = self.g, self.t, self.px, self.X, self.Y
        f32 = np.float32
        hu = self.base[self.rs, self.cs].copy()
        tt = (z - g.zb) / g.H
        a, b = (float(v) for v in g.cavity_axes(z))
        cs, rs = _span(X, g.xb - a - 2 * px, g.xb + a + 2 * px), _span(Y, g.yc - b - 2 * px, g.yc + b + 2 * px)
        xc, yc = X[cs], Y[rs]
        xr, yr = xc[None, :], yc[:, None]
        q = (((yc - g.yc) / b) ** 2)[:, None] + (((xc - g.xb) / a) ** 2)[None, :]
        cav = _occ(q, min(a, b), px)
        v = hu[rs, cs]
        # diaphragm: above = thorax, below = abdomen, in between the muscle
        if z < g.dome_top:
            zd = g.dia_surface(xr, yr).astype(f32)
            above = _c01(z - zd + 0.5)
            below = _c01(zd - (g.t_dia + z) + 0.5)
            dia = t["diaphragm"]
            fill = dia + above * (t["mediastinum"] - dia) + below * (t["abdomen"] - dia)
        else:
            above, below = 1.0, None
            k = min(max((tt - 0.85) / 0.12, 0.0), 1.0)
            fill = t["mediastinum"] + k * (t["neck"] - t["mediastinum"])
        v += cav * (fill - v)
        if below is not None:
            self._abdomen(z, v, xc, yc, cav * below, a)
        self._heart(z, v, xc, yc, above, cav)
        for cls in ("sysart", "pulart", "vein", "soft", "airwall", "airlumen"):
            self._tube(hu, tubes[cls], t[cls])
        lung, lobes, changes, lung_box = self._lungs(z, hu, v, cs, rs, xc, yc, cav, above, want_lobes, tubes)
        self._spine(z, hu)
        self._ribs(z, hu, a, b, ring)
        self._tube(hu, tubes["bone"], t["bone"] * g.bone_k)
        return hu, lung, lung_box, lobes, changes

    def _tube(self, hu, tb, value):
        buf, (r0, r1, c0, c1), (ro, co) = tb
        if r0 < r1 and c0 < c1:
            sub = hu[r0:r1, c0:c1]
            sub += buf[r0 - ro:r1 - ro, c0 - co:c1 - co] * (value - sub)

    def _ell(self, e: _Ellipsoid, z: float, xc, yc):
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

    def _ell_section(self, e: _Ellipsoid, sec, xc, yc):
        scale, qz = sec
        x0, x1, y0, y1 = e.bbox(scale)
        cs, rs = _span(xc, x0, x1), _span(yc, y0, y1)
        if cs.start >= cs.stop or rs.start >= rs.stop:
            return None
        q = e.q(xc[cs][None, :], yc[rs][:, None], qz)
        return rs, cs, _occ(q, min(e.ax, e.ay) / max(scale, 0.2), self.px), q

    def _abdomen(self, z, v, xc, yc, ab, a):
        g, t, px = self.g, self.t, self.px
        xlb = g.xb - 0.1 * g.a0 + 0.5 * g.a0 * _c01((g.yc + 0.2 * g.b0 - yc) / g.b0)
        liver = _c01((xlb.astype(np.float32)[:, None] - xc[None, :]) / px + 0.5) * ab
        v += liver * (t["liver"] - v)
        e = self._ell(g.spleen, z, xc, yc)
        if e:
            rs, cs, occ, _ = e
            sub = v[rs, cs]
            sub += occ * ab[rs, cs] * (t["spleen"] - sub)
        e = self._ell(g.stomach, z, xc, yc)
        if e:
            rs, cs, occ, q = e
            sub = v[rs, cs]
            inner = _occ(q * 1.25, min(g.stomach.ax, g.stomach.ay), px)
            gas = _c01((g.stomach.cy - 0.25 * g.stomach.ay - yc[rs]) / px + 0.5)[:, None]
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
            r = self._ell(e, z, xc, yc)
            if not r:
                continue
            rs, cs, occ, q = r
            occ = occ * cav[rs, cs] if isinstance(above, float) else occ * cav[rs, cs] * above[rs, cs]
            w = wall[name] * min(e.ax, e.ay)
            blood = _occ(q / (1.0 - w / min(e.ax, e.ay)) ** 2, min(e.ax, e.ay) - w, self.px)
            val = t["myocardium"] + blood * (t[inner] - t["myocardium"])
            sub = v[rs, cs]
            sub += occ * (val - sub)
        if g.an.thymus > 0.05:
            r = self._ell(g.thymus, z, xc, yc)
            if r:
                rs, cs, occ, _ = r
                sub = v[rs, cs]
                sub += occ * cav[rs, cs] * (t["thymus"] - sub)

    def _lungs(self, z, hu, v, cs, rs, xc, yc, cav, above, want_lobes, tubes):
        g, t, px = self.g, self.t, self.px
        cw = g.column_halfwidth(z, yc).astype(np.float32)
        med = _c01((cw[:, None] - np.abs(xc - g.x_mid)[None, :]) / px + 0.5)
        for e in g.envelope:
            r = self._ell(e, z, xc, yc)
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
                lung[:, sl] *= _occ(qe, eax * sc, px)
        if sc <= 0.0 or z < g.zb - 1.0:
            return lung, {}, [], (rs, cs)
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

        changes = []
        for i, les in enumerate(self.lesions):
            x0, x1, y0, y1, z0, z1 = les.box
            if not z0 <= z <= z1:
                continue
            lc, lr = _span(xc, x0, x1), _span(yc, y0, y1)
            if lc.start >= lc.stop or lr.start >= lr.stop:
                continue
            w = les.weight(g, xc[lc][None, :], yc[lr][:, None], z, px)
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
                o_r, o_c = self.rs.start + rs.start + lr.start, self.cs.start + cs.start + lc.start
                changes.append((i, o_r + rows[0], o_r + rows[-1] + 1, o_c + cols[0], o_c + cols[-1] + 1))
                sub += delta
        v += lung * (hl - v)
        lobes = {}
        if want_lobes:
            full = slice(0, len(yc)), slice(0, len(xc))
            inside = lung > 0
            for side, zone in CT_LOBES:
                lobes[(side, zone)] = inside & cond(side, zone, *full)
        return lung, lobes, changes, (rs, cs)

    def _spine(self, z, hu):
        g, t, px = self.g, self.t, self.px
        r = g.rvb
        cs, rs = _span(self.X, g.xb - 2.3 * r, g.xb + 2.3 * r), _span(self.Y, g.y_vb - 1.3 * r, g.y_vb + 3.6 * r)
        x, y = self.X[cs], self.Y[rs]
        sub = hu[rs, cs]
        phase = ((g.z_t1 - z) / g.hv) % 1.0
        gap = min(phase, 1.0 - phase) * g.hv  # mm to the nearest disc centre
        bone = min(max((gap - 0.13 * g.hv) / 1.0 + 0.5, 0.0), 1.0)
        qb = (((y - g.y_vb) / r) ** 2)[:, None] + (((x - g.xb) / (1.15 * r)) ** 2)[None, :]
        occ = _occ(qb, r, px)
        cortex = _c01((qb - 0.8) * 8.0)
        body = t["disc"] + bone * (g.bone_k * (240.0 + cortex * 560.0) - t["disc"])
        sub += occ * (body - sub)
        rc = 0.55 * r
        yc_ = g.y_vb + 1.05 * r + rc
        qc = (((y - yc_) / rc) ** 2)[:, None] + (((x - g.xb) / rc) ** 2)[None, :]
        lam = min(max(min(phase - 0.1, 0.8 - phase) * g.hv / 1.0 + 0.5, 0.0), 1.0)  # posterior elements
        if lam > 0:
            ring = _occ(qc / (1.0 + 0.55 * r / rc) ** 2, rc + 0.55 * r, px)
            ax = np.abs(x - g.xb)
            tp = _c01((0.22 * r - np.abs(y - (yc_ - 0.2 * r))) / px + 0.5)[:, None] * \
                _c01((2.1 * r - ax) / px + 0.5)[None, :]
            sp = _c01((0.17 * r - ax) / px + 0.5)[None, :] * \
                _c01((yc_ + rc + 1.3 * r - y) / px + 0.5)[:, None] * (y > yc_)[:, None]
            post = np.maximum(np.maximum(ring, tp), sp) * lam
            sub += post * (g.bone_k * 500.0 - sub)
        sub += _occ(qc, rc, px) * (t["csf"] - sub)

    def _ring_band(self, z, a, b):
        """(q_in, q_out) of the chest-wall band holding ribs, costal cartilage and (high up) the scapulae."""
        g = self.g
        tt = (z - g.zb) / g.H
        delta = g.an.rib_mm / (0.5 * (a + b))
        scap = 0.42 < tt < 1.02
        return 1.0 - 2 * self.px / b, 1.0 + delta + (0.09 if scap else 0.0) + 2 * self.px / a, delta, scap

    def ring(self, z0: float, z1: float):
        """Crop pixels that may hold ribs anywhere in the slab [z0, z1]: (rows, cols, x, y) relative to the
        cavity centre; evaluated once per slab, refined per plane."""
        g = self.g
        (a0, b0), (a1, b1) = (tuple(float(v) for v in g.cavity_axes(z)) for z in (z0, z1))
        q_in = min(self._ring_band(z, a, b)[0] for z, a, b in ((z0, a0, b0), (z1, a1, b1)))
        q_out = max(self._ring_band(z, a, b)[1] for z, a, b in ((z0, a0, b0), (z1, a1, b1), (0.5 * (z0 + z1), a0, b0)))
        ai, bi, ao, bo = min(a0, a1) * q_in, min(b0, b1) * q_in, max(a0, a1) * q_out, max(b0, b1) * q_out
        cs, rs = _span(self.X, g.xb - ao, g.xb + ao), _span(self.Y, g.yc - bo, g.yc + bo)
        x, y = (self.X[cs] - g.xb).astype(np.float32), (self.Y[rs] - g.yc).astype(np.float32)
        x2, y2 = x * x, y * y
        ri, ci = np.nonzero(((y2 / (bo * bo))[:, None] + (x2 / (ao * ao))[None, :] < 1.0)
                            & ((y2 / (bi * bi))[:, None] + (x2 / (ai * ai))[None, :] > 1.0))
        return ri + rs.start, ci + cs.start, x[ci], y[ri]

    def _ribs(self, z, hu, a, b, ring):
        g, t, px = self.g, self.t, self.px
        tt = (z - g.zb) / g.H
        delta, scap = self._ring_band(z, a, b)[2:]
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
        occ = (_c01((1.0 - rn) * (0.5 * g.an.rib_mm / px) + 0.5) * ok).astype(np.float32)
        bone = g.bone_k * (220.0 + 520.0 * _c01((rn - 0.55) * 5.0))
        val = np.where(th > g.rib_end[i], t["cartilage"], bone).astype(np.float32)
        if scap:
            q0 = 1.0 + delta + 0.06
            band = _c01((0.03 - np.abs(qn - q0 - 0.015)) * a / px + 0.5)
            band *= _c01((0.1 * np.pi - np.abs(th - 0.3 * np.pi)) * a / px + 0.5)
            band *= min(max((tt - 0.42) * g.H / 2.0, 0.0), 1.0) * min(max((1.02 - tt) * g.H / 2.0, 0.0), 1.0)
            pick = band > occ
            val = np.where(pick, g.bone_k * 520.0, val).astype(np.float32)
            occ = np.maximum(occ, band).astype(np.float32)
        # sternum: ossified segments in cartilage, in the anterior chest wall
        if 0.2 < tt < 0.9:
            ys_ = -b - 0.55 * g.an.rib_mm
            hw = (0.16 if tt > 0.78 else 0.1) * g.a0
            qs = ((y - ys_) / (0.55 * g.an.rib_mm)) ** 2 + (x / hw) ** 2
            so = _occ(qs, 0.55 * g.an.rib_mm, px)
            ph = ((z - g.zb - 0.2 * g.H) / (0.12 * g.H)) % 1.0
            ossified = min(max(min(ph, 0.75 - ph) * 0.12 * g.H / 1.0 + 0.5, 0.0), 1.0)
            sval = t["cartilage"] + ossified * (g.bone_k * 380.0 - t["cartilage"])
            pick = so > occ
            val = np.where(pick, sval, val).astype(np.float32)
            occ = np.maximum(occ, so).astype(np.float32)
        cur = hu[rows, cols]
        hu[rows, cols] = cur + occ * (val - cur)


# ----------------------------------------------------------------------------------------------- public
def _check_findings(findings: list[Finding]) -> None:
    for f in findings:
        if not isinstance(f, Finding):
            raise TypeError(f"findings must be Finding objects, got {type(f).__name__}")
        if not ct_valid(f):
            raise ValueError(f"finding ({f.side}, {f.zone}) names no CT lobe: valid lobes are {CT_LOBES}")


def _lesions(g: _Geometry, findings: list[Finding], cfg: CtPhantomConfig, contrast: bool) -> list[_Lesion]:
    seen: dict[tuple[str, str, str], int] = {}
    out = []
    for f in findings:
        key = (f.pattern, f.side, f.zone)
        out.append(_make_lesion(g, f, seen.get(key, 0), cfg, contrast))
        seen[key] = seen.get(key, 0) + 1
    return out


def _render_clean(an: CtAnatomy, findings: list[Finding], zs: np.ndarray, xs: np.ndarray, ys: np.ndarray,
                  thickness: float, contrast: bool, with_masks: bool, cfg: CtPhantomConfig):
    """Noise-free HU [Z, ny, nx] at slab centres zs (any order), lesion extents [n, 6] and lobe masks."""
    g = _geometry(an)
    scene = _Scene(g, _lesions(g, findings, cfg, contrast), xs, ys, contrast)
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
        tubes_all = {cls: _splat(*g.spheres[cls], zsub, xw, yh, scene.px) for cls in _TUBE_CLASSES}
        for k in ks:
            acc = np.zeros((len(yh), len(xw)), np.float32)
            ring = scene.ring(float(zs[k] + offs[0]), float(zs[k] + offs[-1]))
            for j in range(n_sub):
                i = (k - k0) * n_sub + j
                tubes = {cls: (buf[i], box[i], off) for cls, (buf, box, off) in tubes_all.items()}
                hu, lung, (lr, lc), lobes, changes = scene.plane(float(zsub[i]), tubes, with_masks, ring)
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
    hu, ext, masks = _render_clean(anatomy, findings, zs, grid, grid, thickness_mm, contrast, with_masks, cfg)
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
    g = _geometry(anatomy)
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
    hu, _, _ = _render_clean(anatomy, findings, sub, xs, ys, 2 * s, False, False, cfg)
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
    g = _geometry(anatomy)
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
