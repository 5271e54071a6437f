"""Does a text-to-image G draw what the caption says? Scores on the captioned scenes' test split.

``evaluate_text_generator`` draws one image per test scene from that scene's first caption (sample k of
the seed for scene k) and reports:

- text consistency: the share of images whose four predicted attributes (class, colour, size,
  position; ``metrics.attributes``) all match the caption, for scenes with a (class, colour) pair the
  train split shows ("seen") and for the held-out pairs, next to the same classifier's score on the real
  test images (the ceiling) and the ratio of the two. The ceiling is also given for real images taken
  down to G's resolution and back up (what a perfect G at that size would score);
- FID against the real test images in the attribute classifier's feature space (its last 4x4 map,
  flattened), with the generated images resized to the classifier's resolution (bilinear): a Stage-I
  image is scored "upsampled", as StackGAN compares its stages;
- retrieval R@1: for each generated image, whether its own caption scores highest among 100 (its own and
  99 captions of scenes with other attributes) under a joint embedding (text and image encoder saved by
  ``gankit text train-encoder``); the same score of the real test images is the ceiling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import gankit
from gankit.data import load_dataset
from gankit.data.captions import CLASSES
from gankit.data.captions import attribute_groups
from gankit.formats import run_folder_of
from gankit.metrics.scores import fid
from gankit.networks.text_encoders import load_image_encoder, load_text_encoder
from gankit.metrics.attributes import HEADS, consistency, load_attribute_classifier, predict


def resize(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """uint8 images (N, C, H, W) at ``resolution`` (bilinear, antialiased when shrinking), uint8."""
    if x.shape[-1] == resolution:
        return x
    y = torch.nn.functional.interpolate(
        x.float(),
        size=(resolution, resolution),
        mode="bilinear",
        align_corners=False,
        antialias=resolution < x.shape[-1],
    )
    return y.round().clamp(0, 255).to(torch.uint8)


@torch.no_grad()
def attribute_features(net, x: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """The attribute classifier's flattened last feature map of uint8 images (N, C, R, R)."""
    parts = [net.encoder.body(x[i : i + batch_size].float() / 127.5 - 1) for i in range(0, len(x), batch_size)]
    return torch.cat(parts).numpy().astype(np.float64)


@torch.no_grad()
def retrieval_rank1(
    text_encoder,
    image_encoder,
    images: torch.Tensor,
    captions: list[str],
    groups: np.ndarray,
    pool: int = 100,
    seed: int = 0,
) -> float:
    """The share of ``images`` (uint8 (N, C, R, R)) whose own caption ``captions[k]`` scores highest among
    ``pool`` captions: its own and ``pool - 1`` captions of other scenes whose attribute group differs."""
    rng = np.random.default_rng(seed)
    text = text_encoder(captions)
    image = torch.cat([image_encoder(images[i : i + 500].float() / 127.5 - 1) for i in range(0, len(images), 500)])
    hits = 0
    for k in range(len(images)):
        others = np.flatnonzero(groups != groups[k])
        chosen = np.concatenate([[k], rng.choice(others, size=min(pool - 1, len(others)), replace=False)])
        hits += int((text[chosen] @ image[k]).argmax() == 0)
    return hits / len(images)


def consistency_scores(net, images: torch.Tensor, attributes: dict) -> tuple[dict[str, float], list[list[int]]]:
    """Consistency of uint8 images already at the classifier's resolution with their scenes' attributes,
    and the class confusion: counts[scene's class][predicted class]."""
    predicted = predict(net, images)
    confusion = np.zeros((HEADS["class"],) * 2, dtype=int)
    np.add.at(confusion, (np.asarray(attributes["class"]), predicted["class"]), 1)
    return consistency(predicted, {k: attributes[k] for k in HEADS}, attributes["heldout"]), confusion.tolist()


