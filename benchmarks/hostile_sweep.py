"""A sweep of hostile inputs through the command line: how many end in a clear message, how many in an
internal error (a bug) or a crash.

It trains one tiny run, then makes several hundred damaged copies of what gankit reads and feeds each to the
command that reads it, in this process (``gankit.cli.main``):

- checkpoints (``gankit train RUN --resume``): every tensor replaced by a wrong shape, a wrong dtype, NaN, or
  removed; every metadata entry removed or replaced by values of the wrong kind; every config key of the
  stored config set to hostile values (checksums recomputed, so the structural checks are what is tested);
  bit flips and truncations at random offsets (checksums not recomputed);
- exports (``gankit sample``): the same, on the generator export;
- config files (``gankit train CONFIG``): every key of a preset set to hostile values;
- data files (``gankit train`` on npz / CIFAR / an image folder / captions): random truncations and byte
  flips of valid files, random bytes.

Outcomes: ``message`` (exit 2, one line naming what was wrong); ``recovered`` (a resume that set the damaged
checkpoint aside, with a warning, and continued from the one before); ``accepted`` (exit 0: the change is
one the command does not read, e.g. a D option in a generator export, or the train section of a checkpoint,
which a resume takes from the requested config); for data files ``accepted, same data`` (the damage fell
where nothing reads it: a timestamp, a CRC) or ``accepted, data differs`` (a pixel or a letter of a format
without a checksum: CIFAR pickles, caption text); ``internal`` (exit 1: an exception gankit does not expect,
a bug) and ``escaped`` (an exception out of ``main``). A crash (SIGSEGV) would end the sweep itself.

    python benchmarks/hostile_sweep.py [--seed 0] [--flips 40] [--out hostile_sweep.json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import pickle
import random
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open

from gankit.cli import main
from gankit.files import write_tensors
from gankit.ownership import owning_run, writing_run

HOSTILE_VALUES = [None, -1, 0, 10**12, 1e308, "x", [], {}, True, 2.5]
TINY = [
    "data.name=npz",
    "model.name=dcgan",
    "model.g_width=8",
    "model.d_width=8",
    "model.latent_dim=16",
    "train.batch_size=8",
    "train.log_every=1",
    "train.sample_every=1",
    "train.checkpoint_every=1",
    "train.sample_grid=4",
    "train.tensorboard=false",
]


def run_cli(argv: list[str]) -> tuple[str, str]:
    """(outcome, the last line of stderr) of ``gankit argv``; ``recovered`` is a resume that set a damaged
    checkpoint aside (or skipped an unreadable one) and continued from the one before, with a warning."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
        except Exception as error:  # noqa: BLE001 - what the sweep counts
            return "escaped", f"{type(error).__name__}: {error}"
    lines = err.getvalue().strip().splitlines()
    outcome = {0: "accepted", 2: "message", 1: "internal"}.get(code, f"exit {code}")
    if outcome == "accepted" and any(s in out.getvalue() for s in ("moved aside", "warning: skipping")):
        return "recovered", next(line for line in out.getvalue().splitlines() if line.startswith("warning:"))
    return outcome, lines[-1] if lines else ""


def read_raw(path: Path):
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())


def tensor_variants(tensors: dict[str, torch.Tensor], rng: random.Random, limit: int):
    names = sorted(tensors)
    for name in rng.sample(names, min(limit, len(names))):
        value = tensors[name]
        yield f"{name}: removed", {k: v for k, v in tensors.items() if k != name}
        yield f"{name}: wrong shape", {**tensors, name: torch.zeros(value.numel() + 7)}
        yield f"{name}: float64", {**tensors, name: value.double()}
        if value.is_floating_point():
            yield f"{name}: NaN", {**tensors, name: torch.full_like(value, float("nan"))}
            yield f"{name}: int32", {**tensors, name: value.to(torch.int32)}


def metadata_variants(metadata: dict[str, str], rng: random.Random, config_keys: int):
    for key in sorted(metadata):
        if key == "checksum":
            continue
        yield f"metadata {key}: removed", {k: v for k, v in metadata.items() if k != key}
        for value in ("garbage{", "[]", "-1", "1e999", '"x"', "{}"):
            yield f"metadata {key} = {value}", {**metadata, key: value}
    config = json.loads(metadata["config"])
    keys = [
        (section, key) for section in ("data", "model", "loss", "objective", "train") for key in sorted(config[section])
    ]
    for section, key in rng.sample(keys, min(config_keys, len(keys))):
        for value in HOSTILE_VALUES:
            changed = json.loads(metadata["config"])
            changed[section][key] = value
            yield f"config {section}.{key} = {value!r}", {**metadata, "config": json.dumps(changed)}


