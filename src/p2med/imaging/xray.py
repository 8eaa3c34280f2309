"""A radiograph exam -> its frontal view (and lateral, when kept) as [1, H, W] images in 0..1, 1 = white.

Candidates are the exam's radiograph DICOMs (CR, DX, ...), PNG / JPEG files and 2-D NIfTI files. Each is
displayed - modality LUT (RescaleSlope/Intercept or the LUT sequence), then the header's VOI LUT sequence or
window, else a percentile window, then MONOCHROME1 inverted - and its view decided by ``xray_view`` (header rules
first, the image content last). One frontal is kept (SPEC: AP, or AP + lateral) and, with ``keep_lateral``, one
lateral; a second image of a view, an oblique view or an exam with no frontal view is excluded with its reason.
Example: ``images, warnings = process_xr(idx, cfg)`` -> ``[(entry, float32 [1, 336, 336]), ...]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pydicom

from .config import IngestConfig
from .dicom_header import BadFile, DicomHeader
from .dicom_index import XR_MODALITIES, ExamIndex
from .other_formats import read_nifti, read_raster
from .pixels import read_frames
from .resize import Resizer
from .window import invert, percentile_window, voi_window
from .xray_view import ViewCall, view_from_content, view_from_header, view_from_name

_RULE_RANK = {"ViewPosition": 0, "PatientOrientation": 1, "description": 2, "file_name": 3, "image_content": 4}


@dataclass
class Radiograph:
    name: str
    header: DicomHeader | None
    image: np.ndarray            # displayed, float32 [H, W] in 0..1, 1 = white
    window: dict                 # how the display values were made
    spacing: tuple[float, float] | None
    call: ViewCall
    notes: list[str]


def display_dicom(h: DicomHeader, cfg: IngestConfig) -> tuple[np.ndarray, dict, list[str]]:
    """Stored values -> 0..1 display image [H, W] (1 = white), the window used, and notes."""
    notes = []
    if h.n_frames > 1:
        notes.append(f"multi-frame radiograph: frame 1 of {h.n_frames} used")
    raw = read_frames(h, [0])[0]
    ds = None
    if h.has_modality_lut_seq or h.has_voi_lut_seq:
        from pydicom.pixels import apply_modality_lut, apply_voi_lut
        ds = pydicom.dcmread(h.path, force=True, stop_before_pixels=True)
    if h.has_modality_lut_seq:
        x = np.asarray(apply_modality_lut(raw, ds))
    elif h.rescale_slope not in (None, 1.0) or h.rescale_intercept not in (None, 0.0):
        x = raw.astype(np.float32) * np.float32(h.rescale_slope or 1.0) + np.float32(h.rescale_intercept or 0.0)
    else:
        x = raw
    if h.has_voi_lut_seq:
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2]) or 16
        ints = np.rint(x).astype(np.int64) if x.dtype.kind == "f" else x      # a LUT is indexed by integers
        y = np.clip(np.asarray(apply_voi_lut(ints, ds, prefer_lut=True), np.float32) / np.float32(2**bits - 1), 0, 1)
        window = {"kind": "voi_lut_sequence"}
    elif h.window_center and h.window_width and math.isfinite(h.window_center[0]) and 0 < h.window_width[0] < math.inf:
        c, w = h.window_center[0], h.window_width[0]
        y = voi_window(x.astype(np.float32), c, w, h.voi_function)
        window = {"kind": "header", "center": c, "width": w, "function": (h.voi_function or "LINEAR").upper()}
    else:
        y, lo, hi = percentile_window(x.astype(np.float32), *cfg.xray_percentiles)
        window = {"kind": "percentile", "percentiles": list(cfg.xray_percentiles), "low": lo, "high": hi}
    if not np.isfinite(y).all():
        raise BadFile("bad_header", "the display values are not finite (RescaleSlope/Intercept or pixel data)",
                      h.path)
    if (h.photometric or "").upper() == "MONOCHROME1":
        invert(y)
        window["inverted"] = True
    return np.ascontiguousarray(y, np.float32), window, notes


def _candidates(idx: ExamIndex, cfg: IngestConfig) -> list[Radiograph]:
    out = []
    for name in sorted(idx.pending(idx.dicom)):
        h = idx.dicom[name]
        if (h.modality or "").upper() not in XR_MODALITIES and h.modality:
            continue
        shown = idx.read(name, lambda _, h=h: display_dicom(h, cfg))
        if shown is None:
            continue
        img, window, notes = shown
        spacing = h.pixel_spacing or h.imager_pixel_spacing
        out.append(Radiograph(name, h, img, window, tuple(spacing[:2]) if spacing and len(spacing) >= 2 else None,
                              view_from_header(h, cfg), notes))
    for name in idx.pending(idx.rasters):
        loaded = idx.read(name, read_raster)
        if loaded is None:
            continue
        arr, bits = loaded
        if bits == 8:
            img, window = arr * np.float32(1 / 255), {"kind": "png_8bit", "scale": "1/255"}
        else:
            img, lo, hi = percentile_window(arr, *cfg.xray_percentiles)
            window = {"kind": "percentile", "percentiles": list(cfg.xray_percentiles), "low": lo, "high": hi}
        out.append(Radiograph(name, None, img, window, None, view_from_name(name, cfg), []))
    for name in idx.pending(idx.niftis):
        loaded = idx.read(name, read_nifti)
        if loaded is None or loaded[0].shape[0] != 1:
            continue
        vol, spacing, _ = loaded
        img, lo, hi = percentile_window(vol[0], *cfg.xray_percentiles)
        window = {"kind": "percentile", "percentiles": list(cfg.xray_percentiles), "low": lo, "high": hi}
        out.append(Radiograph(name, None, img, window, spacing[1:], view_from_name(name, cfg), []))
    for r in out:
        if r.call.view is None:
            r.call = view_from_content(r.image, cfg)
    return out


def _order(r: Radiograph) -> tuple:
    h = r.header
    processing = h is not None and (h.presentation_intent or "").upper() == "FOR PROCESSING"
    return (_RULE_RANK[r.call.rule], processing, h.series_number if h and h.series_number is not None else 1 << 30,
            h.instance_number if h and h.instance_number is not None else 1 << 30, r.name)


def process_xr(idx: ExamIndex, cfg: IngestConfig, dtype=np.float32
               ) -> tuple[list[tuple[dict, np.ndarray]], list[str]]:
    """Keep the frontal (and lateral) view of the exam (arrays of ``dtype``); sets every candidate's outcome."""
    rads = _candidates(idx, cfg)
    warnings: list[str] = []
    frontals = sorted((r for r in rads if r.call.view == "frontal"), key=_order)
    laterals = sorted((r for r in rads if r.call.view == "lateral"), key=_order)
    for r in rads:
        if r.call.view == "other":
            idx.exclude(r.name, "other_view", f"{r.call.evidence}")
    if not frontals:
        for r in laterals:
            idx.exclude(r.name, "no_frontal", f"the exam has no frontal view; this {r.call.view} view "
                                              f"({r.call.evidence}) is not used alone")
        if rads:
            warnings.append("no frontal view: the exam gives no image")
        return [], warnings
    kept = [("frontal", frontals[0])]
    if laterals and cfg.keep_lateral:
        kept.append(("lateral", laterals[0]))
    elif laterals:
        for r in laterals:
            idx.exclude(r.name, "lateral_not_kept", "keep_lateral is false")
    for view, group in (("frontal", frontals[1:]), ("lateral", laterals[1:] if cfg.keep_lateral else [])):
        for r in group:
            first = next(k.name for v, k in kept if v == view)
            idx.exclude(r.name, "duplicate_view", f"another {view} view ({r.call.evidence}); {first} was kept")
        if group:
            warnings.append(f"{len(group) + 1} {view} views: kept the first by rule strength and series order")
    images = []
    for role, r in kept:
        idx.use(r.name)
        images.append(_entry(role, r, cfg, dtype))
    return images, warnings


