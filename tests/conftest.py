"""Shared fixtures: the shared real-data folder (skip or fail per P2MED_REQUIRE_SHARED) and a small
synthetic hospital built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def shared_data(name: str) -> Path:
    """Path of a folder in ../shared/data; skips the test when absent unless P2MED_REQUIRE_SHARED=1."""
    path = SHARED / name
    if not path.exists():
        msg = f"../shared/data/{name} is not here (a user's clone has no shared data)"
        if os.environ.get("P2MED_REQUIRE_SHARED") == "1":
            pytest.fail(msg + " but P2MED_REQUIRE_SHARED=1")
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def small_hospital(tmp_path_factory) -> tuple[Path, Path]:
    """(export, truth) of an 8-patient synthetic hospital with every kind of exam and defect in it."""
    from p2med.synth.config import SynthConfig
    from p2med.synth.hospital import synthesize

    root = tmp_path_factory.mktemp("hospital")
    cfg = SynthConfig(patients=8, seed=3, ct_share=0.5, ct_thin_share=0.5, ct_contrast_share=0.6,
                      ct_coronal_share=0.5, followup_share=0.8, lateral_share=0.5, duplicate_share=0.2,
                      hard_negative_share=0.1, missing_output_share=0.1, overlong_share=0.1, burned_in_share=0.2)
    synthesize(cfg, root / "export", root / "truth", progress=False)
    return root / "export", root / "truth"


@pytest.fixture(scope="session")
def small_hospital_ingested(small_hospital, tmp_path_factory) -> Path:
    """A folder holding ``cache/``: the small hospital's ingest cache, built once per session (curation and
    training tests build their datasets beside it, so manifests name it as ``../cache``)."""
    from p2med.imaging.ingest import ingest_export

    root = tmp_path_factory.mktemp("ingested")
    ingest_export(small_hospital[0], root / "cache", workers=1, progress=False)
    return root
