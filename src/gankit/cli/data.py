"""``gankit data | text``: datasets and text encoders gankit builds itself."""

from __future__ import annotations

from gankit.errors import UsageError

import argparse
import time
from pathlib import Path

from gankit.cli.common import count_up_to, output_path, seed


def cmd_make_captions(args) -> int:
    from gankit.data.captions import write_captioned_dataset

    if args.resolution < 16 or min(args.train, args.test, args.captions) < 1:
        raise UsageError("--resolution must be >= 16; --train, --test, --captions >= 1")
    info = write_captioned_dataset(Path(args.out), args.seed, args.train, args.test, args.resolution, args.captions)
    print(
        f"wrote {args.out}: train.npz, test.npz, *_captions.json, info.json; held-out pairs: "
        + ", ".join(f"{c} {k}" for c, k in info["heldout_pairs"])
    )
    return 0


def cmd_make_pairs(args) -> int:
    from gankit.data.pairs import make_pairs

    info = make_pairs(args.task, args.out, args.resolution, args.train, args.test, args.seed)
    print(
        f"wrote {args.out}: train.npz, test.npz ({info['counts']['train']:,} / {info['counts']['test']:,} pairs), "
        f"info.json; train with: gankit train pix2pix-edges-fashion --set data.path={args.out}"
    )
    return 0


def cmd_pack(args) -> int:
    from gankit.config import parse_assignment
    from gankit.data.packed import pack, source_section

    options = dict(parse_assignment(item, "limit=1000") for item in args.set)
    for name in ("resolution", "channels"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    section = source_section(args.source, options)
    pack(section, Path(args.out), progress=not args.quiet)
    print(f"train on it with: gankit train PRESET --set data.name=packed --set data.path={args.out}")
    return 0


def cmd_train_text_encoder(args) -> int:
    from gankit.config import parse_assignment
    from gankit.data import load_dataset
    from gankit.joint_embedding import retrieval_rank1, train_joint_embedding
    from gankit.networks.text_encoders import load_text_encoder, save_text_encoder

    section = {"name": "captions", "path": args.data, **({"resolution": args.resolution} if args.resolution else {})}
    train = load_dataset(section)
    options = dict(parse_assignment(item, "embed_dim=256") for item in args.set)  # checked by the encoder's options
    fixed = load_text_encoder(args.text_encoder) if args.text_encoder else None
    encoder, image_encoder = train_joint_embedding(
        train, args.encoder, options, args.steps, args.batch_size, seed=args.seed, text_encoder=fixed
    )
    save_text_encoder(Path(args.out), encoder, image_encoder)
    from gankit.data import has_test_split

    which = "test" if has_test_split(section) else "train"  # user caption data has one split: the training images
    held_out = load_dataset({**section, "split": "test"}) if which == "test" else train
    start = time.perf_counter()
    score = retrieval_rank1(encoder, image_encoder, held_out, pool=100, seed=args.seed, progress=True)
    print(
        f"wrote {args.out}; retrieval on the {which} split: the image's own caption ranks first among 100 "
        f"for {score:.1%} of 500 images (chance 1%; scored in {time.perf_counter() - start:.0f} s)"
    )
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="build datasets gankit makes itself")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    q = data_sub.add_parser("make-captions", help="coloured Fashion-MNIST scenes with captions and attributes")
    q.add_argument("--out", type=output_path, default="data/captions", help="output folder (default data/captions)")
    q.add_argument("--seed", type=seed, default=0)
    q.add_argument("--train", type=count_up_to(10_000_000), default=20000, help="train scenes (default 20000)")
    q.add_argument(
        "--test",
        type=count_up_to(10_000_000),
        default=2000,
        help="test scenes, half with held-out (class, colour) pairs",
    )
    q.add_argument("--resolution", type=count_up_to(4096), default=64, help="side of the square scenes in pixels")
    q.add_argument("--captions", type=count_up_to(100), default=5, help="captions per scene (default 5)")
    q.set_defaults(run=cmd_make_captions)
    q = data_sub.add_parser("make-pairs", help="paired images for pix2pix from local data: edges, inpaint, colorize")
    q.add_argument(
        "--task",
        required=True,
        choices=("edges", "inpaint", "colorize"),
        help="edges: edge map -> Fashion-MNIST item; inpaint: masked centre -> item; colorize: gray -> "
        "colour captioned scene",
    )
    q.add_argument("--out", type=output_path, required=True, help="output folder (train.npz, test.npz, info.json)")
    q.add_argument("--resolution", type=count_up_to(4096), default=32, help="square side (default 32)")
    q.add_argument(
        "--train", type=count_up_to(10_000_000), help="train pairs (default: all 60,000 items; colorize: 20,000 scenes)"
    )
    q.add_argument(
        "--test", type=count_up_to(10_000_000), help="test pairs (default: all 10,000 items; colorize: 2,000 scenes)"
    )
    q.add_argument("--seed", type=seed, default=0, help="the scenes' seed (colorize)")
    q.set_defaults(run=cmd_make_pairs)
    q = data_sub.add_parser(
        "pack", help="convert a dataset once into memory-mapped uint8 images (data larger than memory)"
    )
    q.add_argument(
        "source", help="a dataset name (fashion-mnist, cifar10, ...), an image folder, an .npz or a caption .csv"
    )
    q.add_argument("--out", type=output_path, required=True, help="the packed folder (train with data.name=packed)")
    q.add_argument(
        "--resolution", type=count_up_to(4096), help="square side to resize to (an image folder needs one; default 64)"
    )
    q.add_argument("--channels", type=int, choices=(1, 3), help="1 (grayscale) or 3 (RGB)")
    q.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="another option of the source, e.g. path=DIR"
    )
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(run=cmd_pack)

    p = sub.add_parser("text", help="text encoders for text-to-image models")
    text_sub = p.add_subparsers(dest="text_command", required=True)
    q = text_sub.add_parser("train-encoder", help="train a text encoder with the joint embedding (Reed et al. 2016)")
    q.add_argument("--data", required=True, help="a make-captions folder, a captioned image folder or a CSV")
    q.add_argument(
        "--resolution", type=count_up_to(4096), help="image side for user data (the built dataset keeps its own)"
    )
    q.add_argument("--encoder", default="word-gru", help="text encoder name (default word-gru)")
    q.add_argument(
        "--text-encoder",
        default="",
        metavar="FILE_OR_NAME",
        help="keep this text encoder (a train-encoder file, a text-to-image export, or minilm) as it is "
        "and train only the image encoder beside it",
    )
    q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="encoder option, e.g. embed_dim=256")
    q.add_argument("--steps", type=count_up_to(10_000_000), default=2000, help="training steps of the encoder")
    q.add_argument(
        "--batch-size",
        type=count_up_to(65_536),
        default=64,
        help="image-caption pairs per step (the contrastive loss's negatives)",
    )
    q.add_argument("--seed", type=seed, default=0)
    q.add_argument(
        "--out", type=output_path, default="text-encoder.safetensors", help="the joint embedding file to write"
    )
    q.set_defaults(run=cmd_train_text_encoder)
