"""The training loop. It knows no variant: what G and D take besides z comes from the variant's condition,
the phase losses from its objective (``gankit.variants``).

``train(config, run_dir)`` runs Goodfellow et al.'s Algorithm 1: ``d_steps`` updates of D on fresh real
batches and fresh z, then one update of G. G's update reuses the samples G(z) of D's last update (carried
on the step's context), as the PyTorch DCGAN example does (G has not changed since they were drawn),
which saves a forward pass of G per step. The run folder it writes:

    .lock                  held (flock) by the training process that owns the folder
    config.json            the fully resolved config
    train_log.jsonl        one row per ``log_every`` steps: losses, D(x), D(G(z)), images/s
    samples/step-*.png     fixed-z sample grids; samples.png is the latest
    checkpoints/*.safetensors   the last ``keep_checkpoints`` training checkpoints
    generator.safetensors  the generator export (EMA weights when EMA is on)
    losses.png, progress.gif    the loss curves and the grids as an animation
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from gankit.config import RunConfig
from gankit.data import BatchStream, load_dataset
from gankit.data.dataset import Prefetcher
from gankit.files import atomic_write_text, write_json
from gankit.progress import phase
from gankit.device import resolve_precision
from gankit.training.checkpoints import (
    TrainingError,
    TrainingState,
    check_can_save,
    find_resume_point,
    last_checkpoint_note,
    list_checkpoints,
    load_checkpoint,
    read_resume_point,
    resumed_config,
    save_run_state,
)
from gankit.training.distributed import (
    Ranks,
    average,
    broadcast_object,
    floating_buffers,
    join,
    leave,
    shard,
    synchronize_batchnorm,
)
from gankit.training.ema import EMA
from gankit.training.periodic_evaluation import plan_evaluation
from gankit.training.game import build_game, compile_for_training, set_learning_rates
from gankit.training.outputs import (
    append_jsonl,
    make_progress_bar,
    open_tensorboard,
    truncate_log,
    write_tensorboard_samples,
    write_tensorboard_scalars,
    write_loss_plot,
    write_progress_gif,
    write_samples,
)
from gankit.training.run_folder import hold_run_folder
from gankit.variants import StepContext
from gankit.variants.base import frozen


class Divergence(TrainingError):
    """A loss became NaN or infinite."""


@dataclasses.dataclass
class RunResult:
    run_dir: Path
    step: int
    images_per_second: float
    last_row: dict[str, Any]
    interrupted: bool = False  # stopped early by Ctrl-C (or SIGTERM), with a checkpoint of this step saved
    best: dict[str, Any] | None = None  # the periodic evaluation's best step against its last (train.eval_every)
    stopped_by_evaluation: bool = False  # ended early because ``on_evaluation`` asked to (a sweep's pruning)

    @property
    def resume_command(self) -> str:
        return f"gankit train {self.run_dir} --resume"

    @property
    def export_path(self) -> Path:
        return self.run_dir / "generator.safetensors"

    @property
    def samples_path(self) -> Path:
        return self.run_dir / "samples.png"


DIVERGENCE_ADVICE = """Likely causes:
  - learning rates too high for this model (train.lr_d={lr_d}, train.lr_g={lr_g}): try half;
  - D far stronger than G (D(x) near 1 and D(G(z)) near 0 in train_log.jsonl before the failure);
  - an unbounded loss without its regularizer (wgan-gp needs loss.gp_weight > 0);
  - bf16 overflow (train.precision={precision}): try train.precision=fp32.
