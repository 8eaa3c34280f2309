"""Synthetic chest CT exams as DICOM series with correct geometry, and the distractors a real exam carries.

Every exam has a localizer and the non-contrast 5 mm lung-kernel series the pipeline must pick; some have a
non-contrast soft-tissue-kernel 5 mm series, a 1 mm (1.25 mm on GE) thin series, a contrast-enhanced 5 mm lung
series (sometimes over a different z range) and a coronal 5 mm reformat. Stored values become HU through
RescaleSlope/Intercept (signed and unsigned vendors). Series numbers do not say which is which.
Example: ``write_ct_exam(spec, ctx, anatomy, cfg)`` -> ``([(path, bytes)], truth)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from .ct_phantom import CtAnatomy, CtPhantomConfig, render, render_localizer
from .dicom_common import StudyContext, base_dataset, da, set_pixels, tm, to_bytes, uid
from .findings import Finding

CT_SOP = "1.2.840.10008.5.1.4.1.1.2"


@dataclass(frozen=True)
class CtVendor:
    manufacturer: str
    model: str
    lung_kernel: str
    soft_kernel: str
    signed: bool            # PixelRepresentation 1
    intercept: float        # RescaleIntercept (slope 1)
    thin_mm: float
    head_first_instances: bool   # InstanceNumber 1 at the top of the chest
    syntax: str
    names: dict             # role -> SeriesDescription


CT_VENDORS = (
    CtVendor("SIEMENS", "SOMATOM Definition AS", "B70f", "B31f", False, -1024.0, 1.0, True, ExplicitVRLittleEndian,
             {"nc_lung": "Thorax 5.0 B70f", "nc_soft": "Thorax 5.0 B31f", "thin": "Thorax 1.0 B70f",
              "ce_lung": "Thorax C+ 5.0 B70f", "coronal": "Thorax Cor 5.0 B70f", "localizer": "Topogram 0.6 T20f"}),
    CtVendor("GE MEDICAL SYSTEMS", "Revolution CT", "LUNG", "STANDARD", True, -1024.0, 1.25, False,
             ExplicitVRLittleEndian,
             {"nc_lung": "5mm Lung", "nc_soft": "5mm Stnd", "thin": "1.25mm Lung", "ce_lung": "C+ 5mm Lung",
              "coronal": "Coronal Lung 5mm", "localizer": "Scout"}),
    CtVendor("Philips", "Brilliance 64", "YC", "B", False, -1024.0, 1.0, True, ImplicitVRLittleEndian,
             {"nc_lung": "Chest 5mm YC", "nc_soft": "Chest 5mm B", "thin": "Chest 1mm YC", "ce_lung": "Chest C+ 5mm YC",
              "coronal": "COR Chest 5mm YC", "localizer": "Surview"}),
    CtVendor("UIH", "uCT 760", "B_LUNG_S", "B_SOFT_B", True, 0.0, 1.0, True, ExplicitVRLittleEndian,
             {"nc_lung": "胸部平扫 肺窗 5mm", "nc_soft": "胸部平扫 纵隔窗 5mm", "thin": "胸部平扫 肺窗 1mm",
              "ce_lung": "胸部增强 肺窗 5mm", "coronal": "冠状位 肺窗 5mm", "localizer": "定位像"}),
    CtVendor("TOSHIBA", "Aquilion ONE", "FC52", "FC13", True, 0.0, 1.0, False, ExplicitVRLittleEndian,
             {"nc_lung": "Lung 5.0", "nc_soft": "Mediastinum 5.0", "thin": "Lung 1.0", "ce_lung": "Lung C+ 5.0",
              "coronal": "Lung COR 5.0", "localizer": "Scanogram"}),
)


@dataclass
class CtExamSpec:
    """Everything random about one CT exam, decided by the planner (picklable)."""

    exam_id: str
    findings: list[Finding]
    vendor: int
    render_seed: int
    soft: bool                  # add a non-contrast soft-tissue-kernel 5 mm series
    thin: bool                  # add a thin lung series
    contrast: bool              # add a contrast-enhanced 5 mm lung series
    ce_extra: tuple[int, int]   # slices the CE series adds (+) or drops (-) at its (top, bottom)
    coronal: bool               # add a coronal 5 mm reformat
    layout: int                 # 0: S<n>/I<k>.dcm, 1: flat <SOPInstanceUID>.dcm
    series_order: tuple[int, ...] = ()   # a permutation giving series numbers (empty: natural order)
    localizer: bool = True      # add the localizer (scout) image
    extra: dict = field(default_factory=dict)


def _lesion_truth(out, z: np.ndarray) -> list[dict]:
    """Per finding: slice indices (z ascending), their z in mm and the voxel box; None when not in range."""
    rows = []
    for s, b in zip(out.lesion_slices, out.lesion_boxes):
        if s[0] < 0:
            rows.append({"slices": None, "z_mm": None, "box": None})
            continue
        rows.append({"slices": [int(s[0]), int(s[1])], "z_mm": [round(float(z[s[0]]), 3), round(float(z[s[1]]), 3)],
                     "box": [int(v) for v in b]})
    return rows


def _stored(hu: np.ndarray, v: CtVendor) -> np.ndarray:
    lo, hi = (-32768, 32767) if v.signed else (0, 4095)
    return np.clip(np.rint(hu - v.intercept), lo, hi).astype(np.int32)


def _axial_series(ctx, spec, v, role, number, hu, z, thickness, kernel, contrast, fov, files, rng):
    """Encode an axial volume ``hu`` [Z, H, W] (z ascending) as one series."""
    n, rows, cols = hu.shape
    ps = fov / cols
    series_uid = uid(ctx.seed, spec.exam_id, role, "series")
    order = np.arange(n)[::-1] if v.head_first_instances else np.arange(n)
    names = []
    for inst, k in enumerate(order, 1):
        sop = uid(ctx.seed, spec.exam_id, role, int(k))
        ds = base_dataset(ctx, CT_SOP, sop, "CT")
        _equipment(ds, v, ctx, rng)
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = number
        ds.SeriesDescription = v.names[role]
        ds.InstanceNumber = inst
        ds.AcquisitionNumber = 2 if contrast else 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.FrameOfReferenceUID = uid(ctx.seed, spec.exam_id, "frame")
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [round(-fov / 2 + ps / 2, 3), round(-fov / 2 + ps / 2, 3), round(float(z[k]), 3)]
        ds.SliceLocation = round(float(z[k]), 3)
        ds.PixelSpacing = [round(ps, 6), round(ps, 6)]
        ds.SliceThickness = thickness
        if rng.random() < 0.5:
            ds.SpacingBetweenSlices = round(float(z[1] - z[0]), 3) if n > 1 else thickness
        ds.ConvolutionKernel = kernel
        ds.RescaleIntercept = v.intercept
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.WindowCenter, ds.WindowWidth = (-600, 1500) if kernel == v.lung_kernel else (40, 400)
        if contrast:
            ds.ContrastBolusAgent = "碘海醇 Iohexol 300"
            ds.ContrastBolusRoute = "IV"
        set_pixels(ds, _stored(hu[k], v), 16 if v.signed else 12, v.signed, "MONOCHROME2")
        name = f"S{number}/I{inst:04d}.dcm" if spec.layout == 0 else f"{sop}.dcm"
        files.append((name, to_bytes(ds, v.syntax)))
        names.append(name)
    return {"role": role, "series_number": number, "description": v.names[role], "kernel": kernel,
            "thickness_mm": thickness, "contrast": contrast, "orientation": "axial", "n_slices": n,
            "z_min_mm": round(float(z.min()), 3), "z_max_mm": round(float(z.max()), 3),
            "series_instance_uid": series_uid}


def _equipment(ds, v: CtVendor, ctx: StudyContext, rng) -> None:
    ds.Manufacturer = v.manufacturer
    ds.ManufacturerModelName = v.model
    ds.StationName = "CT" + str(int(rng.integers(1, 5)))
    ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = da(ctx.when.date())
    ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = tm(ctx.when)
    ds.BodyPartExamined = "CHEST"
    ds.KVP = 100 if rng.random() < 0.6 else 80
    ds.PatientPosition = "FFS" if not v.head_first_instances else "HFS"


def write_ct_exam(spec: CtExamSpec, ctx: StudyContext, anatomy: CtAnatomy, cfg: CtPhantomConfig
                  ) -> tuple[list[tuple[str, bytes]], dict]:
    """Render and encode every series of the exam. Returns ``([(relative path, bytes)], truth)``."""
    v = CT_VENDORS[spec.vendor]
    rng = np.random.default_rng([spec.render_seed, 11])
    matrix = cfg.matrix
    fov = float(anatomy.fov_mm)
    step = float(cfg.slice_interval_mm)     # 5 mm slabs, `step` apart (more than 5: gaps between them)
    z = np.arange(anatomy.z_start_mm, anatomy.z_end_mm + 1e-6, step)   # slice centres, ascending
    roles = ["localizer"] * spec.localizer + ["nc_lung"] + ["nc_soft"] * spec.soft + ["thin"] * spec.thin \
        + ["ce_lung"] * spec.contrast + ["coronal"] * spec.coronal
    numbers = {r: i + 1 for i, r in enumerate(roles)}
    if spec.series_order:
        numbers = {r: int(spec.series_order[i]) for i, r in enumerate(roles)}
    files: list[tuple[str, bytes]] = []
    series = []
    truth_lesions: dict = {}

    nc = render(anatomy, spec.findings, z, matrix=matrix, fov_mm=fov, thickness_mm=5.0, contrast=False,
                kernel="lung", seed=spec.render_seed, cfg=cfg)
    series.append(_axial_series(ctx, spec, v, "nc_lung", numbers["nc_lung"], nc.hu, z, 5.0, v.lung_kernel, False,
                                fov, files, rng))
    truth_lesions["nc_lung"] = _lesion_truth(nc, z)
    if spec.soft:
        soft = render(anatomy, spec.findings, z, matrix=matrix, fov_mm=fov, thickness_mm=5.0, contrast=False,
                      kernel="soft", seed=spec.render_seed + 1, cfg=cfg)
        series.append(_axial_series(ctx, spec, v, "nc_soft", numbers["nc_soft"], soft.hu, z, 5.0, v.soft_kernel,
                                    False, fov, files, rng))
    thin_vol = None
    if spec.thin:
        zt = np.arange(anatomy.z_start_mm, anatomy.z_end_mm + 1e-6, v.thin_mm)
        thin = render(anatomy, spec.findings, zt, matrix=matrix, fov_mm=fov, thickness_mm=v.thin_mm, contrast=False,
                      kernel="lung", seed=spec.render_seed + 2, cfg=cfg)
        thin_vol = (thin.hu, zt)
        series.append(_axial_series(ctx, spec, v, "thin", numbers["thin"], thin.hu, zt, v.thin_mm, v.lung_kernel,
                                    False, fov, files, rng))
    if spec.contrast:
        top, bottom = spec.ce_extra
        zc = np.arange(anatomy.z_start_mm - step * bottom, anatomy.z_end_mm + step * top + 1e-6, step)
        ce = render(anatomy, spec.findings, zc, matrix=matrix, fov_mm=fov, thickness_mm=5.0, contrast=True,
                    kernel="lung", seed=spec.render_seed + 3, cfg=cfg)
        series.append(_axial_series(ctx, spec, v, "ce_lung", numbers["ce_lung"], ce.hu, zc, 5.0, v.lung_kernel, True,
                                    fov, files, rng))
        truth_lesions["ce_lung"] = _lesion_truth(ce, zc)
    if spec.coronal:
        series.append(_coronal_series(ctx, spec, v, numbers["coronal"], anatomy, cfg, fov, matrix, thin_vol, files,
                                      rng))
    if spec.localizer:
        series.append(_localizer(ctx, spec, v, numbers["localizer"], anatomy, cfg, files, rng))
    truth = {"modality": "CT", "vendor": v.manufacturer, "series": sorted(series, key=lambda s: s["series_number"]),
             "lesions": truth_lesions, "study_instance_uid": uid(ctx.seed, spec.exam_id, "study")}
    return files, truth


def _coronal_series(ctx, spec, v, number, anatomy, cfg, fov, matrix, thin_vol, files, rng) -> dict:
    """A coronal 5 mm reformat: rows run head to feet, columns patient right to left."""
    if thin_vol is None:
        zt = np.arange(anatomy.z_start_mm, anatomy.z_end_mm + 1e-6, 2.0)
        hu = render(anatomy, spec.findings, zt, matrix=matrix, fov_mm=fov, thickness_mm=2.0, contrast=False,
                    kernel="lung", seed=spec.render_seed + 4, cfg=cfg).hu
    else:
        hu, zt = thin_vol
    ps = fov / matrix
    dz = float(zt[1] - zt[0])
    step = max(1, int(round(5.0 / ps)))
    ys = np.arange(step // 2, matrix, step)
    series_uid = uid(ctx.seed, spec.exam_id, "coronal", "series")
    for inst, yi in enumerate(ys, 1):
        lo, hi = max(0, yi - step // 2), min(matrix, yi + step // 2 + 1)
        plane = hu[:, lo:hi, :].mean(axis=1)[::-1]     # [Z, W], top row = most superior
        sop = uid(ctx.seed, spec.exam_id, "coronal", int(yi))
        ds = base_dataset(ctx, CT_SOP, sop, "CT")
        _equipment(ds, v, ctx, rng)
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = number
        ds.SeriesDescription = v.names["coronal"]
        ds.InstanceNumber = inst
        ds.ImageType = ["DERIVED", "SECONDARY", "REFORMATTED"]
        ds.FrameOfReferenceUID = uid(ctx.seed, spec.exam_id, "frame")
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
        y = -fov / 2 + ps / 2 + float(yi) * ps
        ds.ImagePositionPatient = [round(-fov / 2 + ps / 2, 3), round(y, 3), round(float(zt.max()), 3)]
        ds.PixelSpacing = [round(dz, 6), round(ps, 6)]
        ds.SliceThickness = 5.0
        ds.ConvolutionKernel = v.lung_kernel
        ds.RescaleIntercept = v.intercept
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.WindowCenter, ds.WindowWidth = -600, 1500
        set_pixels(ds, _stored(plane, v), 16 if v.signed else 12, v.signed, "MONOCHROME2")
        name = f"S{number}/I{inst:04d}.dcm" if spec.layout == 0 else f"{sop}.dcm"
        files.append((name, to_bytes(ds, v.syntax)))
    return {"role": "coronal", "series_number": number, "description": v.names["coronal"], "kernel": v.lung_kernel,
            "thickness_mm": 5.0, "contrast": False, "orientation": "coronal", "n_slices": int(len(ys)),
            "series_instance_uid": series_uid}


def _localizer(ctx, spec, v, number, anatomy, cfg, files, rng) -> dict:
    image, geom = render_localizer(anatomy, spec.findings, cfg=cfg)
    sop = uid(ctx.seed, spec.exam_id, "localizer", 0)
    ds = base_dataset(ctx, CT_SOP, sop, "CT")
    _equipment(ds, v, ctx, rng)
    ds.SeriesInstanceUID = uid(ctx.seed, spec.exam_id, "localizer", "series")
    ds.SeriesNumber = number
    ds.SeriesDescription = v.names["localizer"]
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.FrameOfReferenceUID = uid(ctx.seed, spec.exam_id, "frame")
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    spacing = geom.get("pixel_spacing_mm", 1.0)
    spacing = list(spacing) if isinstance(spacing, (list, tuple)) else [spacing, spacing]
    ds.ImagePositionPatient = [round(float(geom.get("x_first_mm", -image.shape[1] * spacing[1] / 2)), 3), 0.0,
                               round(float(geom.get("z_max_mm", anatomy.z_end_mm)), 3)]
    ds.PixelSpacing = [round(float(spacing[0]), 6), round(float(spacing[1]), 6)]
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    stored = np.clip(np.rint(image * 4095), 0, 4095).astype(np.int32)
    set_pixels(ds, stored, 12, False, "MONOCHROME2")
    name = f"S{number}/I0001.dcm" if spec.layout == 0 else f"{sop}.dcm"
    files.append((name, to_bytes(ds, v.syntax)))
    return {"role": "localizer", "series_number": number, "description": v.names["localizer"], "kernel": "",
            "thickness_mm": None, "contrast": False, "orientation": "localizer", "n_slices": 1,
            "series_instance_uid": ds.SeriesInstanceUID}
