"""Several processes, one run: torch.distributed, launched by torchrun (one process per GPU; on CPUs, gloo).

``torchrun --standalone --nproc_per_node=N -m gankit train PRESET --out RUN`` starts N copies of the same
command; torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR...) tells each its place, and
multi-node runs use torchrun's own flags (``--nnodes``, ``--node_rank``, ``--rdzv_backend=c10d
--rdzv_endpoint=HOST:PORT``). Without that environment gankit is one process, exactly as before.

How a step is shared (``training/loop.py``):

- ``train.batch_size`` is the global batch. Every rank draws the same global batch indices (the batch stream
  is a function of (seed, k)) and the same global z (one z generator, seeded alike), and takes its own
  contiguous slice of both: rank r of N holds samples r*B/N .. (r+1)*B/N - 1 of what one process would use.
- Gradients are averaged by one all-reduce per net per step (:func:`average`), after the backward pass
  and before the optimizer: with losses that are means over equal slices this is exactly the gradient of
  the global batch, so N processes follow one process's trajectory (to float rounding) on nets without
  BatchNorm. The step's statistics ride in the same buffer, so every rank logs, and checks for NaN, the
  same global means; a rank's wish to stop (``train.time_limit``) rides there too, so ranks stop together.
- This is data parallelism without ``DistributedDataParallel``'s wrapper: a GAN step calls D two or three
  times per backward, freezes D during G's step, and (some objectives) leaves D heads unused in one phase;
  the wrapper's reducer expects one forward and one backward per module per iteration (or a blanket
  ``find_unused_parameters``), and its buffer broadcast at every forward breaks autograd when D runs twice
  before one backward. Averaging after the backward keeps every variant unchanged.
- BatchNorm: by default each rank normalizes with its own slice's statistics (as DDP does by default: no
  communication inside the forward pass, and the per-rank batch is what the paper's recipes were tuned on when
  one GPU held 128 images); the running statistics of every BatchNorm of G and D are averaged across ranks at
  each step (in G's all-reduce), so the ranks' nets stay identical. ``train.sync_batchnorm=true`` normalizes
  with the statistics of the global batch instead (:class:`SyncedBatchNorm`: one all-reduce of per-channel sums
  per BatchNorm per forward, differentiable, on gloo and NCCL alike), so an N-process run of a BatchNorm net
  follows the one-process run of the same global batch; use it when the per-process batch gets small (say
  below 32). Each D forward (real, then fake) syncs its own statistics, as one process normalizes each call
  alone; there is no buffer broadcast, so two D forwards before one backward are safe. EMA G is updated from
  identical weights and recalibrated with identical
  draws, so it is identical on every rank too. :func:`check_identical` proves it at every checkpoint.
- Randomness: all ranks build the nets from ``train.seed`` (identical initial weights); then rank r > 0
  moves its global generator to a seed derived from (seed, r), so dropout, augmentations, gradient-penalty
  mixing and the condition's draws differ between ranks. Checkpoints keep every rank's generator states.
- Rank 0 alone owns the run folder and writes logs, grids, checkpoints and exports.
- Evaluation is sharded: each rank generates and embeds its share of the samples (sample k of a seed is
  the same whoever draws it), the features are gathered (:func:`shard`), and every rank computes the
  numbers one process would.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from gankit.errors import ConfigError, TrainingError
from gankit.metrics.evaluation import Shard
from gankit.device import resolve_device


@dataclasses.dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this call created the process group (and tears it down)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def shared(self) -> bool:
        return self.world > 1

    def local_slice(self, batch_size: int) -> slice:
        """This rank's part of a global batch of ``batch_size``."""
        if batch_size % self.world:
            raise ConfigError(
                f"train.batch_size ({batch_size}) is the global batch and must divide evenly among the "
                f"{self.world} processes; use a multiple of {self.world}"
            )
        size = batch_size // self.world
        return slice(self.rank * size, (self.rank + 1) * size)

    def rank_seed(self, seed: int) -> int:
        """The global generator's seed of this rank after the nets are built (rank 0 keeps the run seed's stream)."""
        return seed + 1_000_003 * self.rank


