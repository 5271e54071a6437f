import json

import numpy as np
import pytest
import torch
from helpers import tiny_overrides

from gankit.config import load_config
from gankit.files import read_tensors
from gankit.formats import FORMAT_CHECKPOINT, list_checkpoints
from gankit.inference import load_generator
from gankit.losses import LOSSES
from gankit.training import Divergence, TrainingError, train


def run(tmp_path, name, overrides, resume=False):
    return train(load_config(None, overrides), tmp_path / name, resume=resume, progress=False, log=lambda s: None)


def final_weights(run_dir):
    _, path = list_checkpoints(run_dir / "checkpoints")[-1]
    tensors, metadata = read_tensors(path, FORMAT_CHECKPOINT)
    return tensors, metadata


@pytest.mark.parametrize("loss", LOSSES.names())
def test_one_run_per_loss_is_finite_and_writes_the_run_folder(tmp_path, tiny_npz, loss):
    result = run(tmp_path, loss, tiny_overrides(tiny_npz, steps=2) + [f"loss.name={loss}"])
    row = result.last_row
    assert row["step"] == 2 and row["images_seen"] == 16
    assert ("gp" in row) == (loss == "wgan-gp")
    folder = tmp_path / loss
    for name in ("config.json", "train_log.jsonl", "samples.png", "generator.safetensors", "losses.png"):
        assert (folder / name).is_file(), name
    from PIL import Image

    from gankit.images import image_grid

    drawn = np.asarray(image_grid(load_generator(folder).sample(4, seed=0)))  # the export, as `gankit sample` draws
    assert np.array_equal(np.asarray(Image.open(folder / "samples.png")), drawn)  # the training grid is the same
    saved = json.loads((folder / "config.json").read_text())
    assert saved["model"]["resolution"] == 16 and saved["loss"]["name"] == loss


