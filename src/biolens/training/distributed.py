"""Distributed data parallel through PyTorch's own engine: processes started by ``torchrun``.

``torchrun --nproc_per_node N -m biolens train …`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; ``init``
reads them, joins the process group (NCCL on CUDA, gloo on CPU) and picks this rank's device.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as td
from torch import nn

from biolens.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        if self.world_size == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        if td.get_backend() == "nccl":
            t = t.cuda()
        td.all_reduce(t)
        return t.cpu().tolist()

    def gather_rows(self, t: torch.Tensor) -> torch.Tensor:
        """Every process's rows of ``t`` concatenated in rank order (shares may differ in length by a few rows)."""
        if self.world_size == 1:
            return t
        device = torch.device("cuda", torch.cuda.current_device()) if td.get_backend() == "nccl" else torch.device("cpu")
        n = torch.tensor([len(t)], device=device)
        sizes = [torch.zeros_like(n) for _ in range(self.world_size)]
        td.all_gather(sizes, n)
        longest = int(max(int(s) for s in sizes))
        padded = torch.zeros((longest, *t.shape[1:]), dtype=t.dtype, device=device)
        padded[: len(t)] = t.to(device)
        parts = [torch.zeros_like(padded) for _ in range(self.world_size)]
        td.all_gather(parts, padded)
        return torch.cat([p[: int(k)] for p, k in zip(parts, sizes)]).cpu()

    def barrier(self) -> None:
        if self.world_size > 1:
            td.barrier()

    def broadcast_flag(self, flag: bool) -> bool:
        """Rank 0's decision on every rank (e.g. early stopping)."""
        return bool(self.all_reduce_sum([float(flag) if self.is_main else 0.0])[0])


def init(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the process group when launched by torchrun; a single process gets ``Dist()`` and ``device``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not td.is_initialized():
        td.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world, local), device


def wrap(model: nn.Module, dist: Dist, device: torch.device) -> nn.Module:
    """DDP around ``model`` (SyncBatchNorm on CUDA so batch statistics cover the global batch)."""
    if dist.world_size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return DDP(model, device_ids=[device.index] if device.type == "cuda" else None)


def shutdown() -> None:
    """Leave the process group together: a barrier first, so no rank tears gloo down while another still talks
    (one rank exiting early was seen to abort with "terminate called without an active exception")."""
    if td.is_available() and td.is_initialized():
        try:
            td.barrier()
        finally:
            td.destroy_process_group()


def launch_command(devices: int, argv: list[str]) -> list[str]:
    """``torchrun`` command line re-running this CLI call on ``devices`` processes (``--devices`` removed)."""
    if devices < 2:
        raise ConfigError(f"--devices {devices}: give 2 or more to launch several processes, or leave it out")
    args, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--devices":
            skip = True
            continue
        if a.startswith("--devices="):
            continue
        args.append(a)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={devices}",
            "-m", "biolens", *args]
