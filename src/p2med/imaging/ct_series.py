"""Choose the CT series of an exam: a documented, scored rule that says why it chose what it chose.

Every series (SeriesInstanceUID) is first made a ``Candidate`` or rejected with a ledger reason: a localizer
(ImageType LOCALIZER or a scout keyword), no usable geometry (``geometry.sort_stack``), not axial (coronal and
sagittal reformats are never the axial series), or fewer than ``min_slices`` slices. Each candidate gets a
phase - contrast-enhanced when ContrastBolusAgent is set or a contrast keyword (增强, C+, ...) is in its
descriptions, else non-contrast - and a kernel class from ConvolutionKernel (lung B70f/LUNG/YC/FC52/...,
soft B31f/STANDARD/...) or, failing that, description words (肺窗, 纵隔, ...). Within a phase candidates rank by
the key (documented in docs/ingest-cache.md):

  1. thickness within ``thickness_mm +- thickness_tolerance_mm`` (SliceThickness, else the slice spacing)
  2. kernel class: lung > unknown > soft
  3. closer to ``thickness_mm``
  4. more slices, then the lower SeriesNumber, then the UID (so the choice is deterministic)

The best non-contrast candidate is kept (role ``nc``) and, with ``keep_contrast``, the best contrast one (``ce``).
When the best has no thickness match, ``thickness_fallback: nearest`` keeps it with a warning; ``none`` keeps
nothing. It does not read pixels. Example: ``choose_ct(idx, cfg)`` -> ``([Choice(role="nc", ...)], warnings)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import IngestConfig
from .dicom_header import DicomHeader
from .dicom_index import CT_MODALITIES, ExamIndex
from .geometry import GeometryError, Stack, slices_of, sort_stack
from .keywords import find_word, match_kernel

_KERNEL_RANK = {"lung": 2, "unknown": 1, "soft": 0}
_NO_AGENT = {"", "NONE", "NO", "N", "无", "-", "0"}


@dataclass
class Candidate:
    """An axial series that could be kept, with everything the ranking looks at."""

    key: str                    # SeriesInstanceUID (or "nifti:<name>")
    names: list[str]            # its files
    stack: Stack | None         # DICOM geometry (None for NIfTI)
    number: int | None          # SeriesNumber
    n_slices: int
    thickness: float | None
    thickness_source: str       # SliceThickness | slice spacing | NIfTI header
    kernel_class: str           # lung | soft | unknown
    kernel_evidence: str
    contrast: bool
    contrast_evidence: str
    matched: bool = False       # thickness within tolerance

    def label(self) -> str:
        return f"series {self.number}" if self.number is not None else "a series without SeriesNumber"

    def describe(self) -> str:
        t = f"{self.thickness:g} mm" if self.thickness is not None else "unknown thickness"
        return (f"{self.label()} ({self.n_slices} slices, {t}, {self.kernel_class} kernel, "
                f"{'contrast' if self.contrast else 'non-contrast'})")


@dataclass
class Choice:
    role: str                   # nc | ce
    candidate: Candidate
    chosen_by: str              # thickness_and_kernel | thickness_only | nearest_thickness
    why: str
    warnings: list[str]


def kernel_class(headers: list[DicomHeader], cfg: IngestConfig) -> tuple[str, str]:
    """(lung | soft | unknown, evidence) from ConvolutionKernel, else the description words."""
    h = headers[0]
    k = match_kernel(h.kernel, cfg.lung_kernels)
    if k:
        return "lung", f"lung kernel '{k}'"
    k = match_kernel(h.kernel, cfg.soft_kernels)
    if k:
        return "soft", f"soft-tissue kernel '{k}'"
    for text in (h.series_description, h.protocol_name):
        w = find_word(text, cfg.lung_words)
        if w:
            return "lung", f"lung keyword '{w}' in the description"
        w = find_word(text, cfg.soft_words)
        if w:
            return "soft", f"soft-tissue keyword '{w}' in the description"
    return "unknown", "no known kernel or keyword"


def contrast_phase(headers: list[DicomHeader], cfg: IngestConfig) -> tuple[bool, str]:
    """(contrast-enhanced?, evidence): ContrastBolusAgent, then contrast / non-contrast keywords."""
    agents = {(h.contrast_agent or "").strip().upper() for h in headers} - _NO_AGENT
    if agents:
        return True, "ContrastBolusAgent is set"
    h = headers[0]
    for text in (h.series_description, h.protocol_name):
        w = find_word(text, cfg.contrast_words)
        if w:
            return True, f"contrast keyword '{w}' in the description"
    for text in (h.series_description, h.protocol_name):
        w = find_word(text, cfg.noncontrast_words)
        if w:
            return False, f"non-contrast keyword '{w}' in the description"
    return False, "no contrast agent or contrast keyword"


def dicom_candidates(idx: ExamIndex, cfg: IngestConfig) -> list[Candidate]:
    """Candidates from the exam's CT series; rejected series' files are excluded / quarantined in ``idx``."""
    out = []
    for key, names in sorted(idx.by_series(CT_MODALITIES).items()):
        headers = [idx.dicom[n] for n in names]
        h = headers[0]
        number = h.series_number
        label = f"series {number}" if number is not None else "a series without SeriesNumber"
        localizer = "LOCALIZER" in {t.upper() for t in h.image_type}
        word = find_word(h.series_description, cfg.localizer_words) or find_word(h.protocol_name,
                                                                                 cfg.localizer_words)
        if localizer or word:
            why = "ImageType LOCALIZER" if localizer else f"keyword '{word}' in the description"
            _reject(idx, names, "excluded", "localizer", f"{label} is a localizer ({why})")
            continue
        if any(x.samples not in (None, 1) for x in headers):
            _reject(idx, names, "excluded", "unsupported", f"{label} is not greyscale")
            continue
        if any(not _usable_rescale(x) for x in headers):
            _reject(idx, names, "quarantined", "bad_header", f"{label} has a zero or non-finite RescaleSlope / "
                                                              "RescaleIntercept, so HU cannot be computed")
            continue
        try:
            stack = sort_stack(slices_of(headers), cfg.gap_tolerance, cfg.axial_max_tilt_deg)
        except GeometryError as exc:
            _reject(idx, names, "excluded", exc.code, f"{label}: {exc.text}")
            continue
        if stack.plane != "axial":
            _reject(idx, names, "excluded", "not_axial", f"{label} is a {stack.plane} series, never taken as the "
                                                          "axial one")
            continue
        if len(stack.slices) < cfg.min_slices:
            _reject(idx, names, "excluded", "too_few_slices", f"{label} has {len(stack.slices)} slice(s), fewer "
                                                               f"than min_slices {cfg.min_slices}")
            continue
        thick = [x.slice_thickness for x in headers if x.slice_thickness and x.slice_thickness > 0]
        thickness = max(set(thick), key=thick.count) if thick else stack.spacing_z
        kclass, kwhy = kernel_class(headers, cfg)
        contrast, cwhy = contrast_phase(headers, cfg)
        out.append(Candidate(key, names, stack, number, len(stack.slices), thickness,
                             "SliceThickness" if thick else "slice spacing", kclass, kwhy, contrast, cwhy))
    return out


def rank_key(c: Candidate, cfg: IngestConfig) -> tuple:
    """Sort key, best first (see the module docstring)."""
    t = c.thickness
    dist = abs(t - cfg.thickness_mm) if t is not None else float("inf")
    return (not c.matched, -_KERNEL_RANK[c.kernel_class], dist, -c.n_slices,
            c.number if c.number is not None else 1 << 30, c.key)


def choose(candidates: list[Candidate], cfg: IngestConfig) -> tuple[list[Choice], dict[str, str]]:
    """The kept series (nc first) and, per rejected candidate key, the reason text it was not kept."""
    for c in candidates:
        c.matched = c.thickness is not None and abs(c.thickness - cfg.thickness_mm) <= cfg.thickness_tolerance_mm
    choices: list[Choice] = []
    not_kept: dict[str, str] = {}
    phases = [("nc", False), ("ce", True)]
    for role, contrast in phases:
        pool = sorted((c for c in candidates if c.contrast == contrast), key=lambda c: rank_key(c, cfg))
        if not pool:
            continue
        if contrast and not cfg.keep_contrast:
            for c in pool:
                not_kept[c.key] = f"{c.describe()} is contrast-enhanced and keep_contrast is false"
            continue
        best = pool[0]
        warnings: list[str] = []
        target = f"{cfg.thickness_mm:g} +- {cfg.thickness_tolerance_mm:g} mm"
        if not best.matched:
            if cfg.thickness_fallback == "none":
                for c in pool:
                    not_kept[c.key] = f"{c.describe()}: no {target} series and thickness_fallback is none"
                continue
            warnings.append(f"no {'contrast' if contrast else 'non-contrast'} series of {target}; kept the nearest "
                            f"thickness ({best.thickness:g} mm)" if best.thickness is not None else
                            "no series thickness known; kept the best remaining series")
            chosen_by = "nearest_thickness"
        elif best.kernel_class == "lung":
            chosen_by = "thickness_and_kernel"
        else:
            chosen_by = "thickness_only"
            warnings.append(f"no lung-kernel series of {target}; kept one with {best.kernel_evidence}")
        others = pool[1:]
        thickness = f"{best.thickness:g} mm" if best.thickness is not None else "unknown thickness"
        why = (f"Kept {best.label()}: axial, {best.n_slices} slices, "
               f"{thickness} ({best.thickness_source}; wanted {target}), {best.kernel_evidence}, "
               f"{'contrast-enhanced' if contrast else 'non-contrast'} ({best.contrast_evidence})"
               + (f"; ranked above {len(others)} other {'contrast' if contrast else 'non-contrast'} "
                  f"series." if others else "; the only such series."))
        choices.append(Choice(role, best, chosen_by, why, warnings))
        for c in others:
            not_kept[c.key] = f"{c.describe()} ranked below {best.describe()}"
    if not any(ch.role == "nc" for ch in choices) and choices:
        choices[0].warnings.append("no non-contrast series: only a contrast-enhanced one is kept")
    return choices, not_kept


def _usable_rescale(h: DicomHeader) -> bool:
    slope = 1.0 if h.rescale_slope is None else h.rescale_slope
    intercept = 0.0 if h.rescale_intercept is None else h.rescale_intercept
    return math.isfinite(slope) and math.isfinite(intercept) and slope != 0


def _reject(idx: ExamIndex, names: list[str], status: str, code: str, text: str) -> None:
    for n in names:
        (idx.quarantine if status == "quarantined" else idx.exclude)(n, code, text)
