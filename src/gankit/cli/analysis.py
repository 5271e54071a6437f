"""``gankit probe | memorization | visualize``: the DCGAN paper's analysis of D and of memorization."""

from __future__ import annotations

from gankit.errors import UsageError

import argparse

from gankit.cli.common import count_up_to, feature_fn, output_path, seed


def cmd_probe(args) -> int:

    from gankit.analysis.probe import format_probe_table, run_probe, write_probe
    from gankit.data import load_dataset, with_split
    from gankit.inference import load_discriminator, random_discriminator

    D, config, step = load_discriminator(args.source)
    train = load_dataset(with_split(config.data, "train"))
    test = load_dataset(with_split(config.data, "test"))
    if train.labels is None or train.kind != "images":
        raise UsageError("needs a labelled image dataset")
    random_D = random_discriminator(config, args.seed)
    budgets = tuple(None if b == "all" else int(b) for b in args.budgets.split(","))
    penalties = tuple(float(v) for v in args.penalties.split(","))
    results = run_probe(
        D,
        random_D,
        train.x,
        train.labels.numpy(),
        test.x,
        test.labels.numpy(),
        budgets,
        seed=args.seed,
        penalties=penalties,
        progress=True,
    )
    results.update(
        {
            "source": str(args.source),
            "step": step,
            "dataset": config.data,
            "labels_per_class_all": len(train) / (int(train.labels.max()) + 1),
        }
    )
    out = write_probe(results, args.out)
    print(format_probe_table(results))
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


def cmd_memorization(args) -> int:
    import time

    import torch

    from gankit.analysis.latent import evaluator_for
    from gankit.analysis.memorization import memorization_report, write_memorization
    from gankit.data import load_dataset, with_split
    from gankit.inference import load_generator

    start = time.perf_counter()
    pipeline = load_generator(args.source)
    if pipeline.kind != "images":
        raise UsageError("needs an image model")
    train = load_dataset(with_split(pipeline.config.data, "train")).x
    test = load_dataset(with_split(pipeline.config.data, "test")).x
    generated = torch.from_numpy(pipeline.sample(args.n, seed=args.seed)).permute(0, 3, 1, 2).contiguous()
    report = memorization_report(
        generated, train, test, feature_fn(evaluator_for(pipeline)), hash_epochs=args.hash_epochs, seed=args.seed
    )
    report.summary.update(
        {"source": str(args.source), "step": pipeline.step, "seconds": round(time.perf_counter() - start, 1)}
    )
    out = write_memorization(report, args.out)
    s = report.summary
    for space in ("pixel", "feature"):
        if space in s:
            print(
                f"{space:8s} nearest-train distance, median: generated {s[space]['generated_to_train_median']:.4g}, "
                f"held-out test {s[space]['test_to_train_median']:.4g}; generated below the test 1st percentile: "
                f"{s[space]['generated_below_test_1st_percentile'] * 100:.1f}%"
            )
    h = s["hash"]
    print(
        f"hash ({h['bits']} bits): generated-train collisions "
        f"{h['generated_vs_train']['colliding']}/{h['generated_vs_train']['total']}, "
        f"test-train {h['test_vs_train']['colliding']}/{h['test_vs_train']['total']}"
    )
    print(f"wrote {out}/neighbours.png, distances-*.png, memorization.json ({s['seconds']} s)")
    return 0


def cmd_visualize(args) -> int:

    from gankit.analysis.visualize import write_visualization
    from gankit.data import load_dataset, with_split
    from gankit.inference import load_discriminator, random_discriminator
    from gankit.metrics.evaluation import select

    D, config, step = load_discriminator(args.source)
    data = load_dataset(with_split(config.data, "train"))
    if data.kind != "images":
        raise UsageError("needs an image model")
    pool = select(data, args.pool, args.seed)
    random_D = random_discriminator(config, args.seed)
    channels = [int(c) for c in args.channels.split(",")] if args.channels else None
    out = write_visualization(D, random_D, pool, args.out, channels, args.top)
    print(f"wrote {out}/guided-backprop-trained.png, guided-backprop-random.png and visualize.json (D at step {step})")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("probe", help="linear SVM on D's features vs pixels and a random D (DCGAN section 5.1)")
    p.add_argument("source", help="run folder or checkpoint (D comes from the checkpoint)")
    p.add_argument(
        "--budgets", default="10,100,1000,all", help="labels per class, comma-separated; 'all' = every label"
    )
    p.add_argument(
        "--penalties",
        default="0.01,0.1,1,10",
        help="SVM penalties to choose from on a validation split (one value: no search)",
    )
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument(
        "--out",
        type=output_path,
        default="probe.png",
        help="accuracy-vs-labels plot (PNG); the table goes beside it as JSON",
    )
    p.set_defaults(run=cmd_probe)

    p = sub.add_parser("memorization", help="nearest training neighbours and autoencoder hash collisions")
    p.add_argument("source")
    p.add_argument("--n", type=count_up_to(1_000_000), default=1000, help="generated samples")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--hash-epochs", type=count_up_to(1000), default=3, help="epochs of the hash autoencoder")
    p.add_argument("--out", type=output_path, default="memorization", help="output folder")
    p.set_defaults(run=cmd_memorization)

    p = sub.add_parser("visualize", help="guided backpropagation of D's last-layer channels (DCGAN figure 5)")
    p.add_argument("source", help="run folder or checkpoint")
    p.add_argument("--channels", help="comma-separated channels (default: the 6 most active)")
    p.add_argument("--top", type=count_up_to(64), default=4, help="top-activating images per channel")
    p.add_argument("--pool", type=count_up_to(1_000_000), default=5000, help="training images searched")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--out", type=output_path, default="visualize", help="output folder")
    p.set_defaults(run=cmd_visualize)