def byte_variants(data: bytes, rng: random.Random, count: int):
    for _ in range(count):
        offset = rng.randrange(len(data))
        flipped = bytearray(data)
        flipped[offset] ^= 1 << rng.randrange(8)
        yield f"bit flip at {offset}", bytes(flipped)
    for _ in range(count // 4):
        cut = rng.randrange(len(data))
        yield f"truncated at {cut}", data[:cut]


def sweep_gankit_file(name: str, original: Path, command, rng, flips: int, results: list) -> None:
    """Damage ``original`` every way above, run ``command()`` on each copy, restore, record."""
    pristine = original.read_bytes()
    tensors, metadata = read_raw(original)
    metadata.pop("checksum", None)
    run = owning_run(original)  # the sweep plays the stranger who made the run: it owns what it damages

    def damaged(t, m):
        with writing_run(run) if run else contextlib.nullcontext():
            write_tensors(original, t, m)

    cases = [(label, lambda t=t: damaged(t, metadata)) for label, t in tensor_variants(tensors, rng, 12)]
    cases += [(label, lambda m=m: damaged(tensors, m)) for label, m in metadata_variants(metadata, rng, 12)]
    cases += [(label, lambda b=b: original.write_bytes(b)) for label, b in byte_variants(pristine, rng, flips)]
    for label, damage in cases:
        damage()
        outcome, line = command()
        results.append({"target": name, "case": label, "outcome": outcome, "message": line[:300]})
        if outcome in ("internal", "escaped"):
            print(f"  BUG {name} / {label}: {line[:300]}", flush=True)
        original.write_bytes(pristine)
        for leftover in original.parent.glob("*.damaged"):
            leftover.replace(leftover.with_suffix(".safetensors"))


def sweep_config_file(folder: Path, npz: Path, results: list) -> None:
    base = {
        "data": {"name": "npz", "path": str(npz)},
        "model": {"name": "dcgan", "g_width": 8, "d_width": 8, "latent_dim": 16},
        "train": {"steps": 1, "batch_size": 8, "tensorboard": False, "sample_grid": 4},
    }
    for section in ("data", "model", "train"):
        for key in [*base[section], "missing_key"]:
            for value in HOSTILE_VALUES[::2]:
                config = json.loads(json.dumps(base))
                config[section][key] = value
                path = folder / "config.json"
                path.write_text(json.dumps(config))
                out = folder / "run"
                shutil.rmtree(out, ignore_errors=True)
                outcome, line = run_cli(["train", str(path), "--out", str(out), "--quiet"])
                results.append(
                    {
                        "target": "config file",
                        "case": f"{section}.{key} = {value!r}",
                        "outcome": outcome,
                        "message": line[:300],
                    }
                )


def sweep_data(folder: Path, rng: random.Random, flips: int, results: list) -> None:
    images = np.random.default_rng(0).integers(0, 256, (16, 16, 16), dtype=np.uint8)
    targets = {}
    npz = folder / "d.npz"
    np.savez(npz, images=images, labels=np.arange(16) % 4)
    targets["npz"] = (npz, ["data.name=npz", f"data.path={npz}"])
    cifar = folder / "cifar"
    cifar.mkdir()
    with open(cifar / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((16, 3072), np.uint8), b"labels": list(range(10)) + [0] * 6}, f)
    targets["cifar pickle"] = (cifar / "test_batch", ["data.name=cifar10", f"data.path={cifar}", "data.split=test"])
    pictures = folder / "pictures"
    pictures.mkdir()
    for i in range(8):
        Image.fromarray(np.full((16, 16, 3), 30 * i, np.uint8)).save(pictures / f"{i}.png")
    targets["png image"] = (pictures / "0.png", ["data.name=folder", f"data.path={pictures}", "data.resolution=16"])
    captions = folder / "captions"
    shutil.copytree(pictures, captions)
    for i in range(8):
        (captions / f"{i}.txt").write_text(f"a gray square number {i}\n")
    targets["caption file"] = (
        captions / "0.txt",
        ["data.name=captions", f"data.path={captions}", "data.resolution=16", "model.name=dcgan"],
    )
    for name, (path, data_options) in targets.items():
        section = {
            "name": data_options[0].split("=")[1],
            **{o.split("=")[0][5:]: o.split("=", 1)[1] for o in data_options[1:] if o.startswith("data.")},
        }
        section = {k: (int(v) if v.isdigit() else v) for k, v in section.items()}
        reference = fingerprint(section)
        pristine = path.read_bytes()
        noise = bytes(rng.randrange(256) for _ in range(len(pristine)))
        for label, data in [*byte_variants(pristine, rng, flips), ("random bytes", noise)]:
            path.write_bytes(data)
            out = folder / "run"
            shutil.rmtree(out, ignore_errors=True)
            argv = ["train", "dcgan-digits", "--out", str(out), "--quiet"]
            for option in [*TINY, *data_options, "train.steps=1"]:
                argv += ["--set", option]
            outcome, line = run_cli(argv)
            if outcome == "accepted":  # a harmless place (a timestamp, a CRC), or data that reads differently?
                outcome = "accepted, same data" if fingerprint(section) == reference else "accepted, data differs"
            results.append({"target": name, "case": label, "outcome": outcome, "message": line[:300]})
        path.write_bytes(pristine)


