"""The standard FID Inception-v3 written in gankit (issue 22): its shapes, and its weight-file loader on files
gankit writes itself (the real weights cannot be downloaded here)."""

import pytest
import torch
from safetensors.torch import save_file

from gankit.errors import CheckpointError
from gankit.metrics.extractors import build_extractor
from gankit.networks.inception import FIDInceptionV3, load_fid_inception


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    net = FIDInceptionV3().eval()
    path = tmp_path_factory.mktemp("inception") / "inception.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path, net


def test_the_fid_inception_has_the_standard_shapes(weights):
    _, net = weights
    # torchvision's inception_v3 without its auxiliary head has 23,834,568 parameters with a 1000-way fc; this fc is
    # 1008-way
    assert sum(p.numel() for p in net.parameters()) == 23_834_568 + 8 * 2049
    assert net.state_dict()["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)
    with torch.no_grad():
        features, logits = net(torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8))
    assert features.shape == (2, 2048) and logits.shape == (2, 1008) and bool((features >= 0).all())


def test_the_loader_reads_checked_files_with_or_without_batchnorm_counters(weights, tmp_path):
    path, net = weights
    loaded = load_fid_inception(path)
    x = torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(loaded(x)[0], net(x)[0])
    state = {k: v.contiguous() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    save_file(state, str(tmp_path / "no-counters.safetensors"))
    load_fid_inception(tmp_path / "no-counters.safetensors")
    save_file({**state, "fc.weight": torch.zeros(1000, 2048)}, str(tmp_path / "wrong.safetensors"))
    with pytest.raises(CheckpointError, match="fc.weight has shape"):
        load_fid_inception(tmp_path / "wrong.safetensors")
    save_file({k: v for k, v in state.items() if not k.startswith("Mixed_7c")}, str(tmp_path / "short.safetensors"))
    with pytest.raises(CheckpointError, match="missing"):
        load_fid_inception(tmp_path / "short.safetensors")
    with pytest.raises(CheckpointError, match="not a .safetensors file"):
        load_fid_inception(tmp_path / "pt_inception.pth")


def test_the_inception_extractor_uses_gankits_network_with_a_weights_file(weights):
    path, _ = weights
    extractor = build_extractor({"name": "inception", "weights": str(path), "batch_size": 2})
    features = extractor(torch.randint(0, 256, (3, 1, 16, 16), dtype=torch.uint8))
    assert features.features.shape == (3, 2048) and features.logits.shape == (3, 1008)
    assert (
        extractor.card["weights"].startswith("gankit's FID Inception-v3")
        and len(extractor.card["weights_sha256"]) == 64
    )
