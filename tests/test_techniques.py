"""Stability techniques: each layer or loss on tiny inputs, and a training run with it switched on."""

import dataclasses
import copy
import json
import shutil

import pytest
import torch
from helpers import assert_resume_is_exact, tiny_overrides
from torch import nn

from gankit import load_config, train
from gankit.files import read_tensors
from gankit.formats import FORMAT_CHECKPOINT, list_checkpoints
from gankit.losses import build_loss, r1_penalty
from gankit.networks import MinibatchStd, apply_spectral_norm
from gankit.networks.dcgan import DCGANDiscriminator
from gankit.networks.mlp import MLPDiscriminator
from gankit.variants import StepContext
from gankit.variants.standard import StandardObjective, StandardOptions
from gankit.registry import ConfigError


def test_spectral_norm_makes_the_top_singular_value_one():
    torch.manual_seed(0)
    layer = apply_spectral_norm(nn.Sequential(nn.Linear(20, 30)))[0]
    with torch.no_grad():
        layer.parametrizations.weight.original.mul_(7.0)
    layer.train()
    for _ in range(30):  # each training-mode forward runs one power iteration
        layer(torch.randn(4, 20))
    assert torch.linalg.matrix_norm(layer.weight, ord=2).item() == pytest.approx(1.0, abs=0.02)


def test_minibatch_std_feature():
    layer = MinibatchStd(group_size=4)
    x = torch.randn(8, 3, 5, 5)
    out = layer(x)
    assert out.shape == (8, 4, 5, 5)
    groups = x.view(4, 2, 3, 5, 5)  # sample i is in group i % 2
    expected = (groups.var(dim=0, unbiased=False) + 1e-8).sqrt().flatten(1).mean(dim=1)
    torch.testing.assert_close(out[:, 3, 0, 0], expected.repeat(4))
    same = layer(torch.ones(8, 3, 5, 5))[:, 3]
    assert same.max() < 1e-3  # a collapsed batch has no spread
    assert layer(torch.randn(6, 10)).shape == (6, 11)  # 6 is not a multiple of 4: groups of 3


def test_discriminator_options_keep_shapes():
    D = DCGANDiscriminator(16, 1, width=8, spectral_norm=True, minibatch_std=4)
    assert D(torch.randn(8, 1, 16, 16)).shape == (8,)
    assert any("parametrizations" in name for name, _ in D.named_parameters())


def test_r1_penalty_of_a_linear_critic():
    w = torch.tensor([1.0, -2.0, 2.0])  # grad_x (w . x) = w, ||w||^2 = 9
    x = torch.randn(5, 3, requires_grad=True)
    assert r1_penalty(x @ w, x).item() == pytest.approx(9.0)


def test_instance_noise_anneals_linearly_to_zero():
    options = StandardOptions(instance_noise=0.2, instance_noise_anneal_steps=10)
    objective = StandardObjective(options, nn.Identity(), nn.Identity(), build_loss({"name": "hinge"}))
    stds = []
    for step in (0, 5, 10, 20):
        objective.begin_step(step)
        stds.append(objective.noise_std)
    assert stds == pytest.approx([0.2, 0.1, 0.0, 0.0])
    with pytest.raises(ConfigError, match="must be >= 0"):
        StandardOptions(r1_weight=-1)


@pytest.mark.parametrize("model", ["dcgan", "mlp"])
def test_every_technique_trains_and_resumes_exactly(tmp_path, tiny_npz, model):
    extra = [
        f"model.name={model}",
        "model.d_spectral_norm=true",
        "model.d_minibatch_std=4",
        "objective.r1_weight=1.0",
        "objective.instance_noise=0.1",
        "objective.instance_noise_anneal_steps=4",
    ]
    if model == "mlp":
        extra += ["model.g_hidden=[32]", "model.d_hidden=[16]", "model.latent_dim=8"]
    base = [o for o in tiny_overrides(tiny_npz) if not o.startswith("model.") or model == "dcgan"] + extra
    assert_resume_is_exact(tmp_path, base)
    rows = [json.loads(line) for line in (tmp_path / "straight" / "train_log.jsonl").read_text().splitlines()]
    assert "r1" in rows[0] and rows[0]["instance_noise"] > 0


def test_lr_decay_falls_linearly_over_the_last_fraction_of_the_steps():
    from gankit.training.game import lr_scale

    assert [lr_scale(s, 8, 0.5) for s in range(8)] == pytest.approx([1, 1, 1, 1, 1, 0.75, 0.5, 0.25])
    assert [lr_scale(s, 4, 1.0) for s in range(4)] == pytest.approx([1, 0.75, 0.5, 0.25])
    assert [lr_scale(s, 4, 0.0) for s in range(4)] == [1, 1, 1, 1]
    for bad in (-0.1, 1.5):
        with pytest.raises(ConfigError, match="train.lr_decay must be in"):
            load_config(None, [f"train.lr_decay={bad}"])


