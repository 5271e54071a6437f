"""Class-conditional models: the conditional GAN (Mirza & Osindero 2014) and AC-GAN (Odena et al. 2017)."""

import json

import numpy as np
import pytest
import torch
from helpers import tiny_overrides
from PIL import Image

from gankit import load_config, load_generator, train
from gankit.cli import main
from gankit.images import image_grid
from gankit.losses import build_loss
from gankit.networks import MODELS, DataSpec
from gankit.networks.dcgan import DCGANConfig, DCGANDiscriminator, DCGANGenerator
from gankit.networks.mlp import MLPDiscriminator, MLPGenerator
from gankit.variants import build_objective
from gankit.registry import ConfigError

CONDITIONAL = ["model.num_classes=null", "objective.name=conditional"]
ACGAN = ["model.num_classes=null", 'model.d_conditioning="none"', "model.d_aux_classifier=true", "objective.name=acgan"]


def run(tmp_path, tiny_npz, extra, name="r", steps=2):
    base = tiny_overrides(tiny_npz, steps=steps)
    if "model.name=mlp" in extra:
        base = [o for o in base if not o.startswith("model.")]
    return train(load_config(None, base + extra), tmp_path / name, progress=False, log=lambda s: None)


@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_conditional_nets_take_labels_and_the_label_changes_the_output(conditioning):
    torch.manual_seed(0)
    G = DCGANGenerator(16, 1, latent_dim=8, width=8, num_classes=4, init_std=0.3).eval()
    D = DCGANDiscriminator(16, 1, width=8, num_classes=4, conditioning=conditioning).eval()
    z = torch.randn(1, 8).repeat(4, 1)
    labels = torch.arange(4)
    images = G(z, labels)
    assert images.shape == (4, 1, 16, 16)
    assert all((images[0] - images[k]).abs().max() > 1e-3 for k in (1, 2, 3))
    x = torch.randn(1, 1, 16, 16).repeat(4, 1, 1, 1)
    logits = D(x, labels)
    assert logits.shape == (4,) and len(set(logits.tolist())) > 1  # the same image scores differently per label
    with pytest.raises(ValueError, match="pass labels"):
        G(z)
    mlp_G, mlp_D = (
        MLPGenerator([2], latent_dim=3, hidden=[8], num_classes=3),
        MLPDiscriminator([2], hidden=[8], num_classes=3, conditioning=conditioning),
    )
    assert mlp_G(torch.randn(5, 3), torch.arange(5) % 3).shape == (5, 2)
    assert mlp_D(torch.randn(5, 2), torch.arange(5) % 3).shape == (5,)


