"""The DCGAN paper's recipe as a plain PyTorch script (Radford et al. 2015), written the way a user would
write it from the paper and the PyTorch example's dcgan/main.py. No gankit code: this is the baseline gankit's
presets are measured against (benchmarks/vs_recipe.py).

    python benchmarks/recipes/dcgan.py --data images.npz --steps 2000 --batch-size 128 --seed 0 --out samples.npz

The recipe: G maps z (100, standard normal) through fractionally strided convolutions to the image, BatchNorm
and ReLU after every layer but the last (tanh); D mirrors it with strided convolutions, LeakyReLU(0.2),
BatchNorm after every layer but the first and the last, one logit out; no pooling, no fully connected hidden
layers; weights N(0, 0.02), BatchNorm scales N(1, 0.02); Adam lr 2e-4, betas (0.5, 0.999); binary cross
entropy on logits, G maximizing log D(G(z)); ngf = ndf = 64; the data shuffled every epoch, batches of 128
with the last partial one dropped, pixels scaled to [-1, 1].

``--conditional`` is the conditional GAN the same way (Mirza & Osindero 2014, in the DCGAN nets): the one-hot
label joined with z as G's input, and K label maps joined with D's input image; real images come with their own
labels, G's with labels drawn uniformly; sample k is drawn for label k mod K. ``--acgan`` is AC-GAN
the same way (Odena et al. 2017): G as the conditional one; D sees no label, and its last layer gives K class
logits beside the real/fake logit (a second head on the same features); both nets add the class cross-entropy
(weight 1) to their loss: D on real images (their labels) and on G's (the labels drawn), G on its own.

The data file holds ``images``: uint8 (N, C, H, W) with H = W in {28, 32, 64} (and ``labels`` for
``--conditional`` and ``--acgan``). The output holds ``train`` and ``eval``: ``--samples`` uint8 (N, C, H, W)
images each, drawn with BatchNorm on batch statistics (as the example draws its fixed-noise grids: it never calls
eval()) and on running statistics; ``seconds``; and, with labels, ``labels``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn


def stages(resolution: int) -> tuple[int, int]:
    """(first feature map side, number of 2x upsamplings) for a square image of ``resolution``."""
    for start in (7, 4):
        side, ups = start, 0
        while side < resolution:
            side, ups = side * 2, ups + 1
        if side == resolution and ups >= 2:
            return start, ups
    raise ValueError(f"a DCGAN recipe for {resolution} px images is not defined here (28, 32, 64, 128)")


def generator(resolution: int, channels: int, latent: int = 100, ngf: int = 64, classes: int = 0) -> nn.Sequential:
    start, ups = stages(resolution)
    width = ngf * 2 ** (ups - 1)
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(latent + classes, width, start, 1, 0, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(True),
    ]
    for _ in range(ups - 1):
        layers += [
            nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width // 2),
            nn.ReLU(True),
        ]
        width //= 2
    layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def discriminator(
    resolution: int, channels: int, ndf: int = 64, label_maps: int = 0, class_logits: int = 0
) -> nn.Sequential:
    """D: ``label_maps`` one-hot label channels joined with its input (the conditional GAN); one real/fake logit
    out, then ``class_logits`` class logits (AC-GAN's second head, on the same last features)."""
    start, ups = stages(resolution)
    layers: list[nn.Module] = [nn.Conv2d(channels + label_maps, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    width = ndf
    for _ in range(ups - 1):
        layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), nn.LeakyReLU(0.2, True)]
        width *= 2
    layers += [nn.Conv2d(width, 1 + class_logits, start, 1, 0, bias=False), nn.Flatten()]
    return nn.Sequential(*layers)


def init_weights(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def with_labels(x: torch.Tensor, y: torch.Tensor | None, classes: int) -> torch.Tensor:
    """x with the one-hot labels ``y`` joined as channels (maps of x's size); x itself without labels (or with
    ``classes`` 0: AC-GAN's D sees no label)."""
    if y is None or not classes:
        return x
    onehot = nn.functional.one_hot(y, classes).float()[:, :, None, None]
    return torch.cat([x, onehot.expand(-1, -1, x.shape[2], x.shape[3])], dim=1)


def train(
    images: np.ndarray,
    steps: int,
    batch_size: int = 128,
    seed: int = 0,
    latent: int = 100,
    ngf: int = 64,
    ndf: int = 64,
    lr: float = 2e-4,
    log_every: int = 0,
    labels: np.ndarray | None = None,
    auxiliary: bool = False,
) -> tuple[nn.Module, float]:
    """Train the recipe for ``steps`` G updates (one D update each); returns G and the seconds it took. With
    ``labels``: the conditional GAN (G(z, y), D(x, y)), or with ``auxiliary`` AC-GAN (G(z, y), D(x) -> (real/fake,
    class))."""
    torch.manual_seed(seed)
    n, channels, resolution = images.shape[0], images.shape[1], images.shape[-1]
    classes = 0 if labels is None else int(labels.max()) + 1
    data = torch.from_numpy(images).float().div(127.5).sub(1.0)
    targets = None if labels is None else torch.from_numpy(labels).long()
    G = generator(resolution, channels, latent, ngf, classes)
    label_maps = 0 if auxiliary else classes  # the label channels joined with D's input
    D = discriminator(resolution, channels, ndf, label_maps, classes if auxiliary else 0)
    G.apply(init_weights)
    D.apply(init_weights)
    opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    criterion = nn.BCEWithLogitsLoss()

    def judge(x: torch.Tensor, y: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor:
        """The loss of D's verdict on x (drawn for labels y) against the real/fake ``target``; AC-GAN adds the
        class cross-entropy."""
        out = D(with_labels(x, y, label_maps))
        loss = criterion(out[:, :1], target)
        return loss + nn.functional.cross_entropy(out[:, 1:], y) if auxiliary else loss

    ones, zeros = torch.ones(batch_size, 1), torch.zeros(batch_size, 1)
    per_epoch = n // batch_size
    start = time.perf_counter()
    order = torch.randperm(n)
    for step in range(steps):
        if step % per_epoch == 0:
            order = torch.randperm(n)
        index = order[(step % per_epoch) * batch_size : (step % per_epoch + 1) * batch_size]
        real = data[index]
        y_real = None if targets is None else targets[index]
        y_fake = None if targets is None else torch.randint(classes, (batch_size,))
        D.zero_grad()
        loss_real = judge(real, y_real, ones)
        loss_real.backward()
        fake = G(with_labels(torch.randn(batch_size, latent, 1, 1), y_fake, classes))
        loss_fake = judge(fake.detach(), y_fake, zeros)
        loss_fake.backward()
        opt_D.step()
        G.zero_grad()
        loss_g = judge(fake, y_fake, ones)
        loss_g.backward()
        opt_G.step()
        if log_every and (step + 1) % log_every == 0:
            print(
                f"step {step + 1}/{steps}: d_loss {(loss_real + loss_fake).item():.3f} g_loss {loss_g.item():.3f}",
                flush=True,
            )
    G.classes = classes
    return G, time.perf_counter() - start


@torch.no_grad()
def sample(G: nn.Module, n: int, seed: int, mode: str, latent: int = 100, batch_size: int = 128) -> np.ndarray:
    """n uint8 images (N, C, H, W): BatchNorm on each batch's statistics (``train``) or the running ones (``eval``)."""
    G.train(mode == "train")
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, latent, 1, 1, generator=generator)
    classes = getattr(G, "classes", 0)
    y = torch.arange(n) % classes if classes else None  # sample k is drawn for label k mod K
    z = with_labels(z, y, classes)
    out = [G(z[i : i + batch_size]) for i in range(0, n, batch_size)]
    G.train()
    return torch.cat(out).add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).numpy()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help=".npz with images: uint8 (N, C, H, W)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--sample-seed", type=int, default=1000)
    parser.add_argument("--out", required=True, help=".npz for the samples")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--conditional", action="store_true", help="the conditional GAN on the data's labels")
    parser.add_argument("--acgan", action="store_true", help="AC-GAN on the data's labels (D predicts the class)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with np.load(args.data) as archive:
        images = archive["images"]
        labels = archive["labels"] if args.conditional or args.acgan else None
    G, seconds = train(
        images,
        args.steps,
        args.batch_size,
        args.seed,
        ngf=args.ngf,
        ndf=args.ndf,
        log_every=max(1, args.steps // 10),
        labels=labels,
        auxiliary=args.acgan,
    )
    drawn = {"labels": np.arange(args.samples) % G.classes} if G.classes else {}
    np.savez(
        args.out,
        train=sample(G, args.samples, args.sample_seed, "train"),
        eval=sample(G, args.samples, args.sample_seed, "eval"),
        seconds=seconds,
        **drawn,
    )
    print(f"trained {args.steps} steps in {seconds:.0f} s; samples in {args.out}")


if __name__ == "__main__":
    main()
