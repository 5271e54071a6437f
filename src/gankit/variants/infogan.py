"""InfoGAN (Chen et al. 2016): latent codes c joined with the noise in G's input, and a Q head on D's body.

G's input is one vector: ``noise_dim`` normal entries followed by the codes, in the order categorical
(one-hot blocks of K values), continuous (uniform in [-1, 1]), binary (0 or 1). G is an ordinary
unconditional G (``gankit/networks/dcgan.py`` or ``mlp.py``) whose ``latent_dim`` counts noise and codes;
:class:`CodeCondition` draws the codes and joins them with z, so only this file knows which entries are
codes. The objective adds the information term (eq. 4-6) to both players' losses through Q, a small head on
D's last features (``d_heads``: this variant's own head, built into D).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import numpy as np
import torch
from torch import nn

from gankit.registry import ConfigError
from gankit.seeding import draw_stream, latents, sample_rng
from gankit.variants.base import VARIANTS, Condition, StepContext, register_condition, wide
from gankit.variants.standard import StandardObjective, StandardOptions

STREAM_CODES = draw_stream(1, "InfoGAN codes")  # sample k of seed s draws from (s, k, 1)


@dataclasses.dataclass(frozen=True)
class CodeLayout:
    categorical: tuple[int, ...] = (10,)  # number of values of each categorical code
    continuous: int = 2
    binary: int = 0
    learned_variance: bool = False  # Q predicts a log-variance per continuous code (else fixed at 1)
    noise_std: float = 1.0  # the noise entries of G's input are N(0, noise_std^2)

    @property
    def dim(self) -> int:
        """Entries the codes take in G's input."""
        return sum(self.categorical) + self.continuous + self.binary

    @property
    def q_dim(self) -> int:
        """Outputs Q needs: logits per categorical value, a mean (and log-variance) per continuous code,
        a logit per binary code."""
        return sum(self.categorical) + self.continuous * (2 if self.learned_variance else 1) + self.binary

    def names(self) -> list[str]:
        return (
            [f"cat{i}" for i in range(len(self.categorical))]
            + [f"cont{i}" for i in range(self.continuous)]
            + [f"bin{i}" for i in range(self.binary)]
        )

    def join(self, z: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """G's input from standard normal latents ``z`` (n, latent_dim) and ``codes`` (n, dim): the noise
        entries (all but the last ``dim``) scaled by ``noise_std``, then the codes."""
        return torch.cat([z[:, : z.shape[1] - self.dim] * self.noise_std, codes.to(z.device, z.dtype)], dim=1)

    def sample(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """``n`` code vectors (n, dim): uniform categorical values, uniform continuous values, fair bits."""
        parts = []
        for k in self.categorical:
            index = torch.randint(k, (n,), generator=generator, device=device)
            parts.append(nn.functional.one_hot(index, k).float())
        if self.continuous:
            parts.append(torch.rand(n, self.continuous, generator=generator, device=device) * 2 - 1)
        if self.binary:
            parts.append(torch.randint(2, (n, self.binary), generator=generator, device=device).float())
        return torch.cat(parts, dim=1) if parts else torch.empty(n, 0, device=device)

    def sample_one(self, rng: np.random.Generator) -> np.ndarray:
        """One code vector from a NumPy generator (the per-sample seeding of the sampling pipeline)."""
        parts = [np.eye(k, dtype=np.float32)[rng.integers(k)] for k in self.categorical]
        parts.append(rng.uniform(-1, 1, self.continuous).astype(np.float32))
        parts.append(rng.integers(0, 2, self.binary).astype(np.float32))
        return np.concatenate(parts)

    def locate(self, name: str) -> tuple[str, int, int]:
        """(kind, offset in the code vector, width) of code ``name`` (cat0, cont1, bin0, ...)."""
        match = re.fullmatch(r"(cat|cont|bin)(\d+)", name)
        counts = {"cat": len(self.categorical), "cont": self.continuous, "bin": self.binary}
        if not match or int(match[2]) >= counts[match[1]]:
            raise ValueError(f"unknown code {name!r}; codes: {', '.join(self.names()) or '(none)'}")
        kind, i = match[1], int(match[2])
        if kind == "cat":
            return kind, sum(self.categorical[:i]), self.categorical[i]
        offset = sum(self.categorical) + (0 if kind == "cont" else self.continuous)
        return kind, offset + i, 1

    def set_code(self, codes: torch.Tensor, name: str, value) -> torch.Tensor:
        """``codes`` (n, dim) with code ``name`` set to ``value``: a category index, a continuous value or a
        bit, the same for every row, or a sequence of one per row."""
        kind, offset, width = self.locate(name)
        codes = codes.clone()
        values = torch.as_tensor(value, dtype=torch.float32).flatten()  # one value, or one per row
        if values.numel() not in (1, len(codes)):
            raise ValueError(f"code {name}: {values.numel()} values for {len(codes)} samples")
        if kind == "cat":
            if not torch.equal(values, values.round()) or values.min() < 0 or values.max() >= width:
                raise ValueError(f"code {name} takes the values 0..{width - 1}, got {value}")
            codes[:, offset : offset + width] = nn.functional.one_hot(values.long(), width).float()
        elif kind == "bin" and not set(values.tolist()) <= {0.0, 1.0}:
            raise ValueError(f"code {name} is binary: 0 or 1, got {value}")
        else:
            codes[:, offset] = values
        return codes

    def information_loss(
        self, q: torch.Tensor, codes: torch.Tensor, weight_discrete: float, weight_continuous: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """lambda-weighted negative lower bound on I(c; G(z, c)) (Chen et al. 2016, eq. 4-5), up to constants.

        Categorical codes: cross-entropy of Q's logits against the drawn value; continuous codes: the
        Gaussian negative log-likelihood of the drawn value under Q's mean (and log-variance, or unit
        variance); binary codes: binary cross-entropy. Returns the loss and per-kind terms for the log.
        """
        stats: dict[str, torch.Tensor] = {}
        discrete = q.new_zeros(())
        qi = ci = 0
        accuracies = []
        for k in self.categorical:
            logits, target = q[:, qi : qi + k], codes[:, ci : ci + k].argmax(dim=1)
            discrete = discrete + nn.functional.cross_entropy(logits, target)
            accuracies.append((logits.detach().argmax(dim=1) == target).float().mean())
            qi, ci = qi + k, ci + k
        continuous = q.new_zeros(())
        if self.continuous:
            c = codes[:, ci : ci + self.continuous]
            mean = q[:, qi : qi + self.continuous]
            qi += self.continuous
            if self.learned_variance:
                log_var = q[:, qi : qi + self.continuous].clamp(-10, 10)
                qi += self.continuous
                nll = 0.5 * (log_var + (c - mean) ** 2 / log_var.exp() + math.log(2 * math.pi))
            else:
                nll = 0.5 * ((c - mean) ** 2 + math.log(2 * math.pi))
            continuous = nll.sum(dim=1).mean()
            ci += self.continuous
        if self.binary:
            discrete = (
                discrete
                + nn.functional.binary_cross_entropy_with_logits(
                    q[:, qi : qi + self.binary], codes[:, ci : ci + self.binary], reduction="none"
                )
                .sum(dim=1)
                .mean()
            )
        stats["info_discrete"] = discrete.detach()
        stats["info_continuous"] = continuous.detach()
        if accuracies:
            stats["code_accuracy"] = torch.stack(accuracies).mean()
        return weight_discrete * discrete + weight_continuous * continuous, stats


@register_condition
class CodeCondition(Condition):
    """InfoGAN's codes, drawn fresh for every training batch and per sample (seed, k, 1) when sampling, then
    joined with z as G's input; ``sample(..., codes={"cat0": 3})`` fixes some of them."""

    kind = "codes"
    accepts = ("codes",)
    refusal = "this generator has no latent codes (not an InfoGAN run)"
    verbs = ("traverse",)

    def __init__(self, layout: CodeLayout):
        self.layout = layout

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self.layout)}

    @classmethod
    def from_description(cls, description, stored=None) -> "CodeCondition":
        d = description
        return cls(
            CodeLayout(
                tuple(d["categorical"]),
                int(d["continuous"]),
                int(d["binary"]),
                bool(d["learned_variance"]),
                float(d["noise_std"]),
            )
        )

    def summary(self) -> str:
        return f"an InfoGAN generator with codes {', '.join(self.layout.names())}"

    def controls(self):
        out = []
        for name in self.layout.names():
            kind, _, width = self.layout.locate(name)
            if kind == "cont":  # trained on [-1, 1]; the paper's figures extrapolate to +-2
                out.append(
                    {"name": f"codes.{name}", "type": "range", "label": name, "min": -2.0, "max": 2.0, "default": 0.0}
                )
            else:
                out.append(
                    {
                        "name": f"codes.{name}",
                        "type": "choice",
                        "label": name,
                        "count": width if kind == "cat" else 2,
                        "default": 0,
                        **({"ordered": True} if kind == "bin" else {}),  # 0 < 1: its effect can be monotone
                    }
                )
        return out

    def noise_dims(self, latent_dim):
        return latent_dim - self.layout.dim

    def explorer_state(self, first_input, values):
        """Projection optimizes the codes as free values: each becomes its nearest control setting (a category's
        largest entry, a continuous value clipped to the slider's +-2, a bit rounded)."""
        row = np.asarray(first_input, dtype=np.float64).reshape(-1)
        noise_dim = len(row) - self.layout.dim
        std = self.layout.noise_std
        z = row[:noise_dim] / std if std > 0 else np.zeros(noise_dim)
        settings = {}
        for name in self.layout.names():
            kind, offset, width = self.layout.locate(name)
            part = row[noise_dim + offset : noise_dim + offset + width]
            if kind == "cat":
                settings[f"codes.{name}"] = int(part.argmax())
            elif kind == "cont":
                settings[f"codes.{name}"] = float(np.clip(part[0], -2.0, 2.0))
            else:
                settings[f"codes.{name}"] = int(part[0] > 0.5)
        return z, settings

    def argument_docs(self, latent_dim):
        lay = self.layout
        parts = [f"{latent_dim - lay.dim} standard normal noise entries multiplied by noise_std={lay.noise_std:g}"]
        parts += [f"cat{i}: a one-hot block of {k}" for i, k in enumerate(lay.categorical)]
        parts += [f"cont{i}: one value in [-1, 1] (trained range)" for i in range(lay.continuous)]
        parts += [f"bin{i}: one value, 0 or 1" for i in range(lay.binary)]
        return [
            {
                "name": "z",
                "description": f"noise and InfoGAN codes joined (N, {latent_dim}), in this order: " + "; ".join(parts),
            }
        ]

    def batch(self, dataset, index):
        return self.layout.sample(len(index), device=dataset.device)

    def draw(self, n, generator, device):
        return self.layout.sample(n, generator, device)

    def training_grid(self, count, latent_dim, seed):
        return latents(count, latent_dim, seed), self.values_for(count, seed), None

    def values_for(self, n, seed, start=0, codes=None, **given):
        """Codes of samples start .. start+n-1, each drawn from its own generator (seed, k, 1), then the given
        ``codes`` ({name: value}: one value for all, or a sequence over samples 0..end) set."""
        self.refuse(given)
        drawn = [self.layout.sample_one(sample_rng(seed, start + i, STREAM_CODES)) for i in range(n)]
        c = torch.from_numpy(np.stack(drawn)) if drawn else torch.empty(0, self.layout.dim)
        for name, value in (codes or {}).items():
            per_sample = not np.isscalar(value)
            c = self.layout.set_code(c, name, np.asarray(value)[start : start + n] if per_sample else value)
        return c

    def default(self, n):
        return None  # the latent tools walk G's whole input, codes included

    def evaluation_inputs(self, n, targets):
        """For the ``codes`` target, the first categorical code set to k mod K for sample k (balanced; the other
        codes drawn); otherwise every code drawn."""
        if "codes" not in targets or not self.layout.categorical:
            return {}, {}
        codes = np.arange(n) % self.layout.categorical[0]
        return {"codes": {"cat0": codes}}, {"codes": codes}

    def traverse(self, pipeline, code: str, values, rows: int = 8, seed: int = 0) -> np.ndarray:
        """``pipeline.traverse(code, values)``, the paper's figure: ``rows`` fixed inputs (noise and other codes of
        ``seed``), one column per value of ``code``; rows * len(values) outputs, row-major. The generic sweep of
        the code's control."""
        self.layout.locate(code)  # names the codes there are when there is no such code
        return pipeline.sweep(f"codes.{code}", values, rows, seed)

    def first_inputs_of(self, z, seed, start=0, **given):
        return self.layout.join(z, self.values_for(len(z), seed, start, **given))

    def first_input(self, z, values):
        return z if values is None else self.layout.join(z, values)


@dataclasses.dataclass
class InfoGANOptions(StandardOptions):
    # The codes c joined to the noise in G's input (model.latent_dim counts noise and codes together).
    categorical: list[int] = dataclasses.field(default_factory=lambda: [10])  # values of each categorical code
    continuous: int = 2  # codes uniform in [-1, 1]
    binary: int = 0  # codes 0 or 1
    learned_variance: bool = False  # Q predicts each continuous code's variance (else fixed at 1)
    # lambda for the discrete (categorical and binary) and continuous parts of the information term; the
    # paper uses 1 for discrete codes and a smaller value for continuous ones (Chen et al. 2016, section 7).
    lambda_discrete: float = 1.0
    lambda_continuous: float = 0.1
    # Standard deviation of the noise entries of G's input. Below 1 the categorical one-hot outweighs
    # the noise, so the code rather than the noise decides the large-scale content (ClusterGAN, Mukherjee
    # et al. 2019, draws the noise at 0.1 for the same reason).
    noise_std: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        if any(k < 2 for k in self.categorical) or self.continuous < 0 or self.binary < 0:
            raise ConfigError("objective.categorical values must be >= 2, continuous and binary >= 0")
        if not (self.categorical or self.continuous or self.binary):
            raise ConfigError("objective 'infogan' needs at least one code (categorical, continuous or binary)")
        if self.lambda_discrete < 0 or self.lambda_continuous < 0:
            raise ConfigError("objective.lambda_discrete and lambda_continuous must be >= 0")
        if self.noise_std <= 0:
            raise ConfigError("objective.noise_std must be > 0")

    @property
    def layout(self) -> CodeLayout:
        return CodeLayout(tuple(self.categorical), self.continuous, self.binary, self.learned_variance, self.noise_std)


@VARIANTS.register("infogan", InfoGANOptions, "InfoGAN: latent codes and a Q head sharing D's body (Chen et al. 2016)")
class InfoGANObjective(StandardObjective):
    """InfoGAN (Chen et al. 2016, eq. 6): min_{G,Q} max_D V(D, G) - lambda L_I(G, Q).

    The codes of each batch come from the condition (``ctx.condition``); Q reads D's last features of G's
    samples and predicts them. The information term (cross-entropy for categorical and binary codes,
    Gaussian log-likelihood for continuous ones) is added to G's loss (through its samples) and to D's
    (which trains Q's head and D's shared body on generated samples).
    """

    def __init__(self, options: InfoGANOptions, G, D, loss, d_optimizer=None):
        super().__init__(options, G, D, loss, d_optimizer)
        layout = options.layout
        if G.latent_dim - layout.dim < 1:
            raise ConfigError(f"model.latent_dim ({G.latent_dim}) must exceed the codes' {layout.dim} entries")

    def make_condition(self) -> Condition:
        return CodeCondition(self.options.layout)

    @staticmethod
    def describe_condition(options, G, stored) -> dict[str, Any]:
        return CodeCondition(options.layout).describe()

    @staticmethod
    def complete_model(model: Any, options: InfoGANOptions) -> Any:
        """Check the model options against the codes."""
        if getattr(model, "d_pack", 1) > 1:
            raise ConfigError("objective 'infogan' needs model.d_pack=1 (Q reads one sample)")
        if model.latent_dim <= options.layout.dim:
            raise ConfigError(
                f"model.latent_dim ({model.latent_dim}) must exceed the codes' {options.layout.dim} entries "
                "(it counts the noise and the codes together)"
            )
        if getattr(model, "num_classes", 0):
            raise ConfigError("objective 'infogan' is unsupervised: leave model.num_classes at 0")
        return model

    @staticmethod
    def d_heads(options: InfoGANOptions, model: Any) -> dict[str, Any]:
        """Q (Chen et al. 2016, appendix C): D's body, then a small head of its own with as many outputs as the
        codes need: on a convolutional D a convolution spanning the features, BatchNorm and LeakyReLU, then a 1x1
        convolution; on a flat one two linear layers."""
        outputs = options.layout.q_dim

        def q_head(f):
            if f.side:
                return nn.Sequential(
                    nn.Conv2d(f.channels, 128, f.side, 1, 0, bias=False),
                    nn.BatchNorm2d(128),
                    nn.LeakyReLU(f.leaky_slope),
                    nn.Conv2d(128, outputs, 1),
                )
            return nn.Sequential(nn.Linear(f.channels, 128), nn.LeakyReLU(0.2), nn.Linear(128, outputs))

        return {"q_head": q_head}

    @property
    def wants_features(self) -> bool:
        return True

    def information_loss(self, ctx: StepContext, h_fake):
        o = self.options
        return self.condition.layout.information_loss(
            wide(self.D.read_head("q_head", h_fake)), ctx.condition, o.lambda_discrete, o.lambda_continuous
        )

    def extra_d_loss(self, ctx, h_real, h_fake, stats):
        return self.information_loss(ctx, h_fake)[0]

    def extra_g_loss(self, ctx, h_fake, stats):
        loss, terms = self.information_loss(ctx, h_fake)
        stats.update(terms)
        return loss