def test_projection_term_starts_at_the_scale_of_the_plain_logit():
    """With PyTorch's N(0, 1) embedding the projection term was ~40x D's own logit at the start and
    the Fashion-MNIST cGAN drew smudges; drawn at D's init scale it is of the same order."""
    torch.manual_seed(0)
    labels = torch.randint(10, (256,))
    D = DCGANDiscriminator(28, 1, width=64, num_classes=10, conditioning="projection")
    x = torch.rand(256, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        plain = D.head(D.body(x)).flatten()
        projection = D(x, labels) - plain
    assert projection.std() < 5 * plain.std()
    mlp = MLPDiscriminator([1, 28, 28], hidden=[240, 240], num_classes=10, conditioning="projection")
    with torch.no_grad():
        h = mlp.body(x.flatten(1))
        assert (mlp(x, labels) - mlp.head(h).flatten()).std() < 5 * mlp.head(h).std()


def test_the_acgan_variant_adds_its_class_head_to_either_d():
    """The head is the variant's (Objective.d_heads): D builds it, saves it under its name, and knows no AC-GAN."""
    from gankit.variants.acgan import ACGANObjective, ACGANOptions

    heads = ACGANObjective.d_heads(ACGANOptions(), DCGANConfig(num_classes=4))
    D = DCGANDiscriminator(16, 1, width=8, num_classes=4, conditioning="none", heads=heads)
    logits, h = D(torch.randn(6, 1, 16, 16), return_features=True)
    assert logits.shape == (6,) and D.read_head("aux_head", h).shape == (6, 4)
    assert any(k.startswith("aux_head.") for k in D.state_dict())
    mlp = MLPDiscriminator([1, 8, 8], hidden=[16], num_classes=4, conditioning="none", heads=heads)
    assert mlp.read_head("aux_head", mlp(torch.randn(6, 1, 8, 8), return_features=True)[1]).shape == (6, 4)
    with pytest.raises(ValueError, match="no head 'aux_head'"):
        DCGANDiscriminator(16, 1, width=8).read_head("aux_head", h)


def test_num_classes_comes_from_the_data_and_is_checked():
    entry, options = MODELS.resolve({"name": "dcgan", "num_classes": None}, "model")
    assert entry.factory.complete(options, DataSpec("images", (1, 16, 16), 10)).num_classes == 10
    with pytest.raises(ConfigError, match="the data has none"):
        entry.factory.complete(options, DataSpec("images", (1, 16, 16), 0))
    entry, options = MODELS.resolve({"name": "dcgan", "num_classes": None, "d_pack": 2}, "model")
    with pytest.raises(ConfigError, match="d_pack > 1"):
        entry.factory.complete(options, DataSpec("images", (1, 16, 16), 10))


def test_objectives_refuse_an_unconditional_model():
    G, D = DCGANGenerator(16, 1, latent_dim=8, width=8), DCGANDiscriminator(16, 1, width=8)
    for name in ("conditional", "acgan"):
        with pytest.raises(ConfigError, match="needs"):
            build_objective({"name": name}, G, D, build_loss({"name": "non-saturating"}))


@pytest.mark.parametrize(
    "extra",
    [
        CONDITIONAL,
        CONDITIONAL + ["model.d_conditioning=projection"],
        ACGAN,
        CONDITIONAL + ["model.name=mlp", "model.g_hidden=[32]", "model.d_hidden=[16]"],
    ],
)
def test_one_training_run_per_objective(tmp_path, tiny_npz, extra):
    result = run(tmp_path, tiny_npz, extra)
    assert result.step == 2 and result.last_row["images_seen"] == 16
    if "objective.name=acgan" in extra:  # the class head starts near chance on 4 classes: cross-entropy near log 4
        assert abs(result.last_row["class_loss_real"] - np.log(4)) < 0.5
    pipeline = load_generator(result.run_dir)
    assert pipeline.condition.num_classes == 4  # the tiny data's labels are 0..3
    same_z = pipeline.sample(4, seed=1, labels=[0, 1, 2, 3], start=0)
    assert same_z.shape[0] == 4
    one = pipeline.sample(3, seed=1, labels=2)
    np.testing.assert_array_equal(one[0], pipeline.sample(1, seed=1, labels=[2])[0])
    grid = pipeline.class_grid([0, 3], columns=5, seed=0)
    assert grid.shape[0] == 10
    np.testing.assert_array_equal(grid[:5], pipeline.class_grid([0], columns=5, seed=0))  # rows are independent
    with pytest.raises(ValueError, match="labels must be in 0..3"):
        pipeline.sample(2, labels=[0, 4])
    with pytest.raises(ValueError, match="one per sample"):
        pipeline.sample(3, labels=[0, 1])


def test_conditional_resume_is_exact(tmp_path, tiny_npz):
    from helpers import assert_resume_is_exact

    assert_resume_is_exact(tmp_path, tiny_overrides(tiny_npz) + ACGAN)


def test_unconditional_generators_refuse_labels(tiny_run, capsys):
    with pytest.raises(ValueError, match="not class-conditional"):
        load_generator(tiny_run).sample(2, labels=[0, 1])
    assert (
        main(["sample", str(tiny_run), "--labels", "0,1", "--out", "x.png"]) == 2
    )  # a user error: one message, exit code 2
    assert "class-conditional" in capsys.readouterr().err
    # a kind's conveniences are its condition's, lent to the pipeline: another kind says what it is
    pipeline = load_generator(tiny_run)
    with pytest.raises(AttributeError, match="class_grid: this generator is not class-conditional"):
        pipeline.class_grid([0, 1])
    assert not hasattr(pipeline, "traverse") and "class_grid" not in dir(pipeline)


def test_cli_class_grid(tmp_path, tiny_npz, capsys):
    result = run(tmp_path, tiny_npz, CONDITIONAL)
    assert "class_grid" in dir(load_generator(result.run_dir))
    # the generator's flags may come before the run folder (their values are not taken for it)
    assert main(["sample", "--labels", "2", "--n", "3", str(result.run_dir), "--out", str(tmp_path / "two.npz")]) == 0
    two = load_generator(result.run_dir).sample(3, labels=2)
    np.testing.assert_array_equal(np.load(tmp_path / "two.npz")["images"], two)
    # gankit traverse sweeps any input with values: here the class, one column per label
    sweep = tmp_path / "labels.png"
    assert main(["traverse", str(result.run_dir), "--code", "labels", "--rows", "2", "--out", str(sweep)]) == 0
    expected = image_grid(load_generator(result.run_dir).sweep("labels", range(4), rows=2), columns=4)
    np.testing.assert_array_equal(np.asarray(Image.open(sweep)), np.asarray(expected))
    assert main(["traverse", str(result.run_dir), "--code", "cont0", "--out", str(sweep)]) == 2
    assert "has no input cont0" in capsys.readouterr().err
    assert main(["info", str(result.run_dir)]) == 0
    assert json.loads(capsys.readouterr().out)["sample_flags"] == {"--labels": "class"}
    assert main(["sample", str(result.run_dir), "--labels", "all", "--n", "3", "--out", str(tmp_path / "g.npz")]) == 0
    saved = np.load(tmp_path / "g.npz")
    assert saved["images"].shape[0] == 12 and saved["labels"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert "4 labels x 3 samples" in capsys.readouterr().out
    assert (
        main(["sample", str(result.run_dir), "--labels", "7", "--out", str(tmp_path / "g.png")]) == 2
    )  # a user error: one message, exit code 2
    assert "'7' is not a class of this generator: classes are 0..3" in capsys.readouterr().err
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["model"]["num_classes"] == 4 and config["objective"]["name"] == "conditional"


def test_class_names_travel_from_the_data_to_pictures_and_front_ends(tmp_path, capsys):
    """Fashion-MNIST's names: in the export, the explorer's class picker, --labels by name, row labels on grids."""
    from PIL import Image

    overrides = [o for o in tiny_overrides(tmp_path / "unused.npz", steps=2) if not o.startswith("data.")]
    overrides += [
        "data.name=fashion-mnist",
        "data.limit=64",
        "data.resolution=16",
        "objective.name=conditional",
        "model.num_classes=null",
    ]
    run = train(load_config(None, overrides), tmp_path / "run", progress=False, log=lambda s: None).run_dir
    pipeline = load_generator(run)
    assert pipeline.condition.describe()["class_names"][7] == "Sneaker"
    assert pipeline.condition.controls()[0]["options"][9] == "9: Ankle boot"
    assert pipeline.condition.parse_labels("sneaker, 0,BAG") == [7, 0, 8]
    assert main(["sample", str(run), "--labels", "Sneaker,Bag", "--n", "3", "--out", str(tmp_path / "named.png")]) == 0
    assert main(["sample", str(run), "--labels", "7,8", "--n", "3", "--out", str(tmp_path / "plain.npz")]) == 0
    named = Image.open(tmp_path / "named.png")
    assert named.width > 3 * 48 + 20  # three 48 px cells and a margin holding the row names
    margin = np.asarray(named.convert("L"))[:, :20]
    assert margin.min() < 128  # the names are drawn there
    assert main(["sample", str(run), "--labels", "Sneakers", "--out", str(tmp_path / "x.png")]) == 2
    assert "or their names (T-shirt/top, Trouser" in capsys.readouterr().err
