"""The CLI help lists only working commands, each command's help runs, every shipped config loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from p2med.cli import COMMANDS, main
from p2med.clinical.categories import CategoryConfig
from p2med.config import load_config
from p2med.curate.config import BuildConfig
from p2med.curate.dedup import DedupConfig
from p2med.curate.prompts import Prompts
from p2med.deid.config import DeidConfig
from p2med.demo.config import DemoConfig
from p2med.eval.ablation import AblationConfig
from p2med.eval.config import EvalConfig
from p2med.eval.exemplars import ExemplarSet
from p2med.imaging.config import IngestConfig
from p2med.model.config import ModelConfig
from p2med.serve.config import ServeConfig
from p2med.synth.config import SynthConfig
from p2med.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
# config folder (or folder/file.yaml, for a file that configures something else) -> the dataclass it configures
CONFIG_CLASSES = {"synth": SynthConfig, "deid": DeidConfig, "clinical": CategoryConfig, "eval": EvalConfig,
                  "eval/judge_exemplars.yaml": ExemplarSet, "eval/ablation_paper.yaml": AblationConfig,
                  "ingest": IngestConfig, "model": ModelConfig, "dedup": DedupConfig,
                  "build": BuildConfig, "prompts": Prompts, "train": TrainConfig,
                  "serve": ServeConfig, "demo": DemoConfig}


def test_top_level_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "p2med.cli", "--help"], capture_output=True, text=True, check=True)
    for name in COMMANDS:
        assert name in out.stdout


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: p2med " + command in capsys.readouterr().out


def test_user_error_is_one_line_not_a_traceback(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "x"), "nonsense_key=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("p2med synth: error:") and "nonsense_key" in err and "Traceback" not in err


def test_every_shipped_config_loads():
    files = sorted((ROOT / "configs").rglob("*.yaml"))
    assert files
    for path in files:
        rel = path.relative_to(ROOT / "configs")
        cls = CONFIG_CLASSES.get(rel.as_posix()) or CONFIG_CLASSES.get(rel.parts[0])
        assert cls is not None, f"{path} has no config class registered in this test"
        load_config(cls, path)


