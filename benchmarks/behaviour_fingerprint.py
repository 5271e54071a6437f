"""Behaviour fingerprint: what a short run of every variant family draws and logs, as hashes.

Written before the architecture redesign (issue 16) and run again after it: the redesign must give the
same bytes. For each family below (tiny data, tiny nets, seconds each) it records

  - the losses and statistics of every logged step of a 4-step run (log_every=1), exactly;
  - sha256 of every tensor of the final training checkpoint (G, D, EMA, optimizer states, RNG states);
  - sha256 of samples drawn from the run's export through the public API (`gankit.load_generator`)
    with fixed seeds, and, per family, of its condition-specific draws (labels, codes, captions);
  - whether 2 steps + --resume + 2 steps gives the uninterrupted run's checkpoint tensors bit for bit.

With ``--fixtures DIR`` it also copies each family's export there (the old-format exports the test suite
loads; `tests/test_exports_compat.py`). Only the CLI and `gankit.load_config / train / load_generator`
are used, so the script runs unchanged before and after modules move.

    python benchmarks/behaviour_fingerprint.py --out tests/fixtures/behaviour.json [--fixtures tests/fixtures/exports]
    python benchmarks/behaviour_fingerprint.py --compare tests/fixtures/behaviour.json
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

import gankit
from gankit.cli import main as cli

TRAIN = {
    "steps": 4,
    "batch_size": 8,
    "log_every": 1,
    "sample_every": 2,
    "checkpoint_every": 2,
    "sample_grid": 16,
    "tensorboard": False,
    "device": "cpu",
    "seed": 3,
}
DIGITS = {"name": "digits", "resolution": 16, "limit": 200}
SMALL_DCGAN = {"name": "dcgan", "g_width": 8, "d_width": 8, "latent_dim": 16, "init_std": 0.2}


def families(root: Path) -> dict[str, dict]:
    """Config dict per family; text families use the tiny captioned data and encoder made in ``root``."""
    caps = {"name": "captions", "path": str(root / "caps"), "resolution": 16}
    encoder = str(root / "encoder.safetensors")
    text_model = {"name": "text-dcgan", "g_width": 8, "d_width": 8, "text_compressed": 8, "latent_dim": 10}
    return {
        "dcgan": {"data": DIGITS, "model": SMALL_DCGAN, "objective": {"name": "standard"}, "train": {"ema_decay": 0.9}},
        "dcgan-techniques": {
            "data": DIGITS,
            "model": {**SMALL_DCGAN, "d_spectral_norm": True, "d_minibatch_std": 4},
            "objective": {
                "name": "standard",
                "r1_weight": 1.0,
                "diffaugment": "color,translation,cutout",
                "instance_noise": 0.1,
                "instance_noise_anneal_steps": 3,
            },
            "loss": {"name": "non-saturating", "real_label": 0.9},
        },
        "dcgan-wgan-feature-matching": {
            "data": DIGITS,
            "model": SMALL_DCGAN,
            "loss": {"name": "wgan-gp"},
            "objective": {"name": "standard", "feature_matching": True},
            "train": {"d_steps": 2},
        },
        "mlp-ring-unrolled-pack": {
            "data": {"name": "ring", "num_points": 2000},
            "model": {
                "name": "mlp",
                "latent_dim": 8,
                "g_hidden": [16, 16],
                "d_hidden": [16],
                "d_pack": 2,
                "g_batchnorm": True,
            },
            "objective": {"name": "standard", "unrolled_steps": 2},
            "loss": {"name": "hinge"},
        },
        "mlp-images": {
            "data": {**DIGITS, "resolution": 8},
            "model": {"name": "mlp", "latent_dim": 8, "g_hidden": [32], "d_hidden": [16]},
            "objective": {"name": "standard"},
            "loss": {"name": "least-squares"},
        },
        "cgan-projection": {
            "data": DIGITS,
            "model": {**SMALL_DCGAN, "num_classes": None, "d_conditioning": "projection", "label_embedding": 6},
            "objective": {"name": "conditional"},
            "train": {"ema_decay": 0.9},
        },
        "cgan-mlp-concat": {
            "data": {**DIGITS, "resolution": 8},
            "model": {"name": "mlp", "latent_dim": 8, "g_hidden": [32], "d_hidden": [16], "num_classes": None},
            "objective": {"name": "conditional"},
        },
        "acgan": {
            "data": DIGITS,
            "model": {**SMALL_DCGAN, "num_classes": None, "d_conditioning": "none", "d_aux_classifier": True},
            "objective": {"name": "acgan", "class_weight": 0.5},
        },
        "infogan": {
            "data": DIGITS,
            "model": {**SMALL_DCGAN, "latent_dim": 20},
            "objective": {
                "name": "infogan",
                "categorical": [10],
                "continuous": 2,
                "binary": 1,
                "learned_variance": True,
                "noise_std": 0.3,
            },
            "train": {"ema_decay": 0.9},
        },
        "gan-int-cls": {
            "data": caps,
            "model": text_model,
            "objective": {
                "name": "gan-cls",
                "text_encoder": encoder,
                "interpolation": True,
                "wrong_text": "nearest",
                "matching_weight": 0.1,
            },
            "train": {"ema_decay": 0.9},
        },
        "stackgan-stage1": {
            "data": caps,
            "model": {**text_model, "conditioning_augmentation": True},
            "objective": {"name": "stackgan", "text_encoder": encoder},
            "train": {"ema_decay": 0.9},
        },
        "stackgan-stage2": {
            "data": {**caps, "resolution": 32},
            "model": {
                "name": "stackgan-stage2",
                "g_width": 8,
                "d_width": 8,
                "condition_dim": 8,
                "text_compressed": 8,
                "residual_blocks": 1,
            },
            "objective": {"name": "stackgan", "stage1": str(root / "runs" / "stackgan-stage1")},
        },
    }


def config_of(spec: dict) -> gankit.RunConfig:
    raw = {"loss": {"name": "non-saturating"}, **spec, "train": {**TRAIN, **spec.get("train", {})}}
    return gankit.RunConfig.from_dict(json.loads(json.dumps(raw)))


def sha(array) -> str:
    array = array.detach().cpu().contiguous().numpy() if torch.is_tensor(array) else np.ascontiguousarray(array)
    return hashlib.sha256(array.tobytes() + str(array.dtype).encode() + str(array.shape).encode()).hexdigest()[:16]


def checkpoint_hashes(run: Path) -> dict[str, str]:
    path = max((run / "checkpoints").glob("*.safetensors"))
    with safe_open(str(path), framework="pt") as f:
        return {k: sha(f.get_tensor(k)) for k in sorted(f.keys())}


def sample_hashes(run: Path) -> dict[str, str]:
    """Draws through the public pipeline API, with each family's conditions."""
    pipeline = gankit.load_generator(run)
    out = {}
    config = pipeline.config
    if config.objective["name"] in ("gan-cls", "stackgan"):
        out["text"] = sha(pipeline.sample(5, seed=1, text="a small red sandal on the left"))
        out["texts"] = sha(pipeline.sample(2, seed=4, start=3, text=["a big blue bag", "a shirt on the right"]))
        out["text_grid"] = sha(pipeline.text_grid(["a red bag", "a blue coat"], columns=3, seed=2))
        return out
    out["seed0"] = sha(pipeline.sample(6, seed=0))
    out["seed5_start2_batch2"] = sha(pipeline.sample(3, seed=5, start=2, batch_size=2))
    if config.model.get("num_classes"):
        out["labels"] = sha(pipeline.sample(4, seed=1, labels=[2, 0, 1, 2]))
        out["class_grid"] = sha(pipeline.class_grid([0, 3], columns=3, seed=2))
    if config.objective["name"] == "infogan":
        out["codes"] = sha(pipeline.sample(4, seed=1, codes={"cat0": 3, "cont1": 0.5}))
        out["traverse"] = sha(pipeline.traverse("cont0", [-1.0, 0.0, 1.0], rows=2, seed=2))
    return out