def fingerprint(section: dict) -> str:
    """A hash of what a data section loads to: pixels, labels, captions."""
    import hashlib

    from gankit.data import load_dataset

    dataset = load_dataset(section)
    digest = hashlib.sha256(dataset.x.numpy().tobytes())
    if dataset.labels is not None:
        digest.update(dataset.labels.numpy().tobytes())
    digest.update(json.dumps(dataset.extras.get("captions")).encode())
    return digest.hexdigest()


def main_sweep() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flips", type=int, default=40, help="bit flips per file (and a quarter as many truncations)")
    parser.add_argument("--out", default="hostile_sweep.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = random.Random(args.seed)
    start = time.time()
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        npz = folder / "tiny.npz"
        np.savez(npz, images=np.random.default_rng(0).integers(0, 256, (64, 16, 16), dtype=np.uint8))
        run = folder / "run"
        argv = ["train", "dcgan-digits", "--out", str(run), "--quiet"]
        for option in [*TINY, f"data.path={npz}", "train.steps=2"]:
            argv += ["--set", option]
        assert run_cli(argv)[0] == "accepted"
        checkpoint = sorted((run / "checkpoints").glob("*.safetensors"))[-1]

        def resume():
            outcome = run_cli(["train", str(run), "--resume", "--steps", "3", "--quiet"])
            for extra in sorted((run / "checkpoints").glob("ckpt-00000003*")):
                extra.unlink()
            return outcome

        sweep_gankit_file("checkpoint", checkpoint, resume, rng, args.flips, results)
        print(f"checkpoints done: {len(results)} cases, {time.time() - start:.0f} s", flush=True)
        export = run / "generator.safetensors"
        sample = folder / "sample.png"
        sweep_gankit_file(
            "export",
            export,
            lambda: run_cli(["sample", str(export), "--n", "4", "--out", str(sample)]),
            rng,
            args.flips,
            results,
        )
        print(f"exports done: {len(results)} cases, {time.time() - start:.0f} s", flush=True)
        configs = folder / "configs"
        configs.mkdir()
        sweep_config_file(configs, npz, results)
        data = folder / "data"
        data.mkdir()
        sweep_data(data, rng, args.flips // 2, results)
    summary: dict[str, dict[str, int]] = {}
    for row in results:
        summary.setdefault(row["target"], {}).setdefault(row["outcome"], 0)
        summary[row["target"]][row["outcome"]] += 1
    total = {o: sum(1 for r in results if r["outcome"] == o) for o in sorted({r["outcome"] for r in results})}
    print(f"{len(results)} hostile inputs in {time.time() - start:.0f} s: {total}")
    for target, counts in summary.items():
        print(f"  {target:14s} {counts}")
    for row in results:
        if row["outcome"] in ("internal", "escaped"):
            print(f"  BUG {row['target']} / {row['case']}: {row['message']}")
    Path(args.out).write_text(json.dumps({"total": total, "by_target": summary, "cases": results}, indent=1) + "\n")
    print(f"cases: {args.out}")


if __name__ == "__main__":
    sys.exit(main_sweep())