def test_training_moves_both_nets_and_d_steps_consume_batches(tmp_path, tiny_npz):
    run(tmp_path, "a", tiny_overrides(tiny_npz, steps=2, d_steps=3))
    tensors, metadata = final_weights(tmp_path / "a")
    assert int(metadata["batches"]) == 6
    rows = [json.loads(line) for line in (tmp_path / "a" / "train_log.jsonl").read_text().splitlines()]
    assert rows[-1]["images_seen"] == 2 * 3 * 8


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, tiny_npz):
    extra = ["train.ema_decay=0.9", "model.name=dcgan"]
    run(tmp_path, "straight", tiny_overrides(tiny_npz, steps=6) + extra)
    run(tmp_path, "split", tiny_overrides(tiny_npz, steps=4) + extra)
    run(tmp_path, "split", tiny_overrides(tiny_npz, steps=6) + extra, resume=True)
    a, meta_a = final_weights(tmp_path / "straight")
    b, meta_b = final_weights(tmp_path / "split")
    assert meta_a["step"] == meta_b["step"] == "6"
    assert a.keys() == b.keys() and any(k.startswith("G_ema.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    log = [json.loads(line)["step"] for line in (tmp_path / "split" / "train_log.jsonl").read_text().splitlines()]
    assert log == [2, 4, 6]


def test_resume_with_mlp_dropout_and_gradient_penalty_is_exact(tmp_path, tiny_npz):
    extra = ["model.name=mlp", "model.g_hidden=[32]", "model.d_hidden=[16]", "model.latent_dim=8", "loss.name=wgan-gp"]
    base = [o for o in tiny_overrides(tiny_npz) if not o.startswith("model.")] + extra
    run(tmp_path, "straight", [o.replace("train.steps=4", "train.steps=4") for o in base])
    run(tmp_path, "split", [o.replace("train.steps=4", "train.steps=2") for o in base])
    run(tmp_path, "split", base, resume=True)
    a, _ = final_weights(tmp_path / "straight")
    b, _ = final_weights(tmp_path / "split")
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_run_folder_guards(tmp_path, tiny_npz):
    overrides = tiny_overrides(tiny_npz, steps=2)
    with pytest.raises(TrainingError, match="no checkpoint to resume from"):
        run(tmp_path, "r", overrides, resume=True)
    run(tmp_path, "r", overrides)
    with pytest.raises(TrainingError, match="already holds a run"):
        run(tmp_path, "r", overrides)
    with pytest.raises(TrainingError, match="the loss section differs"):
        run(tmp_path, "r", overrides + ["loss.name=hinge"], resume=True)
    with pytest.raises(TrainingError, match="different train.batch_size"):
        run(tmp_path, "r", overrides + ["train.batch_size=4"], resume=True)


def test_divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path, tiny_npz):
    run(tmp_path, "d", tiny_overrides(tiny_npz, steps=2))
    good, _ = final_weights(tmp_path / "d")
    with pytest.raises(
        Divergence,
        match=r"diverged by step 3: .*not finite; nothing was saved from this step; "
        r"the last good checkpoint \(step 2\) is intact",
    ):
        run(tmp_path, "d", tiny_overrides(tiny_npz, steps=4, lr_d=1e30, lr_g=1e30), resume=True)
    after, meta = final_weights(tmp_path / "d")
    assert meta["step"] == "2"
    assert all(torch.equal(good[k], after[k]) for k in good)


def test_same_seed_same_run(tmp_path, tiny_npz):
    run(tmp_path, "a", tiny_overrides(tiny_npz, steps=2))
    run(tmp_path, "b", tiny_overrides(tiny_npz, steps=2))
    run(tmp_path, "c", tiny_overrides(tiny_npz, steps=2, seed=1))
    a, b, c = (final_weights(tmp_path / n)[0] for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["G.net.0.weight"], c["G.net.0.weight"])


def test_bf16_precision_trains(tmp_path, tiny_npz):
    result = run(tmp_path, "bf16", tiny_overrides(tiny_npz, steps=2, precision="bf16"))
    assert result.step == 2
    tensors, _ = final_weights(tmp_path / "bf16")
    assert tensors["G.net.0.weight"].dtype == torch.float32  # weights stay fp32 under autocast


def test_points_run_writes_a_scatter_plot(tmp_path):
    overrides = [
        "data.name=ring",
        "data.num_points=500",
        "model.name=mlp",
        "model.latent_dim=2",
        "model.g_hidden=[16]",
        "model.d_hidden=[16]",
        "train.steps=3",
        "train.batch_size=50",
        "train.sample_grid=100",
        "train.tensorboard=false",
    ]
    run(tmp_path, "ring", overrides)
    assert (tmp_path / "ring" / "samples.png").is_file()


def test_trainer_update_equals_the_canonical_dcgan_step(tmp_path, tiny_npz):
    """The speed-ups (frozen D in G's step, fused Adam, channels-last, uint8 batches) keep the algorithm."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from canonical import canonical_step, make_optimizers

    from gankit.data import BatchStream, load_dataset
    from gankit.networks.dcgan import DCGANDiscriminator, DCGANGenerator

    config = load_config(None, tiny_overrides(tiny_npz, steps=3))
    train(config, tmp_path / "g", progress=False, log=lambda s: None)
    trained, _ = final_weights(tmp_path / "g")

    # The same initialization, batches and latents as the trainer draws them.
    torch.manual_seed(config.train.seed)
    dataset = load_dataset(config.data)
    G, D = DCGANGenerator(16, 1, latent_dim=16, width=8), DCGANDiscriminator(16, 1, width=8)
    initial = G.net[0].weight.detach().clone()
    opt_G, opt_D = make_optimizers(G, D)
    stream = BatchStream(dataset, 8, config.train.seed)
    z_generator = torch.Generator().manual_seed(config.train.seed + 1)
    for k in range(3):
        canonical_step(
            G, D, opt_G, opt_D, dataset.model_input(stream.indices(k)), torch.randn(8, 16, generator=z_generator)
        )
    reference = {**{f"G.{k}": v for k, v in G.state_dict().items()}, **{f"D.{k}": v for k, v in D.state_dict().items()}}
    for key, value in reference.items():
        torch.testing.assert_close(trained[key], value, rtol=1e-4, atol=1e-6, msg=key)
    # Three Adam steps of 2e-4 moved the weights far beyond the tolerance above.
    assert (trained["G.net.0.weight"] - initial).abs().max() > 3e-4


def test_tensorboard_events_when_installed(tmp_path, tiny_npz):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    overrides = [o for o in tiny_overrides(tiny_npz, steps=2) if not o.startswith("train.tensorboard")]
    run(tmp_path, "tb", overrides)
    events = EventAccumulator(str(tmp_path / "tb" / "tensorboard"))
    events.Reload()
    assert {"d_loss", "g_loss", "D_x", "D_G_z"} <= set(events.Tags()["scalars"])


def test_batchnorm_recalibration_matches_the_population_statistics():
    from gankit.networks.dcgan import DCGANGenerator
    from gankit.training.ema import recalibrate_batchnorm
    from gankit.variants import Condition

    torch.manual_seed(0)
    G = DCGANGenerator(16, 1, latent_dim=8, width=4).eval()
    recalibrate_batchnorm(G, Condition(), 8, batch_size=32, seed=5, device=torch.device("cpu"), batches=4)
    generator = torch.Generator().manual_seed(5)
    z = torch.cat([torch.randn(32, 8, generator=generator) for _ in range(4)])
    with torch.no_grad():
        pre_bn = G.net[0](z.view(-1, 8, 1, 1))  # the first BatchNorm's input
    bn = G.net[1]
    torch.testing.assert_close(bn.running_mean, pre_bn.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.1 and not G.training


def test_ema_decay_warms_up():
    from torch import nn

    from gankit.training.ema import EMA
    from gankit.variants import Condition

    G = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(G.weight)
    ema = EMA(G, decay=0.999, condition=Condition())
    nn.init.ones_(G.weight)
    ema.update(G, step=0)  # decay min(0.999, 1/10) = 0.1: mostly the new weights
    assert ema.model.weight.item() == pytest.approx(0.9)


def test_time_limit_ends_the_run_early_with_its_checkpoint_and_export(tmp_path, tiny_npz):
    from gankit.registry import ConfigError

    overrides = tiny_overrides(tiny_npz, steps=100000) + ["train.time_limit=1e-9", "train.checkpoint_every=1000"]
    result = train(load_config(None, overrides), tmp_path / "r", progress=False, log=lambda s: None)
    assert result.step == 1  # the limit is checked after each step
    assert [s for s, _ in list_checkpoints(tmp_path / "r" / "checkpoints")] == [1]
    assert (tmp_path / "r" / "generator.safetensors").is_file() and result.last_row["step"] == 1
    assert read_tensors(list_checkpoints(tmp_path / "r" / "checkpoints")[0][1], FORMAT_CHECKPOINT)[1]["step"] == "1"
    with pytest.raises(ConfigError, match="time_limit must be >= 0"):
        load_config(None, overrides[:-2] + ["train.time_limit=-1"])


def test_precision_auto_records_what_the_hardware_runs(tmp_path, tiny_npz):
    from gankit.device import fast_bf16, resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == ("fp32", "") and resolve_precision("bf16", cpu) == ("bf16", "")
    expected = "bf16" if fast_bf16(cpu) else "fp32"
    lines = []
    train(
        load_config(None, tiny_overrides(tiny_npz, steps=1) + ["train.precision=auto"]),
        tmp_path / "run",
        progress=False,
        log=lines.append,
    )
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["precision"] == expected
    assert any(line.startswith(f"train.precision=auto: {expected} (") for line in lines)