def evaluate_text_generator(
    pipeline, data: str, attributes: str, retrieval: str = "", seed: int = 0, limit: int | None = None, log=print
) -> dict:
    """Score ``pipeline`` (a text-to-image ``GeneratorPipeline``) on the test split of the make-captions
    folder ``data`` with the attribute classifier file ``attributes`` and, when given, the joint
    embedding file ``retrieval``. Returns a row: metrics, ceilings, ratios and the protocol."""
    test = load_dataset({"name": "captions", "path": data, "split": "test", **({"limit": limit} if limit else {})})
    if "attributes" not in test.extras:
        raise ValueError(f"{data}: text consistency needs a folder written by gankit data make-captions")
    net, report = load_attribute_classifier(attributes)
    truth = test.extras["attributes"]
    texts = [c[0] for c in test.extras["captions"]]
    log(f"drawing {len(texts)} images, one per test caption (seed {seed})")
    generated = torch.from_numpy(pipeline.sample(len(texts), seed=seed, text=texts, progress=True)).permute(0, 3, 1, 2)
    resolution = generated.shape[-1]
    real, fake = resize(test.x, net.resolution), resize(generated, net.resolution)
    metrics, confusion = consistency_scores(net, fake, truth)
    ceiling, _ = consistency_scores(net, real, truth)
    ceiling_here, confusion_here = consistency_scores(net, resize(resize(test.x, resolution), net.resolution), truth)
    metrics["fid"] = fid(attribute_features(net, real), attribute_features(net, fake))
    ratios = {
        f"{k}_to_ceiling": metrics[k] / ceiling[k] if ceiling[k] else float("nan")
        for k in ("all_accuracy", "all_accuracy_seen", "all_accuracy_heldout")
    }
    groups = attribute_groups(truth).numpy()
    if retrieval:
        text_encoder, image_encoder = load_text_encoder(retrieval), load_image_encoder(retrieval)
        side = image_encoder.shape["resolution"]
        metrics["retrieval_r1"] = retrieval_rank1(
            text_encoder, image_encoder, resize(generated, side), texts, groups, seed=seed
        )
        ceiling["retrieval_r1"] = retrieval_rank1(
            text_encoder, image_encoder, resize(test.x, side), texts, groups, seed=seed
        )
    return {
        "metrics": metrics,
        "ceiling": ceiling,
        "ceiling_at_generator_resolution": ceiling_here,
        "ratios": ratios,
        "class_confusion": confusion,  # rows: the caption's class, columns: the classifier's
        "class_confusion_real_at_generator_resolution": confusion_here,  # the real scenes down and up
        "classifier_report": report,
        "protocol": {
            "data": data,
            "split": "test",
            "scenes": len(texts),
            "caption": "first of each scene",
            "seed": seed,
            "generator_resolution": resolution,
            "classifier": attributes,
            "classifier_resolution": net.resolution,
            "fid_features": "attribute classifier, last 4x4 map flattened",
            "fid_reference": "the same test scenes",
            "retrieval": retrieval or None,
            "retrieval_pool": 100,
            "step": pipeline.step,
            "ema_generator": pipeline.ema,
            "condition_noise_scale": noise_scale_of(pipeline),
            "gankit_version": gankit.__version__,
        },
    }


def format_text_report(row: dict) -> str:
    """The text report of :func:`evaluate_text_generator`'s row, as ``gankit evaluate-text`` prints it."""
    m, c, r, p = row["metrics"], row["ceiling"], row["ratios"], row["protocol"]
    drawn = f"step {p['step']}{', EMA of G' if p['ema_generator'] else ''}"
    if p["condition_noise_scale"] != 1.0:
        drawn += f", conditioning noise x {p['condition_noise_scale']:g}"
    lines = [f"text consistency (all four attributes right; {drawn}), generated / real test (ceiling) / ratio:"]
    for key, name in (
        ("all_accuracy", "all scenes"),
        ("all_accuracy_seen", "seen pairs"),
        ("all_accuracy_heldout", "held-out pairs"),
    ):
        lines.append(f"  {name:15s} {m[key]:.3f} / {c[key]:.3f} / {r[key + '_to_ceiling']:.2f}")
    lines.append(
        "  per attribute: "
        + ", ".join(f"{k.split('_')[0]} {m[k]:.3f}" for k in m if k.endswith("accuracy") and not k.startswith("all"))
    )
    for key, what in (
        ("class_confusion", "asked-for garment drawn as another"),
        ("class_confusion_real_at_generator_resolution", "real scenes at G's resolution, misread"),
    ):
        counts = row[key]
        misses = sorted((n, a, b) for a, line in enumerate(counts) for b, n in enumerate(line) if a != b and n)[::-1][
            :3
        ]
        if misses:
            lines.append(
                f"  commonest {what}: "
                + ", ".join(f"{CLASSES[a]} as {CLASSES[b]} {n}/{sum(counts[a])}" for n, a, b in misses)
            )
    lines.append(f"FID (attribute-classifier features, vs the {p['scenes']} real test scenes): {m['fid']:.2f}")
    if "retrieval_r1" in m:
        lines.append(
            f"retrieval R@1 among 100 captions: {m['retrieval_r1']:.3f} (real test images: {c['retrieval_r1']:.3f})"
        )
    return "\n".join(lines)


def noise_scale_of(pipeline) -> float:
    """The conditioning-noise scale a text G draws with (1, the paper's, when it has no conditioning augmentation)."""
    return float(pipeline.settings.get("condition_noise_scale", 1.0))


def text_report_path(source: str | Path, pipeline, raw_generator: bool = False) -> Path:
    """Where ``gankit evaluate-text`` writes its row by default: the run folder's ``text_metrics.json``, named
    after a checkpoint's step, a raw G asked for (``raw_generator``: --no-ema) and a noise scale other than 1,
    so rows of different draws never overwrite each other."""
    source = Path(source)
    folder = run_folder_of(source) or Path(".")
    suffix = f"-step{pipeline.step}" if source.name.startswith("ckpt-") else ""  # not the export's file
    suffix += "-no-ema" if raw_generator else ""
    scale = noise_scale_of(pipeline)
    suffix += "" if scale == 1.0 else f"-condition-noise-{scale:g}"
    return folder / f"text_metrics{suffix}.json"
