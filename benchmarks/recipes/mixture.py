"""The 2D-mixture recipe of PacGAN (Lin et al. 2018, section 5.1, after VEEGAN) as a plain PyTorch script. No
gankit code: the baseline of the gan-mlp-ring / gan-mlp-grid presets in benchmarks/vs_recipe.py.

    python benchmarks/recipes/mixture.py --data points.npz --steps 20000 --batch-size 100 --seed 0 --out samples.npz

The recipe: z 2-d standard normal; G four fully connected layers of 400 units, each followed by BatchNorm and ReLU,
then a linear layer to the 2-d point; D three maxout layers of 200 units with 5 pieces each, then one logit; no
dropout; Adam lr 1e-4, betas (0.8, 0.999); batch 100; binary cross entropy on logits, G maximizing log D(G(z));
the training points shuffled every epoch.

The data file holds ``images``: float32 (N, 2) points (the name is the harness's). The output holds ``train``
and ``eval``: ``--samples`` float32 (N, 2) points each, drawn with BatchNorm on batch statistics and on running
statistics; and ``seconds``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

LATENT = 2


class Maxout(nn.Module):
    def __init__(self, inputs: int, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(inputs, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(len(x), self.units, self.pieces).max(dim=2).values


def generator(hidden: int = 400, layers: int = 4) -> nn.Sequential:
    parts: list[nn.Module] = []
    width = LATENT
    for _ in range(layers):
        parts += [nn.Linear(width, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU()]
        width = hidden
    return nn.Sequential(*parts, nn.Linear(width, 2))


def discriminator(units: int = 200, pieces: int = 5, layers: int = 3) -> nn.Sequential:
    parts: list[nn.Module] = []
    width = 2
    for _ in range(layers):
        parts.append(Maxout(width, units, pieces))
        width = units
    return nn.Sequential(*parts, nn.Linear(width, 1))


def train(
    points: np.ndarray, steps: int, batch_size: int = 100, seed: int = 0, lr: float = 1e-4, log_every: int = 0
) -> tuple[nn.Module, float]:
    """Train the recipe for ``steps`` G updates (one D update each); returns G and the seconds it took."""
    torch.manual_seed(seed)
    data = torch.from_numpy(np.asarray(points, dtype=np.float32))
    G, D = generator(), discriminator()
    opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.8, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.8, 0.999))
    criterion = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(batch_size, 1), torch.zeros(batch_size, 1)
    per_epoch = len(data) // batch_size
    start = time.perf_counter()
    order = torch.randperm(len(data))
    for step in range(steps):
        if step % per_epoch == 0:
            order = torch.randperm(len(data))
        real = data[order[(step % per_epoch) * batch_size : (step % per_epoch + 1) * batch_size]]
        D.zero_grad()
        fake = G(torch.randn(batch_size, LATENT))
        loss_d = criterion(D(real), ones) + criterion(D(fake.detach()), zeros)
        loss_d.backward()
        opt_D.step()
        G.zero_grad()
        loss_g = criterion(D(fake), ones)
        loss_g.backward()
        opt_G.step()
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1}/{steps}: d_loss {loss_d.item():.3f} g_loss {loss_g.item():.3f}", flush=True)
    return G, time.perf_counter() - start


@torch.no_grad()
def sample(G: nn.Module, n: int, seed: int, mode: str, batch_size: int = 100) -> np.ndarray:
    """n points (N, 2): BatchNorm on each batch's statistics (``train``) or the running ones (``eval``)."""
    G.train(mode == "train")
    z = torch.randn(n, LATENT, generator=torch.Generator().manual_seed(seed))
    out = torch.cat([G(z[i : i + batch_size]) for i in range(0, n, batch_size)])
    G.train()
    return out.numpy().astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help=".npz with images: float32 (N, 2) points")
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=2500)
    parser.add_argument("--sample-seed", type=int, default=1000)
    parser.add_argument("--out", required=True, help=".npz for the samples")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with np.load(args.data) as archive:
        points = archive["images"]
    G, seconds = train(points, args.steps, args.batch_size, args.seed, log_every=max(1, args.steps // 10))
    np.savez(
        args.out,
        train=sample(G, args.samples, args.sample_seed, "train"),
        eval=sample(G, args.samples, args.sample_seed, "eval"),
        seconds=seconds,
    )
    print(f"trained {args.steps} steps in {seconds:.0f} s; samples in {args.out}")


if __name__ == "__main__":
    main()
