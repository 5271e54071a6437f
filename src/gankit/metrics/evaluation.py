"""Evaluation: samples -> features -> statistics -> metrics, with the protocol attached.

``evaluate_generator`` draws ``num_samples`` samples from a generator, puts
them and a reference split of the real data through one feature extractor, and
computes the requested metrics. ``evaluate_real_vs_real`` does the same with
the dataset's test split in place of the generator: the floor a generator's
score should be read against. Every result is one row: the metric values plus
a ``protocol`` card saying exactly how they were measured.

Reference features are cached on disk under
``<cache>/reference/<sha256>.npz``, keyed by the content of the selected real
images and the extractor's card, so a changed dataset or evaluator can never
reuse stale statistics.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import gankit
from gankit.data import Dataset, has_test_split, load_dataset, with_split
from gankit.files import atomic_write_bytes, cache_dir
from gankit.metrics import scores
from gankit.metrics.classifier import builtin_evaluators, evaluator_for_data
from gankit.metrics.code_monotonicity import code_monotonicity, continuous_inputs
from gankit.metrics.extractors import Extractor, Features, build_extractor
from gankit.registry import ConfigError


@dataclasses.dataclass(frozen=True)
class Metric:
    name: str
    needs: str  # "features", "logits", "points" or "generator" (scores the pipeline itself)
    compute: Callable[..., dict[str, float]]
    keys: tuple[str, ...] = ()  # the values it reports
    lower_is_better: tuple[str, ...] = ()
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    targets: tuple[str, ...] = ()  # what it knows of each sample from the condition (Condition.evaluation_inputs)
    # Scored by default whenever the generator's condition provides its targets without changing the draw
    # (a class-conditional G's label accuracy): metrics a variant brings are discovered, not asked for by name.
    discovered: bool = False


def _fid(real: Features, fake: Features, **_) -> dict[str, float]:
    return {"fid": scores.fid(real.features, fake.features)}


def _kid(real: Features, fake: Features, seed: int = 0, **_) -> dict[str, float]:
    mean, std = scores.kid(real.features, fake.features, subsets=100, subset_size=1000, seed=seed)
    return {"kid": mean, "kid_std": std}


def _inception_score(real: Features, fake: Features, **_) -> dict[str, float]:
    mean, std = scores.inception_score(fake.logits, splits=10)
    return {"is": mean, "is_std": std}


def _prdc(real: Features, fake: Features, **_) -> dict[str, float]:
    return scores.prdc(real.features, fake.features, k_pr=3, k_dc=5)


def _needs_labels(name: str, *sides: Features) -> None:
    if any(side.labels is None for side in sides):
        raise ConfigError(f"metric {name!r} needs a class-conditional generator and a labelled dataset")


def _label_accuracy(real: Features, fake: Features, **_) -> dict[str, float]:
    _needs_labels("labels", fake)
    return {"label_accuracy": scores.label_accuracy(fake.logits, fake.labels)}


def _intra_fid(real: Features, fake: Features, **_) -> dict[str, float]:
    _needs_labels("intra_fid", real, fake)
    return scores.intra_fid(real.features, real.labels, fake.features, fake.labels)


def _code_accuracy(real: Features, fake: Features, **_) -> dict[str, float]:
    if "codes" not in fake.targets:
        raise ConfigError("metric 'code_accuracy' needs an InfoGAN generator with a categorical code")
    return scores.matched_accuracy(fake.targets["codes"], fake.logits.argmax(axis=1))


def _code_monotonicity(real: Features, fake: Features, pipeline=None, seed: int = 0, **_) -> dict[str, Any]:
    names = [] if pipeline is None else continuous_inputs(pipeline)
    if not names:
        raise ConfigError("metric 'code_monotonicity' needs a generator with a continuous input (InfoGAN's codes)")
    results = [code_monotonicity(pipeline, name, seed=seed) for name in names]
    rho = [r["statistics"][r["best"]]["rho"] for r in results]
    return {
        "code_monotonicity": float(np.mean(np.abs(rho))),
        "code_monotonicity_per_code": rho,
        "code_statistic_per_code": [r["best"] for r in results],
    }


def _classes(real: Features, fake: Features, **_) -> dict[str, float]:
    return scores.class_histogram_scores(real.logits, fake.logits)


def _modes(real: Features, fake: Features, data: Dataset | None = None, **_) -> dict[str, float]:
    if data is None or "modes" not in data.extras:
        raise ConfigError("metric 'modes' needs a 2D mixture dataset (ring or grid)")
    return scores.mode_scores(fake.features, np.array(data.extras["modes"]), data.extras["std"])


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("fid", "features", _fid, ("fid",), ("fid",)),
        Metric(
            "kid",
            "features",
            _kid,
            ("kid", "kid_std"),
            ("kid",),
            {"subsets": 100, "subset_size": 1000, "kernel": "(x.y/d + 1)^3"},
        ),
        Metric("is", "logits", _inception_score, ("is", "is_std"), (), {"splits": 10}),
        Metric(
            "prdc",
            "features",
            _prdc,
            ("precision", "recall", "density", "coverage"),
            (),
            {"k_precision_recall": 3, "k_density_coverage": 5},
        ),
        Metric(
            "classes",
            "logits",
            _classes,
            ("class_kl", "max_class_share", "classes_missing", "class_histogram"),
            ("class_kl", "max_class_share", "classes_missing"),
            {"classes": "argmax of the evaluator's logits"},
        ),
        Metric(
            "labels",
            "logits",
            _label_accuracy,
            ("label_accuracy",),
            (),
            {"label_accuracy": "fraction of samples the evaluator assigns to the label they were drawn for"},
            ("labels",),
            True,
        ),
        Metric(
            "intra_fid",
            "features",
            _intra_fid,
            ("intra_fid", "intra_fid_per_class"),
            ("intra_fid",),
            {"intra_fid": "mean over classes of the FID between real and generated samples of the class"},
            ("labels",),
        ),
        Metric(
            "code_accuracy",
            "logits",
            _code_accuracy,
            ("code_accuracy", "code_to_class"),
            (),
            {
                "code_accuracy": "InfoGAN cat0 = k mod K for sample k; values matched to evaluator classes by the "
                "Hungarian algorithm"
            },
            ("codes",),
        ),
        Metric(
            "code_monotonicity",
            "generator",
            _code_monotonicity,
            ("code_monotonicity", "code_monotonicity_per_code", "code_statistic_per_code"),
            (),
            {
                "code_monotonicity": "per continuous code: 64 rows of fixed inputs, code swept -2..2 in 9 steps; "
                "Spearman rho of code value vs intensity, width, height, slant per row, mean "
                "over rows; the statistic with the largest |rho| is reported, and the mean "
                "|rho| over codes"
            },
        ),
        Metric(
            "modes",
            "points",
            _modes,
            ("modes_captured", "modes_total", "high_quality", "reverse_kl"),
            ("reverse_kl",),
            {"high_quality_within_stds": 3},
        ),
    )
}


GENERATOR_ONLY_METRICS = ("code_accuracy", "code_monotonicity")  # need a generator's inputs: no real-vs-real floor


def lower_is_better(key: str) -> bool:
    return any(key in m.lower_is_better for m in METRICS.values())


def parse_metrics(names: str | list[str]) -> list[str]:
    names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}; metrics: {', '.join(METRICS)}")
    return names


def default_metrics(extractor: Extractor, condition=None) -> list[str]:
    """fid, kid, prdc, and is when the extractor gives class logits; with a generator's ``condition``, also the
    discovered metrics (``Metric.discovered``) whose targets it provides at its default draw and whose inputs the
    extractor gives (label accuracy for a class-conditional G under a classifier)."""
    names = ["fid", "kid", "prdc", *(["is"] if extractor.has_logits else [])]
    for metric in METRICS.values():
        if not metric.discovered or condition is None or (metric.needs == "logits" and not extractor.has_logits):
            continue
        given, targets = condition.evaluation_inputs(1, set(metric.targets))
        if not given and set(metric.targets) <= set(targets):
            names.append(metric.name)
    return names


def default_extractor(data_section: dict[str, Any], kind: str) -> dict[str, Any]:
    """Raw values for points; the built-in evaluator named after the dataset for images."""
    if kind == "points":
        return {"name": "raw"}
    name = data_section["name"]
    if name in builtin_evaluators():
        return {"name": "evaluator", "weights": name}
    trained = evaluator_for_data(data_section)
    if trained.is_file():
        return {"name": "evaluator", "weights": str(trained)}
    options = " ".join(
        f"--set data.{k}={v}"
        for k, v in data_section.items()
        if k not in ("name", "split", "limit", "strict", "download") and v not in (None, "")
    )
    raise ConfigError(
        f"no evaluator for this data yet (built-in ones: {', '.join(sorted(builtin_evaluators()))}); train one "
        f"(self-supervised when the images have no labels) with:\n  gankit evaluator train --dataset {name} {options}\n"
        "and run this command again: gankit finds it (or pass --evaluator PATH)"
    )


def select(dataset: Dataset, n: int, seed: int) -> torch.Tensor:
    """``n`` rows chosen without replacement by ``seed`` (all rows, in order, when n >= N)."""
    return dataset.x[selection(dataset, n, seed)]


def selection(dataset: Dataset, n: int, seed: int) -> torch.Tensor:
    """The row indices :func:`select` takes."""
    if n >= len(dataset):
        return torch.arange(len(dataset))
    return torch.from_numpy(np.sort(np.random.default_rng(seed).choice(len(dataset), n, replace=False)))


def labels_of(dataset: Dataset, index: torch.Tensor) -> np.ndarray | None:
    return None if dataset.labels is None else dataset.labels.cpu()[index].numpy()


def content_key(x: torch.Tensor, extractor: Extractor) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(extractor.card, sort_keys=True, default=str).encode())
    digest.update(str(tuple(x.shape)).encode())
    digest.update(x.contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def reference_features(x: torch.Tensor, extractor: Extractor, use_cache: bool = True) -> tuple[Features, str, bool]:
    """Features of real samples ``x``, from the cache when this exact content was seen before."""
    key = content_key(x, extractor)
    path = cache_dir() / "reference" / f"{key}.npz"
    if use_cache and path.is_file():
        with np.load(path) as cached:
            logits = cached["logits"] if "logits" in cached.files else None
            return Features(cached["features"], logits), key, True
    features = extractor(x)
    if use_cache:
        import io

        buffer = io.BytesIO()
        arrays = {"features": features.features}
        if features.logits is not None:
            arrays["logits"] = features.logits
        np.savez(buffer, **arrays)
        atomic_write_bytes(path, buffer.getvalue())
    return features, key, False


def compute(
    metrics: list[str], real: Features, fake: Features, seed: int, data: Dataset | None, pipeline=None
) -> dict[str, float]:
    values: dict[str, float] = {}
    for name in metrics:
        metric = METRICS[name]
        if metric.needs == "logits" and fake.logits is None:
            raise ConfigError(f"metric {name!r} needs class logits; this extractor gives none")
        values.update(metric.compute(real, fake, seed=seed, data=data, pipeline=pipeline))
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in values.items()}


def protocol_card(
    extractor: Extractor,
    metrics: list[str],
    num_generated: int,
    num_reference: int,
    reference: dict[str, Any],
    seed: int,
    reference_cached: bool,
) -> dict[str, Any]:
    return {
        **extractor.card,
        "metrics": {name: METRICS[name].settings for name in metrics},
        "num_generated": num_generated,
        "num_reference": num_reference,
        "reference": reference,
        "seed": seed,
        "reference_features_cached": reference_cached,
        "gankit_version": gankit.__version__,
    }


@dataclasses.dataclass(frozen=True)
class Shard:
    """This process's part of an evaluation shared by ``world`` processes: it generates and embeds samples
    ``part(n)`` of the n, and ``gather`` joins every process's rows in rank order (on every process)."""

    rank: int
    world: int
    gather: Callable[[np.ndarray], np.ndarray]

    def part(self, n: int) -> tuple[int, int]:
        return self.rank * n // self.world, (self.rank + 1) * n // self.world


