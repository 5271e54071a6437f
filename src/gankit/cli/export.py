"""``gankit export``: a generator as an ONNX graph or a torch.export program, checked against gankit's sampling."""

from __future__ import annotations

import argparse

from gankit.cli.common import count_up_to, output_path

MAX_CHECK_SAMPLES = 4096  # gankit.portable checks the same bound (not imported here: it loads torch)


def cmd_export(args) -> int:
    from gankit.portable import export

    meta = export(args.source, args.out, args.format, check=args.check, samples=args.samples)
    if meta.get("source_note"):
        print(f"{args.source}: {meta['source_note']}")
    inputs = ", ".join(f"{i['name']} {i['shape']} {i['dtype']}" for i in meta["inputs"])
    print(
        f"wrote {args.out} ({meta['bytes'] / 2**20:.1f} MiB, {meta['export_seconds']:.1f} s): inputs {inputs}; "
        f"output {meta['outputs'][0]['name']} {meta['outputs'][0]['shape']}; metadata {args.out}.json"
    )
    parity = meta.get("parity")
    if parity:
        pixels = f", max pixel difference {parity['max_pixel_difference']}" if "max_pixel_difference" in parity else ""
        print(
            f"parity ({parity['runtime']}, {parity['samples']} samples): max |difference| "
            f"{parity['max_abs_difference']:.2g}{pixels}: passed; report {args.out}.parity.json"
        )
    else:
        print("parity check skipped (--no-check)")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a generator to ONNX or torch.export, checked against gankit's sampling",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("source", help="run folder, generator.safetensors, or checkpoint")
    p.add_argument(
        "--format",
        choices=("onnx", "torch-export"),
        default="onnx",
        help="onnx (needs pip install 'gankit[onnx]') or a torch.export program (.pt2)",
    )
    p.add_argument("--out", type=output_path, required=True, help="the file to write (G.onnx, G.pt2)")
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the parity check")
    p.add_argument(
        "--samples", type=count_up_to(MAX_CHECK_SAMPLES), default=8, help="samples the parity check compares"
    )
    p.set_defaults(run=cmd_export)