Change the setting and continue from the last good checkpoint with --resume."""

POSTFIX = ("d_loss", "g_loss", "D(x)", "D(G(z))", "d_accuracy", "images_per_second")


def train(
    config: RunConfig,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    on_evaluation: Callable[[int, dict[str, Any]], bool] | None = None,
) -> RunResult:
    """Train the GAN ``config`` describes, writing everything into ``run_dir`` (owned by this process for
    the whole run: a second training there fails at once with RunFolderBusy). Under torchrun, the N processes
    train one run together (``training/distributed.py``); process 0 owns the folder and writes.

    ``on_evaluation(step, metrics)`` is called after each periodic evaluation (``train.eval_every``) of a
    one-process run; when it returns True the run ends there as at its last step (checkpoint, export, pictures)
    with ``RunResult.stopped_by_evaluation`` set: how a sweep prunes a hopeless run."""
    run_dir = Path(run_dir)
    ranks, device = join(config.train.device)
    finished = False
    try:
        ranks.local_slice(config.train.batch_size)  # the global batch divides among the processes
        with StopRequest() as stop:
            if not ranks.main:
                result = run_training(config, run_dir, resume, False, lambda message: None, ranks, device, stop, None)
            else:
                with hold_run_folder(run_dir, log):
                    result = run_training(config, run_dir, resume, progress, log, ranks, device, stop, on_evaluation)
        finished = True
        return result
    finally:
        leave(ranks, finished)


def run_training(
    config: RunConfig,
    run_dir: Path,
    resume: bool,
    progress: bool,
    log: Callable[[str], None],
    ranks: Ranks,
    device: torch.device,
    stop: StopRequest,
    on_evaluation: Callable[[int, dict[str, Any]], bool] | None = None,
) -> RunResult:
    checkpoint_dir = run_dir / "checkpoints"
    cfg = config.train

    # ---------------------------------------------------------------- run folder and resume
    point = None
    if resume:  # process 0 picks the checkpoint (and sets damaged ones aside); the others read the same file
        point = find_resume_point(checkpoint_dir, log) if ranks.main else None
        chosen = broadcast_object(ranks, str(point.path) if point else None)
        point = point or read_resume_point(Path(chosen))
        config = resumed_config(point.config, config, log, point.path)
    elif ranks.main:
        existing = list_checkpoints(checkpoint_dir, log) if checkpoint_dir.is_dir() else []
        if existing:
            raise TrainingError(
                f"{run_dir} already holds a run (checkpoint at step {existing[-1][0]}); "
                "pass --resume to continue it, or choose another --out"
            )

    # ---------------------------------------------------------------- data, nets, optimizers, the variant
    local = ranks.local_slice(cfg.batch_size)  # this process's part of every global batch
    precision, why = resolve_precision(cfg.precision, device)
    if why:
        log(f"train.precision=auto: {precision} ({why})")
        config = dataclasses.replace(config, train=dataclasses.replace(cfg, precision=precision))
        cfg = config.train
    torch.manual_seed(cfg.seed)
    with phase(f"loading the data ({config.data['name']})", log):
        dataset = load_dataset(config.data).to(device)
    skipped = dataset.extras.get("skipped_files")
    if skipped and ranks.main:  # the loader warned with the first ones; the run keeps the whole list
        atomic_write_text(run_dir / "skipped_files.txt", "".join(f"{path}\t{why}\n" for path, why in skipped))
        log(f"{len(skipped):,} unreadable files skipped: listed in {run_dir / 'skipped_files.txt'}")
    channels_last = cfg.channels_last and dataset.kind == "images"

    def adapt(G: nn.Module, D: nn.Module) -> None:
        if cfg.sync_batchnorm and ranks.shared:
            synced = synchronize_batchnorm(G.train()) + synchronize_batchnorm(D.train())
            log(f"train.sync_batchnorm: {synced} BatchNorm layers normalize with the global batch's statistics")

    game = build_game(
        config, dataset, device, channels_last, adapt, f" (the model section saved in {point.path})" if point else ""
    )
    config, model_options = game.config, game.model_options
    G, D, opt_G, opt_D, objective = game.G, game.D, game.opt_G, game.opt_D, game.objective
    condition = objective.condition
    evaluation = plan_evaluation(config, dataset, run_dir, condition, log) if cfg.eval_every else None
    with phase(f"preparing the {config.objective['name']} objective on {len(dataset):,} examples", log):
        objective.prepare(dataset)  # a variant's one-off work on the data: minutes for some
    ema = EMA(G, cfg.ema_decay, condition) if cfg.ema_decay > 0 else None
    z_generator = torch.Generator(device).manual_seed(cfg.seed + 1)
    stream = BatchStream(dataset, cfg.batch_size, cfg.seed)
    batches_in = Prefetcher(dataset, stream, local, channels_last)
    latent_dim = model_options.latent_dim
    grid_z, grid_values, grid_columns = condition.training_grid(cfg.sample_grid, latent_dim, cfg.seed)
    grid_z = grid_z.to(device)
    state = TrainingState(G, D, ema, opt_G, opt_D, z_generator, device, condition, ranks=ranks)
    monitor = state.monitor
    if ranks.rank:  # identical nets on every rank; from here on, rank r's own random stream
        torch.manual_seed(ranks.rank_seed(cfg.seed))

    step, batches = 0, 0
    if point is not None:
        step, batches = load_checkpoint(point.path, state, log, (point.tensors, point.metadata))
        point = None  # the file's tensors are in the nets now
        set_learning_rates(opt_G, opt_D, cfg, step)  # the config's rates and betas, not the checkpoint's
        log(f"resumed {run_dir} at step {step}")
    check_can_save(checkpoint_dir, config, step, batches, state)
    log_path = run_dir / "train_log.jsonl"
    if ranks.main:
        write_json(run_dir / "config.json", config.to_dict())
        truncate_log(log_path, step)

    processes = (
        f" | {ranks.world} processes: batch {cfg.batch_size} global, {cfg.batch_size // ranks.world} per process"
        if ranks.shared
        else ""
    )
    log(
        f"training {config.model['name']} on {dataset.name} ({len(dataset)} {dataset.kind}, "
        f"shape {tuple(dataset.x.shape[1:])}) | G {count(G):,} params, D {count(D):,} params | "
        f"loss {config.loss['name']} | device {device}, {cfg.precision}{processes} | run folder {run_dir}"
    )
    writer = open_tensorboard(run_dir, cfg.tensorboard, log) if ranks.main else None
    if step >= cfg.steps:
        log(f"the run is already at step {step} >= train.steps={cfg.steps}; pass --steps N (N > {step}) to go on")

    # ---------------------------------------------------------------- the loop
    sums: dict[str, torch.Tensor] = {}
    interval_steps, interval_start = 0, time.perf_counter()
    last_row: dict[str, Any] = {}
    rate = float("nan")
    bar = make_progress_bar(progress, cfg.steps, step)

    def say(message: str) -> None:
        (bar.write if progress else log)(message)

    compile_for_training(game, cfg.compile, log)  # after the EMA's copy of G and the checkpoint's weights
    G.train()
    D.train()
    stepper = Stepper(
        cfg,
        objective,
        G,
        D,
        opt_G,
        opt_D,
        ema,
        dataset,
        stream,
        batches_in,
        local,
        latent_dim,
        z_generator,
        ranks,
        device,
    )
    loop_start = time.perf_counter()
    clock = RunClock(step, cfg.steps, device.type, say)
    done = interrupted = stopped_by_evaluation = False
    stop.armed = True  # from here a first Ctrl-C finishes the step and saves; before, it stops at once
    while step < cfg.steps and not done:
        # A process that ran out of time or was interrupted says so in the step's last all-reduce, so all stop at
        # the same step.
        out_of_time = cfg.time_limit > 0 and time.perf_counter() - loop_start >= cfg.time_limit
        stats, batches, wished = stepper.step(step, batches, out_of_time or stop.requested)
        interrupted = wished and not out_of_time
        step += 1
        bar.update(1)
        clock.tick(step)
        done = step == cfg.steps or out_of_time or interrupted
        due = Due.after(step, done, cfg)

        for name, value in stats.items():
            sums[name] = sums[name] + value.float() if name in sums else value.float()
        interval_steps += 1
        if device.type == "cpu" or due.log or due.checkpoint:  # on an accelerator this waits for the device
            check_finite(stats["d_loss"], stats["g_loss"], step, checkpoint_dir, cfg)

        # ------------------------------------------------------------ logging
        if out_of_time:
            say(f"train.time_limit: stopping at step {step} after {time.perf_counter() - loop_start:.0f} s")
        if interrupted:
            say(f"interrupted: stopping at step {step}; saving a checkpoint, the samples and the curves")
        if due.log:
            check_finite(sums["d_loss"], sums["g_loss"], step, checkpoint_dir, cfg)
            elapsed = time.perf_counter() - interval_start
            rate = interval_steps * cfg.batch_size / max(elapsed, 1e-9)
            last_row = {
                "step": step,
                "images_seen": step * cfg.batch_size * cfg.d_steps,
                **{name: round(float(total) / interval_steps, 6) for name, total in sums.items()},
                "images_per_second": round(rate, 1),
            }
            if cfg.lr_decay:  # the rates the last step ran at
                last_row["lr_g"], last_row["lr_d"] = opt_G.param_groups[0]["lr"], opt_D.param_groups[0]["lr"]
            alarms = monitor.on_log(last_row)
            if alarms:
                last_row["alarms"] = alarms
                for alarm in alarms:
                    say(f"ALARM {alarm}")
            if ranks.main:
                append_jsonl(log_path, last_row)
            if writer is not None:
                write_tensorboard_scalars(writer, last_row, step)
            bar.set_postfix({k: f"{v:.3g}" for k, v in last_row.items() if k in POSTFIX})
            sums, interval_steps, interval_start = {}, 0, time.perf_counter()

        # ------------------------------------------------------------ samples, evaluation and checkpoints
        if due.snapshot:
            check_weights(state, step, checkpoint_dir, cfg)  # nothing non-finite is drawn, scored or saved
            if ema is not None:
                ema.recalibrate(latent_dim, cfg.batch_size, cfg.seed + 2, device)
        sampler = ema.model if ema else G
        if due.evaluation:  # every process scores its share of the samples (sharded), process 0 writes
            metrics = evaluation.run(config, step, sampler, ema is not None, device, monitor, say, shard(ranks))
            if on_evaluation is not None and not ranks.shared and on_evaluation(step, metrics) and not done:
                say(f"stopping at step {step}: the evaluation's caller asked to (a sweep pruning this run)")
                done = stopped_by_evaluation = True
                due = dataclasses.replace(due, samples=True, checkpoint=True)  # saved as at a last step
        if due.samples and ranks.main:
            picture = write_samples(run_dir, step, sampler, condition, grid_z, grid_values, dataset, grid_columns)
            write_loss_plot(log_path, run_dir / "losses.png")  # the curves so far, beside the latest samples
            if writer is not None:
                write_tensorboard_samples(writer, picture, step)
        if due.checkpoint:
            save_run_state(run_dir, config, step, batches, state, sampler)
    stop.armed = False
    bar.close()
    batches_in.close()
    if writer is not None:
        writer.close()

    # ---------------------------------------------------------------- the GIF (losses.png: drawn at the last step)
    if ranks.main:
        write_progress_gif(run_dir)
    result = RunResult(
        run_dir, step, rate, last_row, interrupted, evaluation.summary() if evaluation else None, stopped_by_evaluation
    )
    if interrupted:
        log(
            f"stopped at step {step:,} of {cfg.steps:,}: checkpoint, samples and curves saved. Continue with:\n  "
            f"{result.resume_command}"
        )
    return result


@dataclasses.dataclass(frozen=True)
class Due:
    """What the step just finished calls for: the loop's one gate for its periodic work."""

    log: bool
    samples: bool  # a sample grid and the curves (process 0 draws them)
    checkpoint: bool  # a checkpoint and the export
    evaluation: bool  # the periodic evaluation (train.eval_every)

    @classmethod
    def after(cls, step: int, done: bool, cfg) -> Due:
        def every(interval: int) -> bool:
            return interval > 0 and (step % interval == 0 or done)

        return cls(every(cfg.log_every), every(cfg.sample_every), every(cfg.checkpoint_every), every(cfg.eval_every))

    @property
    def snapshot(self) -> bool:
        """G is drawn from, scored or saved: its weights are checked first and the EMA's statistics refreshed."""
        return self.samples or self.checkpoint or self.evaluation


