"""Training checkpoints: a model checkpoint folder plus the trainer's state and the lineage, written atomically.

``OUT/<stage>/checkpoints/step-00000040/`` holds what ``p2med.model.checkpoint.save_checkpoint`` writes, plus
``trainer_state.pt`` (optimizer, scheduler, plan cursor, RNG states) and ``lineage.json``; ``OUT/<stage>/final``
is the stage's result and the next stage's start. A folder is assembled as ``.NAME.partial`` and renamed into
place only when complete, so the last ``step-*`` folder is always whole (a killed run leaves at most a partial
folder, which is ignored and replaced). Lineage: the code version, the full training config, the dataset
manifest's sha256, the stage, the step, and the previous stage's checkpoint (path relative to OUT and the
sha256 of its files). No absolute paths, times or patient data are written.

Example::

    save_training_checkpoint(model, processor, ckdir / "step-00000040", state, lineage)
    last = last_complete(ckdir)        # Path or None
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..common.atomic import write_json
from ..model.checkpoint import save_checkpoint

STATE = "trainer_state.pt"
LINEAGE = "lineage.json"


def step_name(step: int) -> str:
    return f"step-{step:08d}"


def code_version() -> dict[str, Any]:
    """The package version and, in a git checkout, the commit and whether the tree had changes."""
    out: dict[str, Any] = {"p2med": __version__}
    root = Path(__file__).resolve().parents[3]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10)
            out["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def folder_digest(folder: Path) -> str:
    """sha256 over a checkpoint folder's model files (names and contents), for the next stage's lineage."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in (STATE, LINEAGE)):
        h.update(path.relative_to(folder).as_posix().encode())
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def save_training_checkpoint(model: Any, processor: Any, folder: Path, state: dict[str, Any] | None,
                             lineage: dict[str, Any]) -> Path:
    """Write ``folder`` (model + state + lineage) via a ``.NAME.partial`` sibling renamed when complete."""
    tmp = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    save_checkpoint(model, processor, tmp)
    if state is not None:
        with open(tmp / STATE, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
    write_json(tmp / LINEAGE, lineage)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return folder


def last_complete(ckdir: Path) -> Path | None:
    """The newest complete ``step-*`` folder (partial folders start with a dot and are ignored)."""
    steps = sorted(p for p in ckdir.glob("step-*") if (p / STATE).is_file()) if ckdir.is_dir() else []
    return steps[-1] if steps else None


def prune(ckdir: Path, keep: int) -> None:
    steps = sorted(p for p in ckdir.glob("step-*") if (p / STATE).is_file())
    for old in steps[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def load_state(folder: Path) -> dict[str, Any]:
    return torch.load(folder / STATE, map_location="cpu", weights_only=False)
