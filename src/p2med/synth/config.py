"""Configuration of the synthetic hospital: size, case mix, imaging, planted defects and PHI.

Difficulty is stated here, not hidden: lesion size, contrast and noise live in ``xray`` and ``ct``. The
shipped default is ``configs/synth/default.yaml``; ``configs/synth/demo.yaml`` is what ``p2med demo`` uses.
Example: ``load_config(SynthConfig, "configs/synth/default.yaml", ["ct_share=0.5"])``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import check
from .ct_phantom import CtPhantomConfig
from .diseases import DISEASES
from .xray_phantom import XrayPhantomConfig

DEFAULT_DISEASE_WEIGHTS = {
    "支气管肺炎": 16, "支原体肺炎": 10, "大叶性肺炎": 5, "病毒性肺炎": 7, "毛细支气管炎": 6, "急性支气管炎": 8,
    "支气管哮喘": 6, "急性上呼吸道感染": 12, "急性化脓性扁桃体炎": 5, "疱疹性咽峡炎": 4, "急性喉气管支气管炎": 4,
    "胸腔积液": 3, "百日咳": 3, "流行性感冒": 5, "气管支气管异物": 2, "重症肺炎": 3, "过敏性鼻炎": 4,
    "新生儿肺炎": 2, "急性鼻窦炎": 3,
}


@dataclass
class SynthConfig:
    patients: int = 200                  # number of children
    seed: int = 0                        # everything random derives from it
    first_date: str = "2022-01-01"       # earliest visit
    last_date: str = "2025-06-30"        # latest visit
    visits_per_patient: tuple[int, int] = (1, 3)   # inclusive range
    inpatient_share: float = 0.3         # share of visits that are admissions
    chief_round_share: float = 0.7       # share of admissions that also have a chief physician's round
    outpatient_records_per_visit: tuple[int, int] = (1, 2)   # an outpatient visit may have a revisit record
    disease_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_DISEASE_WEIGHTS))
    imaging_rate_pneumonia: float = 0.85 # share of visits for a disease with lung findings that get imaging
    imaging_rate_other: float = 0.2      # share of other visits imaged (to rule pneumonia out)
    ct_share: float = 0.3                # share of imaged visits whose first exam is a CT
    followup_share: float = 0.5          # share of imaged admissions with follow-up exams of the same modality
    followups: tuple[int, int] = (1, 2)  # number of follow-up exams when there are some
    lateral_share: float = 0.35          # X-ray exams with a lateral view besides the frontal one
    two_findings_scale: float = 1.0      # multiplies each disease's chance of a second planted finding
    monochrome1_scale: float = 1.0       # multiplies each vendor's MONOCHROME1 share
    view_tag_shares: dict[str, float] = field(default_factory=lambda: {
        "viewposition": 0.75, "orientation": 0.1, "description": 0.1, "none": 0.05})
    burned_in_share: float = 0.04        # X-ray exams with burned-in text near an edge
    ct_soft_share: float = 0.6           # CT exams with a soft-tissue-kernel 5 mm series
    ct_thin_share: float = 0.15          # CT exams with a 1 mm thin series
    ct_contrast_share: float = 0.35      # CT exams with a contrast-enhanced series
    ct_z_mismatch_share: float = 0.5     # of those, CE series covering a different z range
    ct_coronal_share: float = 0.15       # CT exams with a coronal reformat
    ct_localizer_share: float = 1.0      # CT exams with a localizer (scout) image, which ingest must skip
    duplicate_share: float = 0.06        # outpatient records copied as near-duplicates (J 0.85-1.0)
    hard_negative_share: float = 0.03    # outpatient records copied with J 0.6-0.85 (must not be merged)
    missing_output_share: float = 0.03   # records with one output section left empty
    overlong_share: float = 0.01         # records made longer than 4,000 tokens
    secondary_rate: float = 0.15         # cases with a secondary diagnosis (multi-label)
    text_phi_rate: float = 0.3           # how often each kind of identifier is written into a record
    dicom_name_in_description: float = 0.1   # studies whose StudyDescription holds the patient's name
    xray: XrayPhantomConfig = field(default_factory=XrayPhantomConfig)
    ct: CtPhantomConfig = field(default_factory=CtPhantomConfig)
    workers: int = 2                     # processes rendering images (does not change the output)

    def __post_init__(self) -> None:
        check(self.patients >= 1, "patients", f"must be >= 1, got {self.patients}")
        lo, hi = self.visits_per_patient
        check(1 <= lo <= hi, "visits_per_patient", f"need 1 <= min <= max, got {self.visits_per_patient}")
        unknown = sorted(set(self.disease_weights) - set(DISEASES))
        check(not unknown, "disease_weights", f"unknown diseases {unknown}; known: {sorted(DISEASES)}")
        check(sum(self.disease_weights.values()) > 0, "disease_weights", "need a positive total weight")
        for name in ("inpatient_share", "chief_round_share", "imaging_rate_pneumonia", "imaging_rate_other",
                     "ct_share", "followup_share", "lateral_share", "burned_in_share", "ct_soft_share",
                     "ct_thin_share", "ct_contrast_share", "ct_z_mismatch_share", "ct_coronal_share", "ct_localizer_share",
                     "duplicate_share", "hard_negative_share", "missing_output_share", "overlong_share",
                     "secondary_rate", "text_phi_rate", "dicom_name_in_description"):
            v = getattr(self, name)
            check(0.0 <= v <= 1.0, name, f"is a share in [0, 1], got {v}")
        check(set(self.view_tag_shares) <= {"viewposition", "orientation", "description", "none"},
              "view_tag_shares", "keys are viewposition, orientation, description, none")
        check(self.workers >= 1, "workers", f"must be >= 1, got {self.workers}")
