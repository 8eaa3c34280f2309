"""``p2med ingest`` on the synthetic hospital: the cache contract, the ledger, the planted series and views from
the ground truth, the planted lesions (against lesion-free re-renderings of the same exams), resume and
determinism, and the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import p2med.imaging.ingest as ingest_mod
from imaging_baseline import Twins
from imaging_factory import ct_series
from p2med.cli import main
from p2med.common.atomic import write_jsonl
from p2med.common.ledger import read_manifest
from p2med.imaging.cache import ImageCache
from p2med.imaging.config import IngestConfig
from p2med.imaging.ingest import ingest_export

ENTRY_KEYS = {"role", "array", "sha256", "shape", "dtype", "true_slices", "spacing_mm", "source_uids", "series_uid",
              "chosen_by", "why"}


@pytest.fixture(scope="module")
def hospital_cache(small_hospital, tmp_path_factory) -> tuple[Path, Path, Path]:
    export, truth = small_hospital
    out = tmp_path_factory.mktemp("ingest") / "cache"
    ingest_export(export, out, IngestConfig(), workers=2, progress=False)
    return export, truth, out


def _truth(truth: Path) -> dict[str, dict]:
    return {r["exam_id"]: r for r in map(json.loads, open(truth / "findings.jsonl", encoding="utf-8"))}


def test_cache_follows_the_contract(hospital_cache):
    export, truth, out = hospital_cache
    manifest = read_manifest(out)
    assert manifest["command"] == "ingest" and manifest["exams_index"] == "exams.jsonl"
    assert manifest["params"]["config"]["image_size"] == 336 and manifest["counts"]["exams_with_images"] > 0
    records = [json.loads(line) for line in open(out / "exams.jsonl", encoding="utf-8")]
    assert [r["exam_id"] for r in records] == sorted(r["exam_id"] for r in records)
    assert {r["exam_id"] for r in records} == set(_truth(truth))
    cache = ImageCache(out)
    for rec in records:
        roles = [e["role"] for e in rec["images"]]
        assert roles in (["frontal"], ["frontal", "lateral"]) if rec["modality"] == "XR" else roles in (["nc"],
                                                                                                           ["nc", "ce"])
        assert isinstance(rec["warnings"], list)
        shapes = {tuple(e["shape"]) for e in rec["images"]}
        assert len(shapes) == 1                                   # NC and CE share a padded depth
        for entry, arr in cache.load(rec["exam_id"]):
            assert ENTRY_KEYS <= set(entry) and entry["dtype"] == "float16"
            assert entry["array"] == f"arrays/{entry['sha256'][:2]}/{entry['sha256']}.npy"
            raw = (out / entry["array"]).read_bytes()
            assert hashlib.sha256(raw).hexdigest() == entry["sha256"]
            s, h, w = entry["shape"]
            assert arr.dtype == np.float32 and arr.shape == (s, h, w) and h == w == 336
            assert 0.0 <= arr.min() and arr.max() <= 1.0 and s >= entry["true_slices"]
            assert len(entry["source_uids"]) == entry["true_slices"] and len(entry["spacing_mm"]) == 3
            assert not arr[entry["true_slices"]:].any()
            assert entry["why"].endswith(".") and entry["chosen_by"]
            if rec["modality"] == "XR":
                assert s == 1 and entry["spacing_mm"][0] is None
    assert cache.exam("no-such-exam") is None and cache.load("no-such-exam") == []


def test_ledger_has_every_export_file_once(hospital_cache):
    export, _, out = hospital_cache
    rows = [json.loads(line) for line in open(out / "ledger.jsonl", encoding="utf-8")]
    sources = [r["source"] for r in rows]
    files = sorted(p.relative_to(export).as_posix() for p in export.rglob("*") if p.is_file())
    assert sorted(s for s in sources if not s.startswith("exam:")) == files and len(set(sources)) == len(sources)
    for r in rows:
        assert r["status"] in ("used", "excluded", "quarantined")
        assert (r["reason"] is None) == (r["status"] == "used")
    reasons = {r["reason"].split(":")[0] for r in rows if r["reason"]}
    assert {"localizer", "not_chosen"} <= reasons


def test_kept_series_and_views_are_the_planted_ones(hospital_cache):
    _, truth, out = hospital_cache
    cache = ImageCache(out)
    seen_none = 0
    for eid, t in _truth(truth).items():
        rec = cache.exam(eid)
        if t["modality"] == "CT":
            roles = {s["series_instance_uid"]: s["role"] for s in t["series"]}
            assert [roles[e["series_uid"]] for e in rec["images"]] == \
                ["nc_lung"] + (["ce_lung"] if "ce_lung" in roles.values() else [])
        else:
            views = {v["file"]: v for v in t["views"]}
            got = [(e["role"], views[e["source_files"][0].split("/", 2)[2]]["view"]) for e in rec["images"]]
            assert [g for g, _ in got] == [w for _, w in got] == [v["view"] for v in t["views"]]
            seen_none += sum(views[e["source_files"][0].split("/", 2)[2]]["view_tagging"] == "none"
                             for e in rec["images"])
    assert seen_none >= 1                                         # the image-content rule was exercised


def _images(hospital_cache, modality: str):
    """(truth row, ImageEntry, array) of every image of the hospital's exams of ``modality``."""
    _, truth, out = hospital_cache
    cache = ImageCache(out)
    for eid, t in _truth(truth).items():
        if t["modality"] == modality:
            for entry, arr in cache.load(eid):
                yield t, entry, arr