def join(device_setting: str) -> tuple[Ranks, torch.device]:
    """This process's place in the run and its device. Under torchrun (WORLD_SIZE > 1) the process group is
    initialized here (NCCL for CUDA, gloo for the CPU) unless it already is; each rank takes GPU LOCAL_RANK."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_setting)
    if world == 1:
        return Ranks(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise TrainingError(
                f"process {rank} wants GPU {local_rank}, this machine has {torch.cuda.device_count()}; "
                "start at most one process per GPU (torchrun --nproc_per_node)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        timeout = datetime.timedelta(seconds=float(os.environ.get("GANKIT_DIST_TIMEOUT", "1800")))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timeout)
    if dist.get_world_size() != world or dist.get_rank() != rank:
        raise TrainingError(
            f"the process group ({dist.get_rank()} of {dist.get_world_size()}) does not match "
            f"torchrun's environment ({rank} of {world})"
        )
    return Ranks(rank, world, local_rank, owns), device


def leave(ranks: Ranks, finished: bool = True) -> None:
    """Tear down the process group this run created. After a run that ``finished`` (every rank returned) the
    ranks first meet at a barrier, so no process closes its connections while another still holds them: a rank
    that left early (rank 1 is done while rank 0 writes the export) otherwise aborted at exit now and then
    ("terminate called without an active exception", about one launch in twenty). After a failure there is no
    barrier (the others may never arrive); torchrun ends the run."""
    if not (ranks.owns_group and dist.is_initialized()):
        return
    if finished:
        dist.barrier()
    dist.destroy_process_group()


class SyncedBatchNorm(nn.modules.batchnorm._BatchNorm):
    """A BatchNorm (any input rank) whose training-mode statistics are those of the global batch: each rank
    sums x and x^2 per channel over its slice, one all-reduce (autograd-aware: its backward all-reduces the
    gradients) adds the ranks' sums, and every rank normalizes with the same mean and biased variance; the
    running statistics take the unbiased variance, as ``nn.BatchNorm2d`` does. In eval mode, or without a process
    group, it is a plain BatchNorm. Statistics are computed in float32 under autocast."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        channels, dims = x.shape[1], [0, *range(2, x.dim())]
        xf = x.float()
        local = torch.cat([xf.sum(dims), (xf * xf).sum(dims), xf.new_full((1,), x.numel() // channels)])
        total = all_reduce(local)
        count = total[-1]
        mean = total[:channels] / count
        var = (total[channels : 2 * channels] / count - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), factor)
                unbiased = var.detach() * count / (count - 1).clamp_min(1)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        shape = (1, channels) + (1,) * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.float().view(shape) + self.bias.float().view(shape)
        return y.to(x.dtype)


def synchronize_batchnorm(net: nn.Module) -> int:
    """Make every BatchNorm of ``net`` that trains a :class:`SyncedBatchNorm`, in place (same parameters and
    buffers, same state-dict names); returns how many. BatchNorms a net keeps in eval mode in train mode (a
    frozen part) are left alone: they normalize with their running statistics."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    for m in norms:
        m.__class__ = SyncedBatchNorm
    return len(norms)


def floating_buffers(*nets: nn.Module) -> list[torch.Tensor]:
    """The floating-point buffers (BatchNorm running statistics...) of ``nets``."""
    return [b for net in nets for b in net.buffers() if b.is_floating_point()]


@torch.no_grad()
def average(ranks: Ranks, params, extras=(), stop: bool = False) -> bool:
    """Average, across ranks, the gradients of ``params`` (those that have one: the same on every rank, as
    every rank runs the same program) and the tensors ``extras`` (detached: statistics, buffers), in place, with
    one all-reduce. ``stop``: this process's wish to stop; returns whether any process wishes to."""
    if not ranks.shared:
        return stop
    grads = [p.grad for p in params if p.grad is not None]
    parts = [*grads, *extras]
    flat = torch.cat(
        [*(t.detach().reshape(-1).float() for t in parts), torch.tensor([float(stop)], device=parts[0].device)]
    )
    dist.all_reduce(flat)
    anyone_stops = bool(flat[-1] > 0)
    flat /= ranks.world
    offset = 0
    for t in parts:
        t.copy_(flat[offset : offset + t.numel()].view(t.shape))
        offset += t.numel()
    return anyone_stops


def broadcast_object(ranks: Ranks, value: Any) -> Any:
    """Rank 0's ``value`` on every rank (a path, a decision; small, picklable objects only, made by gankit)."""
    if not ranks.shared:
        return value
    box = [value if ranks.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_tensors(ranks: Ranks, tensors: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """Every rank's ``tensors`` (same names and shapes on every rank), as a list indexed by rank, on every rank."""
    if not ranks.shared:
        return [tensors]
    names = sorted(tensors)
    flat = torch.cat(
        [
            tensors[n].reshape(-1).to(torch.uint8)
            if tensors[n].dtype == torch.uint8
            else tensors[n].reshape(-1).contiguous().view(torch.uint8)
            for n in names
        ]
    )
    device = torch.device("cuda", ranks.local_rank) if dist.get_backend() == "nccl" else torch.device("cpu")
    gathered = [torch.empty_like(flat, device=device) for _ in range(ranks.world)]
    dist.all_gather(gathered, flat.to(device))
    out = []
    for buffer in gathered:
        buffer, offset, part = buffer.cpu(), 0, {}
        for n in names:
            size = tensors[n].numel() * tensors[n].element_size()
            part[n] = buffer[offset : offset + size].view(tensors[n].dtype).view(tensors[n].shape).clone()
            offset += size
        out.append(part)
    return out


def gather_rows(ranks: Ranks, array: np.ndarray) -> np.ndarray:
    """Every rank's rows of ``array`` (the same trailing shape and dtype; any number of rows each), joined in
    rank order, on every rank."""
    lengths = [int(part["n"]) for part in gather_tensors(ranks, {"n": torch.tensor(len(array), dtype=torch.int64)})]
    padded = np.zeros((max(lengths), *array.shape[1:]), dtype=array.dtype)
    padded[: len(array)] = array
    parts = gather_tensors(ranks, {"rows": torch.from_numpy(padded)})
    return np.concatenate([part["rows"].numpy()[:n] for part, n in zip(parts, lengths)])


def shard(ranks: Ranks) -> Shard | None:
    """This process's share of an evaluation (None in a one-process run)."""
    return Shard(ranks.rank, ranks.world, lambda array: gather_rows(ranks, array)) if ranks.shared else None


def check_identical(ranks: Ranks, nets: dict[str, nn.Module], step: int) -> None:
    """A TrainingError when the ranks' copies of the nets differ (they must stay bit-identical)."""
    if not ranks.shared:
        return
    sums = torch.stack(
        [
            torch.stack([t.double().sum(), t.double().abs().sum()])
            for net in nets.values()
            for t in net.state_dict().values()
        ]
    ).reshape(-1)
    everyone = gather_tensors(ranks, {"sums": sums.cpu()})
    differing = [r for r, part in enumerate(everyone) if not torch.equal(part["sums"], everyone[0]["sums"])]
    if differing:
        raise TrainingError(
            f"step {step}: the weights of process(es) {differing} differ from process 0's; the ranks "
            "no longer train one model (a non-deterministic kernel, or a bug): please report it"
        )
