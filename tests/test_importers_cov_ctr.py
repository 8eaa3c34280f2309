"""`p2med import cov-ctr` on the shared COV-CTR excerpt: CT report texts without images, counted as text-only;
the same CSV saved as GBK imports identically with a line saying so; damaged UTF-8 quarantines only its row;
bytes that are neither UTF-8 nor GBK stop the run with one line naming the file."""

from __future__ import annotations

import csv
import io

import pytest

from conftest import shared_data
from importer_checks import (check_accounting, check_manifest, csv_record_count, import_reencoded, run_import,
                             table)

from p2med.cli import main
from p2med.common.errors import P2MedError
from p2med.importers.run import import_folder

FILE = "reports_ZH_EN.first27.csv"


def test_shared_excerpt_text_only_ct_exams(tmp_path):
    src = shared_data("cov_ctr_reports_zh_excerpt")
    out = tmp_path / "cov"
    _, printed = run_import("cov-ctr", src, out)
    check_accounting(out, src, rows={FILE: "csv"})
    rows = list(csv.DictReader(io.StringIO((src / FILE).read_text(encoding="utf-8"), newline="")))
    exams = table(out, "exams")
    assert [(e["findings"], e["impression"]) for e in exams] == [(r["findings"], r["impression"]) for r in rows]
    assert all(e["modality"] == "CT" and e["lang"] == "zh" and not e.get("files") for e in exams)
    counts = check_manifest(out)["counts"]
    assert counts["exams_text_only"] == counts["exams"]["CT"] == len(rows) and not printed


def test_gbk_csv_is_detected_and_decoded(tmp_path):
    src = shared_data("cov_ctr_reports_zh_excerpt")
    printed, gbk, utf8 = import_reencoded("cov-ctr", src, FILE, "gbk", tmp_path)
    assert (gbk / "exams.jsonl").read_bytes() == (utf8 / "exams.jsonl").read_bytes()
    work = tmp_path / "in-gbk"
    assert printed == [f"{FILE}: not UTF-8 (invalid byte at {_first_non_ascii(work / FILE)}); decoded as GBK/GB18030"]
    assert len(table(gbk, "exams")) == csv_record_count(src / FILE)
    entries = check_accounting(gbk, work, rows={FILE: "csv:gbk"})
    assert all(e["decoded_as"] == "gbk" for s, e in entries.items() if s.startswith(FILE + ":"))


def _first_non_ascii(path) -> int:
    return next(i for i, b in enumerate(path.read_bytes()) if b > 127)


def test_damaged_utf8_quarantines_only_its_row(tmp_path):
    src = shared_data("cov_ctr_reports_zh_excerpt")
    data = bytearray((src / FILE).read_bytes())
    line4 = len(b"\n".join(data.split(b"\n")[:3])) + 1  # each record spans two lines: line 4 starts the second
    pos = next(i for i in range(line4, len(data)) if data[i] >= 0xE0)  # the lead byte of its first Chinese char
    data[pos + 1] = 0x41  # breaks that character
    work = tmp_path / "in"
    work.mkdir()
    (work / FILE).write_bytes(bytes(data))
    out = tmp_path / "out"
    _, printed = run_import("cov-ctr", work, out)
    entries = check_accounting(out, work, rows={FILE: "csv"})
    bad = [s for s, e in entries.items() if e["status"] == "quarantined"]
    assert bad == [f"{FILE}:4"] and entries[bad[0]]["reason"].startswith("bad-encoding:")
    assert any("invalid UTF-8" in line for line in printed)
    assert any(line.startswith(f"{FILE}:4:") and line.endswith("-> quarantined") for line in printed)
    assert len(table(out, "exams")) == csv_record_count(src / FILE) - 1


def test_undecodable_csv_says_why_in_one_line(tmp_path, capsys):
    work = tmp_path / "in"
    work.mkdir()
    (work / "x.csv").write_bytes(b"image_id,findings,impression\r\na.png,\xff\xfe\xff,\xff\r\n")
    with pytest.raises(P2MedError, match=r"x\.csv: cannot decode: not UTF-8 .* and not GBK/GB18030"):
        import_folder("cov-ctr", work, tmp_path / "out", progress=False, echo=lambda _: None)
    assert main(["import", "cov-ctr", str(work), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("p2med import: error: x.csv: cannot decode")
    assert [p.name for p in tmp_path.iterdir()] == ["in"]  # no export, no partial folder left behind
