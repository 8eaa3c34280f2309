"""`p2med import kermany` on the shared sample: one exam per image with its label-derived impression, patients
by key; the Kaggle layout without labels.csv gives the same export; broken labels; hard links vs copies."""

from __future__ import annotations

import csv
import os
import shutil

from conftest import shared_data
from importer_checks import check_accounting, check_manifest, run_import, table

from p2med.common.atomic import sha256_file
from p2med.importers.kermany import IMPRESSIONS


def _labels(src) -> list[dict]:
    with open(src / "labels.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_shared_sample_label_derived_exams(tmp_path):
    src = shared_data("kermany_pediatric_cxr_224_sample")
    out = tmp_path / "k"
    result, printed = run_import("kermany", src, out)
    entries = check_accounting(out, src, rows={"labels.csv": "csv"})
    labels = _labels(src)
    exams = {e["exam_id"]: e for e in table(out, "exams")}
    assert len(exams) == len(labels) and not printed
    assert {p["patient_id"] for p in table(out, "patients")} == {f"kermany-{r['patient_key']}" for r in labels}
    for row in labels:
        exam = exams[f"kermany-{os.path.splitext(os.path.basename(row['file']))[0]}"]
        assert exam["impression"] == IMPRESSIONS[row["subtype"]] and "findings" not in exam
        assert exam["report_origin"] == "label-derived" and exam["lang"] == "zh"
        assert exam["patient_id"] == f"kermany-{row['patient_key']}"
        assert sha256_file(out / exam["files"][0]) == sha256_file(src / row["file"])
        assert entries[row["file"]]["status"] == "used"
    assert len(set(IMPRESSIONS.values())) == len(IMPRESSIONS)  # each label keeps its own wording
    assert check_manifest(out)["counts"]["exams_with_images"] == len(labels) == result.counts["image_files"]


def test_kaggle_layout_without_labels_csv_gives_the_same_export(tmp_path):
    src = shared_data("kermany_pediatric_cxr_224_sample")
    bare = tmp_path / "chest_xray" / "test"
    for row in _labels(src):
        (bare / row["file"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / row["file"], bare / row["file"])
    run_import("kermany", src, tmp_path / "a")
    run_import("kermany", bare, tmp_path / "b")
    for name in ("exams", "patients"):  # the same rows (in labels.csv order vs path order)
        a, b = (sorted((tmp_path / d / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()) for d in "ab")
        assert a == b


def test_bad_labels_are_named_and_the_rest_imported(tmp_path):
    src = shared_data("kermany_pediatric_cxr_224_sample")
    labels = _labels(src)[:6]
    work = tmp_path / "in"
    for row in labels:
        (work / row["file"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / row["file"], work / row["file"])
    os.unlink(work / labels[1]["file"])  # listed, missing
    labels[2]["subtype"] = "FUNGUS"  # unknown label
    shutil.copy(src / labels[3]["file"], work / "NORMAL" / "unlisted.jpeg")  # present, not listed
    with open(work / "labels.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(labels[0]))
        writer.writeheader()
        writer.writerows(labels)
    out = tmp_path / "out"
    _, printed = run_import("kermany", work, out)
    entries = check_accounting(out, work, rows={"labels.csv": "csv"})
    assert entries["labels.csv:3"]["reason"].startswith("missing-image:")
    assert entries["labels.csv:4"]["reason"].startswith("unknown-label:")
    assert entries["NORMAL/unlisted.jpeg"]["reason"].startswith("unlabelled:")
    assert entries[labels[2]["file"]]["reason"].startswith("unlabelled:")  # its label row was unusable
    for source in ("labels.csv:3", "labels.csv:4", "NORMAL/unlisted.jpeg"):
        assert sum(line.startswith(source + ":") for line in printed) == 1
    assert len(table(out, "exams")) == len(labels) - 2


def test_hardlink_and_copy(tmp_path):
    src = shared_data("kermany_pediatric_cxr_224_sample")
    run_import("kermany", src, tmp_path / "linked", link="hardlink")
    run_import("kermany", src, tmp_path / "copied")
    for name in ("linked", "copied"):
        exam = table(tmp_path / name, "exams")[0]
        source = src / "NORMAL" / (exam["exam_id"].removeprefix("kermany-") + ".jpeg")
        same_inode = os.stat(tmp_path / name / exam["files"][0]).st_ino == os.stat(source).st_ino
        assert same_inode == (name == "linked")
    # the manifest does not depend on how the files got there, nor on the output path
    assert (tmp_path / "linked" / "exams.jsonl").read_bytes() == (tmp_path / "copied" / "exams.jsonl").read_bytes()
