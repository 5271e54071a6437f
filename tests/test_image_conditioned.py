"""Image-conditioned GANs (issue 20): pix2pix's U-Net and PatchGAN, SRGAN's SRResNet and D, their losses, the
paired data contract and its loaders, make-pairs, training and exact resume, translate / upscale, PSNR / SSIM."""

import json
import math

import numpy as np
import pytest
import torch
from helpers import SR, assert_resume_is_exact, tiny_overrides
from PIL import Image
from torch import nn

from gankit import load_config, train
from gankit.data import DataError, load_dataset
from gankit.data.pairs import edge_map, make_pairs, masked_centre
from gankit.errors import ConfigError
from gankit.inference import load_generator
from gankit.losses import build_loss
from gankit.metrics.scores import psnr, ssim
from gankit.networks.pix2pix import PATCHES, PatchDiscriminator, UNetGenerator, patch_layers, receptive_field
from gankit.networks.srgan import SRGANDiscriminator, SRResNetGenerator, subpixel_upsample
from gankit.variants import StepContext
from gankit.variants.pix2pix import ImageValues, Pix2PixObjective, Pix2PixOptions
from gankit.variants.srgan import downsample


def quiet(message):
    pass


@pytest.fixture
def pairs_npz(tmp_path):
    """40 random 32 px pairs (1-channel sources, 3-channel targets) with labels, in the make-pairs layout."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "pairs"
    folder.mkdir()
    for split, n in (("train", 32), ("test", 8)):
        np.savez(
            folder / f"{split}.npz",
            sources=rng.integers(0, 256, (n, 32, 32), dtype=np.uint8),
            targets=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
            labels=rng.integers(0, 3, n),
        )
    return folder


def pix2pix_overrides(folder, steps=4, **extra):
    values = {
        "data.name": "pairs",
        "data.path": str(folder),
        "model.name": "pix2pix",
        "model.g_width": 4,
        "model.d_width": 4,
        "objective.name": "pix2pix",
        "train.steps": steps,
        "train.batch_size": 4,
        "train.log_every": 2,
        "train.sample_every": 2,
        "train.checkpoint_every": 2,
        "train.tensorboard": False,
        **extra,
    }
    return [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in values.items()]


def sr_overrides(tiny_npz, steps=4, *extra):
    base = [o for o in tiny_overrides(tiny_npz, steps) if not o.startswith("model.")]
    return base + SR + list(extra)


# ------------------------------------------------------------------------------------------ networks


@pytest.mark.parametrize("resolution", [32, 64, 128, 256])
def test_unet_maps_an_image_to_an_image_at_every_resolution(resolution):
    G = UNetGenerator(resolution, 3, 1, width=2, max_channels=8)
    out = G(torch.empty(2, 0), torch.randn(2, 1, resolution, resolution))
    assert out.shape == (2, 3, resolution, resolution) and out.abs().max() <= 1
    assert len(G.down) == int(math.log2(resolution))


def test_unet_skips_carry_the_input_past_the_bottleneck():
    """With the 1 x 1 bottleneck zeroed, the output still follows the input: the skips wire each encoder
    layer to the decoder layer of its size."""
    G = UNetGenerator(32, 1, 1, width=4, dropout=0.0).eval()
    G.down[-1].register_forward_hook(lambda module, args, out: torch.zeros_like(out))
    x = torch.randn(2, 1, 32, 32)
    a, b = G(torch.empty(2, 0), x), G(torch.empty(2, 0), x.flip(-1))
    assert not torch.allclose(a, b)
    widths = [
        block[-1].num_features if isinstance(block[-1], nn.BatchNorm2d) else block[-1].out_channels for block in G.down
    ]
    assert [G.up[i][1].in_channels for i in range(len(G.up))] == [2 * w for w in widths[:-1]] + [widths[-1]]


def test_sampling_turns_dropout_off_unless_asked():
    x = torch.randn(2, 1, 32, 32)
    plain = UNetGenerator(32, 1, 1, width=4).eval()
    assert torch.equal(plain(torch.empty(2, 0), x), plain(torch.empty(2, 0), x))
    noisy = UNetGenerator(32, 1, 1, width=4, sample_dropout=True).eval()
    assert not torch.equal(noisy(torch.empty(2, 0), x), noisy(torch.empty(2, 0), x))


@pytest.mark.parametrize("patch", ["pixel", *PATCHES])
def test_patchgan_receptive_field_is_the_stated_one(patch):
    D = PatchDiscriminator(1, 1, patch_layers(patch, 256), width=2)
    assert receptive_field(D) == (1 if patch == "pixel" else int(patch))


def test_patchgan_logit_sees_exactly_its_patch():
    """The gradient of one 16 x 16 PatchGAN logit with respect to the input is non-zero in a 16 x 16 window."""
    D = PatchDiscriminator(1, 1, patch_layers("16", 64), width=2).eval()  # BatchNorm in eval mode: a local map
    x = torch.randn(1, 1, 64, 64, requires_grad=True)
    logits = D(x, torch.zeros(1, 1, 64, 64)).view(1, 30, 30)  # 64 / 2 - 2
    (grad,) = torch.autograd.grad(logits[0, 10, 10], x)
    rows, columns = grad[0, 0].abs().sum(1).nonzero(), grad[0, 0].abs().sum(0).nonzero()
    assert int(rows.max() - rows.min()) + 1 <= 16 and int(columns.max() - columns.min()) + 1 <= 16
    assert int(rows.max() - rows.min()) + 1 >= 14  # the window, not a point (its border weights can vanish)


def test_image_patch_grows_with_the_resolution_and_too_large_patches_are_refused(pairs_npz, tmp_path):
    assert patch_layers("image", 32) == 2 and patch_layers("image", 256) == 5
    with pytest.raises(ConfigError, match="the largest patch at this size is 70"):
        train(
            load_config(None, pix2pix_overrides(pairs_npz, 1, **{"model.d_patch": "142"})),
            tmp_path / "r",
            progress=False,
            log=quiet,
        )


def test_pixel_shuffle_upsampling_is_exact_on_a_hand_made_input():
    block = subpixel_upsample(2)
    conv = block[0]
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        for c in range(2):
            for k in range(4):  # output channel c * 4 + k holds (k + 1) x input channel c
                conv.weight[c * 4 + k, c, 1, 1] = k + 1
    x = torch.stack([torch.full((3, 3), 1.0), torch.full((3, 3), 10.0)])[None]
    out = block(x)
    assert out.shape == (1, 2, 6, 6)
    assert out[0, 0, :2, :2].tolist() == [[1.0, 2.0], [3.0, 4.0]] and out[0, 1, 4:, 4:].tolist() == [
        [10.0, 20.0],
        [30.0, 40.0],
    ]


def test_srresnet_and_its_d_shapes():
    for scale in (2, 4, 8):
        G = SRResNetGenerator(3, scale, width=4, blocks=1)
        assert G(torch.empty(2, 0), torch.randn(2, 3, 8, 8)).shape == (2, 3, 8 * scale, 8 * scale)
    assert SRGANDiscriminator(1, 28, width=2, dense=8)(torch.randn(3, 1, 28, 28)).shape == (3,)


# ------------------------------------------------------------------------------------------ losses


class ConstantD(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value
        self.weight = nn.Parameter(torch.zeros(()))

    def forward(self, x, source=None):
        return torch.full((len(x), 4), self.value) + 0 * self.weight


def test_pix2pix_losses_on_hand_made_values():
    """D's logits 0 everywhere: non-saturating D loss 2 log 2, halved; G loss log 2 + 100 x mean |y - G(x)|."""
    G = UNetGenerator(32, 1, 1, width=2)
    objective = Pix2PixObjective(Pix2PixOptions(), G, ConstantD(0.0), build_loss({"name": "non-saturating"}))
    real, source = torch.zeros(2, 1, 32, 32), torch.zeros(2, 1, 32, 32)
    ctx = StepContext(real, torch.empty(2, 0), ImageValues(source))
    d = objective.d_step(ctx)
    assert float(d.loss.detach()) == pytest.approx(math.log(2))  # 0.5 x (log 2 + log 2)
    g = objective.g_step(ctx)
    l1 = float(ctx.fake.detach().abs().mean())
    assert float(g.loss.detach()) == pytest.approx(math.log(2) + 100 * l1, rel=1e-5)
    assert float(g.stats["g_loss_l1"]) == pytest.approx(l1)
    alone = Pix2PixObjective(Pix2PixOptions(gan_weight=0.0), G, ConstantD(0.0), build_loss({"name": "non-saturating"}))
    ctx = StepContext(real, torch.empty(2, 0), ImageValues(source))
    alone.d_step(ctx)
    assert float(alone.g_step(ctx).loss.detach()) == pytest.approx(
        100 * float(ctx.fake.detach().abs().mean()), rel=1e-5
    )


