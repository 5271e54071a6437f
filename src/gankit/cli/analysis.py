"""``gankit probe | memorization | visualize | project``: the DCGAN paper's analysis of D and of memorization, and
real images projected into a generator's latent space."""

from __future__ import annotations

from gankit.errors import UsageError

import argparse
from pathlib import Path

from gankit.cli.common import count_up_to, feature_fn, output_path, positive, seed


def cmd_probe(args) -> int:
    from gankit.cli.common import load_source

    from gankit.analysis.probe import format_probe_table, run_probe, write_probe
    from gankit.data import load_dataset, with_split
    from gankit.inference import load_discriminator, random_discriminator

    D, config, step = load_discriminator(args.source)
    train = load_dataset(with_split(config.data, "train"))
    test = load_dataset(with_split(config.data, "test"))
    if train.labels is None or train.kind != "images":
        raise UsageError("needs a labelled image dataset")
    random_D = random_discriminator(config, args.seed)
    # a generator that learned a representation of images (BiGAN's encoder: G.features(x)) is probed beside D
    G = load_source(args.source).G
    extra = {"gan_encoder": G} if callable(getattr(G, "features", None)) else {}
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
        extra=extra,
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


def cmd_project(args) -> int:
    import json

    import numpy as np

    from gankit.analysis.project import output_shape, project, read_targets
    from gankit.cli.common import load_source
    from gankit.files import atomic_write_text, write_npz
    from gankit.images import image_grid, label_rows, save_picture

    pipeline = load_source(args.source)
    if pipeline.kind != "images":
        raise UsageError(f"{args.source} draws points; projection finds the latents of images")
    if pipeline.condition.needs_input:
        raise UsageError(
            f"{args.source}: projection enumerates the condition's values itself; this generator needs the "
            f"user's input to draw ({pipeline.condition.summary()})"
        )
    channels, size = output_shape(pipeline)
    targets = read_targets(args.images, channels, size)
    found = project(pipeline, targets, steps=args.steps, restarts=args.restarts, seed=args.seed, lr=args.lr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    columns = min(len(targets), 12)
    rows, names = [], []
    for begin in range(0, len(targets), columns):
        chunk = slice(begin, begin + columns)
        for images, name in ((found.targets[chunk], "image"), (found.reconstructions[chunk], "projection")):
            padded = np.concatenate([images, np.full((columns - len(images), *images.shape[1:]), 255, np.uint8)])
            rows.append(padded)
            names.append(name)
    picture = label_rows(image_grid(np.concatenate(rows), columns), names)
    save_picture(picture, out / "projection.png")
    labels = None if found.values is None else np.asarray(found.values)
    arrays = {"inputs": found.inputs.astype(np.float32), "mse": found.mse, "psnr": found.psnr}
    if labels is not None and labels.dtype.kind in "iu":
        arrays["labels"] = labels
    write_npz(out / "projection.npz", **arrays)
    summary = {
        "source": str(args.source),
        "step": pipeline.step,
        "images": [str(p) for p in args.images],
        "mse": [round(float(v), 6) for v in found.mse],
        "psnr_db": [round(float(v), 2) for v in found.psnr],
        "seconds_per_image": round(found.seconds_per_image, 3),
        **(
            {
                "encoder_mse": [round(float(v), 6) for v in found.encoder_mse],
                "encoder_seconds_per_image": round(found.encoder_seconds / len(found.mse), 4),
            }
            if found.encoder_mse is not None
            else {}
        ),
        "method": f"optimization: {args.restarts} starts, {args.steps} Adam steps (lr {args.lr}), seed {args.seed}",
    }
    atomic_write_text(out / "projection.json", json.dumps(summary, indent=2) + "\n")
    for i, (path, mse, psnr) in enumerate(zip(args.images, found.mse, found.psnr)):
        encoder = "" if found.encoder_mse is None else f"; the encoder alone: MSE {found.encoder_mse[i]:.4f}"
        print(f"{path}: MSE {mse:.4f} (pixels in [-1, 1]), PSNR {psnr:.1f} dB{encoder}")
    print(
        f"{found.seconds_per_image:.2f} s per image; wrote {out / 'projection.png'} (images above their projections), "
        f"{out / 'projection.npz'} (G's first inputs, errors) and {out / 'projection.json'}"
    )
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

    p = sub.add_parser("project", help="real images into a generator's latent space (optimization)")
    p.add_argument("source", help="run folder (RUN, RUN@last, RUN@STEP), export or checkpoint")
    p.add_argument("images", nargs="+", type=Path, help="image files (resized and centre-cropped to G's size)")
    p.add_argument("--steps", type=count_up_to(100_000), default=300, help="Adam steps per start")
    p.add_argument("--restarts", type=count_up_to(1000), default=10, help="starts per image (samples 0..R-1 of --seed)")
    p.add_argument("--lr", type=positive, default=0.05, help="Adam's learning rate on G's first input")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--out", type=output_path, default="projection", help="output folder")
    p.set_defaults(run=cmd_project)
