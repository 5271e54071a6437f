"""gankit's presets against a plain script of each paper's recipe, at the same number of images seen, 3 seeds
each, scored by three evaluators, one of which no tuning decision ever reads (issue 29).

    python benchmarks/vs_recipe.py --families dcgan-fashion-mnist --seeds 0 1 2 --write docs/results.md
    python benchmarks/vs_recipe.py --families dcgan-fashion-mnist --seeds 0 --tune     # tuning: shipped evaluator only
    python benchmarks/vs_recipe.py --dry-run                                             # 2 steps each, no scores

For each family: the recipe (``benchmarks/recipes/``, plain PyTorch, no gankit code) and gankit's preset
(``gankit train PRESET``), trained one after another on all cores, each for the family's steps at its batch
size; then one row per departure of the preset from the paper (the preset with that one departure undone:
the ablation that shows what each departure brings). Each run draws 10,000 samples (seed 1000), scored
against 10,000 real images the generators never trained on (the test split) under:

- ``shipped``: gankit's built-in classifier evaluator for the data (what the presets were tuned on, and what
  picks their best checkpoint during training);
- ``heldout``: ``benchmarks/heldout_evaluator.py``, a classifier of another architecture, width, optimizer
  and seed, trained only for this benchmark; ``--tune`` never computes it, and a test fails if any preset or
  training module names it;
- ``pixels``: raw pixels in [0, 1] (KID only: no network at all).

The recipe's samples are scored both ways a plain script could draw them (BatchNorm on batch statistics, as
the PyTorch example draws its grids, and on running statistics) and the better by the shipped evaluator's FID
is kept: the recipe gets its best reading. gankit's samples come from ``RUN``, which is the best checkpoint
by the preset's periodic evaluation (``RUN@last`` is scored too, as its own row). Results are cached per run
in OUT/<family>/<method>/seed-<s>/result.json (seed-<s>-steps-<n>/ for another budget than the table's), and
every scored result (no samples: scores, checkpoint, wall time, command, machine, date) is also kept in
benchmarks/results/vs_recipe.json, which is committed: a run found there is not trained again on any machine
(``--rerun`` trains it anyway), and ``--write`` builds its table from it, so the table in docs/results.md can be
regenerated, and extended one family or ablation at a time, without retraining what it holds. A gankit result
records the whole configuration it trained with (its description aside): once its preset's settings change, the
result is stale (trained again; ``--stored-only`` warns), and so is one stored before configurations were
recorded, which cannot be checked (``--stored-only`` shows it with a note). Two processes may run side
by side (one thread each): the store is updated under a lock.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import fcntl
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
NUM_SAMPLES, SAMPLE_SEED, NUM_REFERENCE = 10_000, 1000, 10_000
RESULTS = HERE / "results" / "vs_recipe.json"  # every scored result, committed (no samples)


def markers(block: str) -> tuple[str, str]:
    """The comments that delimit a generated block in the markdown file."""
    return f"<!-- {block}:begin -->", f"<!-- {block}:end -->"


def key_of(result: dict) -> tuple:
    return result["family"], result["method"], result["seed"], result["steps"]


def stored() -> dict[tuple, dict]:
    return {key_of(r): r for r in json.loads(RESULTS.read_text())} if RESULTS.is_file() else {}


def store(result: dict) -> None:
    """Add one result to the committed store. Two benchmark processes may run side by side (one per core): each
    reads, adds and replaces the file under a lock, and the file is replaced whole, never seen half written."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = stored()
        results[key_of(result)] = result
        ordered = sorted(results.values(), key=lambda r: (r["family"], r["steps"], r["method"], r["seed"]))
        partial = RESULTS.with_suffix(".partial")
        partial.write_text(json.dumps(ordered, indent=1) + "\n")
        os.replace(partial, RESULTS)


@dataclasses.dataclass
class Family:
    preset: str
    data: dict  # the dataset section (train split) the recipe and the preset train on
    reference_split: str  # real images the scores compare with (never trained on)
    recipe: list[str]  # the recipe script and its options
    steps: int
    batch_size: int
    evaluator: str  # the shipped evaluator's name
    heldout: str  # the held-out evaluator's dataset
    departures: dict[str, list[str]]  # departure -> the overrides that undo it (ablation rows)
    target: str  # what "better" means here, as the issue states it
    fid_factor: float = 1.0  # gankit's mean FID must be at most this times the recipe's (and every seed at most 1x)
    kind: str = "images"  # or "points": a 2D mixture, scored by its modes (PacGAN's protocol), not by evaluators
    samples: int = NUM_SAMPLES  # samples drawn per run
    seeds: tuple[int, ...] = (0, 1, 2)  # the training seeds of the table (none of them read by tuning for points)
    min_high_quality: float = 0.0  # points: every seed must capture every mode with at least this share
    threads: int = 0  # torch threads of gankit's runs (0: torch's default; 1 for tiny nets, whose threads spin)
    classes: bool = False  # class-conditional: samples are drawn for labels k mod K and scored on label accuracy