def test_srgan_content_losses_and_the_downsampling_kernel(tiny_npz, tmp_path):
    flat = torch.full((2, 1, 16, 16), 0.5)
    assert torch.allclose(downsample(flat, 2), torch.full((2, 1, 8, 8), round(1.5 * 127.5) / 127.5 - 1))
    config = load_config(None, sr_overrides(tiny_npz, 1, "objective.content=pixel"))
    run = train(config, tmp_path / "pixel", progress=False, log=quiet)
    assert run.last_row["g_loss_content"] > 0
    from gankit.networks.classifier import load_evaluator
    from gankit.variants.srgan import SRGANObjective, SRGANOptions

    G = SRResNetGenerator(1, 2, width=4, blocks=1, resolution=28)
    objective = SRGANObjective(SRGANOptions(), G, ConstantD(0.0), build_loss({"name": "non-saturating"}))
    fake, real = torch.rand(2, 1, 28, 28) * 2 - 1, torch.rand(2, 1, 28, 28) * 2 - 1
    maps = load_evaluator("fashion-mnist").net.body[:-2]
    expected = ((maps(fake) / 12.75 - maps(real) / 12.75) ** 2).mean()
    assert float(objective.reconstruction(fake, real).detach()) == pytest.approx(float(expected), rel=1e-5)