class Stopwatch:
    """Seconds spent in each named part of a piece of work, and in all."""

    def __init__(self):
        self.laps: dict[str, float] = {}
        self.start = self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self.last, 2)
        self.laps["total"] = round(now - self.start, 2)
        self.last = now


def describe_seconds(laps: dict[str, float]) -> str:
    """'evaluated in 41.2 s: sampling 30.1 s, sample features 9.0 s, ...'"""
    parts = ", ".join(f"{name} {value:.1f} s" for name, value in laps.items() if name != "total")
    return f"evaluated in {laps.get('total', 0.0):.1f} s ({parts})"


def slice_inputs(given: dict[str, Any], begin: int, end: int) -> dict[str, Any]:
    """Samples begin .. end-1's part of ``sample`` keywords whose arrays hold one value per sample (nested dicts:
    InfoGAN's ``codes``)."""
    return {
        k: slice_inputs(v, begin, end) if isinstance(v, dict) else v[begin:end] if isinstance(v, np.ndarray) else v
        for k, v in given.items()
    }


def evaluate_generator(
    pipeline,
    metrics: list[str] | str | None = None,
    num_samples: int = 10000,
    reference_split: str = "train",
    num_reference: int = 10000,
    seed: int = 0,
    extractor: dict[str, Any] | Extractor | None = None,
    use_cache: bool = True,
    progress: bool = False,
    data: Dataset | None = None,
    shard: Shard | None = None,
) -> dict[str, Any]:
    """Score ``pipeline`` (a GeneratorPipeline) against its training dataset's ``reference_split``. ``metrics``
    None: fid, kid, prdc, and is when the extractor gives class logits (not a self-supervised evaluator).

    ``data`` may pass that split already loaded (the trainer does), to skip loading it again. With ``shard``
    each process generates and embeds its share of the samples (sample k of ``seed`` is the same whoever
    draws it) and the features are gathered: every process gets the numbers one process would.
    """
    clock = Stopwatch()
    data_section = with_split(pipeline.config.data, reference_split)
    data = load_dataset(data_section) if data is None else data
    if isinstance(extractor, Extractor):  # built by the caller (the trainer builds its evaluator once)
        extractor_obj = extractor
    else:
        extractor_obj = build_extractor(extractor or default_extractor(data_section, data.kind))
    extractor_obj.progress = progress
    metrics = parse_metrics(default_metrics(extractor_obj, pipeline.condition) if metrics is None else metrics)
    index = selection(data, num_reference, seed)
    real_x = data.x[index]
    clock.lap("loading")
    real, key, cached = reference_features(real_x, extractor_obj, use_cache)
    clock.lap("reference features")
    real.labels = labels_of(data, index)
    wanted = {t for name in metrics for t in METRICS[name].targets}
    given, targets = pipeline.condition.evaluation_inputs(num_samples, wanted)  # what sample k is drawn with, for
    begin, end = (0, num_samples) if shard is None else shard.part(num_samples)
    samples = pipeline.sample(
        end - begin, seed=seed, start=begin, batch_size=500, progress=progress, **slice_inputs(given, begin, end)
    )
    fake_x = (
        torch.from_numpy(samples).permute(0, 3, 1, 2).contiguous() if samples.ndim == 4 else torch.from_numpy(samples)
    )
    clock.lap("sampling")
    extractor_obj.check_input(fake_x)
    fake = extractor_obj(fake_x)
    clock.lap("sample features")
    if shard is not None:
        fake = Features(shard.gather(fake.features), None if fake.logits is None else shard.gather(fake.logits))
    fake.labels, fake.targets = targets.get("labels"), targets
    values = compute(metrics, real, fake, seed, data, pipeline)
    clock.lap("metrics")
    warnings_ = score_warnings(values, real.features, fake.features)
    reference = {"dataset": data_section, "split": reference_split, "subset_seed": seed, "content_sha256": key}
    protocol = protocol_card(extractor_obj, metrics, num_samples, len(real_x), reference, seed, cached)
    protocol.update({"checkpoint_step": pipeline.step, "ema_generator": pipeline.ema})
    return {
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "step": pipeline.step,
        "ema": pipeline.ema,
        "generated": {"seed": seed, "num_samples": num_samples},
        "metrics": values,
        **({"warnings": warnings_} if warnings_ else {}),
        "protocol": protocol,
        "seconds": clock.laps,
    }