def recipe_departures(batch_size: int) -> dict[str, list[str]]:
    """The DCGAN presets' departures from the paper's recipe, each with the overrides that undo it (ablation rows):
    the small batch (back to the recipe's ``batch_size``, as many images seen), the high learning rate, the EMA."""
    return {
        "small-batch": [f"train.batch_size={batch_size}"],
        "high-lr": ["train.lr_g=0.0002", "train.lr_d=0.0002"],  # the paper's learning rate
        "ema": ["train.ema_decay=0"],  # the raw G
    }


FAMILIES = {
    "dcgan-fashion-mnist": Family(
        preset="dcgan-fashion-mnist",
        data={"name": "fashion-mnist"},
        reference_split="test",
        recipe=["recipes/dcgan.py"],
        steps=2000,
        batch_size=128,
        evaluator="fashion-mnist",
        heldout="fashion-mnist",
        # the fifth departure, the best checkpoint, is scored as the preset's own @last rows
        departures={**recipe_departures(128), "wide-g": ["model.g_width=64"]},
        target="FID <= 0.5x the recipe's, coverage and recall >= the recipe's, on every evaluator",
        fid_factor=0.5,
    ),
    "dcgan-digits": Family(
        preset="dcgan-digits",
        data={"name": "digits", "resolution": 32},
        reference_split="test",  # the 360 images of the split no generator and no evaluator trained on
        recipe=["recipes/dcgan.py"],
        steps=1500,
        batch_size=64,
        evaluator="digits",
        heldout="digits",
        departures=recipe_departures(64),
        target="FID below the recipe's, coverage and recall >= the recipe's, on every evaluator (the demo: about "
        "2 minutes on 2 cores)",
    ),
    "cgan-digits": Family(
        preset="cgan-digits",
        data={"name": "digits", "resolution": 32},
        reference_split="test",
        recipe=["recipes/dcgan.py", "--conditional"],
        steps=1500,
        batch_size=64,
        evaluator="digits",
        heldout="digits",
        departures={**recipe_departures(64), "label-smoothing": ["loss.real_label=1"]},
        target="FID at most the recipe's and label accuracy at least the recipe's, on every evaluator",
        classes=True,
    ),
    "acgan-fashion-mnist": Family(
        preset="acgan-fashion-mnist",
        data={"name": "fashion-mnist"},
        reference_split="test",
        recipe=["recipes/dcgan.py", "--acgan"],
        steps=2000,
        batch_size=128,
        evaluator="fashion-mnist",
        heldout="fashion-mnist",
        departures=recipe_departures(128),
        target="FID at most the recipe's and label accuracy at least the recipe's, on every evaluator",
        classes=True,
    ),
    **{
        f"gan-mlp-{name}": Family(
            preset=f"gan-mlp-{name}",
            data={"name": name},
            reference_split="train",
            recipe=["recipes/mixture.py", "--threads", "1"],  # tiny nets: one thread each (threads spin)
            steps=10000,
            batch_size=100,
            evaluator="",
            heldout="",
            kind="points",
            samples=2500,
            seeds=(100, 101, 102),
            threads=1,
            departures=departures,
            min_high_quality=quality,
            target=f"all {modes} modes with >= {quality:.0%} high-quality samples in every seed (PacGAN protocol), "
            "and better than the recipe",
        )
        for name, modes, quality, departures in (
            ("ring", 8, 0.9, {"ema": ["train.ema_decay=0"]}),
            (
                "grid",
                25,
                0.8,
                {
                    "fast-adam": ["train.lr_g=0.0001", "train.lr_d=0.0001", "train.beta1=0.8"],  # the paper's Adam
                    "r1": ["objective.r1_weight=0"],
                    "ema": ["train.ema_decay=0"],
                },
            ),
        )
    },
}
POINT_EVALUATORS = ("modes",)  # a 2D mixture's samples are scored against its known modes


def machine() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# ---------------------------------------------------------------------------------------------- data


def train_images(family: Family) -> np.ndarray:
    from gankit.data import load_dataset

    split = {} if family.kind == "points" else {"split": "train"}  # a mixture is drawn, not split
    return load_dataset({**family.data, **split}).x.numpy()


def train_labels(family: Family) -> dict[str, np.ndarray]:
    """The training labels, for a class-conditional recipe ({} otherwise)."""
    from gankit.data import load_dataset

    return {"labels": load_dataset({**family.data, "split": "train"}).labels.numpy()} if family.classes else {}


def reference_images(family: Family) -> np.ndarray:
    from gankit.data import load_dataset

    x = load_dataset({**family.data, "split": family.reference_split}).x.numpy()
    if len(x) > NUM_REFERENCE:
        x = x[np.random.default_rng(0).choice(len(x), NUM_REFERENCE, replace=False)]
    return x


# ---------------------------------------------------------------------------------------------- scores


