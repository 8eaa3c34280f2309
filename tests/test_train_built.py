"""Training on a dataset written by ``p2med build`` from the synthetic hospital (its ingest cache, real shards)."""

from __future__ import annotations

import json
import math

import pytest
from train_helpers import train_config

from p2med.common.atomic import sha256_file
from p2med.curate.build import build_dataset
from p2med.curate.config import BenchmarkConfig, BuildConfig
from p2med.model.checkpoint import load_checkpoint
from p2med.model.generate import GenerationConfig, generate
from p2med.train.data import image_ref, load_image, resolve_cache
from p2med.train.metrics import read_metrics
from p2med.train.run import train

BENCH = BenchmarkConfig(xray_single=2, xray_mrc_patients=1, ct_report=1, outpatient=2, first_course=1,
                        attending_round=1, chief_round=1, max_patient_share=0.5)


@pytest.mark.slow
def test_three_stages_train_on_a_built_dataset(small_hospital, small_hospital_ingested, tmp_path):
    root = small_hospital_ingested
    build_dataset(small_hospital[0], root / "cache", root / "ds_train", BuildConfig(scale=0.01, benchmark=BENCH))
    ds = root / "ds_train"
    final = train(train_config(tmp_path, ds, tmp_path / "out"))
    for k in (1, 2, 3):
        rows = read_metrics(tmp_path / "out" / f"stage{k}")
        assert rows and all(math.isfinite(r["loss"]) for r in rows)
        lineage = json.loads((tmp_path / "out" / f"stage{k}" / "final" / "lineage.json").read_text())
        assert lineage["dataset_manifest_sha256"] == sha256_file(ds / "manifest.json")
    model, processor, _ = load_checkpoint(final)
    sample = json.loads((ds / "benchmark" / "samples.jsonl").read_text(encoding="utf-8").splitlines()[0])
    turns = sample["turns"][:-1] + [{"human": sample["turns"][-1]["human"]}]
    images = [load_image(resolve_cache(ds, ""), image_ref(im, "benchmark")) for im in sample["images"]]
    text = generate(model, processor, [{"turns": turns, "images": images, "lang": sample["lang"]}],
                    GenerationConfig(max_new_tokens=8))
    assert isinstance(text[0], str)