class Stepper:
    """One training step: ``d_steps`` updates of D on fresh real batches and fresh z, then one of G, with every
    process's gradients averaged. The variant's objective supplies the losses; this knows no variant."""

    def __init__(
        self,
        cfg,
        objective,
        G: nn.Module,
        D: nn.Module,
        opt_G,
        opt_D,
        ema: EMA | None,
        dataset,
        stream: BatchStream,
        batches_in: Prefetcher,
        local: slice,
        latent_dim: int,
        z_generator: torch.Generator,
        ranks: Ranks,
        device: torch.device,
    ):
        self.cfg, self.objective, self.G, self.opt_G, self.opt_D, self.ema = cfg, objective, G, opt_G, opt_D, ema
        self.dataset, self.stream, self.batches_in, self.local = dataset, stream, batches_in, local
        self.latent_dim, self.z_generator, self.ranks, self.device = latent_dim, z_generator, ranks, device
        self.D = D
        self.condition = objective.condition
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
        # The BatchNorm running statistics averaged across processes at every step (none in a one-process run):
        # the same tensors all run long (updated in place), so the list is made once.
        self.shared_buffers = floating_buffers(G, self.D) if ranks.shared else []

    def step(self, step: int, batches: int, wish: bool) -> tuple[dict[str, torch.Tensor], int, bool]:
        """Runs step ``step``; returns its statistics, the batch count after it, and whether any process
        wished to stop (``wish``: this one's, shared through the step's last all-reduce)."""
        cfg, objective, ranks = self.cfg, self.objective, self.ranks
        objective.begin_step(step)
        if cfg.lr_decay:
            set_learning_rates(self.opt_G, self.opt_D, cfg, step)
        for k in range(cfg.d_steps):
            index = self.stream.indices(batches)[self.local]  # this process's slice of the global batch
            real = self.batches_in.get(batches)
            values = self.condition.batch(self.dataset, index)
            batches += 1
            z = torch.randn(cfg.batch_size, self.latent_dim, device=self.device, generator=self.z_generator)[self.local]
            ctx = StepContext(real, z, values)
            last = k == cfg.d_steps - 1
            # Only the last D step's samples feed G's step; earlier ones need no graph through G.
            with self.autocast, contextlib.nullcontext() if last else frozen(self.G):
                out_d = objective.d_step(ctx)
            self.opt_D.zero_grad(set_to_none=True)
            out_d.loss.backward()
            average(ranks, self.D.parameters(), list(out_d.stats.values()))  # gradients and statistics: global means
            self.opt_D.step()
        with self.autocast:
            out_g = objective.g_step(ctx)
        self.opt_G.zero_grad(set_to_none=True)
        out_g.loss.backward()
        wished = average(ranks, self.G.parameters(), [*out_g.stats.values(), *self.shared_buffers], wish)
        self.opt_G.step()
        if self.ema is not None:
            self.ema.update(self.G, step)
        return {**out_d.stats, **out_g.stats}, batches, wished


