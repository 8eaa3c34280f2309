"""The planted-finding vocabulary shared by the phantoms, the report writer and the ground truth.

A finding is pattern x side x location: X-ray locations are lung zones (upper/middle/lower third of the lung
field), CT locations are lobes (the right lung has a middle lobe, the left lung does not). A pleural effusion
is always basal: X-ray zone "lower", CT location "lower" (reported as the pleural space of that side).
Example: ``Finding("consolidation", "right", "lower", size=0.18, strength=1.0)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

PATTERNS = ("patchy", "consolidation", "ggo", "effusion")
SIDES = ("right", "left")
ZONES = ("upper", "middle", "lower")
PATTERN_ZH = {"patchy": "斑片影", "consolidation": "实变影", "ggo": "磨玻璃影", "effusion": "胸腔积液"}
SIDE_ZH = {"right": "右", "left": "左"}
XR_ZONE_ZH = {"upper": "上野", "middle": "中野", "lower": "下野"}
CT_LOBE_ZH = {("right", "upper"): "右肺上叶", ("right", "middle"): "右肺中叶", ("right", "lower"): "右肺下叶",
              ("left", "upper"): "左肺上叶", ("left", "lower"): "左肺下叶"}
CT_LOBES = tuple(CT_LOBE_ZH)


@dataclass(frozen=True)
class Finding:
    """One planted abnormality.

    pattern: one of PATTERNS; side: right | left (the patient's side); zone: upper | middle | lower (for CT the
    lobe: (left, middle) does not exist); size: lesion width as a fraction of the hemithorax width;
    strength: contrast multiplier (1.0 = typical for the pattern; lower is subtler).
    """

    pattern: str
    side: str
    zone: str
    size: float = 0.15
    strength: float = 1.0

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ValueError(f"pattern must be one of {PATTERNS}, got {self.pattern!r}")
        if self.side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {self.side!r}")
        if self.zone not in ZONES:
            raise ValueError(f"zone must be one of {ZONES}, got {self.zone!r}")
        if self.pattern == "effusion" and self.zone != "lower":
            raise ValueError("an effusion is basal: zone must be 'lower'")
        if not 0.0 < self.size <= 0.6:
            raise ValueError(f"size is a fraction of the hemithorax width in (0, 0.6], got {self.size}")
        if self.strength <= 0:
            raise ValueError(f"strength must be > 0, got {self.strength}")

    def to_json(self) -> dict:
        return asdict(self)


def ct_valid(f: Finding) -> bool:
    """Whether the finding's side/zone names a lobe (CT has no left middle lobe)."""
    return f.pattern == "effusion" or (f.side, f.zone) in CT_LOBE_ZH
