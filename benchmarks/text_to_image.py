"""Issue 7's targets: do text-to-image Gs draw what the caption says, on seen and held-out pairs, and
does StackGAN's Stage-II improve on Stage-I?

    python benchmarks/text_to_image.py [--rows gan-int-cls,stackgan-stage1,stackgan-stage2]
        [--data data/captions] [--attributes data/attributes.safetensors]
        [--retrieval data/retrieval-encoder.safetensors] [--out runs/text-to-image] [--set key=value ...]
        [--condition-noise-scale S]

Needs the captioned scenes (`gankit data make-captions --out data/captions`), the conditioning text
encoder (`gankit text train-encoder ... --out data/text-encoder.safetensors`), the attribute classifier
(`gankit evaluator attributes ... --out data/attributes.safetensors`) and a second joint embedding for
the retrieval score (`gankit text train-encoder ... --seed 1 --out data/retrieval-encoder.safetensors`).
The *-matching rows need an image encoder beside the conditioning text encoder: `gankit text
train-encoder --data data/captions --text-encoder data/text-encoder.safetensors --out
data/text-encoder-psi.safetensors`.

Each row trains its preset into OUT/<row> on one thread (skipped when OUT/<row>/generator.safetensors
exists, so runs trained by hand are scored in place; a Stage-II row reads its Stage-I row's folder, see
STAGE1), then scores it with `metrics.text.evaluate_text_generator`: one sample per test scene (2,000) from its first
caption (StackGAN rows: conditioning noise times S, default 1 as in the paper; 0 draws from the
caption's mean mu). Writes OUT/results.md (table), OUT/<row>/text_metrics.json and OUT/captions.png: for 8 test
captions (4 with a seen (class, colour) pair, 4 held-out), the real scene and each row's sample.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

# row -> (preset, overrides, what it is); Stage-II rows also name the row of their Stage-I (STAGE1)
NEAREST = ["objective.wrong_text=nearest"]
MATCHING = [*NEAREST, "objective.text_encoder=data/text-encoder-psi.safetensors", "objective.matching_weight=0.2"]
ROWS: dict[str, tuple[str, list[str], str]] = {
    "gan-cls": ("gan-int-cls-captions", ["objective.interpolation=false"], "GAN-CLS (matching-aware D)"),
    "gan-int-cls": ("gan-int-cls-captions", [], "GAN-INT-CLS (+ interpolated captions)"),
    "gan-int-cls-minilm": (
        "gan-int-cls-captions",
        ["objective.text_encoder=minilm"],
        "GAN-INT-CLS on all-MiniLM-L6-v2 caption embeddings (needs gankit[minilm])",
    ),
    "stackgan-stage1": ("stackgan-stage1-captions", [], "StackGAN Stage-I, 32 px"),
    "stackgan-stage1-nearest": (
        "stackgan-stage1-captions",
        NEAREST,
        "StackGAN Stage-I, 32 px, the batch's nearest caption as D's wrong text",
    ),
    "stackgan-stage1-nearest-12k": (
        "stackgan-stage1-captions",
        [*NEAREST, "train.steps=12000"],
        "the same, 12,000 steps",
    ),
    "stackgan-stage1-nearest-16k": (
        "stackgan-stage1-captions",
        [*NEAREST, "train.steps=16000"],
        "the same, 16,000 steps",
    ),
    "stackgan-stage1-nearest-20k": (
        "stackgan-stage1-captions",
        [*NEAREST, "train.steps=20000"],
        "the same, 20,000 steps",
    ),
    # The measured run continued the 20,000-step run: EMA of G (decay 0.999) switched on at step 21,000, one
    # thread to step 28,500, then two, stopped by its time limit (see docs/results.md, fourth round).
    "stackgan-stage1-nearest-ema": (
        "stackgan-stage1-captions",
        [*NEAREST, "train.steps=43046", "train.ema_decay=0.999"],
        "the same, 43,046 steps, scored with the EMA of G (decay 0.999)",
    ),
    "stackgan-stage1-matching": (
        "stackgan-stage1-captions",
        MATCHING,
        "Stage-I, nearest wrong text, + image-text matching term (weight 0.2)",
    ),
    "stackgan-stage2": ("stackgan-stage2-captions", [], "StackGAN Stage-II, 32 -> 64 px"),
    "stackgan-stage2-matching": (
        "stackgan-stage2-captions",
        MATCHING,
        "Stage-II on stackgan-stage1-nearest-12k, + image-text matching term (weight 0.2)",
    ),
}
STAGE1 = {"stackgan-stage2": "stackgan-stage1", "stackgan-stage2-matching": "stackgan-stage1-nearest-12k"}


def train_row(row: str, folder: Path, out: Path, data: str, overrides: list[str]) -> float:
    from gankit import load_config, train

    preset, settings, _ = ROWS[row]
    paths = [f"data.path={data}"]
    if row in STAGE1:
        paths.append(f"objective.stage1={out / STAGE1[row]}")
    start = time.perf_counter()
    train(load_config(preset, settings + paths + ["train.tensorboard=false"] + overrides), folder, progress=False)
    return time.perf_counter() - start


def panel(pipelines: dict, test, out: Path) -> None:
    """8 test captions: the real scene, then each row's sample 0 of seed 0, one column per row."""
    import numpy as np
    import torch

    from gankit.images import image_grid, save_picture
    from gankit.metrics.text_consistency import resize

    heldout = test.extras["attributes"]["heldout"]
    chosen = [*np.flatnonzero(~heldout)[:4], *np.flatnonzero(heldout)[:4]]
    texts = [test.extras["captions"][i][0] for i in chosen]
    columns = [resize(test.x[chosen], 64)]
    for pipeline in pipelines.values():
        columns.append(
            resize(torch.from_numpy(pipeline.sample(len(texts), text=texts, seed=0)).permute(0, 3, 1, 2), 64)
        )
    cells = torch.stack(columns, dim=1).flatten(0, 1).permute(0, 2, 3, 1).numpy()
    save_picture(image_grid(cells, columns=len(columns)), out / "captions.png")
    (out / "captions.json").write_text(json.dumps({"rows": texts, "columns": ["real", *pipelines]}, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="gan-int-cls,stackgan-stage1,stackgan-stage2")
    parser.add_argument("--data", default="data/captions")
    parser.add_argument("--attributes", default="data/attributes.safetensors")
    parser.add_argument("--retrieval", default="data/retrieval-encoder.safetensors")
    parser.add_argument("--out", default="runs/text-to-image")
    parser.add_argument("--set", action="append", default=[], help="override for every row, e.g. train.steps=100")
    parser.add_argument(
        "--condition-noise-scale",
        type=float,
        default=1.0,
        help="StackGAN rows: sample with c = mu + sigma * S * eps (1: the paper; 0: the mean)",
    )
    args = parser.parse_args()
    rows = [r for r in args.rows.split(",") if r]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; valid: {', '.join(ROWS)}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from gankit import load_generator
    from gankit.data import load_dataset
    from gankit.metrics.text_consistency import evaluate_text_generator

    out = Path(args.out)
    results, pipelines = [], {}
    for row in rows:
        folder = out / row
        seconds = None
        if not (folder / "generator.safetensors").is_file():
            seconds = train_row(row, folder, out, args.data, args.set)
        pipeline = pipelines[row] = load_generator(folder)
        augmented = bool(getattr(pipeline.G, "condition_noise_dim", 0))  # StackGAN; GAN-CLS has no conditioning noise
        if augmented:
            pipeline.set_condition_noise_scale(args.condition_noise_scale)
        result = evaluate_text_generator(pipeline, args.data, args.attributes, args.retrieval)
        noise = f"{args.condition_noise_scale:g}" if augmented else "(no CA)"
        result.update(row=row, preset=ROWS[row][0], train_seconds=seconds, noise=noise)
        scale = "" if args.condition_noise_scale == 1.0 else f"-condition-noise-{args.condition_noise_scale:g}"
        (folder / f"text_metrics{scale}.json").write_text(json.dumps(result, indent=2) + "\n")
        results.append(result)
    test = load_dataset({"name": "captions", "path": args.data, "split": "test"})
    panel(pipelines, test, out)

    c = results[0]["ceiling"]
    lines = [
        f"Text-to-image on the captioned scenes, {datetime.date.today()}, "
        f"{platform.machine()} CPU, one thread per run.",
        f"Command: python {' '.join(sys.argv)}",
        "",
        "| row | steps | train s | EMA | noise x | all / seen / "
        "held-out consistency | seen / ceiling | held-out / ceiling "
        "| class, colour, size, position | FID | R@1 |",
        "|---|---:|---:|---|---:|---|---:|---:|---|---:|---:|",
    ]
    for r in results:
        m, q = r["metrics"], r["ratios"]
        seconds = f"{r['train_seconds']:.0f}" if r["train_seconds"] else "(earlier)"
        lines.append(
            f"| {r['row']} | {r['protocol']['step']} | {seconds} | "
            f"{'yes' if r['protocol']['ema_generator'] else 'no'} | "
            f"{r['noise']} | {m['all_accuracy']:.3f} / {m['all_accuracy_seen']:.3f} / "
            f"{m['all_accuracy_heldout']:.3f} | {q['all_accuracy_seen_to_ceiling']:.2f} | "
            f"{q['all_accuracy_heldout_to_ceiling']:.2f} | {m['class_accuracy']:.2f}, {m['colour_accuracy']:.2f}, "
            f"{m['size_accuracy']:.2f}, {m['position_accuracy']:.2f} | "
            f"{m['fid']:.2f} | {m.get('retrieval_r1', float('nan')):.3f} |"
        )
    lines += [
        f"| real test scenes (ceiling) | | | | | {c['all_accuracy']:.3f} / {c['all_accuracy_seen']:.3f} / "
        f"{c['all_accuracy_heldout']:.3f} | | | {c['class_accuracy']:.2f}, {c['colour_accuracy']:.2f}, "
        f"{c['size_accuracy']:.2f}, {c['position_accuracy']:.2f} | | {c.get('retrieval_r1', float('nan')):.3f} |",
        "",
        "Protocol: "
        + json.dumps({k: v for k, v in results[0]["protocol"].items() if k not in ("step", "ema_generator")}),
    ]
    for r in results:
        h = r["ceiling_at_generator_resolution"]
        lines.append(
            f"Ceiling for {r['row']} at its {r['protocol']['generator_resolution']} px (real scenes down and up "
            f"again): {h['all_accuracy_seen']:.3f} seen / {h['all_accuracy_heldout']:.3f} held-out."
        )
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
