"""Adversarial losses on D's logits, in their numerically stable forms.

Each loss maps D's raw outputs to a D loss and a G loss. With D(x) = sigmoid(l),
``log D(x) = -softplus(-l)`` and ``log(1 - D(x)) = -softplus(l)``, so no loss
ever applies a sigmoid and then a log.

- ``minimax``: Goodfellow et al. 2014, eq. 1; G minimizes log(1 - D(G(z))).
  Saturates early in training when D rejects samples confidently.
- ``non-saturating``: the same D loss; G maximizes log D(G(z)) instead
  (Goodfellow et al. 2014, section 3). The default.
- ``least-squares``: Mao et al. 2017, eq. 2 with a-b-c = 0-1-1.
- ``wgan-gp``: Gulrajani et al. 2017, eq. 3 (critic loss plus a gradient
  penalty, which the objective computes because it needs D itself).
- ``hinge``: Lim & Ye 2017 / Miyato et al. 2018.

Losses never import models; an objective combines the two.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from gankit.registry import ConfigError, NoOptions, Registry


class Loss:
    """Base class: subclasses implement ``d_loss`` and ``g_loss`` on logits."""

    gradient_penalty_weight: float = 0.0

    def d_loss(self, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, logits_fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def d_output(self, logits: torch.Tensor) -> torch.Tensor:
        """What is logged as D(x): a probability for the cross-entropy losses, else the raw score."""
        return logits


LOSSES: Registry[type[Loss]] = Registry("loss")


@dataclasses.dataclass
class CrossEntropyOptions:
    # One-sided label smoothing (Salimans et al. 2016): the target for real
    # samples; 1.0 means no smoothing. Fake targets stay at 0.
    real_label: float = 1.0

    def __post_init__(self):
        if not 0.5 < self.real_label <= 1.0:
            raise ConfigError(f"loss.real_label must be in (0.5, 1], got {self.real_label}")


def bce_with_logits(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Mean of -[t log sigmoid(l) + (1 - t) log(1 - sigmoid(l))] for a constant target t."""
    if target == 1.0:
        return F.softplus(-logits).mean()
    if target == 0.0:
        return F.softplus(logits).mean()
    return (target * F.softplus(-logits) + (1 - target) * F.softplus(logits)).mean()


class _CrossEntropyD(Loss):
    def __init__(self, options: CrossEntropyOptions):
        self.real_label = options.real_label

    def d_loss(self, logits_real, logits_fake):
        return bce_with_logits(logits_real, self.real_label) + bce_with_logits(logits_fake, 0.0)

    def d_output(self, logits):
        return torch.sigmoid(logits)


@LOSSES.register("minimax", CrossEntropyOptions, "original saturating loss, G minimizes log(1 - D(G(z)))")
class MinimaxLoss(_CrossEntropyD):
    def g_loss(self, logits_fake):
        # log(1 - sigmoid(l)) = -softplus(l); G minimizes it.
        return -F.softplus(logits_fake).mean()


@LOSSES.register("non-saturating", CrossEntropyOptions, "G maximizes log D(G(z)) (default)")
class NonSaturatingLoss(_CrossEntropyD):
    def g_loss(self, logits_fake):
        return F.softplus(-logits_fake).mean()


@LOSSES.register("least-squares", CrossEntropyOptions, "LSGAN, Mao et al. 2017")
class LeastSquaresLoss(Loss):
    def __init__(self, options: CrossEntropyOptions):
        self.real_label = options.real_label

    def d_loss(self, logits_real, logits_fake):
        return 0.5 * ((logits_real - self.real_label) ** 2).mean() + 0.5 * (logits_fake**2).mean()

    def g_loss(self, logits_fake):
        return 0.5 * ((logits_fake - 1.0) ** 2).mean()


@dataclasses.dataclass
class WassersteinOptions:
    gp_weight: float = 10.0  # lambda of Gulrajani et al. 2017

    def __post_init__(self):
        if self.gp_weight < 0:
            raise ConfigError(f"loss.gp_weight must be >= 0, got {self.gp_weight}")


