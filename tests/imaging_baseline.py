"""Lesion-free twins of the synthetic hospital's images, for checking where ingestion puts the planted lesions.

The synthetic hospital is deterministic and its phantoms' noise does not depend on the findings, so the same
exam rendered without its findings differs from the real one exactly where a finding is. This re-plans the
hospital from the config in its manifest, re-renders an exam's non-contrast / contrast series or frontal view
without findings, and pushes the result through the same window and resize as the ingested image.
Example: ``twins = Twins(export)``; ``twins.ct(exam_id, "nc")`` -> float32 [S, 336, 336], superior first.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from p2med.config import from_dict
from p2med.imaging.resize import Resizer
from p2med.imaging.window import ct_window, invert, voi_window
from p2med.synth import ct_phantom, xray_phantom
from p2med.synth.config import SynthConfig
from p2med.synth.dicom_ct import CT_VENDORS, _stored
from p2med.synth.dicom_xray import XR_VENDORS, _burn_text
from p2med.synth.hospital import _Planner


class Twins:
    def __init__(self, export: Path) -> None:
        manifest = json.loads((export / "manifest.json").read_text(encoding="utf-8"))
        self.cfg = from_dict(SynthConfig, manifest["params"]["config"])
        planner = _Planner(self.cfg)
        self.exams = {e.exam_id: e for i in range(self.cfg.patients) for e in planner.patient(i).exams}

    def ct(self, exam_id: str, role: str, size: int = 336) -> np.ndarray:
        """The exam's NC ("nc") or CE ("ce") series without findings, windowed and resized, superior first."""
        e, cfg = self.exams[exam_id], self.cfg.ct
        anatomy = ct_phantom.sample_anatomy(np.random.default_rng(e.anatomy_seed), e.age_years, cfg)
        if role == "nc":
            z, seed = np.arange(anatomy.z_start_mm, anatomy.z_end_mm + 1e-6, 5.0), e.spec.render_seed
        else:
            top, bottom = e.spec.ce_extra
            z = np.arange(anatomy.z_start_mm - 5.0 * bottom, anatomy.z_end_mm + 5.0 * top + 1e-6, 5.0)
            seed = e.spec.render_seed + 3
        hu = ct_phantom.render(anatomy, [], z, matrix=cfg.matrix, fov_mm=float(anatomy.fov_mm), thickness_mm=5.0,
                               contrast=role == "ce", kernel="lung", seed=seed, cfg=cfg).hu
        vendor = CT_VENDORS[e.spec.vendor]
        win = ct_window(_stored(hu, vendor)[::-1].copy(), 1.0, vendor.intercept, -1100.0, 100.0)   # [Z, H, W]
        return Resizer(cfg.matrix, cfg.matrix, size, size)(win)

    def frontal(self, exam_id: str, window: dict, size: int = 336) -> np.ndarray:
        """The exam's frontal radiograph without findings, displayed with ``window`` (the entry's) and resized."""
        e, cfg = self.exams[exam_id], self.cfg.xray
        anatomy = xray_phantom.sample_anatomy(np.random.default_rng(e.anatomy_seed), e.age_years, cfg)
        image = xray_phantom.render(anatomy, [], "frontal", cfg, seed=e.spec.render_seed + 1,
                                    jitter=e.spec.jitter).image.copy()
        if e.spec.burned_in:
            _burn_text(image, np.random.default_rng([e.spec.render_seed, 7]))
        x = xray_phantom.to_stored(image, bits=XR_VENDORS[e.spec.vendor][3],
                                   monochrome1=e.spec.monochrome1).astype(np.float32)
        if window["kind"] == "header":
            y = voi_window(x, window["center"], window["width"], window["function"])
        else:
            y = np.clip((x - window["low"]) / (window["high"] - window["low"]), 0, 1).astype(np.float32)
        if window.get("inverted"):
            invert(y)
        return np.clip(Resizer(*y.shape, size, size)(y[None]), 0, 1)
