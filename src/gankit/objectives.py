"""Objectives: one per GAN variant, combining G, D and a loss into phase losses.

An objective owns the forward passes of a training step and returns scalar
losses plus detached statistics; the trainer owns backward passes, optimizer
steps and everything else. Later variants (conditional, InfoGAN, text) add
their own objectives with the same two methods.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from gankit.augment import diff_augment, parse_policy
from gankit.losses import Loss, gradient_penalty, r1_penalty
from gankit.registry import Registry

OBJECTIVES: Registry = Registry("objective")


@contextlib.contextmanager
def frozen(module: nn.Module):
    """Build graphs through ``module`` without gradients for its parameters.

    In G's step only the gradient with respect to D's input is needed; autograd
    records ``requires_grad`` when the graph is built, so D's weight gradients
    are skipped in the later backward pass too (about 1.2x faster per step here).
    """
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


def wide(x: torch.Tensor) -> torch.Tensor:
    """Logits and features in at least fp32: losses are computed in full precision under bf16 autocast."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


@dataclasses.dataclass
class StepOutput:
    loss: torch.Tensor
    stats: dict[str, torch.Tensor]  # detached scalars, read only when logged
    fake: torch.Tensor | None = None


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
        from gankit.registry import ConfigError

        if min(self.r1_weight, self.instance_noise, self.instance_noise_anneal_steps, self.unrolled_steps) < 0:
            raise ConfigError(
                "objective.r1_weight, instance_noise, instance_noise_anneal_steps and unrolled_steps must be >= 0"
            )
        if self.unrolled_steps and self.feature_matching:
            raise ConfigError("objective.unrolled_steps and objective.feature_matching are two different G losses; choose one")


