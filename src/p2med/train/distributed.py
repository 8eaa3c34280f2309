"""torchrun plumbing: the process group, the DDP wrapper, sums across ranks, rank-0-only work.

Under ``torchrun`` (RANK / WORLD_SIZE / LOCAL_RANK in the environment) ``setup`` joins the process group
(gloo on CPU, nccl with CUDA) and ``wrap`` replicates the model with DDP (``find_unused_parameters``: text
batches leave the perceiver unused). FSDP is not implemented (docs/training.md says why). Without torchrun
everything is a no-op on one process. It knows nothing about data or losses.

Example::

    dist = setup("auto")                 # Dist(rank=0, world=2, device=cpu)
    model_w = wrap(model, dist)
    total = dist.sum(torch.tensor([loss_sum, n_tokens]))
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn

from ..common.errors import P2MedError


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.active:
            t = t.clone()
            torch.distributed.all_reduce(t)
        return t

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def gather_strings(self, text: str) -> list[str]:
        if not self.active:
            return [text]
        out: list[Any] = [None] * self.world
        torch.distributed.all_gather_object(out, text)
        return out


def setup(backend: str = "auto") -> Dist:
    """Join torchrun's process group if launched by it; pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world == 1:
        return Dist(device=device)
    if backend == "auto":
        backend = "nccl" if cuda else "gloo"
    if backend == "nccl" and not cuda:
        raise P2MedError("distributed.backend=nccl needs CUDA GPUs; use gloo (or auto) on CPU")
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend)
    return Dist(torch.distributed.get_rank(), torch.distributed.get_world_size(), local, device)


def teardown(dist: Dist) -> None:
    if dist.active and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def wrap(model: nn.Module, dist: Dist) -> nn.Module:
    """The module the training step calls: the model itself, or DDP around it under torchrun."""
    if not dist.active:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [dist.device.index] if dist.device.type == "cuda" else None
    return DDP(model, device_ids=ids, find_unused_parameters=True)


def unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)


@contextlib.contextmanager
def no_sync(model: nn.Module, skip: bool) -> Iterator[None]:
    """Skip DDP's gradient all-reduce on all but the last micro-batch of an optimizer step."""
    if skip and hasattr(model, "no_sync"):
        with model.no_sync():
            yield
    else:
        yield
