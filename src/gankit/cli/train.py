"""``gankit train``: train a GAN."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from gankit.cli.common import count, output_path, surviving_output


def cmd_train(args) -> int:
    with surviving_output():  # a closed pipe or a vanished terminal must not cost the run its checkpoint
        return train_command(args)


def train_command(args) -> int:
    from gankit.config import load_config
    from gankit.training import train

    overrides = list(args.set or [])
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    config = load_config(args.config, overrides)
    out = Path(args.out) if args.out else default_run_dir(args.config)
    start = time.perf_counter()
    result = train(config, out, resume=args.resume, progress=not args.quiet)
    wall = time.perf_counter() - start
    if int(os.environ.get("RANK", "0")):  # under torchrun, process 0 speaks for the run
        return 130 if result.interrupted else 0
    state = "interrupted (saved)" if result.interrupted else "done"
    print(f"\n{state}: step {result.step}, {result.images_per_second:.0f} images/s over the last log interval")
    print(f"  samples:          {result.samples_path}")
    print(f"  loss log:         {out / 'train_log.jsonl'}  (curves: {out / 'losses.png'})")
    print(f"  checkpoints:      {out / 'checkpoints'}")
    print(f"  generator export: {result.export_path}")
    if result.best:
        print(f"  best generator:   {best_line(result.best, out)}")
        print(f"  evaluation cost:  {cost_line(result.best, wall)}")
    if result.interrupted:
        print(f"  continue with:    {result.resume_command}")
        return 130  # the shell's code for a run stopped by Ctrl-C
    return 0


def best_line(best: dict, out: Path) -> str:
    """Where the best generator is and how much better than the last evaluation it scored."""
    metric, value, last = best["metric"], best["best"], best["last"]
    if best["best_step"] == best["last_step"]:
        return f"{out / 'best'} = the last evaluation (step {best['last_step']:,}, {metric} {value:.4g}); RUN means it"
    gain = (last - value) if best["lower_is_better"] else (value - last)
    percent = 100 * gain / abs(last) if last else None
    relative = "" if percent is None else f", {percent:.0f}% better" if percent >= 1 else ", less than 1% better"
    return (
        f"{out / 'best'}: step {best['best_step']:,}, {metric} {value:.4g} vs {last:.4g} at step "
        f"{best['last_step']:,}{relative}; commands take RUN as this one (RUN@last: the last one)"
    )


def cost_line(best: dict, wall: float) -> str:
    """What the periodic evaluations cost this command: the figure to keep near or under a tenth of training."""
    n, seconds = best.get("evaluations", 0), best.get("seconds", 0.0)
    share = f" ({100 * seconds / wall:.0f}% of this command's {wall:.0f} s)" if wall > 0 else ""
    return f"{n} evaluation(s), {seconds:.1f} s{share}; fewer with a larger train.eval_every"


def default_run_dir(source: str) -> Path:
    source_path = Path(source)
    if source_path.is_dir():
        return source_path
    return Path("runs") / source_path.stem


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a GAN from a preset, a config file or a run folder")
    p.add_argument("config", help="preset name (see `gankit list`), config .json, or run folder")
    p.add_argument("--out", type=output_path, help="run folder (default: runs/<preset>)")
    p.add_argument("--steps", type=count, help="number of G steps (same as --set train.steps=N)")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a config value, e.g. train.batch_size=64"
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_train)