@OBJECTIVES.register("standard", StandardOptions, "unconditional GAN: D(x) vs D(G(z))")
class StandardObjective:
    """The two-player game of Goodfellow et al. 2014 with any registered loss."""

    def __init__(
        self,
        options: StandardOptions,
        G: nn.Module,
        D: nn.Module,
        loss: Loss,
        d_optimizer: torch.optim.Optimizer | None = None,
    ):
        self.G, self.D, self.loss, self.options = G, D, loss, options
        if options.unrolled_steps and not isinstance(d_optimizer, torch.optim.Adam):
            raise TypeError("objective.unrolled_steps needs D's Adam optimizer (d_optimizer) to look ahead with")
        self.d_optimizer = d_optimizer
        self.last_real: torch.Tensor | None = None
        self.noise_std = options.instance_noise
        self.pack = getattr(D, "pack", 1)  # PacGAN: D scores groups of this many consecutive samples
        self.real_feature_mean: torch.Tensor | None = None
        self.augment_policy = parse_policy(options.diffaugment)
        self.conditional = bool(getattr(G, "num_classes", 0))  # G (and D) take class labels
        self.labels: torch.Tensor | None = None

    def begin_step(self, step: int) -> None:
        """Called by the trainer before each step (the instance-noise schedule)."""
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
            from gankit.registry import ConfigError

            raise ConfigError(f"train.batch_size ({x.shape[0]}) must be a multiple of model.d_pack ({self.pack})")
        return x.reshape(x.shape[0] // self.pack, -1, *x.shape[2:])

    def d_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.augment_policy:
            x = diff_augment(x, self.augment_policy)
        return self.noisy(self.packed(x))

    def discriminate(self, x: torch.Tensor, labels: torch.Tensor | None, features: bool = False, weights=None):
        """D's logits for its input ``x`` (and, with ``features``, its last features), given the labels a
        conditional D needs; with ``weights``, D evaluated at those parameters (the unrolled look-ahead)."""
        kwargs: dict[str, Any] = {"return_features": True} if features else {}
        if labels is not None:
            kwargs["labels"] = labels
        if weights is not None:
            return functional_call(self.D, weights, (x,), kwargs)
        return self.D(x, **kwargs)

    def d_step(self, real: torch.Tensor, z: torch.Tensor, labels: torch.Tensor | None = None) -> StepOutput:
        """D's loss on a real batch and G(z); returns G(z) (with its graph) for reuse in G's step.

        ``labels`` are the real batch's class labels; a conditional G draws its samples for the same
        labels, so generated and real batches have the same class mix.
        """
        labels = labels if self.conditional else None
        self.labels = labels
        fake = self.G(z, labels) if labels is not None else self.G(z)
        if self.options.unrolled_steps:
            self.last_real = real
        real_in, fake_in = self.d_input(real), self.d_input(fake.detach())
        if self.options.r1_weight > 0:
            real_in = real_in.detach().requires_grad_(True)
        if self.wants_features:
            logits_real, h_real = self.discriminate(real_in, labels, features=True)
            logits_fake, h_fake = self.discriminate(fake_in, labels, features=True)
            if self.options.feature_matching:
                self.real_feature_mean = wide(h_real.detach().flatten(1)).mean(dim=0)
        else:
            logits_real, logits_fake = self.discriminate(real_in, labels), self.discriminate(fake_in, labels)
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
            real_p, fake_p = self.packed(real), self.packed(fake.detach())
            alpha = torch.rand(real_p.shape[0], *([1] * (real_p.dim() - 1)), device=real.device)
            x_hat = (real_p + alpha * (fake_p - real_p)).requires_grad_(True)
            penalty = gradient_penalty(wide(self.discriminate(x_hat, labels)), x_hat)
            loss = loss + self.loss.gradient_penalty_weight * penalty
            stats["gp"] = penalty.detach()
        if self.options.r1_weight > 0:
            penalty = r1_penalty(logits_real, real_in)
            loss = loss + 0.5 * self.options.r1_weight * penalty
            stats["r1"] = penalty.detach()
        if self.noise_std > 0:
            stats["instance_noise"] = torch.tensor(self.noise_std)
        if self.wants_features:
            loss = loss + self.extra_d_loss(h_real, h_fake, labels, stats)
        return StepOutput(loss, stats, fake)

    def g_step(self, fake: torch.Tensor) -> StepOutput:
        """G's loss on samples G(z) that still carry their graph."""
        labels = self.labels
        stats: dict[str, torch.Tensor] = {}
        with frozen(self.D):
            if self.options.unrolled_steps:
                weights = self.lookahead_weights(self.last_real, fake, labels)
                loss = self.loss.g_loss(wide(self.discriminate(self.d_input(fake), labels, weights=weights)))
            elif self.wants_features:
                logits, h_fake = self.discriminate(self.d_input(fake), labels, features=True)
                if self.options.feature_matching:
                    difference = wide(h_fake.flatten(1)).mean(dim=0) - self.real_feature_mean
                    loss = (difference**2).sum()
                else:
                    loss = self.loss.g_loss(wide(logits))
                loss = loss + self.extra_g_loss(h_fake, labels, stats)
            else:
                loss = self.loss.g_loss(wide(self.discriminate(self.d_input(fake), labels)))
        return StepOutput(loss, {"g_loss": loss.detach(), **stats})

    @property
    def wants_features(self) -> bool:
        """Whether D's steps need its last features (feature matching; heads on D's body)."""
        return self.options.feature_matching

    def extra_d_loss(self, h_real, h_fake, labels, stats) -> torch.Tensor | float:
        """Terms a variant adds to D's loss from D's last features (none here)."""
        return 0.0

    def extra_g_loss(self, h_fake, labels, stats) -> torch.Tensor | float:
        """Terms a variant adds to G's loss from D's last features on G's samples (none here)."""
        return 0.0

    def lookahead_weights(
        self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
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
            logits_real = wide(self.discriminate(self.d_input(real), labels, weights=weights))
            logits_fake = wide(self.discriminate(self.d_input(source), labels, weights=weights))
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


@OBJECTIVES.register("conditional", StandardOptions, "conditional GAN: G(z, y), D(x, y) (Mirza & Osindero 2014)")
class ConditionalObjective(StandardObjective):
    """The standard game with the class label given to G and D (Mirza & Osindero 2014, section 3.2).

    The model decides how D sees the label (``model.d_conditioning``: label maps joined with the input,
    or a projection); this objective only checks that the model is conditional.
    """

    def __init__(self, options, G, D, loss, d_optimizer=None):
        super().__init__(options, G, D, loss, d_optimizer)
        if not self.conditional or getattr(D, "conditioning", "none") == "none":
            from gankit.registry import ConfigError

            raise ConfigError(
                "objective 'conditional' needs a class-conditional model: set model.num_classes=null (from the data) "
                "and model.d_conditioning to concat or projection"
            )


@dataclasses.dataclass
class ACGANOptions(StandardOptions):
    # Weight of the class log-likelihood L_C in both nets' losses (Odena et al. 2017, section 3).
    class_weight: float = 1.0


@OBJECTIVES.register("acgan", ACGANOptions, "AC-GAN: G(z, y); D scores real/fake and classifies (Odena et al. 2017)")
class ACGANObjective(StandardObjective):
    """Auxiliary classifier GAN (Odena et al. 2017, eq. 2-3).

    G draws samples for given labels; D does not see the label but predicts it with a head on its last
    features. With L_S the usual source loss and L_C = log P(C = c | X_real) + log P(C = c | X_fake),
    D maximizes L_S + L_C and G maximizes L_C - L_S: both add the class cross-entropy to their loss, D on
    real and generated samples, G on its own.
    """

    def __init__(self, options: ACGANOptions, G, D, loss, d_optimizer=None):
        super().__init__(options, G, D, loss, d_optimizer)
        if not self.conditional or getattr(D, "aux_head", None) is None:
            from gankit.registry import ConfigError

            raise ConfigError(
                "objective 'acgan' needs model.num_classes=null (labels to G) and model.d_aux_classifier=true"
            )

    @property
    def wants_features(self) -> bool:
        return True

    def extra_d_loss(self, h_real, h_fake, labels, stats):
        logits_real, logits_fake = wide(self.D.classify(h_real)), wide(self.D.classify(h_fake))
        loss_real = nn.functional.cross_entropy(logits_real, labels)
        loss_fake = nn.functional.cross_entropy(logits_fake, labels)
        stats["class_loss_real"] = loss_real.detach()
        stats["class_accuracy_real"] = (logits_real.detach().argmax(dim=1) == labels).float().mean()
        return self.options.class_weight * (loss_real + loss_fake)

    def extra_g_loss(self, h_fake, labels, stats):
        logits = wide(self.D.classify(h_fake))
        loss = nn.functional.cross_entropy(logits, labels)
        stats["class_loss_fake"] = loss.detach()
        stats["class_accuracy_fake"] = (logits.detach().argmax(dim=1) == labels).float().mean()
        return self.options.class_weight * loss


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
        from gankit.registry import ConfigError

        if any(k < 2 for k in self.categorical) or self.continuous < 0 or self.binary < 0:
            raise ConfigError("objective.categorical values must be >= 2, continuous and binary >= 0")
        if not (self.categorical or self.continuous or self.binary):
            raise ConfigError("objective 'infogan' needs at least one code (categorical, continuous or binary)")
        if self.lambda_discrete < 0 or self.lambda_continuous < 0:
            raise ConfigError("objective.lambda_discrete and lambda_continuous must be >= 0")
        if self.noise_std <= 0:
            raise ConfigError("objective.noise_std must be > 0")

    @property
    def layout(self):
        from gankit.codes import CodeLayout

        return CodeLayout(tuple(self.categorical), self.continuous, self.binary, self.learned_variance, self.noise_std)


@OBJECTIVES.register("infogan", InfoGANOptions, "InfoGAN: latent codes and a Q head sharing D's body (Chen et al. 2016)")
class InfoGANObjective(StandardObjective):
    """InfoGAN (Chen et al. 2016, eq. 6): min_{G,Q} max_D V(D, G) - lambda L_I(G, Q).

    The last ``layout.dim`` entries of G's input are the codes c, drawn fresh for every batch; Q
    reads D's last features of G's samples and predicts c. The information term L_I (cross-entropy for
    categorical and binary codes, Gaussian log-likelihood for continuous ones) is added to G's loss (through
    its samples) and to D's (which trains Q's head and D's shared body on generated samples).
    """

    def __init__(self, options: InfoGANOptions, G, D, loss, d_optimizer=None):
        super().__init__(options, G, D, loss, d_optimizer)
        from gankit.registry import ConfigError

        self.layout = options.layout
        if getattr(D, "q_outputs", 0) != self.layout.q_dim:
            raise ConfigError(f"objective 'infogan' needs Q's head: model.d_q_outputs={self.layout.q_dim}")
        self.noise_dim = G.latent_dim - self.layout.dim
        if self.noise_dim < 1:
            raise ConfigError(f"model.latent_dim ({G.latent_dim}) must exceed the codes' {self.layout.dim} entries")
        self.codes: torch.Tensor | None = None

    @staticmethod
    def complete_model(model: Any, options: InfoGANOptions) -> Any:
        """Give D a Q head of the size the codes need (checked when set by hand)."""
        from gankit.registry import ConfigError

        need = options.layout.q_dim
        if model.d_q_outputs not in (0, need):
            raise ConfigError(f"model.d_q_outputs is {model.d_q_outputs} but these codes need {need}; leave it at 0")
        if model.latent_dim <= options.layout.dim:
            raise ConfigError(f"model.latent_dim ({model.latent_dim}) must exceed the codes' {options.layout.dim} entries "
                              "(it counts the noise and the codes together)")  # fmt: skip
        if getattr(model, "num_classes", 0):
            raise ConfigError("objective 'infogan' is unsupervised: leave model.num_classes at 0")
        return dataclasses.replace(model, d_q_outputs=need)

    @property
    def wants_features(self) -> bool:
        return True

    def d_step(self, real, z, labels=None):
        self.codes = self.layout.sample(len(z), device=z.device)
        return super().d_step(real, self.layout.join(z, self.codes), labels)

    def extra_d_loss(self, h_real, h_fake, labels, stats):
        o = self.options
        loss, _ = self.layout.information_loss(wide(self.D.q(h_fake)), self.codes, o.lambda_discrete, o.lambda_continuous)
        return loss

    def extra_g_loss(self, h_fake, labels, stats):
        o = self.options
        loss, terms = self.layout.information_loss(wide(self.D.q(h_fake)), self.codes, o.lambda_discrete, o.lambda_continuous)
        stats.update(terms)
        return loss


def build_objective(
    section: dict[str, Any], G: nn.Module, D: nn.Module, loss: Loss, d_optimizer: torch.optim.Optimizer | None = None
):
    """The objective ``section`` names; ``d_optimizer`` is D's optimizer, for objectives that look ahead."""
    entry, options = OBJECTIVES.resolve(section, "objective")
    return entry.factory(options, G, D, loss, d_optimizer)


# Importing the text-to-image objectives registers them (they build on StandardObjective above).
from gankit import text_objectives  # noqa: E402,F401
