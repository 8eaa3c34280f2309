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

This module is the public entry point (config, anatomy sampling, `render`, `to_stored`); the parts live in
`xray_frame` (pose, pixel <-> anatomy map), `xray_primitives` (profiles, textures, vessels), `xray_chest` (zones,
placement, tissue densities), `xray_frontal` / `xray_lateral` (each view's anatomy) and `xray_lesions`.

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
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from p2med.synth.findings import SIDES, ZONES, Finding
from p2med.synth.xray_frame import LOW, pose_of, up2
from p2med.synth.xray_frontal import Frontal
from p2med.synth.xray_lateral import Lateral
from p2med.synth.xray_lesions import plant
from p2med.synth.xray_primitives import textures

VIEWS = ("frontal", "lateral")

# Detector model: density -> transmission -> log signal -> display
_KAPPA = 2.6          # transmission = exp(-_KAPPA * density)
_WINDOW = (0.10, 1.02)  # log-signal window mapped to display 0..1 (air below 0.10 is black)
_GAMMA = 1.15
_NOISE_REF_DENSITY = 0.30  # cfg.noise is the display noise std at this density (aerated lung) and mean exposure


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

    pose = pose_of(anatomy, jitter)
    chest = Frontal(anatomy, pose) if view == "frontal" else Lateral(anatomy, pose)
    frame = chest.frame(H, W, pose)
    X, Y = frame.grid(LOW)                                              # [h, w] anatomy units
    D_low, air_low = chest.density(X, Y, frame, textures(anatomy.key))
    D_low = ndimage.gaussian_filter(D_low, 0.8)                          # geometric unsharpness (anatomy only)
    trans = np.exp(-_KAPPA * D_low)
    coarse = ndimage.gaussian_filter(trans[::4, ::4], 0.3 * frame.ppu / (4 * LOW), mode="nearest")
    fog = ndimage.zoom(coarse, (trans.shape[0] / coarse.shape[0], trans.shape[1] / coarse.shape[1]), order=1,
                       grid_mode=True, mode="nearest")[: trans.shape[0], : trans.shape[1]]
    D, air, fog = (up2(a, H, W) for a in (D_low, air_low, fog.astype(np.float32)))   # [H, W] each

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

    lesion_boxes = [plant(f, i, chest, frame, air, masks[f.side], zone_boxes[(f.side, f.zone)], D, seed, cfg)
                    for i, f in enumerate(findings)]

    # pointwise: density -> detected quanta (+ scatter fog) -> log signal + quantum noise -> display
    q = exposure * (np.exp(-_KAPPA * D) + anatomy.scatter * fog)
    lo_w, hi_w = _WINDOW
    c_noise = cfg.noise * (hi_w - lo_w) * math.exp(-0.5 * _KAPPA * _NOISE_REF_DENSITY)
    L = -np.log(q) * (1.0 / _KAPPA) + z * (c_noise / np.sqrt(q))
    image = np.clip((L - lo_w) * (1.0 / (hi_w - lo_w)), 0.0, 1.0) ** _GAMMA
    return XrayRender(image=image.astype(np.float32), zone_boxes=zone_boxes, lesion_boxes=lesion_boxes,
                      lung_masks=masks, pixel_spacing_mm=anatomy.thorax_mm / frame.ppu)
