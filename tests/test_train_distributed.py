"""Two real processes under torchrun (gloo on CPU, 127.0.0.1): replicas stay identical and equal one process.

``python -m torch.distributed.run --nproc_per_node 2`` runs ``p2med train`` on the mini model, with DDP and with
FSDP (the LLM's decoder layers sharded); the same config runs in one process with the same global batch
(``batch_size`` is global and the plan is the same on every rank). The loss is normalised by the global token
count, so the runs take the same optimizer steps up to floating-point summation order.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys

import pytest
import torch
from train_helpers import config_file, one_stage, subprocess_env, write_dataset

from p2med.model.checkpoint import load_checkpoint
from p2med.train.metrics import read_metrics


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(cfg, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
                           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
                           "-m", "p2med.cli", "train", "--config", str(cfg), *extra],
                          env=subprocess_env(), capture_output=True, text=True, timeout=600)


def _config(root, run: str, **over):
    return config_file(root, root / "ds", run, stages=one_stage("stage1", "lora", epochs=2), batch_size=5,
                       grad_accum=2, checkpoint_every=3, **over)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The dataset and the one-process run every torchrun run is compared with."""
    root = tmp_path_factory.mktemp("dist")
    write_dataset(root, n_xray=8, n_ct=4, n_text=9, stages=("stage1",))
    one = subprocess.run([sys.executable, "-m", "p2med.cli", "train", "--config", str(_config(root, "one"))],
                         env=subprocess_env(), capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-3000:]
    return root


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_process_torchrun_matches_one_process(one_process, strategy):
    tmp_path = one_process
    run = f"two-{strategy}"
    cfg = _config(tmp_path, run, distributed={"strategy": strategy, "backend": "gloo"})
    two = _torchrun(cfg)
    assert two.returncode == 0, two.stderr[-3000:]
    lineage = json.loads((tmp_path / run / "s" / "final" / "lineage.json").read_text())
    digests = lineage["replica_sha256"]
    assert lineage["world_size"] == 2 and len(digests) == 2 and digests[0] == digests[1]  # identical replicas
    assert (lineage["sharded_tensors"] > 0) == (strategy == "fsdp")
    a, _, _ = load_checkpoint(tmp_path / "one" / "s" / "final")
    b, _, _ = load_checkpoint(tmp_path / run / "s" / "final")
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert pa.keys() == pb.keys()
    moved = 0
    for name, x in pa.items():
        y = pb[name]
        assert torch.linalg.norm(x - y) <= 1e-5 * torch.linalg.norm(x) + 1e-12, name
        moved += x.requires_grad
    assert moved > 0
    l1, l2 = read_metrics(tmp_path / "one" / "s"), read_metrics(tmp_path / run / "s")
    assert [r["step"] for r in l1] == [r["step"] for r in l2] and len(l1) >= 3
    for r1, r2 in zip(l1, l2):
        assert r1["tokens"] == r2["tokens"] and r1["samples"] == r2["samples"]
        assert abs(r1["loss"] - r2["loss"]) <= 1e-5 * abs(r1["loss"])
    if strategy == "fsdp":  # resume from the step checkpoint (gathered state, resharded): the same result
        final = tmp_path / run / "s" / "final"
        shutil.rmtree(final)
        again = _torchrun(cfg, "--resume")
        assert again.returncode == 0, again.stderr[-3000:]
        c, _, _ = load_checkpoint(final)
        for name, x in c.named_parameters():
            assert torch.equal(x, pb[name]), name
        assert [r["loss"] for r in read_metrics(tmp_path / run / "s")] == [r["loss"] for r in l2]