def test_srgan_starts_from_srresnet_for_its_pretrain_steps(tiny_npz, tmp_path):
    """objective.pretrain_steps=K: the run's first K steps are exactly SRResNet-MSE's (G on the pixel MSE, D not
    trained), and the perceptual + adversarial loss trains both nets from step K on."""
    from gankit.inference import load_discriminator

    def nets(name, *extra):
        config = load_config(None, sr_overrides(tiny_npz, 4, "train.ema_decay=0", *extra))
        run = train(config, tmp_path / name, progress=False, log=quiet)
        G = load_generator(run.run_dir, ema=False).G.state_dict()
        D = load_discriminator(run.run_dir)[0]  # its weights (SRResNet's D runs, so its BatchNorm statistics move)
        return G, dict(D.named_parameters()), run.last_row

    srresnet = nets("srresnet", "objective.content=pixel", "objective.adversarial_weight=0")
    pretrained = nets("pretrained", "objective.pretrain_steps=4")
    started = nets("started", "objective.pretrain_steps=2")

    def same(a, b):
        return all(torch.equal(a[k], b[k]) for k in a)

    assert same(pretrained[0], srresnet[0]) and same(pretrained[1], srresnet[1])
    assert pretrained[2]["g_loss"] == pytest.approx(pretrained[2]["g_loss_pixel_mse"])
    assert not same(started[0], srresnet[0]) and not same(started[1], srresnet[1])
    assert started[2]["g_loss_content"] > 0 and "g_loss_adversarial" in started[2]
    with pytest.raises(ConfigError, match="pretrain_steps"):
        load_config(None, sr_overrides(tiny_npz, 4, "objective.pretrain_steps=-1"))


def test_psnr_and_ssim_on_hand_made_images():
    a = np.full((2, 12, 12, 1), 100, np.uint8)
    b = a + 10
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))
    assert psnr(a, a) == 100.0 and ssim(a, a) == pytest.approx(1.0)
    c1 = (0.01 * 255) ** 2  # constant images: SSIM = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1)
    assert ssim(a, b) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1))
    with pytest.raises(ValueError, match="leaves nothing"):
        psnr(a, b, border=6)


