"""Scoring G during training (``train.eval_every``): rows in metrics.jsonl, the best G kept as an export."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from torch import nn

from gankit.config import RunConfig
from gankit.data import Dataset
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
from gankit.metrics.extractors import build_extractor
from gankit.monitor import Monitor
from gankit.training.checkpoints import TrainingError
from gankit.training.export import export_generator
from gankit.variants import Condition


class PeriodicEvaluation:
    """Scores G during training, appends to metrics.jsonl, keeps best/generator.safetensors."""

    def __init__(self, run_dir: Path, extractor: dict[str, Any], cfg, dataset: Dataset, condition: Condition):
        self.run_dir, self.extractor, self.cfg, self.condition = run_dir, extractor, cfg, condition
        self.dataset = dataset.to("cpu")  # the data being trained on: the reference, without loading it again
        self.best_path = run_dir / "best" / "metrics.json"
        self.best = json.loads(self.best_path.read_text())["metrics"][cfg.eval_best] if self.best_path.is_file() else None

    def run(self, config: RunConfig, step: int, model: nn.Module, ema: bool, device, monitor: Monitor, say,
            shard: Shard | None = None) -> None:  # fmt: skip
        """Score G (every process its share of the samples when ``shard`` is given: all processes call this,
        all get the same row and alarms, process 0 writes)."""
        pipeline = GeneratorPipeline(copy.deepcopy(model), config, step, ema, device, self.condition)
        cfg = self.cfg
        row = evaluate_generator(pipeline, cfg.eval_metrics, cfg.eval_samples, "train", 10000, cfg.seed,
                                 self.extractor, data=self.dataset, shard=shard)  # fmt: skip
        row["source"] = "training"
        row["alarms"] = monitor.on_eval(step, row["metrics"])
        if shard is not None and shard.rank:
            return
        append_row(self.run_dir / "metrics.jsonl", row)
        value = row["metrics"][cfg.eval_best]
        lower = lower_is_better(cfg.eval_best)
        improved = self.best is None or (value < self.best if lower else value > self.best)
        summary = ", ".join(f"{k} {format_value(v)}" for k, v in row["metrics"].items())
        say(f"eval step {step}: {summary}{' (best so far)' if improved else ''}")
        for alarm in row["alarms"]:
            say(f"ALARM {alarm}")
        if improved:
            self.best = value
            export_generator(self.run_dir / "best" / "generator.safetensors", model, self.condition, config, step, ema)
            atomic_write_text(self.best_path, json.dumps(row, indent=2) + "\n")


def plan_evaluation(config: RunConfig, dataset: Dataset, run_dir: Path, condition: Condition) -> PeriodicEvaluation:
    """Check the evaluation settings before training starts (an unknown metric fails now, not at step N)."""
    cfg = config.train
    if condition.needs_input:
        raise TrainingError(f"train.eval_every needs a generator that samples on its own; this one is "
                            f"{condition.summary()}: set train.eval_every=0 and score the export afterwards")
    names = parse_metrics(cfg.eval_metrics)
    keys = [k for n in names for k in METRICS[n].keys if not k.endswith(("histogram", "per_class", "to_class", "per_code"))]  # scalars
    if cfg.eval_best not in keys:
        raise TrainingError(f"train.eval_best={cfg.eval_best!r} is not reported by train.eval_metrics {names}; choose one of {keys}")
    extractor = {"name": "evaluator", "weights": cfg.eval_evaluator} if cfg.eval_evaluator else default_extractor(config.data, dataset.kind)
    build_extractor(extractor)
    return PeriodicEvaluation(run_dir, extractor, cfg, dataset, condition)
