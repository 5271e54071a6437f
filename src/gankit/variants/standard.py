"""The standard game (Goodfellow et al. 2014) with any registered loss, and every stability technique.

Unconditional nets take nothing besides z; class-conditional nets (``model.num_classes``) take the real
batch's labels in G and D, so generated and real batches have the same class mix: that is
:class:`LabelCondition`, shared by the conditional and AC-GAN variants. Everything that changes what D sees
or what G optimizes is an option here: DiffAugment, packing (PacGAN), instance noise, R1, feature
matching, the unrolled GAN. The conditional, AC-GAN and InfoGAN variants extend this objective.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from gankit.augment import diff_augment, parse_policy
from gankit.losses import Loss, gradient_penalty, r1_penalty
from gankit.registry import ConfigError
from gankit.seeding import latents
from gankit.variants.base import (
    VARIANTS,
    Condition,
    Objective,
    StepContext,
    StepOutput,
    frozen,
    register_condition,
    wide,
)


def cycled_labels(n: int, num_classes: int, start: int = 0) -> torch.Tensor:
    """Labels for samples start .. start+n-1 when none are given: 0, 1, ..., K-1, 0, 1, ..."""
    return (torch.arange(start, start + n) % num_classes).long()


def label_tensor(labels, n: int, num_classes: int, start: int = 0) -> torch.Tensor:
    """The class labels of samples start .. start+n-1: cycled when not given; one int for all samples; or a
    sequence of n ints."""
    if labels is None:
        return cycled_labels(n, num_classes, start)
    labels = torch.as_tensor(labels, dtype=torch.long).flatten()
    if labels.numel() == 1:
        labels = labels.expand(n)
    elif labels.numel() != n:
        raise ValueError(f"{labels.numel()} labels for {n} samples; give one label, or one per sample")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must be in 0..{num_classes - 1}, got {labels.tolist()[:10]}")
    return labels.clone()


@register_condition
class LabelCondition(Condition):
    """Class labels 0..K-1, given to G and D (Mirza & Osindero 2014). Sample k gets label k mod K unless
    labels are given, so 10,000 evaluation samples are class-balanced and their labels known."""

    kind = "labels"
    accepts = ("labels",)
    refusal = "this generator is not class-conditional; it takes no labels"
    verbs = ("class_grid",)

    def __init__(self, num_classes: int, class_names: list[str] | None = None):
        self.num_classes = num_classes
        self.class_names = class_names  # the training data's, recorded in exports (None: unnamed)

    def describe(self) -> dict[str, Any]:
        named = {"class_names": self.class_names} if self.class_names else {}
        return {"kind": self.kind, "num_classes": self.num_classes, **named}

    @classmethod
    def from_description(cls, description, stored=None) -> "LabelCondition":
        num_classes = int(description["num_classes"])
        names = description.get("class_names")
        if names is not None and not (
            isinstance(names, list)
            and len(names) == num_classes
            and all(isinstance(n, str) and len(n) <= 200 for n in names)
        ):
            raise ValueError(
                f"class_names must be {num_classes} strings of at most 200 characters, got {str(names)[:80]}"
            )
        return cls(num_classes, names)

    def prepare(self, dataset, nets=()) -> None:
        """Keep the training data's class names (when it has one per class) for pictures and front ends."""
        names = dataset.class_names
        if names and len(names) == self.num_classes:
            self.class_names = [str(n)[:200] for n in names]

    def label_names(self) -> list[str]:
        """A name per class: the data's when it had them, else the indices."""
        return self.class_names or [str(k) for k in range(self.num_classes)]

    def parse_labels(self, text: str) -> list[int]:
        """``all``, or comma-separated class indices or names (case-insensitive: ``3,Sneaker``)."""
        if text.strip().lower() == "all":
            return list(range(self.num_classes))
        names = {n.lower(): k for k, n in enumerate(self.label_names())}
        labels = []
        for part in (p.strip() for p in text.split(",") if p.strip()):
            if part.isdigit() and int(part) < self.num_classes:
                labels.append(int(part))
            elif part.lower() in names:
                labels.append(names[part.lower()])
            else:
                raise ValueError(
                    f"{part!r} is not a class of this generator: classes are 0..{self.num_classes - 1}"
                    + (f" or their names ({', '.join(self.class_names)})" if self.class_names else "")
                )
        if not labels:
            raise ValueError("no labels given: write class indices or names, comma-separated, or 'all'")
        return labels

    def parse_input(self, name, text):
        """``labels``: ``all``, or comma-separated class indices or names (several draw a class grid)."""
        self.control(name)
        return self.parse_labels(text)

    def evaluation_inputs(self, n, targets):
        """Sample k is drawn for label k mod K (the default draw): class-balanced, its labels known."""
        return {}, {"labels": np.arange(n) % self.num_classes}

    def row_names(self, entries):
        names = self.label_names()
        return [names[int(k)] for k in entries]

    def row_labels(self, entries):
        return np.asarray(entries, dtype=np.int64)

    def class_grid(self, pipeline, labels, columns: int = 8, seed: int = 0) -> np.ndarray:
        """``pipeline.class_grid(labels)``: one row per label, the same ``columns`` latents of ``seed`` along every
        row (uint8 images, row-major)."""
        return pipeline.grid(labels, columns, seed)

    def summary(self) -> str:
        return f"conditional on {self.num_classes} classes"

    def argument_docs(self, latent_dim):
        return [
            *super().argument_docs(latent_dim),
            {"name": "labels", "description": f"class index per sample, int64 in 0..{self.num_classes - 1}"},
        ]

    def controls(self):
        options = [f"{k}: {n}" if self.class_names else n for k, n in enumerate(self.label_names())]
        return [{"name": "labels", "type": "class", "label": "class", "options": options, "default": 0}]

    def explorer_state(self, first_input, values):
        z, _ = super().explorer_state(first_input, values)
        return z, {"labels": int(np.asarray(values).reshape(-1)[0])}

    def batch(self, dataset, index):
        return dataset.labels[index]

    def draw(self, n, generator, device):
        return cycled_labels(n, self.num_classes).to(device)

    def training_grid(self, count, latent_dim, seed):
        """One row per class, the same count // K latents in every row (``gankit sample RUN --labels all``)."""
        columns = max(1, count // self.num_classes)
        z = latents(columns, latent_dim, seed).repeat(self.num_classes, 1)
        return z, torch.arange(self.num_classes).repeat_interleave(columns), columns

    def values_for(self, n, seed, start=0, labels=None, **given):
        self.refuse(given)
        return label_tensor(labels, n, self.num_classes, start)

    def grid(self, entries, columns, seed, latent_dim):
        labels = label_tensor(list(entries), len(entries), self.num_classes)
        z = latents(columns, latent_dim, seed).repeat(len(labels), 1)
        return z, labels.repeat_interleave(columns)

    def rest_args(self, values, device):
        return (values.to(device),)

    def discriminator_kwargs(self, values):
        return {"labels": values}


def model_condition(G: nn.Module) -> Condition:
    """What the standard game feeds G besides z: the labels of a class-conditional G, else nothing."""
    num_classes = int(getattr(G, "num_classes", 0) or 0)
    return LabelCondition(num_classes) if num_classes else Condition()


@dataclasses.dataclass
class StandardOptions:
    # R1 penalty on real data, gamma / 2 * E ||grad_x D(x)||^2 (Mescheder et al. 2018, eq. 9); 0: off.
    r1_weight: float = 0.0
    # Instance noise (Sonderby et al. 2017; Arjovsky & Bottou 2017): Gaussian noise of this std added to
    # every input of D, real and generated; 0: off.
    instance_noise: float = 0.0
    # Anneal the instance noise linearly to 0 over this many steps; 0 keeps it constant.
    instance_noise_anneal_steps: int = 0
    # Feature matching (Salimans et al. 2016, section 3.1): G minimizes ||E f(x) - E f(G(z))||^2 over D's
    # last hidden features f instead of the adversarial G loss.
    feature_matching: bool = False
    # DiffAugment (Zhao et al. 2020): comma-separated policies from color, translation, cutout applied to
    # every image D sees, real and generated, in both steps; "" is off.
    diffaugment: str = ""
    # Unrolled GAN (Metz et al. 2017): G's loss is taken against the D that this many steps of D's own
    # optimizer (Adam, from its current moments) on the current batch would give; 0: off. D itself is not
    # changed. The look-ahead steps use D's adversarial loss only (no gradient or R1 penalty).
    unrolled_steps: int = 0
    # Backpropagate G's gradient through the look-ahead steps (the paper's full gradient, its second term
    # included); false treats the unrolled D as a constant, which is cheaper and weaker.
    unrolled_second_order: bool = True

    def __post_init__(self):
        if min(self.r1_weight, self.instance_noise, self.instance_noise_anneal_steps, self.unrolled_steps) < 0:
            raise ConfigError(
                "objective.r1_weight, instance_noise, instance_noise_anneal_steps and unrolled_steps must be >= 0"
            )
        if self.unrolled_steps and self.feature_matching:
            raise ConfigError(
                "objective.unrolled_steps and objective.feature_matching are two different G losses; choose one"
            )


@VARIANTS.register("standard", StandardOptions, "unconditional GAN: D(x) vs D(G(z))")
class StandardObjective(Objective):
    """The two-player game of Goodfellow et al. 2014 with any registered loss."""

    def __init__(
        self,
        options: StandardOptions,
        G: nn.Module,
        D: nn.Module,
        loss: Loss,
        d_optimizer: torch.optim.Optimizer | None = None,
    ):
        super().__init__(options, G, D, loss, d_optimizer)
        if options.unrolled_steps and not isinstance(d_optimizer, torch.optim.Adam):
            raise TypeError("objective.unrolled_steps needs D's Adam optimizer (d_optimizer) to look ahead with")
        self.noise_std = options.instance_noise
        self.pack = getattr(D, "pack", 1)  # PacGAN: D scores groups of this many consecutive samples
        self.augment_policy = parse_policy(options.diffaugment)
        self.condition = self.make_condition()

    def make_condition(self) -> Condition:
        return model_condition(self.G)

    @property
    def differentiates_d_gradients(self) -> bool:
        return super().differentiates_d_gradients or self.options.r1_weight > 0 or self.options.unrolled_steps > 0

    @staticmethod
    def describe_condition(options, G, stored) -> dict[str, Any]:
        return model_condition(G).describe()

    def begin_step(self, step: int) -> None:
        """The instance-noise schedule."""
        o = self.options
        anneal = o.instance_noise_anneal_steps
        self.noise_std = o.instance_noise * max(0.0, 1.0 - step / anneal) if anneal else o.instance_noise

    def noisy(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.noise_std * torch.randn_like(x) if self.noise_std > 0 else x

    def packed(self, x: torch.Tensor) -> torch.Tensor:
        """D's input: ``pack`` consecutive samples stacked along channels (images) or concatenated (points)."""
        if self.pack == 1:
            return x
        if x.shape[0] % self.pack:
            raise ConfigError(f"train.batch_size ({x.shape[0]}) must be a multiple of model.d_pack ({self.pack})")
        return x.reshape(x.shape[0] // self.pack, -1, *x.shape[2:])

    def d_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.augment_policy:
            x = diff_augment(x, self.augment_policy)
        return self.noisy(self.packed(x))

    def discriminate(self, x: torch.Tensor, values, features: bool = False, weights=None):
        """D's logits for its input ``x`` (and, with ``features``, its last features), given the condition's
        values; with ``weights``, D evaluated at those parameters (the unrolled look-ahead)."""
        kwargs: dict[str, Any] = {"return_features": True} if features else {}
        kwargs.update(self.condition.discriminator_kwargs(values))
        if weights is not None:
            return functional_call(self.D, weights, (x,), kwargs)
        return self.D(x, **kwargs)

    def d_step(self, ctx: StepContext) -> StepOutput:
        """D's loss on the real batch and G(z); leaves G(z) (with its graph) on ``ctx`` for G's step."""
        values = ctx.condition
        fake = ctx.fake = self.G(*self.condition.generator_args(ctx.z, values))
        real_in, fake_in = self.d_input(ctx.real), self.d_input(fake.detach())
        if self.options.r1_weight > 0:
            real_in = real_in.detach().requires_grad_(True)
        if self.wants_features:
            logits_real, h_real = self.discriminate(real_in, values, features=True)
            logits_fake, h_fake = self.discriminate(fake_in, values, features=True)
            if self.options.feature_matching:
                ctx.saved["real_feature_mean"] = wide(h_real.detach().flatten(1)).mean(dim=0)
        else:
            logits_real, logits_fake = self.discriminate(real_in, values), self.discriminate(fake_in, values)
        logits_real, logits_fake = wide(logits_real), wide(logits_fake)
        loss = self.loss.d_loss(logits_real, logits_fake)
        stats = {
            "d_loss": loss.detach(),
            "D(x)": self.loss.d_output(logits_real.detach()).float().mean(),
            "D(G(z))": self.loss.d_output(logits_fake.detach()).float().mean(),
            # Fraction D gets right at threshold 0 (real: logit > 0, fake: logit < 0).
            "d_accuracy": ((logits_real.detach() > 0).float().mean() + (logits_fake.detach() < 0).float().mean()) / 2,
        }
        if self.loss.gradient_penalty_weight > 0:
            real_p, fake_p = self.packed(ctx.real), self.packed(fake.detach())
            alpha = torch.rand(real_p.shape[0], *([1] * (real_p.dim() - 1)), device=ctx.real.device)
            x_hat = (real_p + alpha * (fake_p - real_p)).requires_grad_(True)
            penalty = gradient_penalty(wide(self.discriminate(x_hat, values)), x_hat)
            loss = loss + self.loss.gradient_penalty_weight * penalty
            stats["gp"] = penalty.detach()
        if self.options.r1_weight > 0:
            penalty = r1_penalty(logits_real, real_in)
            loss = loss + 0.5 * self.options.r1_weight * penalty
            stats["r1"] = penalty.detach()
        if self.noise_std > 0:
            stats["instance_noise"] = torch.tensor(self.noise_std)
        if self.wants_features:
            loss = loss + self.extra_d_loss(ctx, h_real, h_fake, stats)
        return StepOutput(loss, stats)

    def g_step(self, ctx: StepContext) -> StepOutput:
        """G's loss on the samples D's step left on ``ctx`` (they still carry their graph)."""
        values, fake = ctx.condition, ctx.fake
        stats: dict[str, torch.Tensor] = {}
        with frozen(self.D):
            if self.options.unrolled_steps:
                weights = self.lookahead_weights(ctx.real, fake, values)
                loss = self.loss.g_loss(wide(self.discriminate(self.d_input(fake), values, weights=weights)))
            elif self.wants_features:
                logits, h_fake = self.discriminate(self.d_input(fake), values, features=True)
                if self.options.feature_matching:
                    difference = wide(h_fake.flatten(1)).mean(dim=0) - ctx.saved["real_feature_mean"]
                    loss = (difference**2).sum()
                else:
                    loss = self.loss.g_loss(wide(logits))
                loss = loss + self.extra_g_loss(ctx, h_fake, stats)
            else:
                loss = self.loss.g_loss(wide(self.discriminate(self.d_input(fake), values)))
        return StepOutput(loss, {"g_loss": loss.detach(), **stats})

    @property
    def wants_features(self) -> bool:
        """Whether D's steps need its last features (feature matching; heads on D's body)."""
        return self.options.feature_matching

    def extra_d_loss(self, ctx: StepContext, h_real, h_fake, stats) -> torch.Tensor | float:
        """Terms a variant adds to D's loss from D's last features (none here)."""
        return 0.0

    def extra_g_loss(self, ctx: StepContext, h_fake, stats) -> torch.Tensor | float:
        """Terms a variant adds to G's loss from D's last features on G's samples (none here)."""
        return 0.0

    def lookahead_weights(self, real: torch.Tensor, fake: torch.Tensor, values=None) -> dict[str, torch.Tensor]:
        """D's parameters after ``unrolled_steps`` Adam steps on (real, fake), plus copies of its buffers.

        Metz et al. 2017, section 2: the surrogate G objective f_K(theta_G, theta_D) = f(theta_G,
        theta_D^K), where theta_D^{k+1} = theta_D^k + eta^k dtheta_D^k is D's optimizer step. The steps
        repeat Adam's update (torch.optim.Adam without weight decay) from the optimizer's current moments
        and step count, so the look-ahead D is the one training would produce on this batch. With
        ``unrolled_second_order`` the parameters stay functions of ``fake`` (create_graph), so G's
        gradient includes how D's update responds to G. BatchNorm running statistics and
        spectral-norm power-iteration vectors are updated on copies: D's state is untouched.
        """
        second_order = self.options.unrolled_second_order
        group = self.d_optimizer.param_groups[0]
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        names, params, exp_avg, exp_avg_sq, steps = [], [], [], [], []
        for name, p in self.D.named_parameters():
            state = self.d_optimizer.state.get(p, {})
            names.append(name)
            params.append(p.detach().requires_grad_(True))
            exp_avg.append(state["exp_avg"].detach() if state else torch.zeros_like(p))
            exp_avg_sq.append(state["exp_avg_sq"].detach() if state else torch.zeros_like(p))
            steps.append(float(state["step"]) if state else 0.0)
        buffers = {name: b.clone() for name, b in self.D.named_buffers()}
        source = fake if second_order else fake.detach()
        for _ in range(self.options.unrolled_steps):
            weights = {**dict(zip(names, params)), **buffers}
            logits_real = wide(self.discriminate(self.d_input(real), values, weights=weights))
            logits_fake = wide(self.discriminate(self.d_input(source), values, weights=weights))
            grads = torch.autograd.grad(self.loss.d_loss(logits_real, logits_fake), params, create_graph=second_order)
            updated = []
            for i, (p, g) in enumerate(zip(params, grads)):
                steps[i] += 1
                exp_avg[i] = beta1 * exp_avg[i] + (1 - beta1) * g
                exp_avg_sq[i] = beta2 * exp_avg_sq[i] + (1 - beta2) * g * g
                m_hat = exp_avg[i] / (1 - beta1 ** steps[i])
                # A tiny constant under the root keeps its derivative finite where a gradient is exactly 0.
                v_hat = exp_avg_sq[i] / (1 - beta2 ** steps[i]) + 1e-30
                p = p - lr * m_hat / (v_hat.sqrt() + eps)
                updated.append(p if second_order else p.detach().requires_grad_(True))
            params = updated
        return {**dict(zip(names, params)), **buffers}
