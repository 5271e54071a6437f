"""``gankit sample | interpolate | traverse | arithmetic``: draw from a trained "
"generator: samples, grids, interpolations, code traversals, vector arithmetic."""

from __future__ import annotations

from gankit.errors import UsageError

import argparse
import json
from pathlib import Path

import numpy as np

from gankit.cli.common import (
    NO_EMA_HELP,
    control_flag,
    generator_flags,
    count_up_to,
    feature_fn,
    load_source,
    non_negative,
    output_path,
    seed,
    seed_list,
    takes_generator_flags,
)


def cmd_sample(args) -> int:
    """Samples, or a grid when one input is given several values (``--labels 0,3``, two ``--text``): one row per
    value with the same --n latents along every row. Which inputs exist is the generator's condition's say."""
    from gankit.analysis.explore import split_controls
    from gankit.inference import save_samples

    pipeline = load_source(args.source, device=args.device, ema=args.ema)
    given, settings = generator_flags(pipeline, args.generator_argv)
    for name, value in settings.items():
        pipeline.set(name, value)
    condition = pipeline.condition
    missing = [c for c in condition.controls() if c["type"] == "text" and c["name"] not in given]
    if missing:
        flag, label = control_flag(missing[0]["name"]), missing[0]["label"]
        raise UsageError(f'this generator draws from a {label}: pass {flag} "..." (it is {condition.summary()})')
    if any(c["type"] == "image" for c in condition.controls()):
        raise UsageError(
            f"this generator turns input images into images: use gankit translate (it is {condition.summary()})"
        )
    rows = [name for name, values in given.items() if len(values) > 1]
    if len(rows) > 1 or (rows and len(given) > 1):
        raise UsageError(f"a grid varies one input; {', '.join(control_flag(n) for n in given)} were given")
    if rows:  # one row per value, the same n latents along every row
        entries = given[rows[0]]
        samples = pipeline.grid(entries, columns=args.n, seed=args.seed)
        labels = condition.row_labels(entries)
        columns, names = args.n, condition.row_names(entries)
        labels = None if labels is None else np.repeat(labels, args.n)
        count = f"{len(entries)} {rows[0]} x {args.n}"
    else:
        keywords, _ = split_controls(condition, {name: values[0] for name, values in given.items()})
        samples = pipeline.sample(args.n, seed=args.seed, batch_size=args.batch_size, progress=True, **keywords)
        columns, names, labels, count = None, None, None, f"{args.n}"
    out = Path(args.out)
    try:
        save_samples(samples, out, columns, labels, args.seed, row_labels=names)
    except ValueError as error:
        raise UsageError(str(error)) from None
    print(f"wrote {count} samples (seed {args.seed}, step {pipeline.step}{', EMA' if pipeline.ema else ''}) to {out}")
    return 0


def cmd_interpolate(args) -> int:
    from gankit.analysis import latent

    pipeline = load_source(args.source, device=args.device)
    for name, value in generator_flags(pipeline, args.generator_argv, inputs=False)[1].items():
        pipeline.set(name, value)
    if args.text:
        if len(args.text) < 2:
            raise UsageError("give at least two --text captions to interpolate between")
        summary = latent.write_condition_interpolation(pipeline, args.text, args.steps, args.out, args.rows, args.seed)
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


def traverse_values(control: dict, text: str | None) -> list[float]:
    """--values, or every value of a class or choice input (a categorical code, a bit), the range of a continuous
    one in 9 steps (-2..2 for InfoGAN's continuous codes)."""
    discrete = control["type"] in ("class", "choice")
    if text:
        values = [float(v) for v in text.split(",") if v.strip()]
        return [int(v) for v in values] if discrete else values
    if discrete:
        return list(range(len(control["options"]) if control["type"] == "class" else control["count"]))
    return [round(v, 3) for v in np.linspace(control["min"], control["max"], 9)]


def cmd_traverse(args) -> int:
    """One column per value of one of the generator's inputs, one row per fixed sample (InfoGAN's figure)."""
    from gankit.images import image_grid, save_picture

    pipeline = load_source(args.source, device=args.device)
    try:
        control = pipeline.condition.control(args.code)
        if control["type"] not in ("class", "choice", "range"):
            raise ValueError(f"--code {args.code}: a {control['type']} input has no values to sweep")
        values = traverse_values(control, args.values)
        images = pipeline.sweep(control["name"], values, rows=args.rows, seed=args.seed)
    except ValueError as error:
        raise UsageError(str(error)) from None
    save_picture(image_grid(images, columns=len(values)), args.out)
    print(
        f"wrote {args.out}: {args.rows} rows of fixed noise and codes (seed {args.seed}), columns {args.code} = "
        f"{', '.join(f'{v:g}' for v in values)}"
    )
    from gankit.metrics.code_monotonicity import code_monotonicity, format_monotonicity, ordered

    if ordered(control) and pipeline.kind == "images" and args.score_rows > 0:
        from gankit.files import atomic_write_text

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

    control = next(c for c in pipeline.condition.controls() if c["type"] == "image")
    channels, size, _ = control["shape"]
    files = [path] if path.is_file() else image_files(path) if path.is_dir() else []
    if not files:
        raise ValueError(f"--input {path}: no image file, or a folder without images")
    mode = "L" if channels == 1 else "RGB"
    if not control["any_size"]:
        return files, [load_image_file(f, size, mode) for f in files]
    arrays = [np.array(read_image_file(f, mode), dtype=np.uint8) for f in files]
    return files, [a[None] if a.ndim == 2 else a.transpose(2, 0, 1) for a in arrays]


def cmd_translate(args) -> int:
    from PIL import Image

    from gankit.images import image_grid, save_picture

    pipeline = load_source(args.source, device=args.device, ema=args.ema)
    if not any(c["type"] == "image" for c in pipeline.condition.controls()):
        raise ValueError(f"this generator takes no input images: it is {pipeline.condition.summary()}")
    source, out = Path(args.input), Path(args.out)
    files, arrays = read_inputs(source, pipeline)
    single = source.is_file()
    if single and out.suffix.lower() != ".png":
        raise ValueError(f"--out must be a .png file for one input image, got {out}")
    for file, array in zip(files, arrays):
        output = pipeline.sample(1, images=array[None])[0]
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
    p.add_argument("--n", type=count_up_to(1_000_000), default=64, help="number of samples (in a grid: per row)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument(
        "--out", type=output_path, required=True, help=".npz (uint8 images, N H W C), .png grid, or a folder of PNGs"
    )
    p.add_argument("--batch-size", type=count_up_to(65_536), default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-ema", dest="ema", action="store_false", help=NO_EMA_HELP)
    p.set_defaults(run=cmd_sample)
    takes_generator_flags(p)

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
    p.set_defaults(run=cmd_interpolate)
    takes_generator_flags(p)

    p = sub.add_parser("traverse", help="rows of fixed samples, columns sweeping one input (InfoGAN's codes, a class)")
    p.add_argument("source")
    p.add_argument(
        "--code", default="cat0", help="the input to sweep: cat0, cont0, bin0 (InfoGAN), labels, ... (default cat0)"
    )
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
