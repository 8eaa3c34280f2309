"""Synthetic chest radiograph exams as DICOM (DX or CR): one frontal view, or frontal + lateral.

Realistic variety where ingestion looks: vendors, MONOCHROME1 and MONOCHROME2, 10-14 stored bits, the view
named by ViewPosition, or only by PatientOrientation, or only by the series description, or by nothing; a
window in the header or not; burned-in text near an edge on a few images. Returns the files' bytes and the
ground truth; the caller writes them. Example: ``write_xray_exam(spec, ctx, cfg)`` -> ``(files, truth)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from .dicom_common import StudyContext, base_dataset, da, set_pixels, tm, to_bytes, uid
from .findings import Finding
from .xray_phantom import XrayAnatomy, XrayPhantomConfig, render, to_stored

DX_SOP = "1.2.840.10008.5.1.4.1.1.1.1"
CR_SOP = "1.2.840.10008.5.1.4.1.1.1"
# (manufacturer, model, modality, bits stored, share of MONOCHROME1, transfer syntax)
XR_VENDORS = (
    ("Carestream Health", "DRX-Evolution", "DX", 12, 0.0, ExplicitVRLittleEndian),
    ("GE Healthcare", "Definium 6000", "DX", 14, 0.0, ExplicitVRLittleEndian),
    ("Philips Medical Systems", "DigitalDiagnost", "DX", 12, 0.0, ExplicitVRLittleEndian),
    ("FUJIFILM Corporation", "FCR CAPSULA XLII", "CR", 10, 0.9, ExplicitVRLittleEndian),
    ("Agfa", "CR 85-X", "CR", 12, 0.7, ImplicitVRLittleEndian),
    ("万东医疗", "NewVision", "DX", 12, 0.0, ExplicitVRLittleEndian),
)
VIEW_DESCRIPTIONS = {"frontal": ("胸部正位", "CHEST PA", "Chest AP", "胸部后前位"),
                     "lateral": ("胸部侧位", "CHEST LAT", "Chest Lateral", "胸部左侧位")}


@dataclass
class XrayExamSpec:
    """Everything random about one radiograph exam, decided by the planner (picklable)."""

    exam_id: str
    findings: list[Finding]
    views: tuple[str, ...]           # ("frontal",) or ("frontal", "lateral")
    vendor: int                      # index into XR_VENDORS
    monochrome1: bool
    view_tagging: str                # viewposition | orientation | description | none
    frontal_position: str            # AP (infants, bedside) or PA
    render_seed: int
    layout: int                      # 0: S1/I0001.dcm, 1: <SOPInstanceUID>.dcm, 2: DICOM/IM000001 (no suffix)
    window_in_header: bool
    burned_in: str = ""              # "" | "flagged" (BurnedInAnnotation YES) | "unflagged" (text, tag NO/absent)
    jitter: int = 0
    extra: dict = field(default_factory=dict)


def _burn_text(img: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """Draw a block of glyph-like bright strokes in the top-left corner (outside the lungs)."""
    h, w = img.shape
    r0, c0 = int(h * 0.02), int(w * 0.02)
    gh, gw = max(6, h // 45), max(4, w // 70)
    n = int(rng.integers(5, 10))
    for i in range(n):
        cc = c0 + i * (gw + 2)
        pattern = rng.random((5, 3)) < 0.55
        block = np.kron(pattern, np.ones((gh // 5 + 1, gw // 3 + 1), dtype=bool))[:gh, :gw]
        img[r0:r0 + gh, cc:cc + gw][block] = 1.0
    return r0, r0 + gh, c0, c0 + n * (gw + 2)


def write_xray_exam(spec: XrayExamSpec, ctx: StudyContext, anatomy: XrayAnatomy, cfg: XrayPhantomConfig
                    ) -> tuple[list[tuple[str, bytes]], dict]:
    """Render and encode every view of the exam. Returns ``([(relative path, bytes)], truth)``."""
    manu, model, modality, bits, _, syntax = XR_VENDORS[spec.vendor]
    rng = np.random.default_rng([spec.render_seed, 7])
    files: list[tuple[str, bytes]] = []
    truth_views = []
    for series_no, view in enumerate(spec.views, 1):
        out = render(anatomy, spec.findings, view, cfg, seed=spec.render_seed + series_no, jitter=spec.jitter)
        image = out.image.copy()
        burned = None
        if spec.burned_in and view == "frontal":
            burned = _burn_text(image, rng)
        stored = to_stored(image, bits=bits, monochrome1=spec.monochrome1)
        sop_uid = uid(ctx.seed, spec.exam_id, series_no, "instance")
        ds = base_dataset(ctx, DX_SOP if modality == "DX" else CR_SOP, sop_uid, modality)
        ds.Manufacturer = manu
        ds.ManufacturerModelName = model
        ds.StationName = f"DR{int(rng.integers(1, 9))}"
        ds.SeriesInstanceUID = uid(ctx.seed, spec.exam_id, series_no, "series")
        ds.SeriesNumber = series_no
        ds.InstanceNumber = 1
        ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = da(ctx.when.date())
        ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = tm(ctx.when)
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.BodyPartExamined = "CHEST"
        ds.KVP = int(rng.integers(55, 90))
        if modality == "DX":
            ds.PresentationIntentType = "FOR PRESENTATION"
        position = spec.frontal_position if view == "frontal" else ("LL" if rng.random() < 0.8 else "RL")
        if spec.view_tagging == "viewposition":
            ds.ViewPosition = position
        else:
            ds.ViewPosition = ""
        if spec.view_tagging in ("viewposition", "orientation"):
            ds.PatientOrientation = ["L", "F"] if view == "frontal" else ["A", "F"]
        descriptions = VIEW_DESCRIPTIONS[view]
        if spec.view_tagging in ("viewposition", "description"):
            ds.SeriesDescription = descriptions[int(rng.integers(len(descriptions)))]
            ds.ProtocolName = "CHEST " + ("AP/PA" if view == "frontal" else "LAT")
        else:
            ds.SeriesDescription = "DR"
        ds.ImagerPixelSpacing = [round(out.pixel_spacing_mm, 4)] * 2
        ds.PixelSpacing = [round(out.pixel_spacing_mm, 4)] * 2
        if spec.window_in_header:
            full = 2 ** bits - 1
            ds.WindowCenter = int(full * 0.5)
            ds.WindowWidth = int(full * 0.9)
        if spec.burned_in == "flagged":
            ds.BurnedInAnnotation = "YES"
        elif spec.burned_in == "unflagged" and rng.random() < 0.5:
            ds.BurnedInAnnotation = "NO"
        set_pixels(ds, stored, bits, False, "MONOCHROME1" if spec.monochrome1 else "MONOCHROME2")
        name = (f"S{series_no}/I0001.dcm", f"{sop_uid}.dcm", f"DICOM/IM{series_no:06d}")[spec.layout]
        files.append((name, to_bytes(ds, syntax)))
        truth_views.append({
            "file": name, "view": view, "view_position": position, "view_tagging": spec.view_tagging,
            "photometric": ds.PhotometricInterpretation, "shape": list(image.shape),
            "lesion_boxes": [list(map(int, b)) for b in out.lesion_boxes],
            "zone_boxes": {f"{s}/{z}": list(map(int, b)) for (s, z), b in out.zone_boxes.items()},
            "burned_in_box": list(burned) if burned else None,
        })
    truth = {"modality": "XR", "vendor": manu, "views": truth_views,
             "study_instance_uid": uid(ctx.seed, spec.exam_id, "study")}
    return files, truth
