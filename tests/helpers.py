"""Helpers shared by the test files (not tests themselves): tiny run settings and the resume check."""

import json

import numpy as np
import torch

from gankit.config import RunConfig

from gankit import load_config, train
from gankit.files import read_tensors
from gankit.formats import FORMAT_CHECKPOINT, list_checkpoints


def quiet(message):
    """A log function that prints nothing."""


def tiny_overrides(npz_path, steps=4, **train):
    """Settings for a seconds-long run on the tiny .npz data with a small DCGAN."""
    values = {
        "data.name": "npz",
        "data.path": str(npz_path),
        "model.name": "dcgan",
        "model.g_width": 8,
        "model.d_width": 8,
        "model.latent_dim": 16,
        "train.steps": steps,
        "train.batch_size": 8,
        "train.log_every": 2,
        "train.sample_every": 2,
        "train.checkpoint_every": 2,
        "train.sample_grid": 4,
        "train.tensorboard": False,
        **{f"train.{k}": v for k, v in train.items()},
    }
    return [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in values.items()]


def assert_resume_is_exact(tmp_path, base):
    """4 steps straight and 2 + resume + 2 give bit-identical checkpoints: the split run's checkpoint of step 2
    is the one it resumed from, and the two checkpoints compared are both of step 4, with the same tensors."""
    assert "train.steps=4" in base, "the runs compared are 4 steps long: the overrides must say train.steps=4"
    run = lambda name, steps, resume=False: train(  # noqa: E731
        load_config(None, [o.replace("train.steps=4", f"train.steps={steps}") for o in base]),
        tmp_path / name,
        resume=resume,
        progress=False,
        log=lambda s: None,
    )
    run("straight", 4)
    run("split", 2)
    assert [step for step, _ in list_checkpoints(tmp_path / "split" / "checkpoints")][-1] == 2
    resumed = run("split", 4, resume=True)
    assert resumed.step == 4
    (step_a, path_a), (step_b, path_b) = (
        list_checkpoints(tmp_path / n / "checkpoints")[-1] for n in ("straight", "split")
    )
    assert step_a == step_b == 4, (step_a, step_b)
    a, b = (read_tensors(path, FORMAT_CHECKPOINT)[0] for path in (path_a, path_b))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    return step_a, step_b


def run_config(root, model: dict, objective: dict, resolution: int = 16, steps: int = 2) -> RunConfig:
    return RunConfig.from_dict(
        {
            "data": {"name": "captions", "path": str(root / "caps"), "resolution": resolution},
            "model": {"g_width": 8, "d_width": 8, "text_compressed": 8, **model},
            "loss": {"name": "non-saturating"},
            "objective": objective,
            "train": {
                "steps": steps,
                "batch_size": 8,
                "log_every": 1,
                "sample_every": 2,
                "checkpoint_every": 2,
                "sample_grid": 16,
                "tensorboard": False,
                "device": "cpu",
            },
        }
    )


def with_train(cfg: RunConfig, **train_options) -> RunConfig:
    """``cfg`` with its train section updated."""
    return RunConfig.from_dict({**cfg.to_dict(), "train": {**cfg.to_dict()["train"], **train_options}})


def stage1_config(root, steps=2):
    return run_config(
        root,
        {"name": "text-dcgan", "latent_dim": 10, "conditioning_augmentation": True},
        {"name": "stackgan", "text_encoder": str(root / "encoder.safetensors"), "wrong_text": "nearest"},
        steps=steps,
    )


SR = [  # a tiny SRGAN 2x: the model and objective settings on top of tiny_overrides' data and train sections
    "model.name=srgan",
    "model.scale=2",
    "model.g_width=4",
    "model.g_blocks=1",
    "model.d_width=2",
    "model.d_dense=8",
    "model.latent_dim=0",
    "objective.name=srgan",
]


def variant_options(root) -> dict[str, list[str]]:
    """Overrides for tiny runs of every condition kind but text, on data written into ``root``: plain
    (unconditional DCGAN), labels, codes (InfoGAN), sr (SRGAN 2x, pixel content), points (an MLP on the ring)
    and image (pix2pix, sampling with dropout). Two steps each, EMA on."""
    rng = np.random.default_rng(0)
    np.savez(
        root / "tiny.npz", images=rng.integers(0, 256, (64, 16, 16), dtype=np.uint8), labels=rng.integers(0, 4, 64)
    )
    base = tiny_overrides(root / "tiny.npz", steps=2) + ["model.init_std=0.3", "train.ema_decay=0.9"]
    plain_model = [o for o in base if not o.startswith("model.")]
    pairs = root / "pairs"
    pairs.mkdir(exist_ok=True)
    for split in ("train", "test"):
        np.savez(
            pairs / f"{split}.npz",
            sources=rng.integers(0, 256, (12, 32, 32), dtype=np.uint8),
            targets=rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8),
        )
    return {
        "plain": base,
        "labels": base + ["objective.name=conditional", "model.num_classes=null"],
        "codes": base + ["objective.name=infogan", "objective.categorical=[3]", "objective.continuous=1"],
        "sr": plain_model + SR + ["objective.content=pixel"],
        "points": [o for o in plain_model if not o.startswith("data.")]
        + [
            "data.name=ring",
            "data.num_points=512",
            "model.name=mlp",
            "model.latent_dim=2",
            "model.g_hidden=[16]",
            "model.d_hidden=[16]",
        ],
        "image": [o for o in plain_model if not o.startswith("data.")]
        + [
            "data.name=pairs",
            f"data.path={pairs}",
            "model.name=pix2pix",
            "model.g_width=4",
            "model.d_width=4",
            "objective.name=pix2pix",
            "model.sample_dropout=true",
        ],
    }


def train_variant_runs(root, captioned, kinds: dict[str, list[str]] | None = None, **train_options) -> dict:
    """Trains the runs of ``variant_options`` (or ``kinds``) and the text kind (StackGAN Stage-II on a Stage-I,
    both on the ``captioned`` fixture's data) into ``root``, each with ``train_options`` (train section values)
    last; returns {kind: run folder}."""
    kinds = variant_options(root) if kinds is None else kinds
    extra = [f"train.{key}={json.dumps(value)}" for key, value in train_options.items()]
    out = {
        name: train(load_config(None, [*options, *extra]), root / name, progress=False, log=quiet).run_dir
        for name, options in kinds.items()
    }
    train(with_train(stage1_config(captioned), **train_options), root / "stage1", progress=False, log=quiet)
    model = {"name": "stackgan-stage2", "condition_dim": 6, "residual_blocks": 1, "init_std": 0.5}
    cfg = run_config(captioned, model, {"name": "stackgan", "stage1": str(root / "stage1")}, resolution=32)
    out["text"] = train(with_train(cfg, **train_options), root / "stage2", progress=False, log=quiet).run_dir
    return out
