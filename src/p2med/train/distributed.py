"""torchrun plumbing: the process group, DDP or FSDP, sums across ranks, rank-0-only work.

Under ``torchrun`` (RANK / WORLD_SIZE / LOCAL_RANK in the environment) ``setup`` joins the process group
(gloo on CPU, nccl with CUDA) and ``wrap`` either replicates the model with DDP (``find_unused_parameters``:
text batches leave the perceiver unused) or shards the LLM's decoder layers with FSDP (``fully_shard``, for the
8B preset); with FSDP the other parts (tower, perceiver, embeddings) stay replicated, their gradients are
all-reduced here (``sync_replicated_grads``) and the clipping norm spans shards and replicas (``clip_grad_norm``).
The tower and the embeddings are called outside the LLM's forward (feature caching, ``<image>`` slots), which is
why they are not sharded. ``full_state`` gathers the model and optimizer state on rank 0 for checkpoints.
Without torchrun everything is a no-op on one process. It knows nothing about data or losses.

Example::

    dist = setup("auto")                 # Dist(rank=0, world=2, device=cpu)
    model_w = wrap(model, dist, "ddp")
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


def wrap(model: nn.Module, dist: Dist, strategy: str) -> nn.Module:
    """The module the training step calls: the model itself, DDP around it, or the model with its LLM's
    decoder layers sharded in place (FSDP)."""
    if not dist.active:
        return model
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        layers = [m for m in model.llm.modules() if type(m).__name__.endswith("DecoderLayer")]
        if not layers:
            raise P2MedError("distributed.strategy=fsdp: the LLM has no *DecoderLayer modules to shard")
        for layer in layers:
            fully_shard(layer)
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


def is_sharded(p: torch.Tensor) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(p, DTensor)


def sync_replicated_grads(params: list[torch.Tensor], dist: Dist) -> None:
    """FSDP: average the gradients of the parameters that are not sharded (DDP's job for them)."""
    grads = [p.grad for p in params if p.grad is not None and not is_sharded(p)]
    for g in grads:
        torch.distributed.all_reduce(g)
        g.div_(dist.world)


def clip_grad_norm(params: list[torch.Tensor], max_norm: float, dist: Dist, sharded: bool) -> None:
    """Scale gradients so that their global 2-norm is at most ``max_norm`` (torch's formula); under FSDP the
    norm adds the shards of every rank to the replicated gradients once."""
    if not sharded:
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        return
    grads = [p.grad for p in params if p.grad is not None]
    local = sum((g.to_local().float() ** 2).sum() for g in grads if is_sharded(g))
    shards = dist.sum(torch.as_tensor(local, dtype=torch.float64).reshape(1))[0]
    replicated = sum(float((g.float() ** 2).sum()) for g in grads if not is_sharded(g))
    total = float(shards + replicated) ** 0.5
    coef = min(1.0, max_norm / (total + 1e-6))
    for g in grads:
        g.mul_(coef)


def full_state(model: nn.Module, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    """FSDP: the full model and optimizer state dicts, gathered on rank 0 (empty elsewhere); collective."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, \
        get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options), get_optimizer_state_dict(model, opt, options=options)


def load_full_optimizer_state(model: nn.Module, opt: torch.optim.Optimizer, state: dict) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, opt, optim_state_dict=state, options=StateDictOptions(full_state_dict=True))