def log_rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "images_per_second"} for r in rows]


def quiet(*_args) -> None:
    pass


def run_family(name: str, spec: dict, root: Path, fixtures: Path | None) -> dict:
    config = config_of(spec)
    run = root / "runs" / name
    gankit.train(config, run, progress=False, log=quiet)
    record = {"log": log_rows(run), "checkpoint": checkpoint_hashes(run), "samples": sample_hashes(run)}
    half = root / "runs" / f"{name}-resumed"
    first = gankit.RunConfig.from_dict({**config.to_dict(), "train": {**config.to_dict()["train"], "steps": 2}})
    gankit.train(first, half, progress=False, log=quiet)
    gankit.train(config, half, resume=True, progress=False, log=quiet)
    record["resume_equal"] = checkpoint_hashes(half) == record["checkpoint"]
    if fixtures is not None:
        fixtures.mkdir(parents=True, exist_ok=True)
        shutil.copy(run / "generator.safetensors", fixtures / f"{name}.safetensors")
    return record


def prepare_text(root: Path) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        cli(
            [
                "data",
                "make-captions",
                "--out",
                str(root / "caps"),
                "--train",
                "48",
                "--test",
                "16",
                "--resolution",
                "32",
                "--captions",
                "3",
            ]
        )
        cli(
            [
                "text",
                "train-encoder",
                "--data",
                str(root / "caps"),
                "--steps",
                "3",
                "--batch-size",
                "8",
                "--set",
                "embed_dim=12",
                "--set",
                "word_dim=8",
                "--set",
                "hidden=8",
                "--out",
                str(root / "encoder.safetensors"),
            ]
        )


