"""torchrun / DistributedDataParallel plumbing: one process per device, rank 0 writes.

Run ``torchrun --nproc_per_node N -m nsynth_live train ...`` (or the ``nsynth-live`` script
under ``torchrun --no-python``); the environment variables torchrun sets select the process
group. CPU processes use gloo, GPU processes NCCL.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init(device: str = "auto") -> DistInfo:
    """Join the process group torchrun describes (if any) and pick this process's device.

    Args:
        device: "auto" (CUDA when usable, else CPU), "cpu" or "cuda".
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    dev = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank=rank, world=world, local_rank=local_rank, device=dev)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_flag(info: DistInfo, flag: bool) -> bool:
    """True on every rank if any rank raised ``flag`` (e.g. a SIGTERM reached only one)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def parameter_fingerprint(model: torch.nn.Module) -> str:
    """SHA-1 of every parameter's bytes: equal across ranks iff the replicas are identical."""
    h = hashlib.sha1()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def gather_fingerprints(info: DistInfo, model: torch.nn.Module) -> list[str]:
    """Every rank's :func:`parameter_fingerprint`, in rank order (a one-item list alone)."""
    mine = parameter_fingerprint(model)
    if not info.enabled:
        return [mine]
    out: list[str | None] = [None] * info.world
    dist.all_gather_object(out, mine)
    return [str(x) for x in out]
