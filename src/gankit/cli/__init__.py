"""The ``gankit`` command: a thin shell over the library. One module per command group; each parses its
arguments, calls a library function and prints."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from gankit.cli import analysis, data, evaluate, export, info, sample, serve, sweep, train
from gankit.cli.common import Parser, split_generator_flags

EXIT_CODES = (
    "exit codes: 0 done; 2 a user error (an argument, a config value, a file or the data: the message "
    "says which); 1 an internal error (a bug: rerun with --debug and report it); 130 interrupted (Ctrl-C; "
    "a training saves a checkpoint first)"
)


def build_parser() -> argparse.ArgumentParser:
    from gankit import __version__

    parser = Parser(prog="gankit", description="Train, sample and inspect GANs.", epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    for group in (train, sample, evaluate, analysis, data, info, serve, export, sweep):
        group.add_parsers(sub)
    return parser


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"gankit: warning: {message}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run one command. Errors a user can act on (gankit.errors' families, files that cannot be read or
    written, memory, arguments a library function refused) print one message and exit 2, as argparse does for
    a bad argument; an internal error exits 1, an interrupt 130 (see EXIT_CODES); ``--debug`` shows the
    traceback instead."""
    from gankit.errors import GankitError

    parser = build_parser()
    argv, generator_argv = split_generator_flags(parser, list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    args.generator_argv = generator_argv  # the generator's own flags (cli.common.generator_flags reads them)
    warnings.showwarning = show_warning
    where = f"gankit {args.command}"
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"\n{where}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (gankit info RUN | head): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as error:
        if args.debug:
            raise
        print(f"{where}: error: {describe_error(error)}", file=sys.stderr)
        return 2 if isinstance(error, (GankitError, ValueError, OSError, MemoryError)) else 1


def describe_error(error: Exception) -> str:
    from gankit.errors import GankitError

    if isinstance(error, (GankitError, ValueError)):  # ValueError: a library function's argument check
        return str(error)
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror or error}"
    if isinstance(error, MemoryError):
        return "out of memory; try a smaller batch size, fewer samples or a smaller model"
    return (
        f"internal error ({type(error).__name__}: {error}). This is a bug in gankit: please report it with "
        "the output of the same command run with --debug"
    )


if __name__ == "__main__":
    sys.exit(main())
