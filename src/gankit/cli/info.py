"""``gankit list | info``: what gankit offers, and what a run folder or file holds."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gankit.cli.common import control_flag
from gankit.errors import UsageError


def cmd_list(args) -> int:
    from gankit.config import preset_names, read_preset
    from gankit.data import DATASETS
    from gankit.losses import LOSSES
    from gankit.networks import MODELS
    from gankit.variants import VARIANTS

    from gankit.networks.text_encoders import TEXT_ENCODERS

    registries = (
        ("models", MODELS),
        ("losses", LOSSES),
        ("objectives", VARIANTS),
        ("datasets", DATASETS),
        ("text encoders", TEXT_ENCODERS),
    )
    for title, registry in registries:
        print(f"{title}:")
        for entry in registry.items():
            print(f"  {entry.name:16s} {entry.summary}")
    from gankit.metrics.evaluation import METRICS
    from gankit.metrics.classifier import builtin_evaluators
    from gankit.metrics.extractors import EXTRACTORS

    print("feature extractors:")
    for entry in EXTRACTORS.items():
        print(f"  {entry.name:16s} {entry.summary}")
    print(f"built-in evaluators: {', '.join(sorted(builtin_evaluators())) or 'none'}")
    print("metrics:")
    for metric in METRICS.values():
        print(f"  {metric.name:16s} reports {', '.join(metric.keys)}")
    print("presets:")
    for name in preset_names():
        description = read_preset(name).get("description", "")
        print(f"  {name:24s} {description[:90] + ('...' if len(description) > 90 else '')}")
    return 0


def cmd_info(args) -> int:
    """A run folder, export or checkpoint: its generator, every config section, checkpoints and last log row.
    A preset or config file (or a run folder with nothing trained yet): every section of the resolved config."""
    from gankit.formats import list_checkpoints

    source = Path(args.source)
    trained = (
        source.is_file()
        and source.suffix == ".safetensors"
        or source.is_dir()
        and ((source / "generator.safetensors").is_file() or bool(list_checkpoints(source / "checkpoints")))
    )
    if not trained or args.set:
        from gankit.config import load_config, preset_names

        if source.is_file() and source.suffix == ".safetensors":
            raise UsageError("--set changes a preset or config before training; a trained file's config is fixed")
        config = load_config(args.source, args.set or [])
        what = "preset" if args.source in preset_names() and not source.exists() else "config"
        print(json.dumps({what: args.source, **config.to_dict()}, indent=2))
        return 0
    from gankit.files import read_metadata
    from gankit.training.checkpoints import saved_run_record
    from gankit.inference import load_generator
    from gankit.training.outputs import read_jsonl

    pipeline = load_generator(args.source)
    info = pipeline.info()
    info["sample_flags"] = {  # the flags its condition adds to gankit sample (cli.common.generator_flags)
        control_flag(c["name"]): c["label"] for c in pipeline.condition.controls() if c["type"] != "image"
    }
    train = pipeline.config.train
    info["training"] = {
        "batch_size": train.batch_size,
        "batch_size_is": "global: all processes together",
        "precision": train.precision,
        "steps": train.steps,
    }
    if source.is_dir():
        checkpoints = list_checkpoints(source / "checkpoints")
        info["checkpoints"] = [{"step": s, "file": str(p)} for s, p in checkpoints]
        if checkpoints:  # how many processes trained it (one when the checkpoint does not say)
            last = checkpoints[-1][1]
            processes = int(saved_run_record(last, read_metadata(last)).get("world_size") or 1)
            info["training"].update(processes=processes, batch_per_process=train.batch_size // processes)
        rows = read_jsonl(source / "train_log.jsonl")
        info["last_log_row"] = rows[-1] if rows else None
    info["config"] = pipeline.config.to_dict()  # every section: description, data, model, loss, objective, train
    print(json.dumps(info, indent=2))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list models, losses, objectives, datasets and presets")
    p.set_defaults(run=cmd_list)

    p = sub.add_parser(
        "info", help="describe a run folder, export or checkpoint, or show a preset's or config's every setting"
    )
    p.add_argument(
        "source", help="run folder, generator.safetensors, checkpoint, preset name (see `gankit list`) or config .json"
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a preset or config: show it with this override")
    p.set_defaults(run=cmd_info)
