import json

import torch
from torch import nn

from gankit.analysis.visualize import GuidedActivation, guided_copy, input_gradients, visualize_channels
from gankit.cli import main
from gankit.networks.dcgan import DCGANDiscriminator


def test_guided_relu_passes_only_positive_gradients_through_positive_inputs():
    x = torch.tensor([-1.0, 2.0, 3.0], requires_grad=True)
    y = GuidedActivation(0.2)(x)
    torch.testing.assert_close(y, torch.tensor([-0.2, 2.0, 3.0]))  # the forward pass is unchanged
    (grad,) = torch.autograd.grad(y, x, torch.tensor([5.0, -4.0, 1.0]))
    assert grad.tolist() == [0.0, 0.0, 1.0]


def test_guided_copy_replaces_every_activation_and_leaves_the_original():
    D = DCGANDiscriminator(16, 1, width=4)
    guided = guided_copy(D)
    assert not any(isinstance(m, (nn.LeakyReLU, nn.ReLU)) for m in guided.modules())
    assert any(isinstance(m, nn.LeakyReLU) for m in D.modules())


def test_guided_maps_have_input_shape_and_differ_from_plain_gradients():
    torch.manual_seed(0)
    D = DCGANDiscriminator(16, 1, width=4).eval()
    images = torch.randint(0, 256, (3, 1, 16, 16), dtype=torch.uint8)
    guided = input_gradients(D, images, channel=1, guided=True)
    plain = input_gradients(D, images, channel=1, guided=False)
    assert guided.shape == plain.shape == (3, 1, 16, 16)
    assert not torch.allclose(guided, plain)
    cells, info = visualize_channels(D, images, channels=[0, 2], top=2)
    assert cells.shape == (8, 16, 16, 1) and set(info["channels"]) == {0, 2}


def test_cli_visualize(tiny_run, tmp_path):
    assert main(["visualize", str(tiny_run), "--pool", "30", "--top", "2", "--out", str(tmp_path / "v")]) == 0
    summary = json.loads((tmp_path / "v" / "visualize.json").read_text())
    assert len(summary["trained"]["channels"]) == 6 and (tmp_path / "v" / "guided-backprop-random.png").is_file()
