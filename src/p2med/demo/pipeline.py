"""The demo's steps, each resumable: a step that finished is recorded in ``OUT/demo_state.json`` and skipped
when the demo runs again with the same configuration (a changed configuration needs a fresh ``--out``).

synthesize a training and a held-out hospital -> de-identify both (one demo key) and verify -> ingest ->
build (the training hospital's stages; the held-out hospital's benchmark) -> train the tiny preset through the
three stages -> answer the held-out benchmark with the model and with shuffled images -> score, controls,
baselines -> ``report/results.json`` + ``report/report.html``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

from ..common.atomic import write_json
from ..common.errors import P2MedError
from ..config import load_config, to_dict
from .config import DemoConfig

ROOT = Path(__file__).resolve().parents[3]
STATE = "demo_state.json"


def project_file(path: str) -> Path:
    """A config path as given, else relative to the project (``make demo`` runs from the project root)."""
    p = Path(path)
    return p if p.is_file() or p.is_absolute() else ROOT / p


class Steps:
    """Runs named steps in order, skipping those recorded as done for this configuration."""

    def __init__(self, out: Path, cfg: DemoConfig) -> None:
        self.out = out
        self.fingerprint = hashlib.sha256(json.dumps(to_dict(cfg), sort_keys=True).encode()).hexdigest()[:16]
        self.path = out / STATE
        state = json.loads(self.path.read_text()) if self.path.is_file() else {}
        if state and state.get("config") != self.fingerprint:
            raise P2MedError(f"{out}: holds a demo run with another configuration; use a fresh --out folder "
                             f"(or delete {self.path} to start over)")
        self.done: list[str] = state.get("done", [])
        self.seconds: dict[str, float] = state.get("seconds", {})

    def run(self, names: list[tuple[str, Callable[[], None]]]) -> None:
        for k, (name, fn) in enumerate(names, 1):
            if name in self.done:
                print(f"[{k}/{len(names)}] {name}: done in an earlier run")
                continue
            print(f"[{k}/{len(names)}] {name}", flush=True)
            t0 = time.monotonic()
            fn()
            self.seconds[name] = round(time.monotonic() - t0, 1)
            self.done.append(name)
            write_json(self.path, {"config": self.fingerprint, "done": self.done, "seconds": self.seconds})
            print(f"    {name}: {self.seconds[name]:.0f} s", flush=True)


# A run folder's size (both hospitals' DICOM files and their de-identified copies, ingest caches, checkpoints),
# fitted on the demo's runs (docs/demo.md): per patient, plus per patient times the CT share (CT slices weigh
# most; 5 mm slices 10 mm apart), plus the model's checkpoints.
MB_PER_PATIENT = 2.6        # 1,400 patients with a CT share of 0.08: 4.66 GB; 200 with 0.4: 1.25 GB
MB_PER_PATIENT_CT = 9.2     # per unit of CT share at 10 mm slice steps (twice that at 5 mm)
GB_MODEL = 0.5


def check_free_space(out: Path, cfg: DemoConfig, steps: Steps) -> None:
    """Stop before the first step when ``out``'s disk cannot hold the run (a full disk stopped runs midway)."""
    if steps.done:          # a resumed run has written its hospitals already
        return
    need = GB_MODEL
    for which in ("train", "held_out"):
        scfg = synth_config(cfg, which)
        need += scfg.patients * (MB_PER_PATIENT + MB_PER_PATIENT_CT * scfg.ct_share * 10.0
                                 / scfg.ct.slice_interval_mm) / 1024
    free = shutil.disk_usage(out).free / 1024 ** 3
    if free < need:
        raise P2MedError(f"{out}: this demo writes about {need:.1f} GB (hospitals, de-identified copies, caches, "
                         f"checkpoints) and only {free:.1f} GB are free there: nothing was started; free some "
                         "space or give --out a folder on a larger disk")


def synth_config(cfg: DemoConfig, which: str):
    """The ``SynthConfig`` of the training (``which="train"``) or the held-out hospital."""
    from ..synth.config import SynthConfig
    patients, seed, extra = ((cfg.train_patients, cfg.train_seed, cfg.train_synth_overrides) if which == "train"
                             else (cfg.held_out_patients, cfg.held_out_seed, []))
    return load_config(SynthConfig, project_file(cfg.synth),
                       [*cfg.synth_overrides, *extra, f"patients={patients}", f"seed={seed}"])


