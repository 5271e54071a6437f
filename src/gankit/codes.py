"""InfoGAN's latent codes (Chen et al. 2016): their layout, how to draw them, and the mutual-information term.

G's input is one vector: ``noise_dim`` standard normal entries followed by the codes, in the order
categorical (one-hot blocks of K values), continuous (uniform in [-1, 1]), binary (0 or 1). G itself
does not know which entries are codes; the InfoGAN objective and the sampling pipeline do, from the
objective section of the run's config.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import torch
from torch import nn


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
        return ([f"cat{i}" for i in range(len(self.categorical))] + [f"cont{i}" for i in range(self.continuous)]
                + [f"bin{i}" for i in range(self.binary)])  # fmt: skip

    def join(self, z: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """G's input from standard normal latents ``z`` (n, latent_dim) and ``codes`` (n, dim): the noise
        entries (all but the last ``dim``) scaled by ``noise_std``, then the codes."""
        return torch.cat([z[:, : z.shape[1] - self.dim] * self.noise_std, codes.to(z.dtype)], dim=1)

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

    def information_loss(self, q: torch.Tensor, codes: torch.Tensor, weight_discrete: float,
                         weight_continuous: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # fmt: skip
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
            discrete = discrete + nn.functional.binary_cross_entropy_with_logits(
                q[:, qi : qi + self.binary], codes[:, ci : ci + self.binary], reduction="none").sum(dim=1).mean()  # fmt: skip
        stats["info_discrete"] = discrete.detach()
        stats["info_continuous"] = continuous.detach()
        if accuracies:
            stats["code_accuracy"] = torch.stack(accuracies).mean()
        return weight_discrete * discrete + weight_continuous * continuous, stats
