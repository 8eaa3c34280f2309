"""Serving test helpers: a random-weight checkpoint of the mini model, X-ray studies as real DICOM files with a
patient and a date, an in-process app, and a live ``p2med serve`` subprocess on 127.0.0.1.

Example: ``ckpt = checkpoint(tmp_path)``; ``with live_server(ckpt, tmp_path / "s.db") as (url, token, proc): ...``
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pydicom
from imaging_factory import chest_like, radiograph
from model_helpers import mini_model, randomize_lora

ROOT = Path(__file__).resolve().parents[1]


def checkpoint(folder: Path) -> Path:
    """A mini model with LoRA weights saved by save_checkpoint (what p2med train hands over)."""
    from p2med.model.checkpoint import save_checkpoint

    out = folder / "ckpt"
    if not (out / "config.json").exists():
        model, processor, _ = mini_model()
        randomize_lora(model)
        save_checkpoint(model, processor, out)
    return out


def xray_study(folder: Path, patient: str, date: str, seed: int = 0, birth: str = "20170301") -> list[Path]:
    """One frontal radiograph of ``patient`` taken on ``date`` (YYYYMMDD) as a DICOM file."""
    path = radiograph(folder / f"xr-{seed}.dcm", chest_like(120, 110, seed=seed), view_position="PA", seed=str(seed))
    ds = pydicom.dcmread(path)
    ds.PatientID, ds.PatientName, ds.PatientBirthDate, ds.PatientSex = patient, "测试^患儿", birth, "F"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = date, "093000", f"ACC{seed:05d}", "1"
    ds.save_as(path, enforce_file_format=True)
    return [path]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_state(ckpt: Path, db: str, **cfg):
    from p2med.serve.config import ServeConfig
    from p2med.serve.server import build_state

    return build_state(ServeConfig(db=db, **cfg), ckpt)


def add_user(db: str, name: str = "王医生", role: str = "clinician") -> str:
    from p2med.serve.store import Store

    return Store(db).add_user(name, role)


@contextlib.contextmanager
def live_server(ckpt: Path, db: str, *overrides: str, token_role: str = "clinician",
                log: Path | None = None) -> Iterator[tuple[str, str, subprocess.Popen]]:
    """``p2med serve`` in a subprocess on a free loopback port; yields (base URL, a token, the process)."""
    token = add_user(db, "live-" + token_role, token_role)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "p2med.cli", "serve", "--model", str(ckpt), "--db", db,
                             "--port", str(port), "threads=1", *overrides], env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(f"p2med serve exited with {proc.returncode}"
                                   + (f": {log.read_text(errors='replace')[-2000:]}" if log else ""))
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("p2med serve did not answer within 60 s")
        yield url, token, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if log:
            out.close()
