"""The ``gankit`` command: a thin shell over the library functions."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def cmd_train(args) -> int:
    from gankit.config import load_config
    from gankit.training import train

    overrides = list(args.set or [])
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    config = load_config(args.config, overrides)
    out = Path(args.out) if args.out else default_run_dir(args.config)
    result = train(config, out, resume=args.resume, progress=not args.quiet)
    print(f"\ndone: step {result.step}, {result.images_per_second:.0f} images/s over the last log interval")
    print(f"  samples:          {result.samples_path}")
    print(f"  loss log:         {out / 'train_log.jsonl'}  (curves: {out / 'losses.png'})")
    print(f"  checkpoints:      {out / 'checkpoints'}")
    print(f"  generator export: {result.export_path}")
    return 0


def default_run_dir(source: str) -> Path:
    source_path = Path(source)
    if source_path.is_dir():
        return source_path
    return Path("runs") / source_path.stem


def cmd_sample(args) -> int:
    from gankit.images import image_grid, save_picture, scatter_plot
    from gankit.inference import load_generator

    pipeline = load_generator(args.source, device=args.device, ema=args.ema,
                              condition_noise_scale=args.condition_noise_scale)
    labels = parse_labels(args.labels, pipeline.num_classes)
    texts = args.text or []
    if pipeline.text_encoder is None and texts:
        raise SystemExit("gankit sample: --text needs a text-to-image generator (gan-cls or stackgan run)")
    if pipeline.text_encoder is not None:
        if not texts:
            raise SystemExit('gankit sample: this generator draws from text: pass --text "a small red sandal on the left"')
        if len(texts) == 1:
            samples = pipeline.sample(args.n, seed=args.seed, batch_size=args.batch_size, progress=True, text=texts[0])
        else:  # style/content grid: one row per caption, the same z and noise down each column
            samples = pipeline.text_grid(texts, columns=args.n, seed=args.seed)
        labels, sample_labels = None, None
    elif labels is None:
        samples = pipeline.sample(args.n, seed=args.seed, batch_size=args.batch_size, progress=True)
        sample_labels = None
    else:  # a class grid: one row per label, the same n latents along every row
        samples = pipeline.class_grid(labels, columns=args.n, seed=args.seed)
        sample_labels = np.repeat(np.array(labels), args.n)
    out = Path(args.out)
    if out.suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        key = "images" if pipeline.kind == "images" else "points"
        np.savez_compressed(out, **{key: samples}, **({} if sample_labels is None else {"labels": sample_labels}))
    elif out.suffix == ".png":
        columns = args.n if labels is not None or len(texts) > 1 else None
        picture = image_grid(samples, columns=columns) if pipeline.kind == "images" else scatter_plot(samples)
        save_picture(picture, out)
    elif out.suffix:
        raise SystemExit(f"gankit sample: --out must end in .npz or .png, or be a folder; got {out}")
    else:
        if pipeline.kind != "images":
            raise SystemExit("gankit sample: a folder of PNGs needs an image model; use .npz or .png for points")
        from PIL import Image

        out.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(samples):
            picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
            label = "" if sample_labels is None else f"-label{sample_labels[i]}"
            save_picture(picture, out / f"{args.seed:04d}-{i:06d}{label}.png")
    count = f"{len(labels)} labels x {args.n}" if labels is not None else f"{args.n}"
    count = f"{len(texts)} captions x {args.n}" if len(texts) > 1 else count
    print(f"wrote {count} samples (seed {args.seed}, step {pipeline.step}{', EMA' if pipeline.ema else ''}) to {out}")
    return 0


def parse_labels(text: str | None, num_classes: int) -> list[int] | None:
    """--labels: comma-separated class indices, or "all"; checked against the generator."""
    if text is None:
        return None
    if not num_classes:
        raise SystemExit("gankit sample: --labels needs a class-conditional generator (this one takes no labels)")
    if text == "all":
        return list(range(num_classes))
    try:
        labels = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"gankit sample: --labels is comma-separated integers or 'all', got {text!r}") from None
    bad = [v for v in labels if not 0 <= v < num_classes]
    if bad or not labels:
        raise SystemExit(f"gankit sample: labels must be in 0..{num_classes - 1}, got {text!r}")
    return labels


def cmd_list(args) -> int:
    from gankit.config import preset_names, read_preset
    from gankit.data import DATASETS
    from gankit.losses import LOSSES
    from gankit.networks import MODELS
    from gankit.variants import VARIANTS

    from gankit.networks.text_encoders import TEXT_ENCODERS

    registries = (("models", MODELS), ("losses", LOSSES), ("objectives", VARIANTS), ("datasets", DATASETS),
                  ("text encoders", TEXT_ENCODERS))  # fmt: skip
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
    from gankit.formats import list_checkpoints
    from gankit.inference import load_generator

    pipeline = load_generator(args.source)
    info = pipeline.info()
    source = Path(args.source)
    if source.is_dir():
        info["checkpoints"] = [{"step": s, "file": str(p)} for s, p in list_checkpoints(source / "checkpoints")]
        log = source / "train_log.jsonl"
        if log.is_file():
            lines = log.read_text().splitlines()
            info["last_log_row"] = json.loads(lines[-1]) if lines else None
    print(json.dumps(info, indent=2))
    return 0


def cmd_evaluator_train(args) -> int:
    from gankit.config import apply_overrides
    from gankit.metrics.classifier import EvaluatorTraining, save_evaluator, train_evaluator
    from gankit.registry import build_dataclass

    section = apply_overrides({"data": {"name": args.dataset}}, args.set_data or [])["data"]
    options = build_dataclass(EvaluatorTraining, {"epochs": args.epochs, "seed": args.seed, "width": args.width}, "evaluator")
    evaluator = train_evaluator(section, options, progress=not args.quiet)
    out = Path(args.out) if args.out else Path("evaluators") / f"{args.dataset}.safetensors"
    path = save_evaluator(evaluator, out)
    print(f"test accuracy {evaluator.info['test_accuracy']:.4f}; saved {path} (+ .json), "
          f"weights sha256 {evaluator.sha256[:16]}...")
    return 0


def run_folder_of(source: Path) -> Path | None:
    """The run folder a source belongs to: itself, or the nearest parent (up to two) with a config.json."""
    for folder in (source, source.parent, source.parent.parent):
        if folder.is_dir() and (folder / "config.json").is_file():
            return folder
    return None


def cmd_evaluate(args) -> int:
    from gankit.data import has_test_split
    from gankit.metrics.evaluation import (
        append_row,
        evaluate_generator,
        evaluate_real_vs_real,
        GENERATOR_ONLY_METRICS,
        parse_metrics,
        format_table,
    )

    extractor = {"name": args.extractor} if args.extractor else None
    if args.evaluator:
        extractor = {"name": "evaluator", "weights": args.evaluator}
    common = dict(metrics=args.metrics, num_reference=args.reference_n, seed=args.seed, extractor=extractor,
                  use_cache=not args.no_cache)  # fmt: skip
    run_dir = None
    if args.real_vs_real:
        if args.dataset:
            data_section = {"name": args.dataset}
        elif args.source:
            from gankit.inference import load_generator

            data_section = load_generator(args.source).config.data
        else:
            raise SystemExit("gankit evaluate --real-vs-real: give --dataset NAME or a run folder")
        row = evaluate_real_vs_real(data_section, num_samples=args.n, **common)
        print(format_table(row))
    else:
        if not args.source:
            raise SystemExit("gankit evaluate: give a run folder, export or checkpoint (or --real-vs-real)")
        from gankit.inference import load_generator

        pipeline = load_generator(args.source, device=args.device)
        row = evaluate_generator(pipeline, num_samples=args.n, reference_split=args.split, progress=True, **common)
        row["source"] = str(args.source)
        floor = None
        # Metrics of the generator's own inputs (InfoGAN's codes) have no real-data floor.
        floor_metrics = [m for m in parse_metrics(args.metrics) if m not in GENERATOR_ONLY_METRICS]
        if args.floor and floor_metrics and has_test_split(pipeline.config.data) and pipeline.kind == "images":
            floor = evaluate_real_vs_real(pipeline.config.data, num_samples=min(args.n, args.reference_n),
                                          **{**common, "metrics": floor_metrics})  # fmt: skip
            row["floor"] = floor["metrics"]
        print(format_table(row, floor))
        run_dir = run_folder_of(Path(args.source))
    log = Path(args.log) if args.log else (run_dir / "metrics.jsonl" if run_dir else None)
    if log is not None:
        append_row(log, row)
        print(f"appended to {log}")
    return 0


def _feature_fn(extractor):
    return None if extractor is None else (lambda x: extractor(x).features)


def cmd_evaluate_text(args) -> int:
    import json

    from gankit.files import atomic_write_text
    from gankit.metrics.text_consistency import evaluate_text_generator
    from gankit.inference import load_generator

    pipeline = load_generator(args.source, device=args.device, ema=args.ema,
                              condition_noise_scale=args.condition_noise_scale)
    if pipeline.text_encoder is None:
        raise SystemExit("gankit evaluate-text: the generator is not text-to-image (gan-cls or stackgan run)")
    data = args.data or pipeline.config.data.get("path")
    row = evaluate_text_generator(pipeline, data, args.attributes, args.retrieval, args.seed, args.limit)
    m, c, r = row["metrics"], row["ceiling"], row["ratios"]
    drawn = f"step {pipeline.step}{', EMA of G' if pipeline.ema else ''}"
    if pipeline.condition_noise_scale != 1.0:
        drawn += f", conditioning noise x {pipeline.condition_noise_scale:g}"
    print(f"text consistency (all four attributes right; {drawn}), generated / real test (ceiling) / ratio:")
    for key, name in (("all_accuracy", "all scenes"), ("all_accuracy_seen", "seen pairs"),
                      ("all_accuracy_heldout", "held-out pairs")):  # fmt: skip
        print(f"  {name:15s} {m[key]:.3f} / {c[key]:.3f} / {r[key + '_to_ceiling']:.2f}")
    print("  per attribute: " + ", ".join(f"{k.split('_')[0]} {m[k]:.3f}" for k in m if k.endswith("accuracy")
                                           and not k.startswith("all")))  # fmt: skip
    from gankit.data.captions import CLASSES

    for key, what in (("class_confusion", "asked-for garment drawn as another"),
                      ("class_confusion_real_at_generator_resolution", "real scenes at G's resolution, misread")):  # fmt: skip
        counts = row[key]
        misses = sorted((n, a, b) for a, line in enumerate(counts) for b, n in enumerate(line) if a != b and n)[::-1][:3]
        if misses:
            print(f"  commonest {what}: " + ", ".join(f"{CLASSES[a]} as {CLASSES[b]} {n}/{sum(counts[a])}"
                                                      for n, a, b in misses))  # fmt: skip
    print(f"FID (attribute-classifier features, vs the {row['protocol']['scenes']} real test scenes): {m['fid']:.2f}")
    if "retrieval_r1" in m:
        print(f"retrieval R@1 among 100 captions: {m['retrieval_r1']:.3f} (real test images: {c['retrieval_r1']:.3f})")
    folder = run_folder_of(Path(args.source))
    suffix = f"-step{pipeline.step}" if Path(args.source).name.startswith("ckpt-") else ""  # not the export's file
    suffix += "" if args.ema else "-no-ema"
    suffix += "" if pipeline.condition_noise_scale == 1.0 else f"-condition-noise-{pipeline.condition_noise_scale:g}"
    out = Path(args.out) if args.out else (folder or Path(".")) / f"text_metrics{suffix}.json"
    atomic_write_text(out, json.dumps(row, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


def cmd_interpolate(args) -> int:
    from gankit.analysis import latent
    from gankit.inference import load_generator

    pipeline = load_generator(args.source, device=args.device, condition_noise_scale=args.condition_noise_scale)
    if args.text:
        if len(args.text) < 2:
            raise SystemExit("gankit interpolate: give at least two --text captions to interpolate between")
        summary = latent.write_text_interpolation(pipeline, args.text, args.steps, args.out, args.rows, args.seed)
        print(f"wrote {summary['files']['grid']}, {summary['files']['gif']} and the .json summary "
              f"({args.rows} rows of fixed z, caption embeddings interpolated linearly)")  # fmt: skip
        return 0
    if args.walk:
        points = pipeline.inputs(9, args.seed)  # the paper's walk through 9 random points
    else:
        seeds = [int(s) for s in args.seeds.split(",")]
        points = latent.seed_latents(pipeline, seeds)
    extractor = latent.evaluator_for(pipeline)
    summary = latent.write_interpolation(pipeline, points, args.steps, args.mode, args.out, _feature_fn(extractor))
    smooth = summary["smoothness_random_paths"]
    print(f"wrote {summary['files']['grid']}, {summary['files']['gif']} and the .json summary")
    print(f"smoothness over {smooth['paths']} random paths: largest/median pixel step "
          f"{smooth['pixel_max_over_median']:.2f} (worst path {smooth['pixel_max_over_median_worst_path']:.2f})")  # fmt: skip
    return 0


def traverse_values(layout, code: str, text: str | None) -> list[float]:
    """--values, or every value of a categorical code, 0 and 1 for a binary one, -2..2 in 9 steps otherwise."""
    kind, _, width = layout.locate(code)
    if text:
        return [float(v) for v in text.split(",") if v.strip()]
    if kind == "cat":
        return list(range(width))
    return [0.0, 1.0] if kind == "bin" else [round(v, 3) for v in np.linspace(-2, 2, 9)]


def cmd_traverse(args) -> int:
    from gankit.images import image_grid, save_picture
    from gankit.inference import load_generator

    pipeline = load_generator(args.source, device=args.device)
    if pipeline.codes is None:
        raise SystemExit("gankit traverse: this generator has no latent codes (train an InfoGAN preset)")
    try:
        values = traverse_values(pipeline.codes, args.code, args.values)
    except ValueError as error:
        raise SystemExit(f"gankit traverse: {error}") from None
    images = pipeline.traverse(args.code, values, rows=args.rows, seed=args.seed)
    save_picture(image_grid(images, columns=len(values)), args.out)
    print(f"wrote {args.out}: {args.rows} rows of fixed noise and codes (seed {args.seed}), columns {args.code} = "
          f"{', '.join(f'{v:g}' for v in values)}")  # fmt: skip
    if pipeline.codes.locate(args.code)[0] != "cat" and pipeline.kind == "images" and args.score_rows > 0:
        from gankit.metrics.code_monotonicity import code_monotonicity, format_monotonicity
        from gankit.files import atomic_write_text

        result = code_monotonicity(pipeline, args.code, values, rows=args.score_rows, seed=args.seed)
        summary = Path(args.out).with_suffix(".json")
        atomic_write_text(summary, json.dumps(result, indent=2) + "\n")
        print(format_monotonicity(result) + f"\nwrote {summary}")
    return 0


def cmd_arithmetic(args) -> int:
    from gankit.analysis import latent
    from gankit.inference import load_generator

    pipeline = load_generator(args.source, device=args.device)
    extractor = latent.evaluator_for(pipeline, args.evaluator)
    concepts = {
        name: latent.concept_latents(pipeline, spec, args.seed, args.per_concept, extractor=extractor)
        for name, spec in (("A", args.a), ("B", args.b), ("C", args.c))
    }
    summary = latent.write_arithmetic(pipeline, concepts, args.out, args.noise, args.seed)
    print(f"wrote {summary['files']['panel']} and the .json summary ({summary['layout']})")
    return 0


def cmd_evaluator_attributes(args) -> int:
    from gankit.data import load_dataset
    from gankit.metrics.attributes import HEADS, consistency, predict, save_attribute_classifier, train_attribute_classifier

    train = load_dataset({"name": "captions", "path": args.data})
    test = load_dataset({"name": "captions", "path": args.data, "split": "test"})
    if "attributes" not in test.extras:
        raise SystemExit("gankit evaluator attributes: --data must be a folder written by gankit data make-captions")
    net = train_attribute_classifier(train, steps=args.steps, seed=args.seed, width=args.width, retint_share=args.retint)
    wanted = test.extras["attributes"]
    report = consistency(predict(net, test.x), {k: wanted[k] for k in HEADS}, wanted["heldout"])
    save_attribute_classifier(Path(args.out), net, report)
    print(f"wrote {args.out}; on the real test split: " + ", ".join(f"{k} {v:.3f}" for k, v in report.items()))
    return 0


def cmd_make_captions(args) -> int:
    from gankit.data.captions import write_captioned_dataset

    if args.resolution < 16 or min(args.train, args.test, args.captions) < 1:
        raise SystemExit("gankit data make-captions: --resolution must be >= 16; --train, --test, --captions >= 1")
    info = write_captioned_dataset(Path(args.out), args.seed, args.train, args.test, args.resolution, args.captions)
    print(f"wrote {args.out}: train.npz, test.npz, *_captions.json, info.json; held-out pairs: "
          + ", ".join(f"{c} {k}" for c, k in info["heldout_pairs"]))  # fmt: skip
    return 0


def cmd_train_text_encoder(args) -> int:
    from gankit.config import parse_value
    from gankit.data import load_dataset
    from gankit.joint_embedding import retrieval_rank1, train_joint_embedding
    from gankit.networks.text_encoders import load_text_encoder, save_text_encoder

    section = {"name": "captions", "path": args.data, **({"resolution": args.resolution} if args.resolution else {})}
    train = load_dataset(section)
    options = {}
    for item in args.set:
        key, _, value = item.partition("=")
        options[key] = parse_value(value)
    fixed = load_text_encoder(args.text_encoder) if args.text_encoder else None
    encoder, image_encoder = train_joint_embedding(train, args.encoder, options, args.steps, args.batch_size,
                                                   seed=args.seed, text_encoder=fixed)  # fmt: skip
    save_text_encoder(Path(args.out), encoder, image_encoder)
    from gankit.data import has_test_split

    which = "test" if has_test_split(section) else "train"  # user caption data has one split: the training images
    held_out = load_dataset({**section, "split": "test"}) if which == "test" else train
    score = retrieval_rank1(encoder, image_encoder, held_out, pool=100, seed=args.seed)
    print(f"wrote {args.out}; retrieval on the {which} split: the image's own caption ranks first among 100 "
          f"for {score:.1%} of 500 images (chance 1%)")  # fmt: skip
    return 0


def cmd_probe(args) -> int:

    from gankit.analysis.probe import format_probe_table, run_probe, write_probe
    from gankit.data import load_dataset
    from gankit.data import with_split
    from gankit.inference import load_discriminator, random_discriminator

    D, config, step = load_discriminator(args.source)
    train = load_dataset(with_split(config.data, "train"))
    test = load_dataset(with_split(config.data, "test"))
    if train.labels is None or train.kind != "images":
        raise SystemExit("gankit probe: needs a labelled image dataset")
    random_D = random_discriminator(config, args.seed)
    budgets = tuple(None if b == "all" else int(b) for b in args.budgets.split(","))
    penalties = tuple(float(v) for v in args.penalties.split(","))
    results = run_probe(D, random_D, train.x, train.labels.numpy(), test.x, test.labels.numpy(), budgets,
                        seed=args.seed, penalties=penalties)  # fmt: skip
    results.update({"source": str(args.source), "step": step, "dataset": config.data,
                    "labels_per_class_all": len(train) / (int(train.labels.max()) + 1)})  # fmt: skip
    out = write_probe(results, args.out)
    print(format_probe_table(results))
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


def cmd_memorization(args) -> int:
    import time

    import torch

    from gankit.analysis.latent import evaluator_for
    from gankit.analysis.memorization import memorization_report, write_memorization
    from gankit.data import load_dataset
    from gankit.data import with_split
    from gankit.inference import load_generator

    start = time.perf_counter()
    pipeline = load_generator(args.source)
    if pipeline.kind != "images":
        raise SystemExit("gankit memorization: needs an image model")
    train = load_dataset(with_split(pipeline.config.data, "train")).x
    test = load_dataset(with_split(pipeline.config.data, "test")).x
    generated = torch.from_numpy(pipeline.sample(args.n, seed=args.seed)).permute(0, 3, 1, 2).contiguous()
    report = memorization_report(generated, train, test, _feature_fn(evaluator_for(pipeline)),
                                 hash_epochs=args.hash_epochs, seed=args.seed)  # fmt: skip
    report.summary.update({"source": str(args.source), "step": pipeline.step, "seconds": round(time.perf_counter() - start, 1)})
    out = write_memorization(report, args.out)
    s = report.summary
    for space in ("pixel", "feature"):
        if space in s:
            print(f"{space:8s} nearest-train distance, median: generated {s[space]['generated_to_train_median']:.4g}, "
                  f"held-out test {s[space]['test_to_train_median']:.4g}; generated below the test 1st percentile: "
                  f"{s[space]['generated_below_test_1st_percentile'] * 100:.1f}%")  # fmt: skip
    h = s["hash"]
    print(f"hash ({h['bits']} bits): generated-train collisions {h['generated_vs_train']['colliding']}/{h['generated_vs_train']['total']}, "
          f"test-train {h['test_vs_train']['colliding']}/{h['test_vs_train']['total']}")  # fmt: skip
    print(f"wrote {out}/neighbours.png, distances-*.png, memorization.json ({s['seconds']} s)")
    return 0


def cmd_visualize(args) -> int:

    from gankit.analysis.visualize import write_visualization
    from gankit.data import load_dataset
    from gankit.data import with_split
    from gankit.metrics.evaluation import select
    from gankit.inference import load_discriminator, random_discriminator

    D, config, step = load_discriminator(args.source)
    data = load_dataset(with_split(config.data, "train"))
    if data.kind != "images":
        raise SystemExit("gankit visualize: needs an image model")
    pool = select(data, args.pool, args.seed)
    random_D = random_discriminator(config, args.seed)
    channels = [int(c) for c in args.channels.split(",")] if args.channels else None
    out = write_visualization(D, random_D, pool, args.out, channels, args.top)
    print(f"wrote {out}/guided-backprop-trained.png, guided-backprop-random.png and visualize.json (D at step {step})")
    return 0


NO_EMA_HELP = "a checkpoint that holds an EMA of G: use the raw G instead (exports hold one of the two)"
CONDITION_NOISE_HELP = ("StackGAN: scale of the conditioning-augmentation noise when drawing (c = mu + sigma * "
                        "scale * eps); 1 is the paper's sampling, 0 uses the mean mu: truer to the caption, less varied")


def build_parser() -> argparse.ArgumentParser:
    from gankit import __version__

    parser = argparse.ArgumentParser(prog="gankit", description="Train, sample and inspect GANs.")
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a GAN from a preset, a config file or a run folder")
    p.add_argument("config", help="preset name (see `gankit list`), config .json, or run folder")
    p.add_argument("--out", help="run folder (default: runs/<preset>)")
    p.add_argument("--steps", type=int, help="number of G steps (same as --set train.steps=N)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value, e.g. train.batch_size=64")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("sample", help="draw samples from a run folder, export or checkpoint")
    p.add_argument("source", help="run folder, generator.safetensors, or checkpoint")
    p.add_argument("--n", type=int, default=64, help="number of samples (with --labels: per label)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--text", action="append", help="text-to-image models: a caption; several --text give a grid "
                   "with one row per caption and the same z down each column")
    p.add_argument("--labels", help="conditional models: comma-separated classes or 'all'; a class grid, "
                   "one row per label with the same --n latents along every row")  # fmt: skip
    p.add_argument("--out", required=True, help=".npz (uint8 images, N H W C), .png grid, or a folder of PNGs")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--condition-noise-scale", type=float, default=1.0, help=CONDITION_NOISE_HELP)
    p.add_argument("--no-ema", dest="ema", action="store_false", help=NO_EMA_HELP)
    p.set_defaults(run=cmd_sample)

    p = sub.add_parser("evaluate", help="score a generator (FID, KID, IS, PRDC, modes) with its protocol")
    p.add_argument("source", nargs="?", help="run folder, generator.safetensors, or checkpoint")
    p.add_argument("--metrics", default="fid,kid,prdc,is", help="comma-separated: fid, kid, is, prdc, classes, labels, intra_fid, code_accuracy, modes")
    p.add_argument("--n", type=int, default=10000, help="generated samples")
    p.add_argument("--reference-n", type=int, default=10000, help="real samples from the reference split")
    p.add_argument("--split", default="train", choices=["train", "test"], help="reference split")
    p.add_argument("--seed", type=int, default=0, help="sample seed and reference subset seed")
    p.add_argument("--extractor", help="evaluator (default for images), raw (default for points), inception")
    p.add_argument("--evaluator", help="evaluator weights: a built-in name or a .safetensors from `gankit evaluator train`")
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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="score the first N test scenes only")
    p.add_argument("--out", help="JSON row (default: the run folder's text_metrics.json; -stepN, -no-ema and "
                   "-condition-noise-S are added to the name for a checkpoint, --no-ema and S != 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--condition-noise-scale", type=float, default=1.0, help=CONDITION_NOISE_HELP)
    p.add_argument("--no-ema", dest="ema", action="store_false", help=NO_EMA_HELP)
    p.set_defaults(run=cmd_evaluate_text)

    p = sub.add_parser("interpolate", help="interpolate between seeds, or the paper's 9-point latent walk")
    p.add_argument("source")
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds (sample 0 of each)")
    p.add_argument("--walk", action="store_true", help="walk through 9 random points of --seed instead")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=10, help="images per segment, endpoints included")
    p.add_argument("--mode", default="slerp", choices=["slerp", "linear"])
    p.add_argument("--text", action="append", help="text-to-image models: captions to interpolate between "
                   "(give two or more), z fixed per row")
    p.add_argument("--rows", type=int, default=4, help="with --text: rows, each with its own fixed z")
    p.add_argument("--out", default="interpolation.png", help="grid PNG; the GIF and JSON go beside it")
    p.add_argument("--device", default="cpu")
    p.add_argument("--condition-noise-scale", type=float, default=1.0, help=CONDITION_NOISE_HELP)
    p.set_defaults(run=cmd_interpolate)

    p = sub.add_parser("traverse", help="InfoGAN: rows of fixed noise, columns sweeping one latent code")
    p.add_argument("source")
    p.add_argument("--code", default="cat0", help="cat0, cont0, bin0, ... (default cat0)")
    p.add_argument("--values", help="comma-separated values (default: every category; -2..2 for continuous codes)")
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--score-rows", type=int, default=64,
                   help="rows over which a continuous or binary code's effect on image statistics is scored (0: skip)")
    p.add_argument("--out", default="traverse.png")
    p.add_argument("--device", default="cpu")
    p.set_defaults(run=cmd_traverse)

    p = sub.add_parser("arithmetic", help="vector arithmetic on averaged z: A - B + C")
    p.add_argument("source")
    for name in ("a", "b", "c"):
        p.add_argument(f"--{name}", required=True, help="sample indices of --seed (3,7,12) or class:NAME")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-concept", type=int, default=3, help="samples per class concept")
    p.add_argument("--noise", type=float, default=0.25, help="scale of the uniform noise around the result")
    p.add_argument("--evaluator", help="evaluator weights for class concepts (default: the dataset's)")
    p.add_argument("--out", default="arithmetic.png")
    p.add_argument("--device", default="cpu")
    p.set_defaults(run=cmd_arithmetic)

    p = sub.add_parser("probe", help="linear SVM on D's features vs pixels and a random D (DCGAN section 5.1)")
    p.add_argument("source", help="run folder or checkpoint (D comes from the checkpoint)")
    p.add_argument("--budgets", default="10,100,1000,all", help="labels per class, comma-separated; 'all' = every label")
    p.add_argument("--penalties", default="0.01,0.1,1,10",
                   help="SVM penalties to choose from on a validation split (one value: no search)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="probe.png")
    p.set_defaults(run=cmd_probe)

    p = sub.add_parser("memorization", help="nearest training neighbours and autoencoder hash collisions")
    p.add_argument("source")
    p.add_argument("--n", type=int, default=1000, help="generated samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hash-epochs", type=int, default=3, help="epochs of the hash autoencoder")
    p.add_argument("--out", default="memorization", help="output folder")
    p.set_defaults(run=cmd_memorization)

    p = sub.add_parser("visualize", help="guided backpropagation of D's last-layer channels (DCGAN figure 5)")
    p.add_argument("source", help="run folder or checkpoint")
    p.add_argument("--channels", help="comma-separated channels (default: the 6 most active)")
    p.add_argument("--top", type=int, default=4, help="top-activating images per channel")
    p.add_argument("--pool", type=int, default=5000, help="training images searched")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="visualize", help="output folder")
    p.set_defaults(run=cmd_visualize)

    p = sub.add_parser("evaluator", help="train the classifier whose features the metrics use")
    evaluator_sub = p.add_subparsers(dest="evaluator_command", required=True)
    q = evaluator_sub.add_parser("train", help="train an evaluator on a labelled dataset's train split")
    q.add_argument("--dataset", required=True, help="dataset name (see `gankit list`)")
    q.add_argument("--set", dest="set_data", action="append", metavar="data.KEY=VALUE",
                   help="dataset option, e.g. data.path=~/cifar")
    q.add_argument("--out", help="output .safetensors (default: evaluators/<dataset>.safetensors)")
    q.add_argument("--epochs", type=int, default=10)
    q.add_argument("--width", type=int, default=24)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--quiet", action="store_true")
    q.set_defaults(run=cmd_evaluator_train)

    q = evaluator_sub.add_parser("attributes", help="train the attribute classifier of a make-captions dataset")
    q.add_argument("--data", required=True, help="a folder written by gankit data make-captions")
    q.add_argument("--out", default="attributes.safetensors")
    q.add_argument("--steps", type=int, default=3000)
    q.add_argument("--width", type=int, default=32, help="feature maps of the first layer (doubled per layer)")
    q.add_argument("--retint", type=float, default=0.5, help="share of each batch repainted in a random colour")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(run=cmd_evaluator_attributes)

    p = sub.add_parser("data", help="build datasets gankit makes itself")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    q = data_sub.add_parser("make-captions", help="coloured Fashion-MNIST scenes with captions and attributes")
    q.add_argument("--out", default="data/captions", help="output folder (default data/captions)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--train", type=int, default=20000, help="train scenes (default 20000)")
    q.add_argument("--test", type=int, default=2000, help="test scenes, half with held-out (class, colour) pairs")
    q.add_argument("--resolution", type=int, default=64)
    q.add_argument("--captions", type=int, default=5, help="captions per scene (default 5)")
    q.set_defaults(run=cmd_make_captions)

    p = sub.add_parser("text", help="text encoders for text-to-image models")
    text_sub = p.add_subparsers(dest="text_command", required=True)
    q = text_sub.add_parser("train-encoder", help="train a text encoder with the joint embedding (Reed et al. 2016)")
    q.add_argument("--data", required=True, help="a make-captions folder, a captioned image folder or a CSV")
    q.add_argument("--resolution", type=int, help="image side for user data (the built dataset keeps its own)")
    q.add_argument("--encoder", default="word-gru", help="text encoder name (default word-gru)")
    q.add_argument("--text-encoder", default="", metavar="FILE_OR_NAME",
                   help="keep this text encoder (a train-encoder file, a text-to-image export, or minilm) as it is "
                        "and train only the image encoder beside it")  # fmt: skip
    q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="encoder option, e.g. embed_dim=256")
    q.add_argument("--steps", type=int, default=2000)
    q.add_argument("--batch-size", type=int, default=64)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", default="text-encoder.safetensors")
    q.set_defaults(run=cmd_train_text_encoder)

    p = sub.add_parser("list", help="list models, losses, objectives, datasets and presets")
    p.set_defaults(run=cmd_list)

    p = sub.add_parser("info", help="describe a run folder, export or checkpoint")
    p.add_argument("source")
    p.set_defaults(run=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    from gankit.files import CheckpointError
    from gankit.data import DataError
    from gankit.registry import ConfigError
    from gankit.training import TrainingError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ConfigError, DataError, CheckpointError, TrainingError, ValueError) as error:
        print(f"gankit {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ngankit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
