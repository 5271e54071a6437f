"""``gankit sweep SPEC.json --out sweeps/NAME``: many runs of a preset over a search space, on Optuna."""

from __future__ import annotations

import argparse

from gankit.cli.common import output_path
from gankit.errors import UsageError


def cmd_sweep(args) -> int:
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise UsageError("gankit sweep runs on Optuna: pip install 'gankit[sweep]' (or pip install optuna)") from None
    from gankit.sweep import read_spec, run_sweep

    spec = read_spec(args.spec)
    summary = run_sweep(spec, args.out, storage=args.storage)
    print(
        f"{summary['complete']} configurations done, {summary['pruned']} pruned, {summary['failed']} failed; "
        f"summary in {args.out}/summary.json"
        + (f", comparison page {summary['comparison']}" if "comparison" in summary else "")
    )
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="train a preset over a search space (Optuna): grid, random or TPE, seeds, budget")
    p.add_argument(
        "spec", help="the sweep's JSON spec (see gankit.sweep), or a shipped one: losses-fashion, stabilizers-ring"
    )
    p.add_argument("--out", type=output_path, required=True, help="the sweep folder (its runs, study, page)")
    p.add_argument(
        "--storage",
        help="a database URL shared by several machines (postgresql://user@host/db); default: a file in --out",
    )
    p.set_defaults(run=cmd_sweep)
