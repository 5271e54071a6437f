"""Helpers shared by the test files (not tests themselves): tiny run settings and the resume check."""

import json

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
