"""`p2med import` as users run it: summary and validation printed, exit codes, one-line user errors, output
that does not depend on where it is written, and the cap on problem lines."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import shared_data

from p2med.cli import main
from p2med.common.ledger import read_manifest


def test_cli_prints_summary_and_validation(tmp_path, capsys):
    src = shared_data("cov_ctr_reports_zh_excerpt")
    assert main(["import", "cov-ctr", str(src), "--out", str(tmp_path / "e")]) == 0
    out = capsys.readouterr().out
    assert "import cov-ctr -> " in out and "text-only" in out and out.rstrip().endswith("-> OK")
    assert main(["validate", str(tmp_path / "e")]) == 0


def test_output_does_not_depend_on_its_path(tmp_path):
    src = shared_data("kermany_pediatric_cxr_224_sample")
    for name in ("one", "two/deeper"):
        assert main(["import", "kermany", str(src), "--out", str(tmp_path / name)]) == 0
    a, b = read_manifest(tmp_path / "one"), read_manifest(tmp_path / "two" / "deeper")
    assert a == b and json.dumps(a).find(str(tmp_path)) == -1


@pytest.mark.parametrize("make_args, message", [
    (lambda t, s: ["kermany", str(s), "--out", str(t / "o"), "--images", str(s)], "--images is read only by iu-xray"),
    (lambda t, s: ["kermany", str(t / "nothere"), "--out", str(t / "o")], "does not exist"),
    (lambda t, s: ["kermany", str(t / "copy"), "--out", str(t / "copy" / "export")], "overlap"),
    (lambda t, s: ["kermany", str(t / "copy"), "--out", str(t), "--overwrite"], "overlap"),
    (lambda t, s: ["iu-xray", str(t / "copy"), "--out", str(t / "o")], "no indiana_reports.csv"),
])
def test_user_errors_are_one_line(tmp_path, capsys, make_args, message):
    src = shared_data("kermany_pediatric_cxr_224_sample")
    (tmp_path / "copy").mkdir()
    shutil.copy(src / "labels.csv", tmp_path / "copy" / "labels.csv")
    assert main(["import", *make_args(tmp_path, src)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("p2med import: error:") and message in err[0]


def test_existing_output_needs_overwrite(tmp_path, capsys):
    src = shared_data("cov_ctr_reports_zh_excerpt")
    args = ["import", "cov-ctr", str(src), "--out", str(tmp_path / "e")]
    assert main(args) == 0
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0


def test_problem_lines_are_capped(tmp_path, capsys):
    src = shared_data("imcs21_mrg_promptcblue_toy")  # its test.jsonl lines have no report: one line each
    assert main(["import", "imcs21", str(src), "--out", str(tmp_path / "e"), "--max-lines", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    shown = [line for line in out if line.startswith("test.jsonl:")]
    excluded = sum(1 for line in (tmp_path / "e" / "ledger.jsonl").read_text().splitlines()
                   if '"no-report:' in line)
    assert len(shown) == 2 and any(f"{excluded - 2} more problem line(s) not shown" in line for line in out)