def test_lr_decay_trains_at_the_decayed_rates_and_resumes_exactly(tmp_path, tiny_npz):
    quiet = {"progress": False, "log": lambda s: None}
    config = load_config(None, tiny_overrides(tiny_npz, lr_g=0.001, lr_d=0.0005) + ["train.lr_decay=0.75"])
    train(config, tmp_path / "straight", **quiet)
    rows = [json.loads(line) for line in (tmp_path / "straight" / "train_log.jsonl").read_text().splitlines()]
    # steps 0..3 of 4 run at 1, 1, 2/3, 1/3 of the rates; the rows (every 2 steps) show the last step's
    assert [r["step"] for r in rows] == [2, 4]
    assert [v for r in rows for v in (r["lr_g"], r["lr_d"])] == pytest.approx([1e-3, 5e-4, 1e-3 / 3, 5e-4 / 3])
    # a run stopped at step 2 (its step-4 checkpoint lost) resumes at the rates of the uninterrupted one
    shutil.copytree(tmp_path / "straight", tmp_path / "split")
    list_checkpoints(tmp_path / "split" / "checkpoints")[-1][1].unlink()
    assert train(config, tmp_path / "split", resume=True, **quiet).step == 4
    last = {
        name: read_tensors(list_checkpoints(tmp_path / name / "checkpoints")[-1][1], FORMAT_CHECKPOINT)[0]
        for name in ("straight", "split")
    }
    assert all(torch.equal(last["straight"][k], last["split"][k]) for k in last["straight"])
    constant = load_config(None, tiny_overrides(tiny_npz, lr_g=0.001, lr_d=0.0005))
    train(constant, tmp_path / "constant", **quiet)
    same = read_tensors(list_checkpoints(tmp_path / "constant" / "checkpoints")[-1][1], FORMAT_CHECKPOINT)[0]
    assert not torch.equal(last["straight"]["G.net.0.weight"], same["G.net.0.weight"])  # the decay took effect
    assert "lr_g" not in (tmp_path / "constant" / "train_log.jsonl").read_text()


def test_minibatch_std_group_size_is_checked():
    with pytest.raises(ConfigError, match="group size of at least 2"):
        from gankit.networks import MODELS, DataSpec

        entry, options = MODELS.resolve({"name": "dcgan", "d_minibatch_std": 1}, "model")
        entry.factory.complete(options, DataSpec("images", (1, 16, 16)))


def test_packing_groups_consecutive_samples():
    objective = StandardObjective(
        StandardOptions(),
        nn.Identity(),
        DCGANDiscriminator(16, 1, width=4, pack=2),
        build_loss({"name": "non-saturating"}),
    )
    x = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 16, 16)
    packed = objective.packed(x)
    assert packed.shape == (2, 2, 16, 16) and packed[1, :, 0, 0].tolist() == [2.0, 3.0]
    assert objective.D(packed).shape == (2,)
    with pytest.raises(ConfigError, match="multiple of model.d_pack"):
        objective.packed(x[:3])
    points = StandardObjective(StandardOptions(), nn.Identity(), nn.Identity(), build_loss({"name": "hinge"}))
    points.pack = 4
    assert points.packed(torch.randn(8, 2)).shape == (2, 8)


def test_feature_matching_loss_is_zero_when_fake_features_match():
    torch.manual_seed(0)
    D = DCGANDiscriminator(16, 1, width=4)
    objective = StandardObjective(
        StandardOptions(feature_matching=True), nn.Identity(), D, build_loss({"name": "non-saturating"})
    )
    x = torch.randn(6, 1, 16, 16)
    D.eval()  # BatchNorm with running statistics: the same input gives the same features
    ctx = StepContext(x, x)
    objective.d_step(ctx)  # G is the identity, so the "fake" batch is the real one
    assert objective.g_step(dataclasses.replace(ctx, fake=x.clone().requires_grad_(True))).loss.item() == pytest.approx(
        0.0, abs=1e-10
    )
    assert objective.g_step(dataclasses.replace(ctx, fake=x + 1)).loss.item() > 0


@pytest.mark.parametrize(
    "extra", [["model.d_pack=2"], ["objective.feature_matching=true"], ["model.d_pack=4", "loss.name=wgan-gp"]]
)
def test_packing_and_feature_matching_train(tmp_path, tiny_npz, extra):
    result = train(
        load_config(None, tiny_overrides(tiny_npz, steps=2) + extra), tmp_path / "r", progress=False, log=lambda s: None
    )
    tensors = read_tensors(list_checkpoints(tmp_path / "r" / "checkpoints")[-1][1], FORMAT_CHECKPOINT)[0]
    pack = int(next((e.split("=")[1] for e in extra if e.startswith("model.d_pack")), 1))
    assert tensors["D.body.0.0.weight"].shape[1] == pack  # D's first layer reads `pack` stacked images
    assert ("gp" in result.last_row) == ("loss.name=wgan-gp" in extra)