# ------------------------------------------------------------------------------------------ data


def write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def test_the_three_paired_layouts_read_the_same_pairs(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    for i in range(3):
        write(tmp_path / "aligned" / "train" / f"{i}.png", np.concatenate([a[i], b[i]], axis=1))
        write(tmp_path / "folders" / "A" / f"{i}.png", a[i])
        write(tmp_path / "folders" / "B" / f"{i}.png", b[i])
    np.savez(tmp_path / "pairs.npz", sources=a, targets=b)
    sets = [
        load_dataset({"name": "pairs", "path": str(tmp_path / name), "resolution": 32, "channels": 3})
        for name in ("aligned", "folders", "pairs.npz")
    ]
    for data in sets:
        assert torch.equal(data.sources, torch.from_numpy(a).permute(0, 3, 1, 2))
        assert torch.equal(data.x, torch.from_numpy(b).permute(0, 3, 1, 2))
        assert data.spec.source_shape == (3, 32, 32)
    swapped = load_dataset(
        {"name": "pairs", "path": str(tmp_path / "aligned"), "resolution": 32, "channels": 3, "direction": "BtoA"}
    )
    assert torch.equal(swapped.sources, sets[0].x) and torch.equal(swapped.x, sets[0].sources)
    gray = load_dataset(
        {"name": "pairs", "path": str(tmp_path / "folders"), "resolution": 16, "channels": 1, "source_channels": 1}
    )
    assert gray.x.shape == (3, 1, 16, 16) and gray.sources.shape == (3, 1, 16, 16)


def test_paired_data_errors_name_the_problem(tmp_path):
    write(tmp_path / "f" / "A" / "x.png", np.zeros((8, 8), np.uint8))
    write(tmp_path / "f" / "B" / "y.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match="same file names; 2 do not pair up"):
        load_dataset({"name": "pairs", "path": str(tmp_path / "f"), "resolution": 8})
    write(tmp_path / "a" / "wide.png", np.zeros((8, 12), np.uint8))
    with pytest.raises(DataError, match="width = 2 x height"):
        load_dataset({"name": "pairs", "path": str(tmp_path / "a"), "resolution": 8, "layout": "aligned"})
    with pytest.raises(ConfigError, match="need data.resolution"):
        load_dataset({"name": "pairs", "path": str(tmp_path / "a"), "layout": "aligned"})
    np.savez(tmp_path / "bad.npz", sources=np.zeros((3, 8, 8), np.uint8), targets=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(DataError, match="3 sources but 2 targets"):
        load_dataset({"name": "pairs", "path": str(tmp_path / "bad.npz")})
    np.savez(tmp_path / "none.npz", images=np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(DataError, match="no 'sources', 'targets' array"):
        load_dataset({"name": "pairs", "path": str(tmp_path / "none.npz")})


@pytest.mark.parametrize(
    "info, message",
    [
        ('{"classes": 5}', "class names must be a list of strings"),
        ('{"classes": [1, 2]}', "class names must be a list of strings"),
        ("[1, 2]", "expected a JSON object"),
        ("{not json", "info.json: not valid JSON"),
    ],
)
def test_a_damaged_info_json_of_paired_data_names_the_file(tmp_path, info, message):
    """The audit: these gave internal errors (TypeError / AttributeError), or a message naming no file."""
    folder = tmp_path / "pairs"
    folder.mkdir()
    np.savez(
        folder / "train.npz",
        sources=np.zeros((3, 8, 8), np.uint8),
        targets=np.zeros((3, 8, 8), np.uint8),
        labels=np.arange(3),
    )
    (folder / "info.json").write_text(info)
    with pytest.raises(DataError, match=message):
        load_dataset({"name": "pairs", "path": str(folder)})


def test_make_pairs_builds_each_task(tmp_path):
    square = np.zeros((1, 1, 12, 12), np.uint8)
    square[..., 2:10, 2:10] = 255
    edges = edge_map(torch.from_numpy(square))[0, 0]
    assert edges[6, 6] == 255 and edges[0, 0] == 255 and edges[2, 6] == 0  # dark on the square's outline only
    masked = masked_centre(torch.from_numpy(square))[0, 0]
    assert masked[6, 6] == 127 and masked[2, 2] == 255 and masked[0, 0] == 0
    for task in ("edges", "colorize"):
        info = make_pairs(task, tmp_path / task, resolution=32, train=6, test=3, progress=quiet)
        data = load_dataset({"name": "pairs", "path": str(tmp_path / task)})
        assert info["counts"] == {"train": 6, "test": 3} and len(data) == 6 and data.num_classes == 10
        assert data.sources.shape[1] == 1 and data.x.shape[1] == (3 if task == "colorize" else 1)
        with np.load(tmp_path / task / "train.npz") as written:  # channels last, as every .npz gankit writes
            assert written["sources"].shape == (6, 32, 32, 1)
            assert written["targets"].shape == (6, 32, 32, 3 if task == "colorize" else 1)
    with pytest.raises(ConfigError, match="edges, inpaint, colorize"):
        make_pairs("deblur", tmp_path / "x")


# ------------------------------------------------------------------------------------------ training, sampling


def test_pix2pix_trains_samples_triplets_and_translates(pairs_npz, tmp_path):
    run = train(load_config(None, pix2pix_overrides(pairs_npz, 2)), tmp_path / "run", progress=False, log=quiet)
    assert run.last_row["g_loss_l1"] > 0 and np.isfinite(run.last_row["d_loss"])
    grid = np.asarray(Image.open(run.samples_path))
    assert grid.shape[1] < grid.shape[0]  # 8 rows of input | output | target
    pipeline = load_generator(run.run_dir)
    assert pipeline.condition.summary() == "an image-to-image generator (1x32x32 inputs)"
    test = load_dataset({"name": "pairs", "path": str(pairs_npz), "split": "test"})
    out = pipeline.translate(test.sources[:3].numpy())
    assert out.shape == (3, 32, 32, 3) and out.dtype == np.uint8
    assert np.array_equal(out, pipeline.translate(test.sources[:3].numpy()))  # eval mode: deterministic
    with pytest.raises(ValueError, match="must be 32x32 pixels"):
        pipeline.translate(np.zeros((1, 16, 16), np.uint8))
    with pytest.raises(ValueError, match="pass images="):
        pipeline.sample(2)


def test_pix2pix_evaluates_during_training_on_the_training_inputs_and_keeps_its_best(pairs_npz, tmp_path):
    """train.eval_every on an image-to-image G: each evaluation translates the training pairs' inputs, scores the
    outputs against the training targets (raw pixels: no evaluator for this data) and keeps the best export."""
    from gankit.metrics.evaluation import evaluate_generator
    from gankit.training.game import build_game
    from gankit.variants.pix2pix import ImageCondition

    overrides = pix2pix_overrides(pairs_npz, 4, **{"train.eval_every": 2, "train.eval_samples": 40})
    overrides += ['train.eval_metrics=["fid"]']
    run = train(load_config(None, overrides), tmp_path / "run", progress=False, log=quiet)
    rows = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4] and all(np.isfinite(r["metrics"]["fid"]) for r in rows)
    assert rows[0]["protocol"]["num_generated"] == 40 and rows[0]["protocol"]["reference"]["split"] == "train"
    best = json.loads((run.run_dir / "best" / "metrics.json").read_text())
    assert best["metrics"]["fid"] == min(r["metrics"]["fid"] for r in rows)
    assert (run.run_dir / "best" / "generator.safetensors").is_file() and run.best["best_step"] == best["step"]

    # the inputs: the training pairs' rows in order, again from the start past the end, with their classes
    data = load_dataset({"name": "pairs", "path": str(pairs_npz)})
    condition = ImageCondition((1, 32, 32))
    assert condition.evaluation_inputs(3, {"labels"}) == ({}, {})  # not prepared: the user gives the images
    condition.prepare(data)
    given, known = condition.evaluation_inputs(35, {"labels"})
    rows_used = np.arange(35) % 32
    np.testing.assert_array_equal(given["images"], data.source_input(torch.as_tensor(rows_used)).numpy())
    np.testing.assert_array_equal(known["labels"], data.labels.numpy()[rows_used])
    assert condition.evaluation_inputs(3, {"fid"})[1] == {}
    # a translation scored by the same code outside training refuses to guess its inputs
    game = build_game(load_config(None, overrides), data, torch.device("cpu"))
    with pytest.raises(ValueError, match="pass images="):
        evaluate_generator(load_generator(run.run_dir), "fid", 8, data=data, extractor={"name": "raw"})
    assert game.objective.condition.evaluates_on_training_inputs


def test_pix2pix_and_srgan_resume_exactly(pairs_npz, tiny_npz, tmp_path):
    assert_resume_is_exact(tmp_path / "p", pix2pix_overrides(pairs_npz, 4, **{"model.norm": "instance"}))
    assert_resume_is_exact(tmp_path / "s", sr_overrides(tiny_npz, 4))


def test_srgan_upscales_any_size_and_the_cli_writes_files(tiny_npz, tmp_path):
    from gankit.cli import main

    run = train(load_config(None, sr_overrides(tiny_npz, 2)), tmp_path / "run", progress=False, log=quiet)
    pipeline = load_generator(run.run_dir)
    assert pipeline.condition.summary() == "a 2x super-resolution generator (1x8x8 inputs)"
    assert pipeline.upscale(np.zeros((2, 10, 6), np.uint8)).shape == (2, 20, 12, 1)
    write(tmp_path / "in" / "a.png", np.full((12, 12), 200, np.uint8))
    write(tmp_path / "in" / "sub" / "b.png", np.full((5, 7), 20, np.uint8))
    assert main(["upscale", str(run.run_dir), "--input", str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 0
    assert Image.open(tmp_path / "out" / "sub" / "b.png").size == (14, 10)
    assert (
        main(
            [
                "translate",
                str(run.run_dir),
                "--input",
                str(tmp_path / "in" / "a.png"),
                "--out",
                str(tmp_path / "pair.png"),
                "--side-by-side",
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "pair.png").size == (2 * 24 + 6, 24 + 4)  # input | output at 24 px, padding 2
    assert (
        main(
            ["upscale", str(tmp_path / "run"), "--input", str(tmp_path / "in" / "a.png"), "--out", str(tmp_path / "x")]
        )
        == 2
    )


def test_an_unconditional_generator_refuses_input_images(tiny_run, tmp_path):
    from gankit.cli import main

    write(tmp_path / "a.png", np.zeros((16, 16), np.uint8))
    assert main(["upscale", str(tiny_run), "--input", str(tmp_path / "a.png"), "--out", str(tmp_path / "o.png")]) == 2
    with pytest.raises(ValueError, match="not an image-to-image generator"):
        load_generator(tiny_run).sample(1, images=np.zeros((1, 16, 16), np.uint8))


def test_the_vgg_content_loss_reads_only_checked_safetensors(tiny_npz, tmp_path):
    from safetensors.torch import save_file

    from gankit.errors import CheckpointError
    from gankit.networks.vgg import VGG19Features, load_vgg19_features

    state = {k: v.contiguous() for k, v in VGG19Features().state_dict().items()}
    save_file(state, str(tmp_path / "vgg.safetensors"))
    run = train(
        load_config(
            None,
            sr_overrides(
                tiny_npz, 1, "objective.content=vgg", f"objective.content_network={tmp_path / 'vgg.safetensors'}"
            ),
        ),
        tmp_path / "run",
        progress=False,
        log=quiet,
    )
    assert run.last_row["g_loss_content"] >= 0
    save_file({**state, "features.0.weight": torch.zeros(64, 3, 5, 5)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(CheckpointError, match="features.0.weight"):
        load_vgg19_features(tmp_path / "bad.safetensors")
    (tmp_path / "vgg.pth").write_bytes(b"pickled")
    with pytest.raises(CheckpointError, match="not a .safetensors file"):
        load_vgg19_features(tmp_path / "vgg.pth")
