"""The ``gankit`` command: a thin shell over the library. One module per command group; each parses its
arguments, calls a library function and prints."""

from __future__ import annotations

import argparse
import sys

from gankit.cli import analysis, data, evaluate, info, sample, train


def build_parser() -> argparse.ArgumentParser:
    from gankit import __version__

    parser = argparse.ArgumentParser(prog="gankit", description="Train, sample and inspect GANs.")
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    for group in (train, sample, evaluate, analysis, data, info):
        group.add_parsers(sub)
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
