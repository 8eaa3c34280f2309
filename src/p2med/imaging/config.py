"""``IngestConfig``: every choice ``p2med ingest`` makes, with the paper's values as defaults.

The shipped YAML is ``configs/ingest/default.yaml`` (the same values). Keyword lists are matched
case-insensitively: ``*_kernels`` are regular expressions that must match a whole ConvolutionKernel value,
``*_words`` are substrings of SeriesDescription / ProtocolName (English words as whole tokens, Chinese as
substrings). It knows nothing about DICOM itself.
Example: ``load_config(IngestConfig, "configs/ingest/default.yaml", ["image_size=224", "keep_contrast=false"])``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..config import check


@dataclass
class IngestConfig:
    image_size: int = 336                  # output rows = cols (the paper resizes both axes to 336)
    letterbox: bool = False                # keep the aspect ratio (in mm) and pad with 0 instead of stretching
    max_slices: int = 64                   # the model's temporal-embedding size; longer series are subsampled
    ct_window_level: float = -500.0        # HU at the window centre (paper: -500)
    ct_window_width: float = 1200.0        # HU window width (paper: 1200, i.e. HU -1100..100 -> 0..1)
    thickness_mm: float = 5.0              # wanted CT slice thickness (paper: 5.0 mm)
    thickness_tolerance_mm: float = 0.5    # |thickness - thickness_mm| within this counts as a match
    thickness_fallback: Literal["nearest", "none"] = "nearest"  # no match: nearest thickness (warned) or no CT
    keep_contrast: bool = True             # also keep a contrast-enhanced series when the exam has one
    keep_lateral: bool = True              # also keep a lateral radiograph when the exam has one
    min_slices: int = 5                    # fewer slices than this is not a usable axial series
    axial_max_tilt_deg: float = 30.0       # slice normal within this angle of head-feet counts as axial
    gap_tolerance: float = 0.5             # a step > (1 + this) x the median step is a gap (series rejected)
    xray_percentiles: tuple[float, float] = (0.5, 99.5)  # window of a radiograph with no window in its header
    content_symmetry_min: float = 0.75     # untagged radiograph: left-right mirror correlation of a frontal view
    content_ridge_min: float = 0.3         # untagged radiograph: mediastinum brighter than both lungs by this much
    nifti_values: Literal["hu", "raw"] = "hu"  # NIfTI voxels are HU (CT window) or raw (percentile window)
    lung_kernels: list[str] = field(default_factory=lambda: [
        r"B[5-9]\d[a-z]?", r"BR?[5-9]\d.*", r"BL[5-9]\d.*", r"I[5-9]\d[a-z]?", r"HR[5-9]\d.*", r".*LUNG.*",
        r"L", r"LC", r"Y[A-E]", r"FC5\d", r"FC8\d", r"BONE", r"BONEPLUS", r"SHARP"])
    soft_kernels: list[str] = field(default_factory=lambda: [
        r"B[0-4]\d[a-z]?", r"BR?[0-4]\d.*", r"I[0-4]\d[a-z]?", r"HR[0-4]\d.*", r".*SOFT.*", r"STANDARD",
        r"STND", r"B", r"C", r"FC0\d", r"FC1\d", r"SMOOTH", r"DETAIL"])
    lung_words: list[str] = field(default_factory=lambda: ["lung", "pulmo", "肺窗"])
    soft_words: list[str] = field(default_factory=lambda: [
        "mediastinum", "mediastinal", "soft", "stnd", "standard", "纵隔", "软组织"])
    contrast_words: list[str] = field(default_factory=lambda: [
        "C+", "+C", "CE", "contrast", "enhanced", "arterial", "venous", "portal",
        "增强", "动脉期", "静脉期", "延迟期"])
    noncontrast_words: list[str] = field(default_factory=lambda: ["C-", "NC", "non-contrast", "plain", "平扫"])
    localizer_words: list[str] = field(default_factory=lambda: [
        "localizer", "scout", "topogram", "surview", "scanogram", "定位"])
    frontal_words: list[str] = field(default_factory=lambda: [
        "PA", "AP", "frontal", "postero-anterior", "antero-posterior", "正位", "后前位", "前后位"])
    lateral_words: list[str] = field(default_factory=lambda: ["LAT", "lateral", "LL", "RL", "侧位"])

    def __post_init__(self) -> None:
        check(isinstance(self.image_size, int) and 16 <= self.image_size <= 2048, "image_size",
              f"must be an integer in [16, 2048], got {self.image_size!r}")
        check(isinstance(self.max_slices, int) and self.max_slices >= 1, "max_slices",
              f"must be an integer >= 1, got {self.max_slices!r}")
        check(self.ct_window_width > 0, "ct_window_width", f"must be > 0 HU, got {self.ct_window_width}")
        check(0 < self.thickness_mm <= 20, "thickness_mm", f"must be in (0, 20] mm, got {self.thickness_mm}")
        check(0 <= self.thickness_tolerance_mm < self.thickness_mm, "thickness_tolerance_mm",
              f"must be in [0, thickness_mm), got {self.thickness_tolerance_mm}")
        check(isinstance(self.min_slices, int) and self.min_slices >= 2, "min_slices",
              f"must be an integer >= 2, got {self.min_slices!r}")
        check(0 < self.axial_max_tilt_deg < 45, "axial_max_tilt_deg",
              f"must be in (0, 45) degrees, got {self.axial_max_tilt_deg}")
        check(self.gap_tolerance > 0, "gap_tolerance", f"must be > 0, got {self.gap_tolerance}")
        lo, hi = self.xray_percentiles
        check(0 <= lo < hi <= 100, "xray_percentiles", f"must be (lo, hi) with 0 <= lo < hi <= 100, got {lo, hi}")
        self.xray_percentiles = (float(lo), float(hi))
        check(-1 < self.content_symmetry_min < 1, "content_symmetry_min",
              f"must be a correlation in (-1, 1), got {self.content_symmetry_min}")
        check(-1 < self.content_ridge_min < 1, "content_ridge_min",
              f"must be in (-1, 1) (a difference of 0..1 intensities), got {self.content_ridge_min}")
        import re
        for name in ("lung_kernels", "soft_kernels"):
            for pattern in getattr(self, name):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    check(False, name, f"{pattern!r} is not a regular expression ({exc})")

    @property
    def ct_window(self) -> tuple[float, float]:
        """(lowest, highest) HU of the CT window: values map linearly to 0..1 between them."""
        return (self.ct_window_level - self.ct_window_width / 2, self.ct_window_level + self.ct_window_width / 2)
