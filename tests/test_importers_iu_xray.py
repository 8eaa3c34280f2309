"""`p2med import iu-xray` on the shared IU reports + the mini image folder: one exam per study uid with its
frontal/lateral views copied in, text-only exams kept and counted, English throughout; broken copies with a
missing image, unknown projections and a stray file; images named as in the projections table."""

from __future__ import annotations

import csv
import shutil

from conftest import shared_data
from importer_checks import check_accounting, check_manifest, run_import, table

from p2med.common.atomic import sha256_file

REPORT_ROWS = {"indiana_reports.csv": "csv", "indiana_projections.csv": "csv"}


def _csv(path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_shared_reports_with_mini_images(tmp_path):
    src, images = shared_data("iu_xray_reports"), shared_data("iu_xray_images_mini")
    out = tmp_path / "iu"
    result, printed = run_import("iu-xray", src, out, images)
    entries = check_accounting(out, src, rows=REPORT_ROWS, images=images, image_rows={"metadata.csv": "csv"})
    reports = _csv(src / "indiana_reports.csv")
    meta = _csv(images / "metadata.csv")
    with_images = {m["uid"] for m in meta}
    expected = {r["uid"] for r in reports if r["findings"] or r["impression"] or r["uid"] in with_images}
    exams = {e["exam_id"]: e for e in table(out, "exams")}
    assert set(exams) == {f"iu-{uid}" for uid in expected}
    assert {e for e in exams if exams[e].get("files")} == {f"iu-{uid}" for uid in with_images}
    for m in meta:  # each mini image is in its exam under its view's name, byte-identical
        exam = exams[f"iu-{m['uid']}"]
        name = next(f for f in exam["files"] if f.split("/")[-1].startswith(m["view_by_visual_check"].lower()))
        assert sha256_file(out / name) == sha256_file(images / m["file"])
        assert entries["images:" + m["file"]]["status"] == "used"
    assert all(e["lang"] == "en" and e["modality"] == "XR" for e in exams.values())
    assert all(1 <= len(e["files"]) <= 2 for e in exams.values() if e.get("files"))
    counts = check_manifest(out)["counts"]
    assert counts["exams_with_images"] == len(with_images)
    assert counts["exams_text_only"] == len(exams) - len(with_images) == result.counts["exams_text_only"]
    # the empty reports are the only lines printed, one each, naming the row
    empty = [s for s, e in entries.items() if (e["reason"] or "").startswith("no-report:")]
    assert len(empty) == len(reports) - len(expected)
    assert sorted(line.split(": ")[0] for line in printed) == sorted(empty)


def _small_copy(tmp_path, uids: set[str]):
    """Reports and projections of ``uids`` only, plus the mini images, in tmp_path (derived at test time)."""
    src, images = shared_data("iu_xray_reports"), shared_data("iu_xray_images_mini")
    reports_dir, images_dir = tmp_path / "reports", tmp_path / "images"
    reports_dir.mkdir()
    for name in REPORT_ROWS:
        with open(src / name, encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        with open(reports_dir / name, "w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows([rows[0]] + [r for r in rows[1:] if r[0] in uids])
    shutil.copytree(images, images_dir)
    return reports_dir, images_dir


def test_missing_image_unknown_projection_and_stray_file(tmp_path):
    meta = _csv(shared_data("iu_xray_images_mini") / "metadata.csv")
    reports_dir, images_dir = _small_copy(tmp_path, {m["uid"] for m in meta})
    (images_dir / "images" / "2_2.png").unlink()  # listed in metadata.csv, gone
    shutil.copy(images_dir / "images" / "861_1.png", images_dir / "images" / "stray.png")
    with open(reports_dir / "indiana_projections.csv", "a", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerow(["2", "2_IM-0652-3001.dcm.png", "Oblique"])
    with open(images_dir / "metadata.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows[0]["view_by_visual_check"] = "Decubitus"
    with open(images_dir / "metadata.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "out"
    _, printed = run_import("iu-xray", reports_dir, out, images_dir)
    entries = check_accounting(out, reports_dir, rows=REPORT_ROWS, images=images_dir,
                               image_rows={"metadata.csv": "csv"})
    by_code = {}
    for source, e in entries.items():
        by_code.setdefault((e["reason"] or "").split(":")[0], []).append(source)
    n_proj = sum(1 for s in entries if s.startswith("indiana_projections.csv:"))
    odd_projection = f"indiana_projections.csv:{n_proj + 1}"  # the appended Oblique row
    assert sorted(by_code["unknown-projection"]) == sorted(
        [odd_projection, "images:metadata.csv:2", "images:" + rows[0]["file"]])
    assert len(by_code["missing-image"]) == 1 and by_code["missing-image"][0].startswith("images:metadata.csv:")
    assert by_code["unmatched-image"] == ["images:images/stray.png"]
    for source in (by_code["missing-image"][0], "images:images/stray.png", odd_projection, "images:metadata.csv:2"):
        assert sum(line.startswith(source + ":") for line in printed) == 1, (source, printed)
    exams = {e["exam_id"]: e for e in table(out, "exams")}
    assert exams["iu-2"]["files"] == ["images/iu-2/frontal.png"]  # its lateral is the missing file
    assert not exams[f"iu-{rows[0]['uid']}"].get("files")  # its only image had an unknown view: text-only


def test_images_named_as_in_the_projections_table(tmp_path):
    """Without metadata.csv, images are matched by name (Kaggle and Open-i styles); a third frontal is excluded."""
    reports_dir, _ = _small_copy(tmp_path, {"2"})
    mini = shared_data("iu_xray_images_mini") / "images"
    named = tmp_path / "named"
    named.mkdir()
    shutil.copy(mini / "2_1.png", named / "2_IM-0652-1001.dcm.png")
    shutil.copy(mini / "2_2.png", named / "CXR2_IM-0652-2001.png")
    shutil.copy(mini / "2_1.png", named / "CXR2_IM-0652-1001.png")  # the same frontal again, other naming
    out = tmp_path / "out"
    _, printed = run_import("iu-xray", reports_dir, out, named)
    entries = check_accounting(out, reports_dir, rows=REPORT_ROWS, images=named)
    exam = table(out, "exams")[0]
    assert exam["files"] == ["images/iu-2/frontal.png", "images/iu-2/lateral.png"]
    assert sha256_file(out / exam["files"][1]) == sha256_file(mini / "2_2.png")
    extra = [s for s, e in entries.items() if (e["reason"] or "").startswith("extra-view:")]
    assert len(extra) == 1 and not printed
    assert all(e["status"] == "used" for s, e in entries.items() if s.startswith("indiana_projections.csv"))
