"""``gankit evaluate | evaluate-text | evaluator``: score generators and train the networks that score them."""

from __future__ import annotations

from gankit.errors import UsageError

import argparse
import time
from pathlib import Path

from gankit.cli.common import (
    NO_EMA_HELP,
    count,
    count_up_to,
    load_source,
    non_negative,
    output_path,
    seed,
    generator_flags,
    takes_generator_flags,
)


def cmd_evaluate(args) -> int:
    from gankit.metrics.evaluation import (
        GENERATOR_ONLY_METRICS,
        append_row,
        describe_seconds,
        evaluate_generator,
        evaluate_real_vs_real,
        format_table,
        parse_metrics,
    )

    extractor = {"name": args.extractor} if args.extractor else None
    if args.inception_weights:
        extractor = {"name": "inception", "weights": args.inception_weights}
    if args.evaluator:
        extractor = {"name": "evaluator", "weights": args.evaluator}
    common = dict(
        metrics=args.metrics,
        num_reference=args.reference_n,
        seed=args.seed,
        extractor=extractor,
        use_cache=not args.no_cache,
    )
    run_dir = None
    if args.real_vs_real:
        if args.dataset:
            data_section = {"name": args.dataset}
        elif args.source:
            data_section = load_source(args.source).config.data
        else:
            raise UsageError("--real-vs-real needs --dataset NAME or a run folder")
        row = evaluate_real_vs_real(data_section, num_samples=args.n, **common)
        print(format_table(row))
    else:
        if not args.source:
            raise UsageError("give a run folder, export or checkpoint (or --real-vs-real)")
        from gankit.data import load_dataset, with_split
        from gankit.training.distributed import join, leave, shard

        ranks, device = join(args.device)  # under torchrun: each process generates and embeds its share
        pipeline = load_source(args.source, device=str(device))
        data = load_dataset(with_split(pipeline.config.data, args.split))  # loaded once: the samples' and the floor's
        row = evaluate_generator(
            pipeline,
            num_samples=args.n,
            reference_split=args.split,
            progress=ranks.main,
            shard=shard(ranks),
            data=data,
            **common,
        )
        leave(ranks)
        if not ranks.main:
            return 0
        row["source"] = str(args.source)
        floor, begun = None, time.perf_counter()
        # Metrics of the generator's own inputs (InfoGAN's codes) have no real-data floor.
        floor_metrics = [m for m in parse_metrics(list(row["protocol"]["metrics"])) if m not in GENERATOR_ONLY_METRICS]
        if args.floor and floor_metrics and pipeline.kind == "images":
            floor = evaluate_real_vs_real(
                pipeline.config.data,
                num_samples=min(args.n, args.reference_n),
                data=data if args.split == "train" else None,
                **{**common, "metrics": floor_metrics},
            )
            row["floor_seconds"] = round(time.perf_counter() - begun, 2)
            row["floor"] = floor["metrics"]
        print(format_table(row, floor))
        print(
            describe_seconds(row["seconds"])
            + ("; the reference features came from the cache" if row["protocol"]["reference_features_cached"] else "")
            + (f"; the floor {row['floor_seconds']:.1f} s" if "floor_seconds" in row else "")
        )
        from gankit.formats import run_folder_of

        run_dir = run_folder_of(Path(args.source))
    log = Path(args.log) if args.log else (run_dir / "metrics.jsonl" if run_dir else None)
    if log is not None:
        append_row(log, row)
        print(f"appended to {log}")
    return 0


def cmd_evaluate_text(args) -> int:
    from gankit.files import write_json
    from gankit.metrics.text_consistency import evaluate_text_generator, format_text_report, text_report_path

    pipeline = load_source(args.source, device=args.device, ema=args.ema)
    if "text" not in pipeline.condition.accepts:
        raise UsageError(f"the generator is not text-to-image: it is {pipeline.condition.summary()}")
    for name, value in generator_flags(pipeline, args.generator_argv, inputs=False)[1].items():
        pipeline.set(name, value)
    data = args.data or pipeline.config.data.get("path")
    row = evaluate_text_generator(pipeline, data, args.attributes, args.retrieval, args.seed, args.limit)
    print(format_text_report(row))
    out = Path(args.out) if args.out else text_report_path(args.source, pipeline, raw_generator=not args.ema)
    write_json(out, row)
    print(f"wrote {out}")
    return 0


