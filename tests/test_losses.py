import math

import pytest
import torch

from gankit.losses import LOSSES, bce_with_logits, build_loss, gradient_penalty
from gankit.registry import ConfigError

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


def test_minimax_and_non_saturating_match_hand_computed_values():
    d_expected = (
        -sum(math.log(sigmoid(r)) for r in REAL.tolist()) / 2 - sum(math.log(1 - sigmoid(f)) for f in FAKE.tolist()) / 2
    )
    minimax = build_loss({"name": "minimax"})
    non_saturating = build_loss({"name": "non-saturating"})
    assert minimax.d_loss(REAL, FAKE).item() == pytest.approx(d_expected, rel=1e-6)
    assert non_saturating.d_loss(REAL, FAKE).item() == pytest.approx(d_expected, rel=1e-6)
    # Goodfellow's G minimizes log(1 - D(G(z))); the non-saturating G minimizes -log D(G(z)).
    assert minimax.g_loss(FAKE).item() == pytest.approx(sum(math.log(1 - sigmoid(f)) for f in FAKE.tolist()) / 2)
    assert non_saturating.g_loss(FAKE).item() == pytest.approx(-sum(math.log(sigmoid(f)) for f in FAKE.tolist()) / 2)


def test_saturation_gradients_differ_when_d_rejects_fakes():
    logits = torch.tensor([-8.0], requires_grad=True)  # D is sure the sample is fake
    (g_minimax,) = torch.autograd.grad(build_loss({"name": "minimax"}).g_loss(logits), logits)
    (g_ns,) = torch.autograd.grad(build_loss({"name": "non-saturating"}).g_loss(logits), logits)
    assert abs(g_minimax.item()) < 1e-3 < abs(g_ns.item())


def test_one_sided_label_smoothing():
    loss = build_loss({"name": "non-saturating", "real_label": 0.9})
    expected = (
        -sum(0.9 * math.log(sigmoid(r)) + 0.1 * math.log(1 - sigmoid(r)) for r in REAL.tolist()) / 2
        - sum(math.log(1 - sigmoid(f)) for f in FAKE.tolist()) / 2
    )
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ConfigError, match="real_label"):
        build_loss({"name": "minimax", "real_label": 0.3})


def test_least_squares_hinge_wasserstein_values():
    ls = build_loss({"name": "least-squares"})
    assert ls.d_loss(REAL, FAKE).item() == pytest.approx(0.5 * ((1 + 4) / 2) + 0.5 * ((0.25 + 9) / 2))
    assert ls.g_loss(FAKE).item() == pytest.approx(0.5 * ((0.25 + 16) / 2))
    hinge = build_loss({"name": "hinge"})
    assert hinge.d_loss(REAL, FAKE).item() == pytest.approx((0 + 2) / 2 + (1.5 + 0) / 2)
    assert hinge.g_loss(FAKE).item() == pytest.approx(1.25)
    wgan = build_loss({"name": "wgan-gp", "gp_weight": 5})
    assert wgan.d_loss(REAL, FAKE).item() == pytest.approx(-1.25 - 0.5)
    assert wgan.gradient_penalty_weight == 5


def test_bce_with_logits_is_stable_for_large_logits():
    assert bce_with_logits(torch.tensor([1000.0]), 1.0).item() == 0.0
    assert bce_with_logits(torch.tensor([-1000.0]), 1.0).item() == pytest.approx(1000.0)


def test_gradient_penalty_of_a_linear_critic():
    w = torch.tensor([3.0, 4.0])  # ||grad|| = 5 everywhere -> penalty (5 - 1)^2
    x = torch.randn(6, 2, requires_grad=True)
    assert gradient_penalty(x @ w, x).item() == pytest.approx(16.0)


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ConfigError, match="valid loss names: hinge, least-squares"):
        build_loss({"name": "vanilla"})
    assert set(LOSSES.names()) == {"minimax", "non-saturating", "least-squares", "wgan-gp", "hinge"}