class Scorer:
    """Features of the reference images under each evaluator, computed once; scores of a sample set."""

    def __init__(self, family: Family, evaluators: tuple[str, ...]):
        import torch

        from gankit.metrics.extractors import build_extractor

        self.evaluators = evaluators
        self.embed = {}
        self.classify = {}  # evaluator -> the class it sees in each image (label accuracy of conditional samples)
        if "shipped" in evaluators:
            shipped = build_extractor({"name": "evaluator", "weights": family.evaluator})
            self.embed["shipped"] = lambda x: shipped(torch.from_numpy(x)).features
            self.classify["shipped"] = lambda x: shipped(torch.from_numpy(x)).logits.argmax(1)
        if "heldout" in evaluators:
            sys.path.insert(0, str(HERE))
            from heldout_evaluator import HeldOutEvaluator

            self.embed["heldout"] = held_out = HeldOutEvaluator(family.heldout)
            self.classify["heldout"] = held_out.predict
        if "pixels" in evaluators:
            self.embed["pixels"] = lambda x: x.reshape(len(x), -1).astype(np.float32) / 255.0
        reference = reference_images(family)
        self.real = {name: embed(reference) for name, embed in self.embed.items()}

    def __call__(self, images: np.ndarray, labels: np.ndarray | None = None) -> dict[str, dict[str, float]]:
        """Scores of ``images``; with ``labels`` (what each was drawn for), each classifier's label accuracy too."""
        from gankit.metrics.scores import fid, kid, prdc

        out = {}
        for name, embed in self.embed.items():
            fake, real = embed(images), self.real[name]
            if name == "pixels":  # no network: KID only (a Gaussian fit of pixels says little)
                out[name] = {"kid": round(kid(real, fake, subsets=50)[0], 5)}
                continue
            out[name] = {
                "fid": round(fid(real, fake), 4),
                "kid": round(kid(real, fake, subsets=50)[0], 5),
                **{k: round(v, 4) for k, v in prdc(real, fake).items()},
            }
            if labels is not None:
                out[name]["label_accuracy"] = round(float(np.mean(self.classify[name](images) == labels)), 4)
        return out


class PointScorer:
    """PacGAN's mode scores of 2D samples: modes captured, the share of high-quality samples (within 3 std of
    their nearest mode), and the reverse KL of the high-quality samples' mode histogram against uniform."""

    evaluators = POINT_EVALUATORS

    def __init__(self, family: Family):
        from gankit.data import load_dataset

        extras = load_dataset(family.data).extras
        self.modes, self.std = np.array(extras["modes"]), float(extras["std"])

    def __call__(self, points: np.ndarray, labels: np.ndarray | None = None) -> dict[str, dict[str, float]]:
        from gankit.metrics.scores import mode_scores

        scores = mode_scores(points.reshape(len(points), 2), self.modes, self.std)
        return {"modes": {k: round(float(v), 4) for k, v in scores.items()}}


class Lazy:
    """A Scorer built on first use: results already stored need no evaluator (nor the held-out one's training)."""

    def __init__(self, build):
        self.build, self.built = build, None

    def __call__(self, images: np.ndarray, labels: np.ndarray | None = None) -> dict[str, dict[str, float]]:
        self.built = self.built or self.build()
        return self.built(images, labels)


# ---------------------------------------------------------------------------------------------- runs


