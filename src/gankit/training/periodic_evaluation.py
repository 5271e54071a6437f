"""Scoring G during training (``train.eval_every``): rows in metrics.jsonl, the best G kept as an export."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from gankit.config import RunConfig
from gankit.data import Dataset
from gankit.errors import ConfigError
from gankit.files import atomic_write_text
from gankit.inference import GeneratorPipeline
from gankit.metrics.evaluation import (
    METRICS,
    append_row,
    default_extractor,
    Shard,
    evaluate_generator,
    format_value,
    lower_is_better,
    parse_metrics,
)
from gankit.metrics.extractors import Extractor, build_extractor
from gankit.monitor import Monitor
from gankit.training.checkpoints import TrainingError
from gankit.training.generator_file import export_generator
from gankit.variants import Condition


class PeriodicEvaluation:
    """Scores G during training, appends to metrics.jsonl, keeps best/generator.safetensors."""

    def __init__(self, run_dir: Path, extractor: Extractor, cfg, dataset: Dataset, condition: Condition):
        self.run_dir, self.extractor, self.cfg, self.condition = run_dir, extractor, cfg, condition
        self.dataset = dataset.to("cpu")  # the data being trained on: the reference, without loading it again
        self.best_path = run_dir / "best" / "metrics.json"
        stored = json.loads(self.best_path.read_text()) if self.best_path.is_file() else None
        self.best = stored["metrics"][cfg.eval_best] if stored else None
        self.best_step = stored.get("step") if stored else None
        self.last: tuple[int, float] | None = None  # (step, value) of the latest evaluation
        self.evaluations, self.seconds = 0, 0.0  # what the evaluations cost this process (the <= 10% budget)

    def summary(self) -> dict[str, Any] | None:
        """The best evaluation against the last one: what the run summary says."""
        if self.best is None or self.last is None:
            return None
        return {
            "metric": self.cfg.eval_best,
            "best_step": self.best_step,
            "best": self.best,
            "last_step": self.last[0],
            "last": self.last[1],
            "lower_is_better": lower_is_better(self.cfg.eval_best),
            "evaluations": self.evaluations,
            "seconds": round(self.seconds, 2),
        }

    def run(
        self,
        config: RunConfig,
        step: int,
        model: nn.Module,
        ema: bool,
        device,
        monitor: Monitor,
        say,
        shard: Shard | None = None,
    ) -> dict[str, Any]:
        """Score G (every process its share of the samples when ``shard`` is given: all processes call this,
        all get the same row and alarms, process 0 writes); returns the metrics."""
        start = time.perf_counter()
        pipeline = GeneratorPipeline(copy.deepcopy(model), config, step, ema, device, self.condition)
        cfg = self.cfg
        # The global random state is training's (a condition's values or a dropout layer may draw from it) and
        # scoring must not move it: building the evaluator's network alone draws from it. A run that evaluates is
        # the run that does not, step for step.
        device = torch.device(device)
        with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
            row = evaluate_generator(
                pipeline,
                cfg.eval_metrics,
                cfg.eval_samples,
                "train",
                10000,
                cfg.seed,
                self.extractor,
                data=self.dataset,
                shard=shard,
            )
        row["source"] = "training"
        row["seconds"] = round(time.perf_counter() - start, 3)
        self.evaluations, self.seconds = self.evaluations + 1, self.seconds + row["seconds"]
        row["alarms"] = monitor.on_eval(step, row["metrics"])
        if shard is not None and shard.rank:
            return row["metrics"]
        append_row(self.run_dir / "metrics.jsonl", row)
        value = row["metrics"][cfg.eval_best]
        lower = lower_is_better(cfg.eval_best)
        improved = self.best is None or (value < self.best if lower else value > self.best)
        self.last = (step, value)
        summary = ", ".join(f"{k} {format_value(v)}" for k, v in row["metrics"].items())
        say(f"eval step {step}: {summary}{' (best so far)' if improved else ''} ({row['seconds']:.1f} s)")
        for alarm in row["alarms"]:
            say(f"ALARM {alarm}")
        if improved:
            self.best, self.best_step = value, step
            export_generator(self.run_dir / "best" / "generator.safetensors", model, self.condition, config, step, ema)
            atomic_write_text(self.best_path, json.dumps(row, indent=2) + "\n")
        return row["metrics"]


def plan_evaluation(
    config: RunConfig, dataset: Dataset, run_dir: Path, condition: Condition, log: Callable[[str], None] = print
) -> PeriodicEvaluation:
    """Check the evaluation settings before training starts (an unknown metric fails now, not at step N). With no
    evaluator for the data (a folder of one's own images before ``gankit evaluator train``), raw pixels: a crude
    but network-free yardstick, enough to tell a checkpoint that collapsed from one that did not."""
    cfg = config.train
    if condition.needs_input and not condition.evaluates_on_training_inputs:
        raise TrainingError(
            f"train.eval_every needs a generator that samples on its own or from the training data's inputs; this "
            f"one is {condition.summary()}: set train.eval_every=0 and score the export afterwards"
        )
    names = parse_metrics(cfg.eval_metrics)
    keys = [
        k for n in names for k in METRICS[n].keys if not k.endswith(("histogram", "per_class", "to_class", "per_code"))
    ]  # scalars
    if cfg.eval_best not in keys:
        raise TrainingError(
            f"train.eval_best={cfg.eval_best!r} is not reported by train.eval_metrics {names}; choose one of {keys}"
        )
    if cfg.eval_evaluator:
        extractor = {"name": "evaluator", "weights": cfg.eval_evaluator}
    else:
        try:
            extractor = default_extractor(config.data, dataset.kind)
        except ConfigError:
            extractor = {"name": "raw"}
            log(
                "train.eval_every: no evaluator for this data yet, so the periodic evaluation (and the best generator "
                "it keeps) scores raw pixels; `gankit evaluator train` makes a better yardstick"
            )
    with torch.random.fork_rng(devices=[]):  # the evaluator's network is built on the CPU: not training's draws
        built = build_extractor(extractor)  # once: every evaluation scores with it
    return PeriodicEvaluation(run_dir, built, cfg, dataset, condition)