def test_diffaugment_transforms_are_differentiable_and_shaped():
    from gankit.augment import cutout, diff_augment, parse_policy, translate

    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    y = diff_augment(x, parse_policy("color,translation,cutout"), torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert grad.abs().sum() > 0
    ones = torch.ones(2, 1, 8, 8)
    assert (cutout(ones, torch.Generator().manual_seed(1)) == 0).sum(dim=(1, 2, 3)).tolist() == [16, 16]
    shifted = translate(torch.arange(4.0).view(1, 1, 2, 2), 1, fill=-9.0, generator=torch.Generator().manual_seed(3))
    values = shifted.flatten().tolist()
    assert set(values) - {-9.0} <= {0.0, 1.0, 2.0, 3.0} and values.count(-9.0) in (0, 2, 3)  # a shift with fill
    with pytest.raises(ConfigError, match="policies: color, translation, cutout"):
        parse_policy("color,rotate")


def test_diffaugment_trains(tmp_path, tiny_npz):
    overrides = tiny_overrides(tiny_npz, steps=2) + ["objective.diffaugment=color,translation,cutout"]
    result = train(load_config(None, overrides), tmp_path / "r", progress=False, log=lambda s: None)
    plain = train(
        load_config(None, tiny_overrides(tiny_npz, steps=2)), tmp_path / "p", progress=False, log=lambda s: None
    )
    assert result.last_row["D(x)"] != plain.last_row["D(x)"]  # D saw augmented real images


def _unrolled_setup(second_order: bool, steps: int = 3):
    torch.manual_seed(0)
    D = MLPDiscriminator([2], hidden=[16, 16], activation="leaky_relu", dropout=0.0).double()
    optimizer = torch.optim.Adam(D.parameters(), lr=0.05, betas=(0.5, 0.9))
    loss = build_loss({"name": "non-saturating"})
    real, fake = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    for _ in range(2):  # give the optimizer moments and a step count to carry on from
        optimizer.zero_grad()
        loss.d_loss(D(real), D(fake)).backward()
        optimizer.step()
    options = StandardOptions(unrolled_steps=steps, unrolled_second_order=second_order)
    return StandardObjective(options, nn.Identity(), D, loss, optimizer), real, fake


def test_unrolled_lookahead_matches_real_adam_steps_and_leaves_d_alone():
    objective, real, fake = _unrolled_setup(second_order=False)
    D, before = objective.D, {k: v.clone() for k, v in objective.D.state_dict().items()}
    weights = objective.lookahead_weights(real, fake)
    for key, value in D.state_dict().items():
        assert torch.equal(value, before[key]), f"look-ahead changed D's {key}"
    twin = copy.deepcopy(D)
    twin_optimizer = torch.optim.Adam(twin.parameters(), lr=0.05, betas=(0.5, 0.9))
    twin_optimizer.load_state_dict(objective.d_optimizer.state_dict())
    for _ in range(3):
        twin_optimizer.zero_grad()
        objective.loss.d_loss(twin(real), twin(fake)).backward()
        twin_optimizer.step()
    for name, p in twin.named_parameters():
        torch.testing.assert_close(weights[name], p.detach(), rtol=1e-9, atol=1e-12)
    assert not torch.allclose(weights["head.weight"], D.head.weight)


def test_unrolled_second_order_gradient_is_the_true_gradient():
    objective, real, fake = _unrolled_setup(second_order=True)
    ctx = StepContext(real, fake)  # the look-ahead uses the step's real batch (G is the identity)
    objective.d_step(ctx)

    def g_loss(points):
        return objective.g_step(dataclasses.replace(ctx, fake=points)).loss

    torch.autograd.gradcheck(g_loss, (fake.clone().requires_grad_(True),), eps=1e-6, atol=1e-6)
    first = _unrolled_setup(second_order=False)[0]
    first.d_step(ctx)
    x = fake.clone().requires_grad_(True)
    full = torch.autograd.grad(g_loss(x), x)[0]
    partial = torch.autograd.grad(first.g_step(dataclasses.replace(ctx, fake=x)).loss, x)[0]
    assert not torch.allclose(full, partial, atol=1e-6)  # the second term is there and matters


def test_unrolled_options_are_checked():
    with pytest.raises(ConfigError, match="two different G losses"):
        StandardOptions(unrolled_steps=2, feature_matching=True)
    with pytest.raises(TypeError, match="needs D's Adam optimizer"):
        StandardObjective(
            StandardOptions(unrolled_steps=2), nn.Identity(), nn.Identity(), build_loss({"name": "hinge"})
        )


@pytest.mark.parametrize("second_order", ["true", "false"])
def test_unrolled_trains_and_resumes_exactly(tmp_path, tiny_npz, second_order):
    base = tiny_overrides(tiny_npz) + ["objective.unrolled_steps=2", f"objective.unrolled_second_order={second_order}"]
    assert_resume_is_exact(tmp_path, base)
