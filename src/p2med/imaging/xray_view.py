"""Which view a chest radiograph is: frontal (AP/PA), lateral, or other - and which rule said so.

Rules, first decisive one wins: ``ViewPosition`` (AP, PA -> frontal; LL, RL, LAT, LATERAL -> lateral; anything
else such as an oblique -> other), ``PatientOrientation`` (row direction L or R -> frontal, A or P -> lateral),
``description`` (frontal / lateral keywords, Chinese and English, in SeriesDescription or ProtocolName; both
kinds present decides nothing); for pictures without a header, ``file_name`` keywords (importers name files
``frontal.png`` / ``lateral.png``); and last ``image_content`` on the displayed image: a frontal chest is
left-right mirror symmetric AND shows the mediastinum as a bright column between two dark lung fields; a
lateral fails one of the two (real laterals are asymmetric, and their single lung field is dark in the middle).
Image shape is not used: frontal and lateral detectors have the same sizes. It does not read pixels itself.
Example: ``view_from_header(h, cfg)`` -> ``ViewCall("lateral", "ViewPosition", "ViewPosition 'LL'")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import IngestConfig
from .dicom_header import DicomHeader
from .keywords import find_word

FRONTAL_POSITIONS = {"AP", "PA"}
LATERAL_POSITIONS = {"LL", "RL", "LAT", "LATERAL", "LLD", "RLD"}


@dataclass(frozen=True)
class ViewCall:
    view: str | None      # frontal | lateral | other | None (undecided)
    rule: str | None      # ViewPosition | PatientOrientation | description | file_name | image_content
    evidence: str         # what was seen, for the "why" sentence


def view_from_header(h: DicomHeader | None, cfg: IngestConfig) -> ViewCall:
    """Decide from the header alone; ``ViewCall(None, None, ...)`` when no header rule applies."""
    if h is None:
        return ViewCall(None, None, "no DICOM header")
    vp = (h.view_position or "").strip().upper()
    if vp:
        if vp in FRONTAL_POSITIONS:
            return ViewCall("frontal", "ViewPosition", f"ViewPosition '{vp}'")
        if vp in LATERAL_POSITIONS:
            return ViewCall("lateral", "ViewPosition", f"ViewPosition '{vp}'")
        return ViewCall("other", "ViewPosition", f"ViewPosition '{vp}' is neither frontal nor lateral")
    if h.patient_orientation and h.patient_orientation[0]:
        row = h.patient_orientation[0].strip().upper()[:1]
        shown = "\\".join(h.patient_orientation)
        if row in ("L", "R"):
            return ViewCall("frontal", "PatientOrientation", f"PatientOrientation '{shown}' (rows run left-right)")
        if row in ("A", "P"):
            return ViewCall("lateral", "PatientOrientation", f"PatientOrientation '{shown}' (rows run front-back)")
    for field in ("series_description", "protocol_name"):
        text = getattr(h, field)
        front = find_word(text, cfg.frontal_words)
        lat = find_word(text, cfg.lateral_words)
        if front and not lat:
            return ViewCall("frontal", "description", f"keyword '{front}' in {_tag(field)}")
        if lat and not front:
            return ViewCall("lateral", "description", f"keyword '{lat}' in {_tag(field)}")
    return ViewCall(None, None, "no view in ViewPosition, PatientOrientation or the descriptions")


def view_from_name(name: str, cfg: IngestConfig) -> ViewCall:
    """For pictures without a header (PNG/JPEG/NIfTI): frontal / lateral keywords in the file name, as importers
    write them (``images/iu-2/lateral.png``); both kinds or neither decide nothing."""
    stem = Path(name).name
    front, lat = find_word(stem, cfg.frontal_words), find_word(stem, cfg.lateral_words)
    if front and not lat:
        return ViewCall("frontal", "file_name", f"keyword '{front}' in the file name")
    if lat and not front:
        return ViewCall("lateral", "file_name", f"keyword '{lat}' in the file name")
    return ViewCall(None, None, "no view keyword in the file name")


def content_scores(img: np.ndarray) -> tuple[float, float]:
    """(mirror symmetry, mediastinal ridge) of a displayed radiograph [H, W] in 0..1 (1 = white).

    symmetry: the best correlation of the image with its left-right mirror over shifts of up to 1/8 of the
    width (the patient need not be centred), on a ~64-column thumbnail. ridge: in the rows 25-60% down, the
    brightest central column (45-55% of the width) minus the darker of the two lung fields' darkest columns.
    """
    h, w = img.shape
    f = max(1, min(h, w) // 64)
    thumb = img[: h // f * f, : w // f * f].reshape(h // f, f, w // f, f).mean(axis=(1, 3)).astype(np.float64)
    thumb = (thumb - thumb.mean()) / (thumb.std() + 1e-9)
    mirror = thumb[:, ::-1]
    tw = thumb.shape[1]
    symmetry = -1.0
    for s in range(-(tw // 8), tw // 8 + 1):
        a = thumb[:, max(0, s): tw + min(0, s)]
        b = mirror[:, max(0, -s): tw + min(0, -s)]
        a, b = a - a.mean(), b - b.mean()
        symmetry = max(symmetry, float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-12)))
    lo, hi = np.percentile(img[::4, ::4], [1, 99])
    band = np.clip((img[int(0.25 * h):int(0.6 * h)] - lo) / (hi - lo + 1e-9), 0, 1)
    profile = band.mean(axis=0)
    k = max(1, w // 50)
    profile = np.convolve(profile, np.ones(k) / k, mode="same")
    centre = profile[int(0.45 * w):max(int(0.55 * w), int(0.45 * w) + 1)].max()
    left = profile[int(0.1 * w):max(int(0.45 * w), int(0.1 * w) + 1)].min()
    right = profile[int(0.55 * w):max(int(0.9 * w), int(0.55 * w) + 1)].min()
    return symmetry, float(centre - max(left, right))


def view_from_content(img: np.ndarray, cfg: IngestConfig) -> ViewCall:
    """The last rule: frontal when both content scores reach their thresholds, else lateral."""
    sym, ridge = content_scores(img)
    frontal = sym >= cfg.content_symmetry_min and ridge >= cfg.content_ridge_min
    return ViewCall("frontal" if frontal else "lateral", "image_content",
                    f"mirror symmetry {sym:.2f} (frontal >= {cfg.content_symmetry_min:g}) and mediastinal ridge "
                    f"{ridge:.2f} (frontal >= {cfg.content_ridge_min:g})")


def _tag(field: str) -> str:
    return {"series_description": "SeriesDescription", "protocol_name": "ProtocolName"}[field]