@LOSSES.register("wgan-gp", WassersteinOptions, "Wasserstein critic with gradient penalty, Gulrajani et al. 2017")
class WassersteinGPLoss(Loss):
    def __init__(self, options: WassersteinOptions):
        self.gradient_penalty_weight = options.gp_weight

    def d_loss(self, logits_real, logits_fake):
        return logits_fake.mean() - logits_real.mean()

    def g_loss(self, logits_fake):
        return -logits_fake.mean()


@LOSSES.register("hinge", NoOptions, "hinge loss, Lim & Ye 2017; Miyato et al. 2018")
class HingeLoss(Loss):
    def __init__(self, options: NoOptions):
        pass

    def d_loss(self, logits_real, logits_fake):
        return F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean()

    def g_loss(self, logits_fake):
        return -logits_fake.mean()


def matching_aware_d_loss(
    loss: Loss, logits_real: torch.Tensor, logits_fake: torch.Tensor, logits_wrong: torch.Tensor | None
) -> torch.Tensor:
    """GAN-CLS's D loss (Reed et al. 2016, Algorithm 1): {real image, right text} is real; {real image,
    wrong text} and {fake image, right text} are fake, each with half the weight of the real term:
    L_D = log(s_r) + (log(1 - s_w) + log(1 - s_f)) / 2 for the cross-entropy losses, written with any
    loss as (L(s_r, s_f) + L(s_r, s_w)) / 2. Without ``logits_wrong`` it is the plain D loss."""
    if logits_wrong is None:
        return loss.d_loss(logits_real, logits_fake)
    return 0.5 * (loss.d_loss(logits_real, logits_fake) + loss.d_loss(logits_real, logits_wrong))


def gradient_penalty(outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Mean of (||grad_x D(x)||_2 - 1)^2 at ``inputs`` (Gulrajani et al. 2017, eq. 3).

    ``outputs`` must be D's logits computed from ``inputs`` with a graph.
    """
    (grad,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()


def r1_penalty(logits_real: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E ||grad_x D(x)||^2 on real data (Mescheder et al. 2018); the objective weights it by gamma / 2.

    ``logits_real`` must be D's logits computed from ``real`` (which requires grad) with a graph.
    """
    (grad,) = torch.autograd.grad(logits_real.sum(), real, create_graph=True)
    return grad.flatten(1).pow(2).sum(dim=1).mean()


def build_loss(section: dict) -> Loss:
    entry, options = LOSSES.resolve(section, "loss")
    return entry.factory(options)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)), averaged over the batch and the dimensions as StackGAN
    does (its KL coefficient is set for that mean): 0.5 * mean(mu^2 + exp(logvar) - 1 - logvar)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean()


def symmetric_structured_loss(
    image: torch.Tensor, text: torch.Tensor, labels: torch.Tensor | None = None, margin: float = 1.0
) -> torch.Tensor:
    """Reed et al. 2016's symmetric structured joint-embedding loss over a minibatch, in its hinge form.

    ``image`` (N, D) and ``text`` (N, D) are the embeddings of N matching (image, caption) pairs;
    compatibility S = image @ text.T. For each image, every caption of another class that scores within
    ``margin`` of its own caption costs the difference, and for each caption every image of another
    class likewise (the two directions: the "symmetric" part). Without ``labels`` every other pair counts
    as another class. Mean over the N rows of each direction, summed."""
    scores = image @ text.T
    own = scores.diagonal()
    labels = torch.arange(len(scores), device=scores.device) if labels is None else labels
    other = (labels[:, None] != labels[None, :]).to(scores.dtype)
    image_side = (torch.relu(margin + scores - own[:, None]) * other).sum(dim=1)  # captions for each image
    text_side = (torch.relu(margin + scores - own[None, :]) * other).sum(dim=0)  # images for each caption
    return image_side.mean() + text_side.mean()