# Ctrl-C, a scheduler's stop, and the terminal going away (SIGHUP: an ssh session dropped) all stop a run safely.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # POSIX (the run-folder lock is POSIX too)


class StopRequest:
    """Ctrl-C (SIGINT), SIGTERM or SIGHUP while the loop runs: the first asks the loop to finish its step and stop as at
    the last step (a checkpoint, the samples, the curves and the GIF are written); a second one stops at once
    (KeyboardInterrupt), losing the steps since the last checkpoint. Before and after the loop (loading data,
    building the nets) a signal stops at once. Signal handlers can only be set from the main thread: elsewhere
    (a notebook's worker thread) the signals keep their usual meaning."""

    def __init__(self):
        self.requested = self.armed = False
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for number in STOP_SIGNALS:
                self.previous[number] = signal.signal(number, self.handle)
        return self

    def handle(self, number: int, frame) -> None:
        if not self.armed or self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if os.environ.get("RANK", "0") == "0":  # under torchrun, process 0 speaks for the run
            print(
                "\nstopping after this step to save a checkpoint and the pictures (press Ctrl-C again to quit at "
                "once, losing the steps since the last checkpoint)",
                flush=True,
            )

    def __exit__(self, *exc) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)


class RunClock:
    """Once the first steps are past (warm-up: allocations, caches), says how long the run will take at the
    measured speed, and warns when that is many hours on this device."""

    WARM_UP_STEPS, MEASURE_SECONDS, WARN_HOURS = 3, 15.0, 6.0

    def __init__(
        self,
        step: int,
        total: int,
        device: str,
        say: Callable[[str], None],
        now: Callable[[], float] = time.perf_counter,
    ):
        self.start_step, self.total, self.device, self.say, self.now = step, total, device, say, now
        self.mark: tuple[int, float] | None = None
        self.told = step >= total

    def tick(self, step: int) -> None:
        if self.told:
            return
        now = self.now()
        if self.mark is None:
            if step - self.start_step >= self.WARM_UP_STEPS:
                self.mark = (step, now)
            return
        steps, seconds = step - self.mark[0], now - self.mark[1]
        if seconds < self.MEASURE_SECONDS and step < self.total:
            return
        self.told = True
        if steps == 0 or step >= self.total:
            return
        left = (self.total - step) * seconds / steps
        finish = datetime.datetime.now() + datetime.timedelta(seconds=left)
        self.say(
            f"speed {steps / seconds:.2f} steps/s after warm-up: about {duration(left)} to step {self.total:,} "
            f"(done around {finish:%a %d %b %H:%M})"
        )
        if left > self.WARN_HOURS * 3600:
            hint = " (a GPU, train.device=cuda, would be far faster)" if self.device == "cpu" else ""
            self.say(
                f"WARNING: this run will take about {duration(left)} on this {self.device}{hint}. For a shorter "
                "run: fewer steps (--steps N), a smaller model, or for your own images on a CPU the preset "
                "dcgan-cpu-64. Ctrl-C stops it safely (checkpoint saved) and --resume continues it."
            )


