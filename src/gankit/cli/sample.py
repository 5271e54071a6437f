"""``gankit sample | interpolate | traverse | arithmetic``: draw from a trained "
"generator: samples, grids, interpolations, code traversals, vector arithmetic."""

from __future__ import annotations

from gankit.errors import UsageError

import argparse
import json
from pathlib import Path

import numpy as np

from gankit.cli.common import (
    CONDITION_NOISE_HELP,
    NO_EMA_HELP,
    count_up_to,
    feature_fn,
    load_source,
    non_negative,
    output_path,
    seed,
    seed_list,
)


def cmd_sample(args) -> int:
    from gankit.inference import save_samples

    pipeline = load_source(
        args.source, device=args.device, ema=args.ema, condition_noise_scale=args.condition_noise_scale
    )
    labels = parse_labels(args.labels, pipeline)
    texts = args.text or []
    if pipeline.text_encoder is None and texts:
        raise UsageError("--text needs a text-to-image generator (gan-cls or stackgan run)")
    if pipeline.text_encoder is not None:
        if not texts:
            raise UsageError('this generator draws from text: pass --text "a small red sandal on the left"')
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
    columns = args.n if labels is not None or len(texts) > 1 else None
    try:
        names = pipeline.condition.label_names() if labels is not None else None
        save_samples(
            samples,
            out,
            columns,
            sample_labels,
            args.seed,
            row_labels=[names[k] for k in labels] if names else texts if len(texts) > 1 else None,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    count = f"{len(labels)} labels x {args.n}" if labels is not None else f"{args.n}"
    count = f"{len(texts)} captions x {args.n}" if len(texts) > 1 else count
    print(f"wrote {count} samples (seed {args.seed}, step {pipeline.step}{', EMA' if pipeline.ema else ''}) to {out}")
    return 0


def parse_labels(text: str | None, pipeline) -> list[int] | None:
    """--labels: comma-separated class indices or names, or "all"; checked against the generator."""
    if text is None:
        return None
    if not pipeline.num_classes:
        raise UsageError("--labels needs a class-conditional generator (this one takes no labels)")
    try:
        return pipeline.condition.parse_labels(text)
    except ValueError as error:
        raise UsageError(f"--labels: {error}") from None


def cmd_interpolate(args) -> int:
    from gankit.analysis import latent

    pipeline = load_source(args.source, device=args.device, condition_noise_scale=args.condition_noise_scale)
    if args.text:
        if len(args.text) < 2:
            raise UsageError("give at least two --text captions to interpolate between")
        summary = latent.write_text_interpolation(pipeline, args.text, args.steps, args.out, args.rows, args.seed)
        print(
            f"wrote {summary['files']['grid']}, {summary['files']['gif']} and the .json summary "
            f"({args.rows} rows of fixed z, caption embeddings interpolated linearly)"
        )
        return 0
    if args.walk:
        points = pipeline.inputs(9, args.seed)  # the paper's walk through 9 random points
    else:
        points = latent.seed_latents(pipeline, args.seeds)
    extractor = latent.evaluator_for(pipeline)
    summary = latent.write_interpolation(pipeline, points, args.steps, args.mode, args.out, feature_fn(extractor))
    smooth = summary["smoothness_random_paths"]
    print(f"wrote {summary['files']['grid']}, {summary['files']['gif']} and the .json summary")
    print(
        f"smoothness over {smooth['paths']} random paths: largest/median pixel step "
        f"{smooth['pixel_max_over_median']:.2f} (worst path {smooth['pixel_max_over_median_worst_path']:.2f})"
    )
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

    pipeline = load_source(args.source, device=args.device)
    if pipeline.codes is None:
        raise UsageError("this generator has no latent codes (train an InfoGAN preset)")
    try:
        values = traverse_values(pipeline.codes, args.code, args.values)
    except ValueError as error:
        raise UsageError(str(error)) from None
    images = pipeline.traverse(args.code, values, rows=args.rows, seed=args.seed)
    save_picture(image_grid(images, columns=len(values)), args.out)
    print(
        f"wrote {args.out}: {args.rows} rows of fixed noise and codes (seed {args.seed}), columns {args.code} = "
        f"{', '.join(f'{v:g}' for v in values)}"
    )
    if pipeline.codes.locate(args.code)[0] != "cat" and pipeline.kind == "images" and args.score_rows > 0:
        from gankit.files import atomic_write_text
        from gankit.metrics.code_monotonicity import code_monotonicity, format_monotonicity

        result = code_monotonicity(pipeline, args.code, values, rows=args.score_rows, seed=args.seed)
        summary = Path(args.out).with_suffix(".json")
        atomic_write_text(summary, json.dumps(result, indent=2) + "\n")
        print(format_monotonicity(result) + f"\nwrote {summary}")
    return 0


def cmd_arithmetic(args) -> int:
    from gankit.analysis import latent

    pipeline = load_source(args.source, device=args.device)
    extractor = latent.evaluator_for(pipeline, args.evaluator)
    concepts = {
        name: latent.concept_latents(pipeline, spec, args.seed, args.per_concept, extractor=extractor)
        for name, spec in (("A", args.a), ("B", args.b), ("C", args.c))
    }
    summary = latent.write_arithmetic(pipeline, concepts, args.out, args.noise, args.seed)
    print(f"wrote {summary['files']['panel']} and the .json summary ({summary['layout']})")
    return 0


def read_inputs(path: Path, pipeline) -> tuple[list[Path], list[np.ndarray]]:
    """The input image file(s) at ``path`` (a file, or a folder read recursively) as uint8 (C, H, W) arrays in the
    generator's channels: resized and center-cropped to its input size when it takes one size only."""
    from gankit.data.sources import image_files, load_image_file, read_image_file

    channels, size, _ = pipeline.condition.source_shape
    files = [path] if path.is_file() else image_files(path) if path.is_dir() else []
    if not files:
        raise ValueError(f"--input {path}: no image file, or a folder without images")
    mode = "L" if channels == 1 else "RGB"
    if pipeline.condition.fixed_size:
        return files, [load_image_file(f, size, mode) for f in files]
    arrays = [np.array(read_image_file(f, mode), dtype=np.uint8) for f in files]
    return files, [a[None] if a.ndim == 2 else a.transpose(2, 0, 1) for a in arrays]


def cmd_translate(args) -> int:
    from PIL import Image

    from gankit.images import image_grid, save_picture

    pipeline = load_source(args.source, device=args.device, ema=args.ema)
    if "images" not in pipeline.condition.accepts:
        raise ValueError(f"this generator takes no input images: it is {pipeline.condition.summary()}")
    source, out = Path(args.input), Path(args.out)
    files, arrays = read_inputs(source, pipeline)
    single = source.is_file()
    if single and out.suffix.lower() != ".png":
        raise ValueError(f"--out must be a .png file for one input image, got {out}")
    for file, array in zip(files, arrays):
        output = pipeline.translate(array[None])[0]
        picture = Image.fromarray(output[..., 0] if output.shape[-1] == 1 else output)
        if args.side_by_side:
            images, columns = pipeline.condition.picture(
                output[None], pipeline.condition.values_for(1, 0, images=array[None])
            )
            picture = image_grid(images, columns=columns, min_cell=1)
        target = out if single else out / file.relative_to(source).with_suffix(".png")
        save_picture(picture, target)
    what = "translated" if args.command == "translate" else "upscaled"
    print(f"{what} {len(files)} image(s) with {pipeline.condition.summary()} (step {pipeline.step}) -> {out}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="draw samples from a run folder, export or checkpoint")
    p.add_argument("source", help="run folder, generator.safetensors, or checkpoint")
    p.add_argument("--n", type=count_up_to(1_000_000), default=64, help="number of samples (with --labels: per label)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument(
        "--text",
        action="append",
        help="text-to-image models: a caption; several --text give a grid "
        "with one row per caption and the same z down each column",
    )
    p.add_argument(
        "--labels",
        help="conditional models: comma-separated classes or 'all'; a class grid, "
        "one row per label with the same --n latents along every row",
    )
    p.add_argument(
        "--out", type=output_path, required=True, help=".npz (uint8 images, N H W C), .png grid, or a folder of PNGs"
    )
    p.add_argument("--batch-size", type=count_up_to(65_536), default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--condition-noise-scale", type=non_negative, default=1.0, help=CONDITION_NOISE_HELP)
    p.add_argument("--no-ema", dest="ema", action="store_false", help=NO_EMA_HELP)
    p.set_defaults(run=cmd_sample)

    for name, summary in (
        ("translate", "image-to-image (pix2pix): translate an image or a folder of images"),
        ("upscale", "super-resolution (SRGAN / SRResNet): upscale an image or a folder of images"),
    ):
        p = sub.add_parser(name, help=summary)
        p.add_argument("source", help="run folder, generator.safetensors, or checkpoint")
        p.add_argument("--input", required=True, help="an image file, or a folder of images (read recursively)")
        p.add_argument(
            "--out",
            type=output_path,
            required=True,
            help="a .png for one input image; a folder for a folder (same names, .png)",
        )
        p.add_argument("--side-by-side", action="store_true", help="write input | output pairs instead of outputs")
        p.add_argument("--device", default="cpu")
        p.add_argument("--no-ema", dest="ema", action="store_false", help=NO_EMA_HELP)
        p.set_defaults(run=cmd_translate)

    p = sub.add_parser("interpolate", help="interpolate between seeds, or the paper's 9-point latent walk")
    p.add_argument("source")
    p.add_argument("--seeds", type=seed_list, default=[0, 1], help="comma-separated seeds (sample 0 of each), 2 to 64")
    p.add_argument("--walk", action="store_true", help="walk through 9 random points of --seed instead")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--steps", type=count_up_to(256), default=10, help="images per segment, endpoints included")
    p.add_argument(
        "--mode",
        default="slerp",
        choices=["slerp", "linear"],
        help="path between latents: slerp (along the sphere where Gaussian z lie) or linear",
    )
    p.add_argument(
        "--text",
        action="append",
        help="text-to-image models: captions to interpolate between (give two or more), z fixed per row",
    )
    p.add_argument("--rows", type=count_up_to(64), default=4, help="with --text: rows, each with its own fixed z")
    p.add_argument(
        "--out", type=output_path, default="interpolation.png", help="grid PNG; the GIF and JSON go beside it"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--condition-noise-scale", type=non_negative, default=1.0, help=CONDITION_NOISE_HELP)
    p.set_defaults(run=cmd_interpolate)

    p = sub.add_parser("traverse", help="InfoGAN: rows of fixed noise, columns sweeping one latent code")
    p.add_argument("source")
    p.add_argument("--code", default="cat0", help="cat0, cont0, bin0, ... (default cat0)")
    p.add_argument("--values", help="comma-separated values (default: every category; -2..2 for continuous codes)")
    p.add_argument("--rows", type=count_up_to(64), default=8, help="rows, each with its own fixed noise")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument(
        "--score-rows",
        type=count_up_to(10_000),
        default=64,
        help="rows over which a continuous or binary code's effect on image statistics is scored (0: skip)",
    )
    p.add_argument("--out", type=output_path, default="traverse.png", help="grid PNG; the scores go beside it as JSON")
    p.add_argument("--device", default="cpu")
    p.set_defaults(run=cmd_traverse)

    p = sub.add_parser("arithmetic", help="vector arithmetic on averaged z: A - B + C")
    p.add_argument("source")
    for name in ("a", "b", "c"):
        p.add_argument(f"--{name}", required=True, help="sample indices of --seed (3,7,12) or class:NAME")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--per-concept", type=count_up_to(64), default=3, help="samples per class concept")
    p.add_argument("--noise", type=non_negative, default=0.25, help="scale of the uniform noise around the result")
    p.add_argument("--evaluator", help="evaluator weights for class concepts (default: the dataset's)")
    p.add_argument("--out", type=output_path, default="arithmetic.png", help="the A - B + C panel (PNG)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(run=cmd_arithmetic)
