"""A GAN training on 2D points, one step at a time, with everything a page draws: the playground of
``gankit serve`` (after GAN Lab's idea; Kahng et al. 2018), usable from Python as well.

    game = Playground(PlaygroundOptions(target="ring", loss="hinge", r1_weight=1.0))
    game.step("both", 50)        # or "d" (D only) / "g" (G only)
    view = game.view()           # real and generated points, D's map, G's manifold, gradients, curves, modes

The nets, optimizers and objective come from the config the options describe (``training.game.build_game``),
so the playground trains with gankit's own losses and stability options (EMA, spectral norm, PacGAN,
minibatch-std, R1, unrolled D). Each step runs under its own seeded random state: a session's pictures
depend only on its options and the steps taken, whatever else the server does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
from typing import Any, Literal

import numpy as np
import torch

from gankit.config import RunConfig
from gankit.data import BatchStream, Dataset, load_dataset
from gankit.metrics.scores import mode_scores
from gankit.registry import ConfigError, build_dataclass
from gankit.training.ema import EMA
from gankit.training.game import build_game
from gankit.variants import StepContext
from gankit.variants.base import frozen

TARGETS = {
    "ring": "8 Gaussians on a circle (the PacGAN / VEEGAN benchmark)",
    "grid": "25 Gaussians on a 5 x 5 grid (the PacGAN / VEEGAN benchmark)",
    "spiral": "a two-turn spiral (one connected curve: no modes to count)",
    "circle": "a circle (uniform on its length)",
    "drawn": "the points you draw (each one a mode)",
}
LOSS_NAMES = ("minimax", "non-saturating", "least-squares", "wgan-gp", "hinge")
MAX_STEPS_PER_CALL = 200
MAX_TOTAL_STEPS = 50_000
MAX_DRAWN_POINTS = 500
HISTORY = 2000  # rows of the curves kept
SAMPLES = 480  # generated points drawn (divisible by every pack size 1..6)
CPU_LOCK = threading.Lock()  # one playground step at a time, whatever the number of sessions


@dataclasses.dataclass
class PlaygroundOptions:
    target: Literal["ring", "grid", "spiral", "circle", "drawn"] = "ring"
    points: list[list[float]] = dataclasses.field(default_factory=list)  # the drawn target, in [-1, 1]^2
    loss: Literal["minimax", "non-saturating", "least-squares", "wgan-gp", "hinge"] = "non-saturating"
    d_steps: int = 1  # k: D updates per G update
    lr_d: float = 1e-3
    lr_g: float = 1e-3
    batch_size: int = 240
    hidden: int = 128  # units of each of G's and D's two hidden layers
    ema: bool = False  # draw from an EMA of G (decay 0.99)
    spectral_norm: bool = False
    pack: int = 1  # PacGAN: D judges this many samples at once
    minibatch_std: bool = False
    r1_weight: float = 0.0
    unrolled_steps: int = 0
    seed: int = 0

    def __post_init__(self):
        checks = [
            ("d_steps", 1, 10),
            ("lr_d", 1e-6, 0.1),
            ("lr_g", 1e-6, 0.1),
            ("batch_size", 24, 2400),
            ("hidden", 8, 512),
            ("pack", 1, 6),
            ("r1_weight", 0, 100),
            ("unrolled_steps", 0, 10),
            ("seed", 0, 2**31 - 1),
        ]
        for name, low, high in checks:
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(f"{name} must be in [{low:g}, {high:g}], got {value}")
        if self.batch_size % self.pack:
            raise ConfigError(f"batch_size ({self.batch_size}) must be a multiple of pack ({self.pack})")
        if self.target == "drawn":
            if not 3 <= len(self.points) <= MAX_DRAWN_POINTS:
                raise ConfigError(f"draw 3 to {MAX_DRAWN_POINTS} points for the drawn target, got {len(self.points)}")
            if any(
                len(p) != 2 or not all(isinstance(v, (int, float)) and -1.5 <= v <= 1.5 for v in p) for p in self.points
            ):
                raise ConfigError("drawn points must be [x, y] pairs within [-1.5, 1.5]")


def target_points(options: PlaygroundOptions, n: int = 8000) -> Dataset:
    """The target distribution as a dataset of ``n`` points (modes and their std in extras where it has modes)."""
    rng = np.random.default_rng(options.seed)
    if options.target in ("ring", "grid"):
        return load_dataset(
            {
                "name": options.target,
                "num_points": n,
                "seed": options.seed,
                **({"std": 0.02} if options.target == "ring" else {}),
            }
        )
    if options.target == "drawn":
        centres = np.asarray(options.points, np.float32)
        std = 0.02
        which = rng.integers(len(centres), size=n)
        x = centres[which] + std * rng.standard_normal((n, 2))
        return Dataset(
            torch.from_numpy(x.astype(np.float32)), name="drawn", extras={"modes": centres.tolist(), "std": std}
        )
    t = rng.uniform(0, 1, n)
    if options.target == "spiral":
        radius, angle = 0.15 + 0.85 * t, 4 * math.pi * t
    else:
        radius, angle = np.ones(n), 2 * math.pi * t
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1) + 0.01 * rng.standard_normal((n, 2))
    return Dataset(torch.from_numpy(x.astype(np.float32)), name=options.target)


def playground_config(options: PlaygroundOptions) -> RunConfig:
    """The run config the options describe: a small MLP GAN on 2D points with z of 2 dimensions."""
    loss: dict[str, Any] = {"name": options.loss}
    if options.loss == "wgan-gp":
        loss["gp_weight"] = 0.1  # the weight of the WGAN-GP paper's 2D toy experiments (10 for images)
    return RunConfig.from_dict(
        {
            # Not read: the playground makes its target itself (target_points); a valid 2D section for the record.
            "data": {"name": options.target if options.target in ("ring", "grid") else "ring"},
            "model": {
                "name": "mlp",
                "latent_dim": 2,
                "g_hidden": [options.hidden] * 2,
                "d_hidden": [options.hidden] * 2,
                "d_activation": "leaky_relu",
                "dropout": 0.0,
                "d_spectral_norm": options.spectral_norm,
                "d_pack": options.pack,
                "d_minibatch_std": 4 if options.minibatch_std else 0,
            },
            "loss": loss,
            "objective": {"name": "standard", "r1_weight": options.r1_weight, "unrolled_steps": options.unrolled_steps},
            "train": {
                "batch_size": options.batch_size,
                "d_steps": options.d_steps,
                "lr_d": options.lr_d,
                "lr_g": options.lr_g,
                "beta1": 0.5,
                "beta2": 0.99,
                "seed": options.seed,
                "device": "cpu",
                "ema_decay": 0.99 if options.ema else 0.0,
            },
        }
    )


class Playground:
    """One 2D GAN, stepped on request (bounded: MAX_STEPS_PER_CALL per call, MAX_TOTAL_STEPS in all)."""

    def __init__(self, options: PlaygroundOptions | dict):
        self.options = (
            options
            if isinstance(options, PlaygroundOptions)
            else build_dataclass(PlaygroundOptions, options, "playground")
        )
        self.lock = threading.Lock()
        self.dataset = target_points(self.options)
        config = playground_config(self.options)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.options.seed)
            self.game = build_game(config, self.dataset, torch.device("cpu"))
        self.loss = self.game.objective.loss
        self.condition = self.game.objective.condition
        self.ema = EMA(self.game.G, 0.99, self.condition) if self.options.ema else None
        self.stream = BatchStream(self.dataset, self.options.batch_size, self.options.seed)
        self.z = torch.Generator().manual_seed(self.options.seed + 1)
        self.fixed_z = torch.randn(SAMPLES, 2, generator=torch.Generator().manual_seed(self.options.seed + 2))
        self.steps = {"g": 0, "d": 0}
        self.batches = 0
        self.history: list[dict[str, float]] = []
        x = self.dataset.x
        low, high = x.min(0).values, x.max(0).values
        centre, half = (low + high) / 2, float((high - low).max()) / 2 * 1.35 + 0.1
        self.bounds = [
            float(centre[0]) - half,
            float(centre[0]) + half,
            float(centre[1]) - half,
            float(centre[1]) + half,
        ]

    # ------------------------------------------------------------------ training
    def step(self, mode: str = "both", steps: int = 1) -> None:
        """``steps`` steps of Algorithm 1 (``both``: k D updates then one G update), of D alone (``d``) or of G
        alone (``g``)."""
        if mode not in ("both", "d", "g"):
            raise ValueError(f"mode must be both, d or g, got {mode!r}")
        if not 1 <= steps <= MAX_STEPS_PER_CALL:
            raise ValueError(f"steps must be in 1..{MAX_STEPS_PER_CALL}, got {steps}")
        if self.steps["g"] + self.steps["d"] + steps > MAX_TOTAL_STEPS:
            raise ValueError(f"this playground has taken its {MAX_TOTAL_STEPS:,} steps; reset it to go on")
        with self.lock, CPU_LOCK, torch.random.fork_rng(devices=[]):
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # small nets: one thread is fastest and leaves the other cores alone
            try:
                for _ in range(steps):
                    torch.manual_seed(self.options.seed * 1_000_003 + self.batches)
                    self.one_step(mode)
            finally:
                torch.set_num_threads(threads)

    def one_step(self, mode: str) -> None:
        game, k = self.game, (self.options.d_steps if mode == "both" else 1)
        game.objective.begin_step(self.steps["g"])
        stats: dict[str, float] = {}
        for i in range(k):
            index = self.stream.indices(self.batches)
            self.batches += 1
            z = torch.randn(self.options.batch_size, 2, generator=self.z)
            ctx = StepContext(self.dataset.model_input(index), z, None)
            feeds_g = mode != "d" and i == k - 1
            with frozen(game.G) if not feeds_g else frozen(game.D) if mode == "g" else contextlib.nullcontext():
                out_d = game.objective.d_step(ctx)
            if mode != "g":
                game.opt_D.zero_grad(set_to_none=True)
                out_d.loss.backward()
                game.opt_D.step()
                self.steps["d"] += 1
            stats.update({name: float(v) for name, v in out_d.stats.items()})
        if mode != "d":
            out_g = game.objective.g_step(ctx)
            game.opt_G.zero_grad(set_to_none=True)
            out_g.loss.backward()
            game.opt_G.step()
            if self.ema is not None:
                self.ema.update(game.G, self.steps["g"])
            self.steps["g"] += 1
            stats.update({name: float(v) for name, v in out_g.stats.items()})
        row = {"g_steps": self.steps["g"], "d_steps": self.steps["d"], **stats}
        self.history = (self.history + [row])[-HISTORY:]

    # ------------------------------------------------------------------ what the page draws
    @torch.no_grad()
    def generated(self, z: torch.Tensor) -> torch.Tensor:
        G = self.ema.model if self.ema is not None else self.game.G
        was = G.training
        G.eval()
        out = G(z)
        G.train(was)
        return out

    def d_map(self, resolution: int) -> tuple[list[list[float]], str]:
        """D's output over the plane (rows from the top), as a probability for the cross-entropy losses."""
        x0, x1, y0, y1 = self.bounds
        xs, ys = torch.linspace(x0, x1, resolution), torch.linspace(y1, y0, resolution)
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], dim=-1).reshape(-1, 2)
        pack = self.game.model_options.d_pack
        D = self.game.D
        with torch.no_grad():
            was = D.training
            D.eval()
            logits = torch.cat([D(part.repeat(1, pack)) for part in grid.split(960)])  # each point packed with itself
            D.train(was)
            value = self.loss.d_output(logits)
        kind = (
            "probability" if value.min() >= 0 and value.max() <= 1 and self.options.loss != "least-squares" else "score"
        )
        return value.reshape(resolution, resolution).tolist(), kind

    def gradients(self, points: torch.Tensor) -> torch.Tensor:
        """The direction each generated point is pushed by G's loss (-d loss_G / d x), per point."""
        pack = self.game.model_options.d_pack
        x = points.detach().clone().requires_grad_(True)
        D = self.game.D
        with frozen(D):
            logits = D(x.reshape(len(x) // pack, -1))
            (grad,) = torch.autograd.grad(self.loss.g_loss(logits) * len(logits), x)
        return -grad

    def view(self, resolution: int = 40) -> dict[str, Any]:
        """Everything the page draws, JSON-able."""
        if not 8 <= resolution <= 100:
            raise ValueError(f"resolution must be in 8..100, got {resolution}")
        with self.lock, torch.random.fork_rng(devices=[]):
            fake = self.generated(self.fixed_z)
            heat, kind = self.d_map(resolution)
            arrows = self.gradients(fake[:SAMPLES])
            side = torch.linspace(-2.5, 2.5, 13)
            manifold = self.generated(torch.stack(torch.meshgrid(side, side, indexing="ij"), -1).reshape(-1, 2))
        modes = self.dataset.extras.get("modes")
        scores = mode_scores(fake.numpy(), np.asarray(modes), self.dataset.extras["std"]) if modes else None
        real = self.dataset.x[:SAMPLES]
        return json_safe(
            {
                "bounds": self.bounds,
                "steps": dict(self.steps),
                "real": np.round(real.numpy(), 4).tolist(),
                "fake": np.round(fake.numpy(), 4).tolist(),
                "arrows": np.round(arrows.numpy(), 5).tolist(),
                "manifold": {"side": 13, "points": np.round(manifold.numpy(), 4).tolist()},
                "d_map": {"resolution": resolution, "values": np.round(np.asarray(heat), 4).tolist(), "kind": kind},
                "history": self.history[-500:],
                "modes": scores,
                "options": dataclasses.asdict(self.options),
            }
        )


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats (a diverged loss, an infinite reverse KL) as None: strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value
