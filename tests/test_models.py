import pytest
import torch
from torch import nn

from gankit.networks import MODELS, DataSpec
from gankit.networks.dcgan import RESOLUTIONS, DCGANDiscriminator, DCGANGenerator
from gankit.networks.mlp import Maxout, MLPDiscriminator, MLPGenerator
from gankit.registry import ConfigError


@pytest.mark.parametrize("resolution", RESOLUTIONS)
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes(resolution, channels):
    G = DCGANGenerator(resolution, channels, latent_dim=12, width=8)
    D = DCGANDiscriminator(resolution, channels, width=8)
    z = torch.randn(3, 12)
    x = G(z)
    assert x.shape == (3, channels, resolution, resolution)
    assert x.abs().max() <= 1.0  # Tanh output
    logits = D(x)
    assert logits.shape == (3,)
    assert len(D.features(x)) == len(D.body)


def test_dcgan_follows_paper_rules():
    G = DCGANGenerator(64, 3, latent_dim=100, width=128)
    D = DCGANDiscriminator(64, 3, width=128)
    convs_g = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    # Figure 1 of Radford et al.: 100 -> 4x4x1024 -> 512 -> 256 -> 128 -> 3.
    assert [c.out_channels for c in convs_g] == [1024, 512, 256, 128, 3]
    assert [c.stride[0] for c in convs_g[1:]] == [2, 2, 2, 2]  # fractional-strided convolutions
    layers = list(G.net)
    assert isinstance(layers[-1], nn.Tanh) and isinstance(layers[-2], nn.ConvTranspose2d)  # no BN on G's output
    assert sum(isinstance(m, nn.BatchNorm2d) for m in G.modules()) == 4
    assert all(not isinstance(m, nn.BatchNorm2d) for m in D.body[0])  # no BN on D's input layer
    assert all(isinstance(block[-1], nn.LeakyReLU) and block[-1].negative_slope == 0.2 for block in D.body)
    assert not any(isinstance(m, (nn.Linear, nn.MaxPool2d, nn.AvgPool2d)) for m in [*G.modules(), *D.modules()])
    assert [m.out_channels for m in D.modules() if isinstance(m, nn.Conv2d)] == [128, 256, 512, 1024, 1]


def test_dcgan_init_is_normal_002():
    torch.manual_seed(0)
    G = DCGANGenerator(64, 3, width=64)
    weight = G.net[3].weight
    assert abs(weight.mean().item()) < 1e-3
    assert weight.std().item() == pytest.approx(0.02, rel=0.02)
    bn = G.net[1]
    assert bn.weight.mean().item() == pytest.approx(1.0, abs=0.01)


def test_dcgan_rejects_unsupported_resolution():
    with pytest.raises(ConfigError, match="resolutions 16, 28, 32, 64, 128"):
        DCGANGenerator(48, 1)


def test_family_completion_fills_and_checks_data_shape():
    entry, options = MODELS.resolve({"name": "dcgan"}, "model")
    completed = entry.factory.complete(options, DataSpec("images", (3, 32, 32)))
    assert (completed.resolution, completed.channels) == (32, 3)
    _, options = MODELS.resolve({"name": "dcgan", "resolution": 64}, "model")
    with pytest.raises(ConfigError, match="data.resolution"):
        entry.factory.complete(options, DataSpec("images", (3, 32, 32)))
    with pytest.raises(ConfigError, match="needs image data"):
        entry.factory.complete(options, DataSpec("points", (2,)))


def test_mlp_shapes_images_and_points():
    G = MLPGenerator([1, 28, 28], latent_dim=10, hidden=[32, 32])
    D = MLPDiscriminator([1, 28, 28], hidden=[16, 16], pieces=3)
    x = G(torch.randn(5, 10))
    assert x.shape == (5, 1, 28, 28) and x.abs().max() <= 1
    assert D(x).shape == (5,)
    G2 = MLPGenerator([2], latent_dim=2, hidden=[8], batchnorm=True, output="linear")
    assert G2(torch.randn(4, 2)).shape == (4, 2)
    entry, options = MODELS.resolve({"name": "mlp"}, "model")
    assert entry.factory.complete(options, DataSpec("points", (2,))).output == "linear"
    assert entry.factory.complete(options, DataSpec("images", (1, 8, 8))).output == "tanh"


def test_maxout_takes_max_over_pieces():
    layer = Maxout(2, 1, 3)
    with torch.no_grad():
        layer.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        layer.linear.bias.zero_()
    out = layer(torch.tensor([[2.0, 5.0], [-3.0, -1.0]]))
    assert out.flatten().tolist() == [5.0, 4.0]