def cmd_evaluator_train(args) -> int:
    from gankit.config import apply_overrides
    from gankit.data import load_dataset
    from gankit.metrics.classifier import EvaluatorTraining, evaluator_for_data, save_evaluator, train_evaluator
    from gankit.metrics.self_supervised import SelfSupervisedTraining, train_self_supervised
    from gankit.networks.classifier import check_skill
    from gankit.registry import ConfigError, build_dataclass

    section = apply_overrides({"data": {"name": args.dataset}}, args.set_data or [])["data"]
    kind = args.kind
    if kind == "auto":
        has_labels = load_dataset({**section, "limit": 1}).labels is not None
        kind = "classifier" if has_labels else "self-supervised"
        print(
            f"gankit evaluator train: the images {'have' if has_labels else 'have no'} labels: training a {kind} "
            "evaluator" + ("" if has_labels else " (contrastive, SimCLR)")
        )
    log = (lambda s: None) if args.quiet else print
    values = {"epochs": args.epochs, "seed": args.seed, "width": args.width}
    if kind == "classifier":
        evaluator = train_evaluator(
            section, build_dataclass(EvaluatorTraining, values, "evaluator"), log, not args.quiet
        )
        summary = f"test accuracy {evaluator.info['test_accuracy']:.4f}"
    else:
        evaluator = train_self_supervised(
            section, build_dataclass(SelfSupervisedTraining, values, "evaluator"), log, not args.quiet
        )
        knn = evaluator.info["knn_accuracy_heldout"]
        pairs = evaluator.info["pair_accuracy_heldout"]
        summary = (
            "self-supervised"
            + (
                f"; held-out pair accuracy {pairs:.3f} (chance {evaluator.info['pair_chance']:.4f})"
                if pairs is not None
                else ""
            )
            + (f"; 5-NN accuracy of its features on held-out labels {knn:.4f}" if knn is not None else "")
        )
    out = Path(args.out) if args.out else evaluator_for_data(section)
    path = save_evaluator(evaluator, out)
    found = "" if args.out else " (gankit evaluate finds it for runs on this data)"
    print(f"{summary}; saved {path} (+ .json){found}, weights sha256 {evaluator.sha256[:16]}...")
    try:
        check_skill(evaluator.info, str(path), lambda message: print(f"WARNING: {message}"))
    except ConfigError as error:
        print(f"WARNING: {error}. gankit evaluate refuses it as it is")
    return 0