def _entry(role: str, r: Radiograph, cfg: IngestConfig, dtype) -> tuple[dict, np.ndarray]:
    h_in, w_in = r.image.shape
    resizer = Resizer.for_image(h_in, w_in, cfg.image_size, cfg.letterbox, r.spacing)
    arr = np.clip(resizer.image(r.image[None]), 0.0, 1.0).astype(dtype, copy=False)   # [1, H, W]
    out_h, out_w = arr.shape[1:]
    if r.spacing:
        dy, dx = r.spacing
        if cfg.letterbox:
            scale = max(h_in * dy, w_in * dx) / out_h
            spacing = [None, round(scale, 4), round(scale, 4)]
        else:
            spacing = [None, round(dy * h_in / out_h, 4), round(dx * w_in / out_w, 4)]
    else:
        spacing = [None, None, None]
    h = r.header
    why = f"{role.capitalize()} view by {r.call.rule}: {r.call.evidence}; " + _window_text(r.window) + "."
    entry = {"role": role, "shape": list(arr.shape), "dtype": arr.dtype.name, "true_slices": 1, "spacing_mm": spacing,
             "source_uids": [h.sop_uid] if h is not None and h.sop_uid else [],
             "series_uid": h.series_uid if h is not None else None, "chosen_by": r.call.rule, "why": why,
             "warnings": list(r.notes), "modality": "XR", "window": r.window, "source_files": [r.name],
             "photometric": h.photometric if h is not None else None, "source_shape": [h_in, w_in]}
    return entry, arr


def _window_text(w: dict) -> str:
    kind = w["kind"]
    if kind == "header":
        text = f"window from the header (centre {w['center']:g}, width {w['width']:g}, {w['function']})"
    elif kind == "voi_lut_sequence":
        text = "VOI LUT from the header"
    elif kind == "png_8bit":
        text = "8-bit picture values / 255"
    else:
        text = f"no window in the header: percentiles {w['percentiles'][0]:g}-{w['percentiles'][1]:g} map to 0..1"
    return text + ("; MONOCHROME1 inverted" if w.get("inverted") else "")