def _box_mask(shape, boxes) -> np.ndarray:
    """True inside the given (s0, s1, r0, r1, c0, c1) boxes, widened by 3 pixels for the resize's reach."""
    mask = np.zeros(shape, bool)
    for s0, s1, r0, r1, c0, c1 in boxes:
        mask[s0:s1, max(0, r0 - 3):r1 + 3, max(0, c0 - 3):c1 + 3] = True
    return mask


@pytest.mark.slow
def test_planted_ct_lesions_land_at_the_planted_slices_and_place(hospital_cache):
    """Against the same series rendered without findings: ours differs exactly inside the planted boxes."""
    export = hospital_cache[0]
    twins = Twins(export)
    checked = 0
    for t, entry, arr in _images(hospital_cache, "CT"):
        lesions = [les for les in t["lesions"].get("nc_lung" if entry["role"] == "nc" else "ce_lung", [])
                   if les["slices"] is not None]
        n, f = entry["true_slices"], 336 / 256
        z = np.array(entry["slice_z_mm"])
        boxes = []
        for les in lesions:
            z0, z1, r0, r1, c0, c1 = les["box"]                      # z-ascending slice indices, 256-pixel grid
            ks = np.flatnonzero((z >= les["z_mm"][0] - 0.01) & (z <= les["z_mm"][1] + 0.01))
            assert ks.tolist() == list(range(n - z1, n - z0)), t["exam_id"]
            boxes.append((n - z1, n - z0, int(r0 * f), int(np.ceil(r1 * f)), int(c0 * f), int(np.ceil(c1 * f))))
        diff = np.abs(arr[:n] - twins.ct(t["exam_id"], entry["role"]))
        mask = _box_mask(diff.shape, boxes)
        assert diff[~mask].max() <= 1e-3, (t["exam_id"], entry["role"])        # float16 rounding only
        for box in boxes:
            assert diff[_box_mask(diff.shape, [box])].max() > 0.05, (t["exam_id"], box)
            checked += 1
    assert checked >= 5


def test_planted_xray_lesions_land_in_the_planted_boxes(hospital_cache):
    """Against the same frontal view rendered without findings (burned-in text and MONOCHROME1 included)."""
    export = hospital_cache[0]
    twins = Twins(export)
    checked = 0
    for t, entry, arr in _images(hospital_cache, "XR"):
        if entry["role"] != "frontal":
            continue
        view = next(v for v in t["views"] if entry["source_files"][0].endswith(v["file"]))
        h, w = entry["source_shape"]
        boxes = [(0, 1, int(r0 * 336 / h), int(np.ceil(r1 * 336 / h)), int(c0 * 336 / w), int(np.ceil(c1 * 336 / w)))
                 for r0, r1, c0, c1 in view["lesion_boxes"]]
        diff = np.abs(arr - twins.frontal(t["exam_id"], entry["window"]))
        assert diff[~_box_mask(diff.shape, boxes)].max() <= 1e-3, t["exam_id"]
        for box in boxes:
            assert diff[_box_mask(diff.shape, [box])].max() > 0.02, (t["exam_id"], box)
            checked += 1
    assert checked >= 3


def test_resume_after_an_interruption_gives_the_same_cache(hospital_cache, tmp_path, monkeypatch):
    """Single process, stopped after 4 exams, then resumed: byte-identical to the 2-worker run."""
    export, _, reference = hospital_cache
    real = ingest_mod._exam_task
    calls: list[str] = []

    def flaky(task):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(task[0])
        return real(task)

    monkeypatch.setattr(ingest_mod, "_exam_task", flaky)
    out = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        ingest_export(export, out, IngestConfig(), workers=1, progress=False)
    assert (out / ingest_mod.JOURNAL).is_file() and not (out / "exams.jsonl").exists()
    monkeypatch.setattr(ingest_mod, "_exam_task", lambda task: calls.append(task[0]) or real(task))
    ingest_export(export, out, IngestConfig(), workers=1, progress=False)
    assert len(calls) == len(set(calls)) == read_manifest(reference)["counts"]["exam_rows"]
    assert not (out / ingest_mod.JOURNAL).exists()
    for name in ("exams.jsonl", "ledger.jsonl", "manifest.json"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    calls.clear()
    ingest_export(export, out, IngestConfig(), workers=1, progress=False)     # finished: nothing to redo
    assert calls == []
    with pytest.raises(Exception, match="different config"):
        ingest_export(export, out, IngestConfig(image_size=224), workers=1, progress=False)


def test_cli_ingest_and_its_errors(tmp_path, capsys):
    export = tmp_path / "export"
    ct_series(export / "images" / "ct1", n=6, size=32)
    write_jsonl(export / "exams.jsonl", [{"exam_id": "C1", "patient_id": "P1", "modality": "CT",
                                          "files": ["images/ct1"]}])
    assert main(["ingest", str(export), "--out", str(tmp_path / "c"), "--workers", "1", "image_size=32"]) == 0
    out = capsys.readouterr().out
    assert "exams: 1 of 1" in out and "nc 1" in out
    assert ImageCache(tmp_path / "c").load("C1")[0][1].shape == (6, 32, 32)
    assert main(["ingest", str(tmp_path / "nope"), "--out", str(tmp_path / "d")]) == 2
    assert main(["ingest", str(export), "--out", str(tmp_path / "c"), "image_size=64"]) == 2
    err = capsys.readouterr().err
    assert err.count("p2med ingest: error:") == 2 and "Traceback" not in err and "different config" in err