def cmd_evaluator_attributes(args) -> int:
    from gankit.data import load_dataset
    from gankit.metrics.attributes import (
        HEADS,
        consistency,
        predict,
        save_attribute_classifier,
        train_attribute_classifier,
    )

    train = load_dataset({"name": "captions", "path": args.data})
    test = load_dataset({"name": "captions", "path": args.data, "split": "test"})
    if "attributes" not in test.extras:
        raise UsageError("--data must be a folder written by gankit data make-captions")
    net = train_attribute_classifier(
        train, steps=args.steps, seed=args.seed, width=args.width, retint_share=args.retint
    )
    wanted = test.extras["attributes"]
    report = consistency(predict(net, test.x), {k: wanted[k] for k in HEADS}, wanted["heldout"])
    save_attribute_classifier(Path(args.out), net, report)
    print(f"wrote {args.out}; on the real test split: " + ", ".join(f"{k} {v:.3f}" for k, v in report.items()))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a generator (FID, KID, IS, PRDC, modes) with its protocol")
    p.add_argument("source", nargs="?", help="run folder, generator.safetensors, or checkpoint")
    p.add_argument(
        "--metrics",
        default=None,
        help="comma-separated: fid, kid, is, prdc, classes, labels, intra_fid, "
        "code_accuracy, code_monotonicity, modes (default: fid,kid,prdc, and is with a classifier evaluator; "
        "labels too for a class-conditional generator)",
    )
    p.add_argument(
        "--n",
        "--samples",
        dest="n",
        type=count_up_to(1_000_000),
        default=10000,
        help="generated samples (--samples under torchrun, whose own parser takes --n for its options)",
    )
    p.add_argument(
        "--reference-n", type=count_up_to(1_000_000), default=10000, help="real samples from the reference split"
    )
    p.add_argument("--split", default="train", choices=["train", "test"], help="reference split")
    p.add_argument("--seed", type=seed, default=0, help="sample seed and reference subset seed")
    p.add_argument("--extractor", help="evaluator (default for images), raw (default for points), inception")
    p.add_argument(
        "--evaluator", help="evaluator weights: a built-in name or a .safetensors from `gankit evaluator train`"
    )
    p.add_argument(
        "--inception-weights",
        metavar="FILE",
        help="the standard FID Inception weights as safetensors: "
        "scores with gankit's own FID Inception-v3 (comparable with papers' numbers under the same protocol)",
    )
    p.add_argument("--real-vs-real", action="store_true", help="score the test split against the train split")
    p.add_argument("--dataset", help="with --real-vs-real: the dataset name")
    p.add_argument("--no-floor", dest="floor", action="store_false", help="skip the real-vs-real floor column")
    p.add_argument("--no-cache", action="store_true", help="recompute the reference features")
    p.add_argument("--log", help="append the row here (default: the run's metrics.jsonl)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("evaluate-text", help="text-to-image: text consistency, FID and retrieval on the test captions")
    p.add_argument("source", help="run folder, generator.safetensors, or checkpoint of a gan-cls / stackgan run")
    p.add_argument("--attributes", required=True, help="attribute classifier (gankit evaluator attributes)")
    p.add_argument("--retrieval", default="", help="joint embedding for R@1 (gankit text train-encoder output)")
    p.add_argument("--data", help="make-captions folder (default: the run's data.path)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--limit", type=count, help="score the first N test scenes only")
    p.add_argument(
        "--out",
        type=output_path,
        help="JSON row (default: the run folder's text_metrics.json; -stepN, -no-ema and "
        "-condition-noise-S are added to the name for a checkpoint, --no-ema and S != 1)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-ema", dest="ema", action="store_false", help=NO_EMA_HELP)
    p.set_defaults(run=cmd_evaluate_text)
    takes_generator_flags(p)

    p = sub.add_parser("evaluator", help="train the classifier whose features the metrics use")
    evaluator_sub = p.add_subparsers(dest="evaluator_command", required=True)
    q = evaluator_sub.add_parser(
        "train",
        help="train an evaluator: a classifier on labelled images, a contrastive encoder on images without labels",
    )
    q.add_argument("--dataset", required=True, help="dataset name (see `gankit list`)")
    q.add_argument(
        "--set",
        dest="set_data",
        action="append",
        metavar="data.KEY=VALUE",
        help="dataset option, e.g. data.path=~/cifar",
    )
    q.add_argument(
        "--out",
        type=output_path,
        help="output .safetensors (default: gankit's cache, where `gankit evaluate` looks for this data's evaluator)",
    )
    q.add_argument(
        "--kind",
        choices=("auto", "classifier", "self-supervised"),
        default="auto",
        help="auto: a classifier when the images have labels, else self-supervised (default auto)",
    )
    q.add_argument("--epochs", type=count_up_to(1000), default=10, help="passes over the training images")
    q.add_argument(
        "--width", type=count_up_to(512), default=24, help="feature maps of the first layer (x2, x4 in the next stages)"
    )
    q.add_argument("--seed", type=seed, default=0)
    q.add_argument("--quiet", action="store_true")
    q.set_defaults(run=cmd_evaluator_train)

    q = evaluator_sub.add_parser("attributes", help="train the attribute classifier of a make-captions dataset")
    q.add_argument("--data", required=True, help="a folder written by gankit data make-captions")
    q.add_argument("--out", type=output_path, default="attributes.safetensors", help="the classifier file to write")
    q.add_argument("--steps", type=count_up_to(10_000_000), default=3000, help="training steps")
    q.add_argument(
        "--width", type=count_up_to(512), default=32, help="feature maps of the first layer (doubled per layer)"
    )
    q.add_argument("--retint", type=non_negative, default=0.5, help="share of each batch repainted in a random colour")
    q.add_argument("--seed", type=seed, default=0)
    q.set_defaults(run=cmd_evaluator_attributes)