LOW_SPREAD = 0.1  # samples whose features spread less than this share of the real data's barely differ
PRECISION_WITHOUT_RECALL = (0.5, 0.05)  # precision at least this, recall below that: precision flatters


def score_warnings(values: dict[str, Any], real: np.ndarray, fake: np.ndarray) -> list[str]:
    """What a reader of the scores should not miss: samples that barely differ from each other (an untrained or
    collapsed G), and a high precision with almost no recall (samples bunched in a small part of the real data:
    precision then says little)."""
    out = []
    spread = float(
        np.asarray(fake, np.float64).std(axis=0).mean() / max(np.asarray(real, np.float64).std(axis=0).mean(), 1e-12)
    )
    if spread < LOW_SPREAD:
        out.append(
            f"the samples barely differ from one another: their features spread {spread:.1%} as much as the real "
            "data's (an untrained or collapsed generator); read FID, KID and coverage, not precision"
        )
    precision, recall = values.get("precision"), values.get("recall")
    if (
        precision is not None
        and recall is not None
        and precision >= PRECISION_WITHOUT_RECALL[0]
        and recall < PRECISION_WITHOUT_RECALL[1]
    ):
        out.append(
            f"precision {precision:.3f} with recall {recall:.3f}: the samples sit in a small part of the real "
            "data, where precision is easy; FID, KID and coverage tell more"
        )
    return out