def run_recipe(family: Family, seed: int, folder: Path, steps: int, data_file: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "samples.npz"
    command = [
        sys.executable,
        str(HERE / family.recipe[0]),
        *family.recipe[1:],
        "--data",
        str(data_file),
        "--steps",
        str(steps),
        "--batch-size",
        str(family.batch_size),
        "--seed",
        str(seed),
        "--samples",
        str(family.samples),
        "--sample-seed",
        str(SAMPLE_SEED),
        "--out",
        str(out),
    ]
    start = time.perf_counter()
    trained = not out.is_file()
    if trained:  # else: samples of an earlier run of the same command, scored again rather than retrained
        subprocess.run(command, check=True, stdout=(folder / "log.txt").open("w"), stderr=subprocess.STDOUT)
    with np.load(out) as archive:
        seconds = float(archive["seconds"])
        return {
            "samples": {"train": archive["train"], "eval": archive["eval"]},
            "labels": archive["labels"] if "labels" in archive else None,
            "train_seconds": seconds,
            "wall_seconds": time.perf_counter() - start if trained else seconds,
            "command": " ".join(command[1:]),
        }


def gankit_settings(family: Family, seed: int, steps: int, overrides: list[str]) -> tuple[list[str], dict]:
    """The --set options of a gankit run and the whole configuration they resolve to (the preset file as it is now).
    The budget is images seen: the recipe's steps at its batch, as many steps of the run's own batch."""
    from gankit import load_config

    batch = load_config(family.preset, [o for o in overrides if o.startswith("train.batch_size=")]).train.batch_size
    sets = [f"train.seed={seed}", f"train.steps={steps * family.batch_size // batch}", *overrides]
    return sets, json.loads(json.dumps(load_config(family.preset, sets).to_dict(), default=str))


def trained_settings(config: dict) -> dict:
    """What a run trains with: its resolved configuration but the description, which is prose."""
    return {section: values for section, values in config.items() if section != "description"}


def explicit_settings(family: Family, sets: list[str]) -> set[str]:
    """The ``section.key`` settings the preset's file and a run's --set options name themselves (the rest are
    defaults)."""
    from gankit.config import apply_overrides, read_config_source

    raw = apply_overrides(read_config_source(family.preset), sets)
    return {f"{section}.{key}" for section, values in raw.items() if isinstance(values, dict) for key in values}


def changed_settings(trained: dict, now: dict, explicit: set[str]) -> list[str]:
    """The ``section.key`` settings where a run's configuration differs from what its method resolves to now. A
    setting the run's configuration lacks is an option added to gankit since, and counts as unchanged unless it is
    set explicitly now: gankit adds options whose default keeps the old behaviour (train.lr_decay did), and those
    must not make every stored result stale. One that the run had and that is gone now counts as changed. The
    description, a string rather than a section, is not compared."""

    def flat(config: dict) -> dict:
        return {f"{s}.{k}": v for s, values in config.items() if isinstance(values, dict) for k, v in values.items()}

    before, after = flat(trained), flat(now)
    changed = {k for k in before if k not in after or before[k] != after[k]}
    changed |= {k for k in after.keys() - before.keys() if k in explicit}
    return sorted(changed)


def run_gankit(family: Family, seed: int, folder: Path, steps: int, overrides: list[str]) -> dict:
    from gankit import load_generator

    folder.mkdir(parents=True, exist_ok=True)
    run = folder / "run"
    sets, resolved = gankit_settings(family, seed, steps, overrides)
    command = [sys.executable, "-m", "gankit", "train", family.preset, "--out", str(run), "--quiet"]
    for option in sets:
        command += ["--set", option]
    start = time.perf_counter()
    # a run trained to the end earlier is scored again, not retrained, if its command and its settings (the
    # preset's file may have changed since, under the same command) are the same
    finished = folder / "finished.json"
    earlier = json.loads(finished.read_text()) if finished.is_file() else {}
    if (
        earlier.get("command") == command[3:]
        and "config" in earlier
        and not changed_settings(earlier["config"], resolved, explicit_settings(family, sets))
    ):
        wall = earlier["wall_seconds"]
    else:
        if run.exists():  # a run of another command (a preset changed since): kept beside, never written over
            run.rename(folder / f"run-before-{time.strftime('%Y%m%d-%H%M%S')}")
        env = {**os.environ, **({"OMP_NUM_THREADS": str(family.threads)} if family.threads else {})}
        done = subprocess.run(command, stdout=(folder / "log.txt").open("w"), stderr=subprocess.STDOUT, env=env)
        if done.returncode:
            raise RuntimeError(f"{' '.join(command)} failed: see {folder / 'log.txt'}")
        wall = time.perf_counter() - start
        finished.write_text(
            json.dumps({"command": command[3:], "config": trained_settings(resolved), "wall_seconds": wall})
        )
    samples, chosen = {}, {}
    for name, source in (("best", str(run)), ("last", f"{run}@last")):
        pipeline = load_generator(source)
        drawn = pipeline.sample(family.samples, seed=SAMPLE_SEED)
        samples[name] = drawn.transpose(0, 3, 1, 2).copy() if family.kind == "images" else drawn
        chosen[name] = pipeline.step
    # what the default draw gave each sample (a class-conditional G: label k mod K), as the evaluation knows it
    labels = pipeline.condition.evaluation_inputs(family.samples, {"labels"})[1]["labels"] if family.classes else None
    return {
        "samples": samples,
        "labels": labels,
        "steps_of": chosen,
        "wall_seconds": wall,
        "command": "gankit train " + " ".join(command[4:]),
        "config": trained_settings(resolved),
    }


def changes(result: dict | None, trials: dict[str, list[str]]) -> list[str]:
    """The settings where a stored gankit result's configuration differs from what its method resolves to today
    (``changed_settings``): none means it is current. A preset whose settings changed since makes its results stale
    (they are measured again, and --stored-only says so). Results stored before the configuration was recorded, and
    the recipe's (no preset), cannot be checked and show no change here (``verifiable`` tells them apart)."""
    if not result or "config" not in result:
        return []
    family = FAMILIES[result["family"]]
    try:
        overrides = overrides_of(family, result["method"], trials)
    except KeyError:  # a --try candidate not named in this command: nothing to compare with
        return []
    sets, resolved = gankit_settings(family, result["seed"], result["steps"], overrides)
    return changed_settings(result["config"], resolved, explicit_settings(family, sets))


def verifiable(result: dict) -> bool:
    """Whether a stored result can be checked against its method's configuration today: the recipe's (no preset)
    always; a gankit result only if it recorded the configuration it trained with."""
    return result["method"] == "recipe" or "config" in result


def current(result: dict | None, trials: dict[str, list[str]]) -> bool:
    """Whether a stored result may stand for its method today: it can be checked and nothing changed since. One
    that cannot be checked is trained again (its preset may have changed: cgan-digits' did, and its old results
    were once reused as the new preset's)."""
    return result is not None and verifiable(result) and not changes(result, trials)


def warn_unverified(result: dict) -> None:
    """Say so when a table shows a gankit result that predates the recorded configuration: whether its preset
    changed since cannot be told (the ring's preset did once, and its old results were silently reused)."""
    if not verifiable(result):
        print(
            f"note: {result['family']} {result['method']} seed {result['seed']} was stored before configurations "
            "were recorded: shown as it is (measuring it, without --stored-only, trains it again)",
            file=sys.stderr,
        )


def parse_candidate(text: str) -> tuple[str, list[str]]:
    """``NAME:KEY=VALUE,KEY=VALUE`` (or ``NAME`` alone: the preset as it is) -> (name, overrides). A comma
    starts the next setting only where ``KEY=`` follows, so values may hold commas
    (objective.diffaugment=translation,color)."""
    name, _, settings = text.partition(":")
    if not name:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME or NAME:KEY=VALUE,...")
    return name, [s for s in re.split(r",(?=[\w.]+=)", settings) if s]


def overrides_of(family: Family, method: str, trials: dict[str, list[str]]) -> list[str]:
    """The --set options of a gankit method: none for the preset, a departure undone, or a --try candidate."""
    if method == "gankit":
        return []
    if method in trials:
        return trials[method]
    return family.departures[method.removeprefix("without-")]


def recipe_rank(scores: dict) -> float:
    """How a recipe's sampling mode is chosen (lower is better): the shipped evaluator's FID, or for points the
    share of samples that are not high quality."""
    if "modes" in scores:
        return -scores["modes"]["high_quality"] - scores["modes"]["modes_captured"]
    return scores["shipped"]["fid"] if "shipped" in scores else 0.0


def covers(result: dict | None, evaluators: tuple[str, ...]) -> bool:
    return result is not None and set(evaluators) <= set(next(iter(result["scores"].values())))


def run_folder(out: Path, family_name: str, method: str, seed: int, steps: int | None = None) -> Path:
    """OUT/<family>/<method>/seed-<s>: a run at the family's own budget; seed-<s>-steps-<n> at another one, so a
    longer run never replaces (or is taken for) the table's."""
    family = FAMILIES[family_name]
    budget = "" if steps in (None, family.steps) else f"-steps-{steps}"
    return out / family_name / method / f"seed-{seed}{budget}"


def measure(
    family_name: str,
    method: str,
    seed: int,
    out: Path,
    evaluators: tuple[str, ...],
    scorer,
    steps: int,
    data_file: Path,
    trials: dict[str, list[str]],
    keep: bool,
    rerun: bool = False,
) -> dict:
    """Train and score one run, or return its earlier result (the committed store's, then OUT's cache)."""
    family = FAMILIES[family_name]
    folder = run_folder(out, family_name, method, seed, steps)
    result_path = folder / "result.json"
    if not rerun:
        earlier = stored().get((family_name, method, seed, steps)) if keep else None
        if covers(earlier, evaluators) and current(earlier, trials):
            return earlier
        cached = json.loads(result_path.read_text()) if result_path.is_file() else None
        if covers(cached, evaluators) and cached["steps"] == steps and current(cached, trials):
            if keep:
                store(cached)
            return cached
    folder.mkdir(parents=True, exist_ok=True)
    if method == "recipe":
        ran = run_recipe(family, seed, folder, steps, data_file)
        scored = {mode: scorer(images, ran["labels"]) for mode, images in ran["samples"].items()}
        mode = min(scored, key=lambda m: recipe_rank(scored[m]))
        result = {
            "scores": {"final": scored[mode]},
            "checkpoint": f"last (step {steps}), BatchNorm {mode} mode",
            "train_seconds": ran["train_seconds"],
        }
    else:
        ran = run_gankit(family, seed, folder, steps, overrides_of(family, method, trials))
        result = {
            "scores": {
                "final": scorer(ran["samples"]["best"], ran["labels"]),
                "last": scorer(ran["samples"]["last"], ran["labels"]),
            },
            "checkpoint": f"best (step {ran['steps_of']['best']} of {ran['steps_of']['last']})",
            "best_step": ran["steps_of"]["best"],
            "config": ran["config"],
        }
    result.update(
        {
            "family": family_name,
            "method": method,
            "seed": seed,
            "steps": steps,
            "images_seen": steps * family.batch_size,
            "wall_seconds": round(ran["wall_seconds"], 1),
            "command": ran["command"],
            "machine": machine(),
            "date": datetime.date.today().isoformat(),
        }
    )
    result_path.write_text(json.dumps(result, indent=2) + "\n")
    if keep:
        store(result)
    return result


# ---------------------------------------------------------------------------------------------- table


def mean_sd(values: list[float]) -> str:
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{np.mean(values):.4g} ± {np.std(values, ddof=1):.2g}"


def table(results: list[dict], evaluators: tuple[str, ...]) -> str:
    lines = []
    for family_name in dict.fromkeys(r["family"] for r in results):
        family = FAMILIES[family_name]
        rows = [r for r in results if r["family"] == family_name]
        first = rows[0]
        keys = (
            ("modes_captured", "high_quality", "reverse_kl")
            if family.kind == "points"
            else ("fid", "kid", "precision", "recall", "density", "coverage")
            + (("label_accuracy",) if family.classes else ())
        )
        lines += [
            f"### {family_name}: {first['steps']:,} steps at batch {family.batch_size} "
            f"({first['images_seen']:,} {'points' if family.kind == 'points' else 'images'} seen)",
            "",
            f"Target: {family.target}.",
            "",
            "| method | evaluator | " + " | ".join(COLUMN[k] for k in keys) + " | seeds | checkpoint | wall s |",
            "|---|---|" + "---|" * len(keys) + "---|---|---|",
        ]
        methods = list(dict.fromkeys(r["method"] for r in rows))
        for method in methods:
            runs = [r for r in rows if r["method"] == method]
            earlier = any(best_before_end(r["checkpoint"]) for r in runs)
            for which in ("final", "last") if method != "recipe" and earlier else ("final",):
                label = method if which == "final" else f"{method} @last"
                for evaluator in evaluators:
                    scores = [r["scores"][which][evaluator] for r in runs if evaluator in r["scores"][which]]
                    if not scores:
                        continue
                    cells = [mean_sd([s[k] for s in scores if k in s]) for k in keys]
                    checkpoints = (
                        "; ".join(dict.fromkeys(r["checkpoint"] for r in runs)) if which == "final" else "last"
                    )
                    lines.append(
                        f"| {label} | {evaluator} | "
                        + " | ".join(cells)
                        + f" | {len(scores)} | {checkpoints} | {mean_sd([r['wall_seconds'] for r in runs])} |"
                    )
        lines += ["", *verdicts(family, rows, evaluators), ""]
    return "\n".join(lines)


COLUMN = {
    "fid": "FID",
    "kid": "KID",
    "precision": "precision",
    "recall": "recall",
    "density": "density",
    "coverage": "coverage",
    "label_accuracy": "label accuracy",
    "modes_captured": "modes",
    "high_quality": "high quality",
    "reverse_kl": "reverse KL",
}


def best_before_end(checkpoint: str) -> bool:
    """Whether a run's "best (step B of L)" came before its last step."""
    found = re.search(r"step (\d+) of (\d+)", checkpoint)
    return bool(found) and found.group(1) != found.group(2)


def verdicts(family: Family, rows: list[dict], evaluators: tuple[str, ...]) -> list[str]:
    """Per evaluator: is gankit's preset better than the recipe as the target says (mean FID at most fid_factor x
    the recipe's mean, no seed's FID above the recipe's mean, mean recall and coverage at least the recipe's)?"""
    ours = [r["scores"]["final"] for r in rows if r["method"] == "gankit"]
    theirs = [r["scores"]["final"] for r in rows if r["method"] == "recipe"]
    if not ours or not theirs:
        return []
    if family.kind == "points":
        return point_verdicts(family, ours, theirs)
    out = []
    for evaluator in evaluators:
        if "fid" in theirs[0].get(evaluator, {}):
            recipe_fid = np.mean([t[evaluator]["fid"] for t in theirs])
            fids = [o[evaluator]["fid"] for o in ours]
            checks = [
                (
                    f"mean FID {np.mean(fids):.4g} <= {family.fid_factor:g} x {recipe_fid:.4g}",
                    np.mean(fids) <= family.fid_factor * recipe_fid,
                ),
                (f"worst seed {max(fids):.4g} <= {recipe_fid:.4g}", max(fids) <= recipe_fid),
            ]
            for key in ("label_accuracy",) if family.classes else ("recall", "coverage"):
                a, b = np.mean([o[evaluator][key] for o in ours]), np.mean([t[evaluator][key] for t in theirs])
                checks.append((f"{key.replace('_', ' ')} {a:.3f} >= {b:.3f}", a >= b))
        else:
            a, b = np.mean([o[evaluator]["kid"] for o in ours]), np.mean([t[evaluator]["kid"] for t in theirs])
            checks = [(f"mean KID {a:.4g} <= {b:.4g}", a <= b)]
        met = all(ok for _, ok in checks)
        out.append(
            f"- {evaluator}: **{'met' if met else 'not met'}** ("
            + "; ".join(f"{t} {'yes' if ok else 'no'}" for t, ok in checks)
            + ")"
        )
    return out


def point_verdicts(family: Family, ours: list[dict], theirs: list[dict]) -> list[str]:
    """Every seed captures every mode with at least the family's share of high-quality samples, and gankit's
    mean high-quality share and reverse KL are at least as good as the recipe's."""
    mine, recipe = [o["modes"] for o in ours], [t["modes"] for t in theirs]
    worst = min(mine, key=lambda m: (m["modes_captured"], m["high_quality"]))
    checks = [
        (
            f"worst seed {worst['modes_captured']}/{worst['modes_total']} modes at {worst['high_quality']:.1%} "
            f"high quality (>= {family.min_high_quality:.0%})",
            worst["modes_captured"] == worst["modes_total"] and worst["high_quality"] >= family.min_high_quality,
        )
    ]
    for key, word, sign in (
        ("modes_captured", "modes", 1),
        ("high_quality", "high quality", 1),
        ("reverse_kl", "reverse KL", -1),
    ):
        a, b = np.mean([m[key] for m in mine]), np.mean([m[key] for m in recipe])
        checks.append((f"{word} {a:.3g} {'>=' if sign > 0 else '<='} recipe's {b:.3g}", sign * (a - b) >= 0))
    met = all(ok for _, ok in checks)
    return [
        f"- modes: **{'met' if met else 'not met'}** ("
        + "; ".join(f"{t} {'yes' if ok else 'no'}" for t, ok in checks)
        + ")"
    ]


def reference_words(results: list[dict]) -> str:
    """How many real images the scores of these results compare with, in words."""
    counts = {}
    for name in dict.fromkeys(r["family"] for r in results if FAMILIES[r["family"]].kind == "images"):
        counts[name] = len(reference_images(FAMILIES[name]))
    if len(set(counts.values())) == 1:
        return f"{next(iter(counts.values())):,} real test-split images"
    return "the real test-split images (" + ", ".join(f"{n:,} for {name}" for name, n in counts.items()) + ")"


def write_section(path: Path, body: str, command: str, results: list[dict], block: str = "vs-recipe") -> None:
    images = any(FAMILIES[r["family"]].kind == "images" for r in results)
    header = (
        f"{datetime.date.today().isoformat()} · {results[0]['machine']} · `{command}`\n\n"
        + (
            f"Scores: 10,000 samples (seed 1000) against {reference_words(results)}. `shipped` is gankit's built-in "
            "evaluator (what presets are tuned on and what picks their best checkpoint); `heldout` is "
            "benchmarks/heldout_evaluator.py, which no tuning decision reads; `pixels` is raw-pixel KID. "
            if images
            else "Scores: 2,500 samples (seed 1000) against the mixture's modes (PacGAN protocol: high quality = "
            "within "
            "3 std of the nearest mode; a mode is captured by one high-quality sample). The training seeds "
            "100-102 were never run while tuning (tuning: seed 0, samples of seed 0). "
        )
        + "Each cell: mean ± sd over the seeds.\n"
    )
    text = path.read_text() if path.is_file() else "# Measured results\n"
    begin, end = markers(block)
    section = f"{begin}\n{header}\n{body}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) :]
    else:
        marker = "\n## "
        at = text.find(marker)
        block = f"\n## Presets against their papers' recipes (issue 29)\n\n{section}\n"
        text = text + block if at < 0 else text[:at] + "\n" + block + text[at:]
    path.write_text(text)


def picture(family_name: str, out: Path, path: Path, seed: int = 0) -> Path:
    """The recipe's samples beside the preset's (its best G), training seed ``seed``, drawn as scored: for a
    class-conditional family one row per class, the recipe's 8 columns left of the preset's; otherwise 3 rows of
    16 each, the recipe's above."""
    from gankit import load_generator
    from gankit.images import image_grid, save_picture

    family = FAMILIES[family_name]
    if family.kind != "images":
        raise SystemExit(f"--picture: {family_name} draws points, not images")
    result = stored().get((family_name, "recipe", seed, family.steps))
    ours_run = run_folder(out, family_name, "gankit", seed) / "run"
    if result is None or not ours_run.is_dir():
        raise SystemExit(f"--picture: train the recipe and gankit's seed {seed} of {family_name} first")
    mode = "eval" if "eval mode" in result["checkpoint"] else "train"  # the BatchNorm mode the table scored
    classes = int(train_labels(family)["labels"].max()) + 1 if family.classes else 0
    count = 8 * classes if classes else 48
    drawn = run_folder(out, family_name, "recipe", seed) / "samples.npz"
    if not drawn.is_file():  # the store keeps scores, not samples: another machine's result has none here
        raise SystemExit(
            f"--picture: {drawn} is missing (the recipe's result is stored, its samples are not): "
            f"python benchmarks/vs_recipe.py --families {family_name} --methods recipe --seeds {seed} --rerun "
            "trains and scores it again, replacing the stored result"
        )
    with np.load(drawn) as archive:
        theirs = archive[mode][:count].transpose(0, 2, 3, 1)
    ours = load_generator(ours_run).sample(count, seed=SAMPLE_SEED)
    blank = np.full_like(ours[:1], 255)
    if classes:  # sample k is drawn for label k mod K: row c holds samples c, c + K, c + 2K, ...
        rows = [np.concatenate([theirs[c::classes], blank, ours[c::classes]]) for c in range(classes)]
        cells, columns = np.concatenate(rows), 17
    else:
        cells, columns = np.concatenate([theirs, np.repeat(blank, 16, axis=0), ours]), 16
    return save_picture(image_grid(cells, columns=columns), path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--methods", nargs="+", help="recipe, gankit, without-<departure> (default: all)")
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        help="training seeds (default: the family's: 0 1 2, or the held-out 100 101 102 of the 2D mixtures)",
    )
    parser.add_argument("--steps", type=int, help="override every family's steps (10,000-step rows)")
    parser.add_argument("--out", default="runs/vs-recipe", type=Path)
    parser.add_argument("--tune", action="store_true", help="the shipped evaluator only (what tuning may read)")
    parser.add_argument("--dry-run", action="store_true", help="2 steps each, no scores: checks the scripts run")
    parser.add_argument("--write", type=Path, help="regenerate the table in this markdown file (docs/results.md)")
    parser.add_argument("--block", default="vs-recipe", help="with --write: the name of the generated block to replace")
    parser.add_argument("--rerun", action="store_true", help="train and score again even when a result is stored")
    parser.add_argument(
        "--picture", type=Path, help="write the recipe's samples beside the preset's (seed 0 of the first family)"
    )
    parser.add_argument(
        "--stored-only", action="store_true", help="train nothing: the table of the results already stored"
    )
    parser.add_argument(
        "--try",
        dest="trials",
        type=parse_candidate,
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="with --tune: a candidate preset change, trained as method NAME (the preset with these --set options)",
    )
    args = parser.parse_args(argv)
    if args.trials and not args.tune:
        parser.error("--try is for tuning (--tune): candidates are judged by the shipped evaluator only")
    trials = dict(args.trials)
    if args.picture:
        print(picture(args.families[0], args.out, args.picture))
        return
    out = args.out / "tune" if args.tune else args.out
    results = []
    for family_name in args.families:
        family = FAMILIES[family_name]
        if family.kind == "points":
            evaluators = POINT_EVALUATORS
        else:
            evaluators = ("shipped",) if args.tune else ("shipped", "heldout", "pixels")
        steps = 2 if args.dry_run else args.steps or family.steps
        methods = args.methods or ["recipe", "gankit", *(f"without-{d}" for d in family.departures), *trials]
        data_file = args.out / "data" / f"{family_name}.npz"
        if not data_file.is_file():
            data_file.parent.mkdir(parents=True, exist_ok=True)
            np.savez(data_file, images=train_images(family), **train_labels(family))
        if args.dry_run:
            for method in methods:
                folder = args.out / "dry-run" / family_name / method
                runner = (
                    run_recipe(family, 0, folder, 2, data_file)
                    if method == "recipe"
                    else run_gankit(family, 0, folder, 2, overrides_of(family, method, trials))
                )
                print(f"dry run {family_name} {method}: {len(next(iter(runner['samples'].values())))} samples")
            continue
        scorer = Lazy(
            lambda family=family, evaluators=evaluators: (
                PointScorer(family) if family.kind == "points" else Scorer(family, evaluators)
            )
        )
        for method in methods:
            for seed in args.seeds or family.seeds:
                if args.stored_only:
                    if (found := stored().get((family_name, method, seed, steps))) is not None:
                        if changed := changes(found, trials):
                            print(
                                f"warning: {family_name} {method} seed {seed} was trained with other settings than "
                                f"its preset resolves to now ({', '.join(changed)} changed since): rerun it",
                                file=sys.stderr,
                            )
                        warn_unverified(found)
                        results.append(found)
                    continue
                result = measure(
                    family_name,
                    method,
                    seed,
                    out,
                    evaluators,
                    scorer,
                    steps,
                    data_file,
                    trials,
                    keep=not args.tune,
                    rerun=args.rerun,
                )
                shown = {
                    e: {
                        k: v
                        for k, v in result["scores"]["final"][e].items()
                        if k in ("fid", "recall", "coverage", "modes_captured", "high_quality")
                    }
                    for e in evaluators
                }
                print(
                    f"{family_name} {method} seed {seed}: {result['checkpoint']}, "
                    f"{result['wall_seconds']:.0f} s: {shown}",
                    flush=True,
                )
                results.append(result)
    if results:
        evaluators = tuple(dict.fromkeys(e for r in results for e in r["scores"]["final"]))
        print(table(results, evaluators))
        if args.write and not args.tune:
            write_section(
                args.write,
                table(results, evaluators),
                "python benchmarks/vs_recipe.py " + " ".join(argv or sys.argv[1:]),
                results,
                args.block,
            )


if __name__ == "__main__":
    main()