def synth_step(cfg: DemoConfig, which: str, out: Path) -> Callable[[], None]:
    def step() -> None:
        from ..synth.cli import format_summary
        from ..synth.hospital import synthesize
        scfg = synth_config(cfg, which)
        counts = synthesize(scfg, out / which / "hospital", out / which / "hospital.truth", overwrite=True)
        print(format_summary(counts, out / which / "hospital", out / which / "hospital.truth"))
    return step


def demo_key(out: Path, cfg: DemoConfig) -> Path:
    """The demo's key, readable by its owner only: derived from the hospitals' seeds, so that the same
    configuration gives the same pseudonyms, date shifts, stage split and sample order, hence the same figures
    (with a random key two runs differed by 11 points on X-ray). Only for the synthetic hospitals: a real key is
    random (``secrets.token_hex(32)``) and lives outside every run folder."""
    key_file = out / "demo-deid.key"
    if not key_file.is_file():
        seed = f"p2med demo key:{cfg.train_seed}:{cfg.held_out_seed}".encode()
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(hashlib.sha256(seed).hexdigest() + "\n")
    return key_file


def deid_step(cfg: DemoConfig, out: Path) -> Callable[[], None]:
    def step() -> None:
        from ..deid.config import DeidConfig
        from ..deid.export import deidentify_export
        from ..deid.keys import DeidKey
        from ..deid.verify import format_report, verify
        from ..export.validate import format_report as format_validation, validate

        key = DeidKey.load(demo_key(out, cfg))
        for which in ("train", "held_out"):
            src, dst = out / which / "hospital", out / which / "deid"
            report = validate(src)
            if not report.ok:
                raise P2MedError(f"{src}: the synthetic export does not validate:\n"
                                 + format_validation(report, max_lines=20))
            counts = deidentify_export(src, dst, key, DeidConfig(), overwrite=True)
            led = counts["ledger"]
            result = verify(src, dst, key)
            print(f"    {which}: {led['used']} used, {led['excluded']} excluded, {led['quarantined']} quarantined; "
                  + format_report(result).splitlines()[-1])
            if not result.ok:       # the report names places and kinds, never the values
                raise P2MedError(f"{dst}: de-identification verification found identifiers:\n"
                                 + format_report(result))
    return step


def ingest_step(out: Path) -> Callable[[], None]:
    def step() -> None:
        from ..imaging.cli import format_summary
        from ..imaging.config import IngestConfig
        from ..imaging.ingest import ingest_export
        for which in ("train", "held_out"):
            cache = out / which / "cache"
            if cache.exists():
                shutil.rmtree(cache)
            print(format_summary(ingest_export(out / which / "deid", cache, IngestConfig(), workers=2), cache))
    return step


def build_step(cfg: DemoConfig, out: Path) -> Callable[[], None]:
    def step() -> None:
        from ..curate.build import build_dataset
        from ..curate.config import BenchmarkConfig, BuildConfig
        none = BenchmarkConfig(**{k: 0 for k in ("xray_single", "xray_mrc_patients", "ct_report", "outpatient",
                                                 "first_course", "attending_round", "chief_round")})
        train = build_dataset(out / "train" / "deid", out / "train" / "cache", out / "train" / "dataset",
                              BuildConfig(scale=cfg.build_scale, benchmark=none))
        print("    training stages: " + ", ".join(f"{k} {v}" for k, v in train["counts"].items()))
        big = BenchmarkConfig(xray_single=10_000, xray_mrc_patients=10_000, ct_report=10_000, outpatient=10_000,
                              first_course=10_000, attending_round=10_000, chief_round=10_000, max_patient_share=1.0)
        held = build_dataset(out / "held_out" / "deid", out / "held_out" / "cache", out / "held_out" / "dataset",
                             BuildConfig(scale=cfg.build_scale, benchmark=big))
        print(f"    held-out benchmark: {held['counts']['benchmark']} samples (every usable exam and record)")
    return step


def train_step(cfg: DemoConfig, out: Path) -> Callable[[], None]:
    def step() -> None:
        from ..train.config import TrainConfig
        from ..train.run import train
        tcfg = load_config(TrainConfig, project_file(cfg.train),
                           [*cfg.train_overrides, f"dataset={out / 'train' / 'dataset'}", f"out={out / 'model'}"])
        last = train(tcfg, resume=True)
        print(f"    model: {last}")
    return step


def final_checkpoint(out: Path) -> Path:
    finals = sorted((out / "model").glob("stage*/final"))
    if not finals:
        raise P2MedError(f"{out / 'model'}: no trained stage (run the demo's training step)")
    return finals[-1]