def fingerprint(fixtures: Path | None = None, only: list[str] | None = None) -> dict:
    torch.set_num_threads(1)  # the same reduction order on every machine size
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        prepare_text(root)
        result = {}
        for name, spec in families(root).items():
            if only and name not in only and not (name == "stackgan-stage1" and "stackgan-stage2" in only):
                continue
            result[name] = run_family(name, spec, root, fixtures)
            print(f"{name}: resume equal {result[name]['resume_equal']}", file=sys.stderr)
        return result


def compare(old: dict, new: dict) -> tuple[list[str], list[str]]:
    """(differences, notes): tensors a checkpoint gained (kept in the file, not changed) are notes."""
    problems, notes = [], []
    for name in old:
        if name not in new:
            problems.append(f"{name}: not run")
            continue
        for part in ("log", "samples", "resume_equal"):
            if old[name][part] != new[name][part]:
                problems.append(f"{name}: {part} differs: {old[name][part]} != {new[name][part]}")
        a, b = old[name]["checkpoint"], new[name]["checkpoint"]
        changed = sorted(k for k in a if a[k] != b.get(k))
        if changed:
            problems.append(f"{name}: {len(changed)} checkpoint tensors differ, e.g. {', '.join(changed[:4])}")
        added = sorted(set(b) - set(a))
        if added:
            notes.append(f"{name}: the checkpoint also holds {len(added)} tensors: {', '.join(added[:3])}, ...")
    return problems, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the fingerprint JSON here")
    parser.add_argument("--compare", help="compare against this fingerprint JSON; exit 1 on any difference")
    parser.add_argument("--fixtures", help="copy each family's export into this folder")
    parser.add_argument("--only", help="comma-separated families")
    args = parser.parse_args()
    result = fingerprint(Path(args.fixtures) if args.fixtures else None, args.only.split(",") if args.only else None)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    if args.compare:
        old = json.loads(Path(args.compare).read_text())
        if args.only:
            old = {k: v for k, v in old.items() if k in result}
        problems, notes = compare(old, result)
        print("\n".join(notes))
        print(
            "\n".join(problems) if problems else f"identical: {len(old)} families (logs, checkpoints, samples, resume)"
        )
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