METRIC_ORDER = ("fid", "kid", "kid_std", "coverage", "density", "recall", "precision")  # the telling ones first


def evaluate_real_vs_real(
    data_section: dict[str, Any],
    metrics: list[str] | str | None = None,
    num_samples: int = 10000,
    num_reference: int = 10000,
    seed: int = 0,
    extractor: dict[str, Any] | None = None,
    use_cache: bool = True,
    data: Dataset | None = None,
) -> dict[str, Any]:
    """The floor: real images scored as if they were generated, against the reference (the train split): the test
    split's images, or for a source with one split only (a folder of images) its images outside the reference
    subset (two disjoint halves when the reference takes them all; the floor's sizes are then smaller). ``data``
    may pass the train split already loaded."""
    train_section = with_split(data_section, "train")
    train = load_dataset(train_section) if data is None else data
    if has_test_split(data_section):
        test_section = with_split(data_section, "test")
        test = load_dataset(test_section)
        real_index, fake_index = selection(train, num_reference, seed), selection(test, num_samples, seed + 1)
        generated = {"dataset": test_section, "split": "test", "subset_seed": seed + 1}
    else:
        test = train
        real_index = selection(train, num_reference, seed)
        rest = np.setdiff1d(np.arange(len(train)), real_index.numpy())
        which = "train, images outside the reference subset"
        if len(rest) == 0:  # the reference is the whole source: its two halves
            order = np.random.default_rng(seed).permutation(len(train))
            real_index, rest = torch.from_numpy(np.sort(order[: len(train) // 2])), np.sort(order[len(train) // 2 :])
            which = "train: one half of it against the other half as the reference"
        if len(rest) < 2:
            raise ConfigError(f"{train.name}: too few images ({len(train)}) for a real-vs-real floor")
        fake_index = torch.from_numpy(
            rest[np.sort(np.random.default_rng(seed + 1).permutation(len(rest))[:num_samples])]
        )
        generated = {"dataset": train_section, "split": which, "subset_seed": seed + 1}
    extractor_obj = build_extractor(extractor or default_extractor(train_section, train.kind))
    metrics = parse_metrics(default_metrics(extractor_obj) if metrics is None else metrics)
    real_x, fake_x = train.x[real_index], test.x[fake_index]
    real, key, cached = reference_features(real_x, extractor_obj, use_cache)
    fake, _, _ = reference_features(fake_x, extractor_obj, use_cache)
    real.labels, fake.labels = labels_of(train, real_index), labels_of(test, fake_index)
    values = compute(metrics, real, fake, seed, train)
    reference = {"dataset": train_section, "split": "train", "subset_seed": seed, "content_sha256": key}
    return {
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "real_vs_real": True,
        "generated": {**generated, "num_samples": len(fake_x)},
        "metrics": values,
        "protocol": protocol_card(extractor_obj, metrics, len(fake_x), len(real_x), reference, seed, cached),
    }


def format_value(value: Any) -> str:
    """A metric value in a few characters: a number, or a histogram as space-separated shares."""
    if isinstance(value, list):
        return "[" + " ".join(v if isinstance(v, str) else f"{v:.2f}" for v in value) + "]"
    return f"{value:.4g}"


def format_table(row: dict[str, Any], floor: dict[str, Any] | None = None) -> str:
    """A readable table of a row's metrics (and their ratio to a real-vs-real floor, when given)."""
    p = row["protocol"]
    lines = [
        f"extractor {p['extractor']} (sha256 {str(p.get('weights_sha256'))[:12]}), "
        f"{p['num_generated']} generated vs {p['num_reference']} "
        f"reference ({p['reference']['split']} split), seed {p['seed']}",
        f"{'metric':14s} {'value':>12s}" + (f" {'floor':>12s} {'ratio':>8s}" if floor else ""),
    ]
    if floor and "generated" in floor:  # what the floor compared
        lines.insert(
            1,
            f"floor: {floor['generated']['num_samples']} real images ({floor['generated']['split']}) scored "
            f"as generated, vs {floor['protocol']['num_reference']} reference",
        )
    ordered = sorted(
        row["metrics"].items(), key=lambda kv: METRIC_ORDER.index(kv[0]) if kv[0] in METRIC_ORDER else len(METRIC_ORDER)
    )
    for key, value in ordered:
        if isinstance(value, list):  # a histogram or per-class/per-code values
            lines.append(f"{key:14s} {format_value(value)}")
            continue
        line = f"{key:14s} {value:12.5g}"
        if floor and key in floor["metrics"]:
            base = floor["metrics"][key]
            noise = floor["metrics"].get(f"{key}_std", 0.0)
            if key.endswith("_std"):
                ratio = ""
            elif base <= 0 or abs(base) <= noise:
                ratio = (
                    "n/a"  # the floor is zero, negative (unbiased KID) or within its own noise: no ratio means anything
                )
            else:
                ratio = f"{value / base:.3g}"
            line += f" {base:12.5g} {ratio:>8s}"
        lines.append(line)
    lines += [f"WARNING: {w}" for w in row.get("warnings", [])]
    return "\n".join(lines)


def append_row(path: Path, row: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