def duration(seconds: float) -> str:
    """A length of time for people: 45 s, 12 min, 3.4 h, 2.9 days."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def check_finite(d_loss: torch.Tensor, g_loss: torch.Tensor, step: int, checkpoint_dir: Path, cfg) -> None:
    bad = [name for name, value in (("d_loss", d_loss), ("g_loss", g_loss)) if not math.isfinite(float(value))]
    if bad:
        raise_divergence(f"{' and '.join(bad)} is not finite", step, checkpoint_dir, cfg)


def check_weights(state: TrainingState, step: int, checkpoint_dir: Path, cfg) -> None:
    """A Divergence when an update left a non-finite weight (the losses before it can still be finite): such
    weights are never sampled from, scored or written, so every checkpoint on disk is a good one."""
    bad = state.non_finite()
    if bad:
        raise_divergence(
            f"{' and '.join(bad)} hold NaN or infinite weights after the update", step, checkpoint_dir, cfg
        )


def raise_divergence(what: str, step: int, checkpoint_dir: Path, cfg) -> None:
    advice = DIVERGENCE_ADVICE.format(lr_d=cfg.lr_d, lr_g=cfg.lr_g, precision=cfg.precision)
    raise Divergence(
        f"training diverged by step {step}: {what}; nothing was saved from this step; "
        f"{last_checkpoint_note(checkpoint_dir)}.\n{advice}"
    )
