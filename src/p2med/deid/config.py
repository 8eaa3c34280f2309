"""Configuration of ``p2med deid``: the date-shift range, worker processes and the burned-in text detector.

The shipped default is ``configs/deid/default.yaml``. The key is not configuration: it is a file given with
``--key-file`` and never copied anywhere. Example: ``load_config(DeidConfig, None, ["workers=1"])``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import check
from .burned_in import BurnedInConfig


@dataclass
class DeidConfig:
    shift_min_days: int = 365        # smallest per-patient date shift (days forward; never 0)
    shift_max_days: int = 1460       # largest per-patient date shift
    workers: int = 2                 # processes de-identifying image files (does not change the output)
    suspect_burned_in: str = "flag"  # images with text-like marks near an edge: flag (review) or quarantine
    burned_in_band: float = 0.15     # edge band searched for burned-in text, share of height / width
    burned_in_contrast: float = 0.5  # local contrast a mark needs, share of the image's intensity range
    burned_in_min_marks: int = 4     # marks in one row that make it text

    def __post_init__(self) -> None:
        check(1 <= self.shift_min_days, "shift_min_days", f"must be >= 1 (a shift is never 0), got "
              f"{self.shift_min_days}")
        check(self.shift_min_days <= self.shift_max_days, "shift_max_days",
              f"must be >= shift_min_days ({self.shift_min_days}), got {self.shift_max_days}")
        check(self.workers >= 1, "workers", f"must be >= 1, got {self.workers}")
        check(self.suspect_burned_in in ("flag", "quarantine"), "suspect_burned_in",
              f"expected flag or quarantine, got {self.suspect_burned_in!r}")
        check(0.0 < self.burned_in_band <= 0.5, "burned_in_band", f"is a share in (0, 0.5], got {self.burned_in_band}")
        check(0.0 < self.burned_in_contrast <= 1.0, "burned_in_contrast",
              f"is a share in (0, 1], got {self.burned_in_contrast}")
        check(self.burned_in_min_marks >= 2, "burned_in_min_marks", f"must be >= 2, got {self.burned_in_min_marks}")

    @property
    def burned_in(self) -> BurnedInConfig:
        return BurnedInConfig(band=self.burned_in_band, contrast=self.burned_in_contrast,
                              min_marks=self.burned_in_min_marks)
