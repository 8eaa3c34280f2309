"""The SPEC section 9 helpers: ledger rules, deterministic manifest, atomic writes, config loading."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from p2med.common.atomic import atomic_open, write_json
from p2med.common.ledger import Ledger, LedgerError, write_manifest
from p2med.config import ConfigError, check, load_config


def test_ledger_one_entry_per_source_and_reasons(tmp_path):
    ledger = Ledger()
    ledger.used("b.dcm")
    ledger.quarantined("a.dcm", "truncated", "pixel data ends early")
    with pytest.raises(LedgerError, match="twice"):
        ledger.used("a.dcm")
    with pytest.raises(LedgerError, match="no reason"):
        ledger.add("c.dcm", "excluded")
    with pytest.raises(LedgerError, match="status"):
        ledger.add("d.dcm", "lost", "x", "y")
    ledger.write(tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert [r["source"] for r in rows] == ["a.dcm", "b.dcm"]
    assert rows[0] == {"source": "a.dcm", "status": "quarantined", "reason": "truncated: pixel data ends early"}
    assert Ledger.read(tmp_path / "ledger.jsonl").counts() == {"used": 1, "excluded": 0, "quarantined": 1}


def test_manifest_is_deterministic_and_hashes_files(tmp_path):
    for d in ("one", "two"):
        (tmp_path / d / "sub").mkdir(parents=True)
        (tmp_path / d / "sub" / "x.txt").write_text("x")
        (tmp_path / d / "a.txt").write_text("a")
        write_manifest(tmp_path / d, "test", {"k": 1}, {"n": 2})
    one = (tmp_path / "one" / "manifest.json").read_bytes()
    assert one == (tmp_path / "two" / "manifest.json").read_bytes()
    files = json.loads(one)["files"]
    assert [f["path"] for f in files] == ["a.txt", "sub/x.txt"]
    assert files[0]["sha256"] == "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "f.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w", encoding="utf-8") as fh:
            fh.write("partial")
            raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


@dataclass
class Inner:
    rate: float = 0.5  # a share

    def __post_init__(self):
        check(0 <= self.rate <= 1, "inner.rate", f"is a share in [0, 1], got {self.rate}")


@dataclass
class Outer:
    n: int = 3
    name: str = "x"
    sizes: tuple[float, float] = (0.1, 0.2)
    inner: Inner = field(default_factory=Inner)


def test_config_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("n: 5\ninner:\n  rate: 0.25\n")
    cfg = load_config(Outer, path, ["name=y", "inner.rate=0.75", "sizes=[0.2, 0.3]"])
    assert (cfg.n, cfg.name, cfg.inner.rate, cfg.sizes) == (5, "y", 0.75, (0.2, 0.3))


@pytest.mark.parametrize("override, message", [
    ("nn=3", "unknown key"), ("n=abc", "n: expected an integer"), ("inner.rate=2", "inner.rate"),
    ("inner.bogus=1", "unknown key"), ("novalue", "key=value")])
def test_config_errors_name_the_field(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(Outer, None, [override])
