"""The training loop, generic over objectives.

``train(config, run_dir)`` runs Goodfellow et al.'s Algorithm 1: ``d_steps``
updates of D on fresh real batches and fresh z, then one update of G. G's
update reuses the samples G(z) of D's last update, as the PyTorch DCGAN example
does (G has not changed since they were drawn), which saves a forward pass
of G per step. The run folder it writes:

    config.json            the fully resolved config
    train_log.jsonl        one row per ``log_every`` steps: losses, D(x), D(G(z)), images/s
    samples/step-*.png     fixed-z sample grids; samples.png is the latest
    checkpoints/*.safetensors   the last ``keep_checkpoints`` training checkpoints
    generator.safetensors  the generator export (EMA weights when EMA is on)
    losses.png, progress.gif    the loss curves and the grids as an animation
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from gankit.checkpoint import (
    FORMAT_CHECKPOINT,
    atomic_write_text,
    export_generator,
    list_checkpoints,
    optimizer_from_tensors,
    optimizer_to_tensors,
    prefixed,
    read_tensors,
    unprefixed,
    write_tensors,
)
from gankit.config import SECTIONS, RunConfig, save_json
from gankit.data import BatchStream, Dataset, load_dataset, to_uint8_images
from gankit.images import image_grid, line_plot, save_gif, save_picture, scatter_plot
from gankit.losses import build_loss
from gankit.monitor import Monitor
from gankit.models import MODELS, averaged_batchnorm
from gankit.objectives import OBJECTIVES, build_objective, frozen
from gankit.sampling import code_layout, cycled_labels, generator_inputs, latents, resolve_device


class TrainingError(RuntimeError):
    """Training cannot start or cannot go on (bad run folder, divergence)."""


class Divergence(TrainingError):
    """A loss became NaN or infinite."""


@dataclasses.dataclass
class RunResult:
    run_dir: Path
    step: int
    images_per_second: float
    last_row: dict[str, Any]

    @property
    def export_path(self) -> Path:
        return self.run_dir / "generator.safetensors"

    @property
    def samples_path(self) -> Path:
        return self.run_dir / "samples.png"


class EMA:
    """Exponential moving average of G's weights.

    The decay warms up as min(decay, (1 + t) / (10 + t)) after t updates, so the
    average is not dominated by the random initialization early in a run. The
    averaged weights do not match the raw G's BatchNorm statistics, so
    :meth:`recalibrate` re-estimates them from the EMA net's own activations
    before it is sampled or exported.
    """

    def __init__(self, G: nn.Module, decay: float, layout=None, conditions=None):
        self.decay, self.layout = decay, layout  # layout: InfoGAN's codes, part of G's input
        self.conditions = conditions  # text-to-image: (n, generator) -> G's inputs after z
        self.model = copy.deepcopy(G).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, G: nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        ema_params = list(self.model.parameters())
        torch._foreach_lerp_(ema_params, [p.detach() for p in G.parameters()], 1.0 - decay)

    @torch.no_grad()
    def recalibrate(self, latent_dim: int, batch_size: int, seed: int, device: torch.device, batches: int = 16) -> None:
        recalibrate_batchnorm(self.model, latent_dim, batch_size, seed, device, batches, self.layout, self.conditions)


@torch.no_grad()
def recalibrate_batchnorm(
    G: nn.Module, latent_dim: int, batch_size: int, seed: int, device: torch.device, batches: int = 16, layout=None,
    conditions=None,
) -> None:
    """Set G's BatchNorm running statistics to their average over ``batches`` fresh batches.

    The latents come from their own generator seeded with ``seed``, so the result
    depends only on G's weights (and, for a text-to-image G, on the training captions:
    ``conditions(n, generator)`` gives G's inputs after z, drawn from that generator).
    """
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in G.modules()):
        return
    generator = torch.Generator(device).manual_seed(seed)
    labels = cycled_labels(batch_size, G.num_classes).to(device) if getattr(G, "num_classes", 0) else None
    with averaged_batchnorm(G):
        for _ in range(batches):
            z = torch.randn(batch_size, latent_dim, device=device, generator=generator)
            if layout is not None:  # InfoGAN: the last entries are codes, drawn as in training
                z = layout.join(z, layout.sample(batch_size, generator, device))
            if conditions is not None:
                G(z, *conditions(batch_size, generator))
            else:
                G(z) if labels is None else G(z, labels)


def make_optimizer(module: nn.Module, lr: float, betas: tuple[float, float], device: torch.device):
    return torch.optim.Adam(module.parameters(), lr=lr, betas=betas, fused=device.type in ("cpu", "cuda"))


def rng_state(z_generator: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    state = {"rng.torch": torch.get_rng_state(), "rng.z": z_generator.get_state()}
    if device.type == "cuda":
        state["rng.cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(tensors: dict[str, torch.Tensor], z_generator: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    z_generator.set_state(tensors["rng.z"])
    if device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)


def check_resume_config(saved: RunConfig, requested: RunConfig) -> list[str]:
    """Sections that define the model and data must match; returns the train keys that changed."""
    for section in SECTIONS:
        if getattr(saved, section) != getattr(requested, section):
            raise TrainingError(
                f"cannot resume: the {section} section differs from the run's config.json "
                f"(saved {getattr(saved, section)}, requested {getattr(requested, section)}); "
                "resume with the run folder as the config (gankit train RUN_DIR --resume)"
            )
    fixed = ("seed", "batch_size")
    changed = []
    for field in dataclasses.fields(saved.train):
        old, new = getattr(saved.train, field.name), getattr(requested.train, field.name)
        if old != new:
            if field.name in fixed:
                raise TrainingError(f"cannot resume with a different train.{field.name} ({old} -> {new})")
            changed.append(f"train.{field.name}: {old} -> {new}")
    return changed


DIVERGENCE_ADVICE = """Likely causes:
  - learning rates too high for this model (train.lr_d={lr_d}, train.lr_g={lr_g}): try half;
  - D far stronger than G (D(x) near 1 and D(G(z)) near 0 in train_log.jsonl before the failure);
  - an unbounded loss without its regularizer (wgan-gp needs loss.gp_weight > 0);
  - bf16 overflow (train.precision={precision}): try train.precision=fp32.
Change the setting and continue from the last good checkpoint with --resume."""


def train(
    config: RunConfig,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> RunResult:
    """Train the GAN ``config`` describes, writing everything into ``run_dir``."""
    run_dir = Path(run_dir)
    checkpoint_dir = run_dir / "checkpoints"
    cfg = config.train

    # ---------------------------------------------------------------- run folder and resume
    existing = list_checkpoints(checkpoint_dir) if checkpoint_dir.is_dir() else []
    if resume:
        if not existing:
            raise TrainingError(f"{run_dir}: no checkpoint to resume from; run without --resume to start")
        saved = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
        requested = config
        completed = {k: saved.model.get(k) for k, v in config.model.items() if v is None}  # "from the data": saved values
        if completed:
            requested = dataclasses.replace(config, model={**config.model, **completed})
        for change in check_resume_config(_without_completion(saved), _without_completion(requested)):
            log(f"resume: {change}")
        config = dataclasses.replace(saved, train=cfg, description=config.description or saved.description)
    elif existing:
        raise TrainingError(
            f"{run_dir} already holds a run (checkpoint at step {existing[-1][0]}); "
            "pass --resume to continue it, or choose another --out"
        )

    # ---------------------------------------------------------------- data, models, optimizers
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    dataset = load_dataset(config.data).to(device)
    family_entry, model_options = MODELS.resolve(config.model, "model")
    model_options = family_entry.factory.complete(model_options, dataset.spec)
    objective_entry, objective_options = OBJECTIVES.resolve(config.objective, "objective")
    if hasattr(objective_entry.factory, "complete_model"):  # an objective that shapes the nets (InfoGAN's Q head)
        model_options = objective_entry.factory.complete_model(model_options, objective_options)
    config = dataclasses.replace(config, model={"name": family_entry.name, **dataclasses.asdict(model_options)})
    G = family_entry.factory.generator(model_options).to(device)
    D = family_entry.factory.discriminator(model_options).to(device)
    channels_last = cfg.channels_last and dataset.kind == "images"
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    betas = (cfg.beta1, cfg.beta2)
    opt_G = make_optimizer(G, cfg.lr_g, betas, device)
    opt_D = make_optimizer(D, cfg.lr_d, betas, device)
    objective = build_objective(config.objective, G, D, build_loss(config.loss), opt_D)
    text_encoder = getattr(objective, "text_encoder", None)  # text-to-image: G's conditions are caption embeddings
    conditions = None
    if text_encoder is not None:
        if cfg.eval_every:
            raise TrainingError("train.eval_every is not supported for text-to-image objectives yet; set it to 0 "
                                "and score the export with gankit evaluate-text")  # fmt: skip
        objective.attach(dataset)
        conditions = objective.sample_conditions
    ema = EMA(G, cfg.ema_decay, code_layout(config), conditions) if cfg.ema_decay > 0 else None
    z_generator = torch.Generator(device).manual_seed(cfg.seed + 1)
    stream = BatchStream(dataset, cfg.batch_size, cfg.seed)
    latent_dim = model_options.latent_dim
    fixed_z, fixed_labels = fixed_grid_inputs(cfg.sample_grid, latent_dim, cfg.seed, getattr(G, "num_classes", 0),
                                              code_layout(config))  # fmt: skip
    grid_columns = max(1, cfg.sample_grid // G.num_classes) if getattr(G, "num_classes", 0) else None
    if text_encoder is not None:  # one row per training caption, the same z and condition noise down each column
        fixed_z, fixed_labels, grid_columns = text_grid_inputs(G, objective, cfg.sample_grid, cfg.seed)
    fixed_z = fixed_z.to(device)
    fixed_labels = None if fixed_labels is None else fixed_labels.to(device)

    evaluation = plan_evaluation(config, dataset, run_dir) if cfg.eval_every else None
    monitor = Monitor()

    step, batches = 0, 0
    if resume:
        step, batches = load_checkpoint(existing[-1][1], G, D, ema, opt_G, opt_D, z_generator, device, log)
        for optimizer, lr in ((opt_G, cfg.lr_g), (opt_D, cfg.lr_d)):
            for group in optimizer.param_groups:
                group["lr"], group["betas"] = lr, betas
        log(f"resumed {run_dir} at step {step}")
    run_dir.mkdir(parents=True, exist_ok=True)
    save_json(run_dir / "config.json", config.to_dict())
    log_path = run_dir / "train_log.jsonl"
    truncate_log(log_path, step)

    log(
        f"training {config.model['name']} on {dataset.name} ({len(dataset)} {dataset.kind}, "
        f"shape {tuple(dataset.x.shape[1:])}) | G {count(G):,} params, D {count(D):,} params | "
        f"loss {config.loss['name']} | device {device}, {cfg.precision} | run folder {run_dir}"
    )
    writer = open_tensorboard(run_dir, cfg.tensorboard, log)
    if step >= cfg.steps:
        log(f"the run is already at step {step} >= train.steps={cfg.steps}; pass --steps N (N > {step}) to go on")

    # ---------------------------------------------------------------- the loop
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    sums: dict[str, torch.Tensor] = {}
    interval_steps, interval_start = 0, time.perf_counter()
    last_row: dict[str, Any] = {}
    rate = float("nan")
    bar = make_progress_bar(progress, cfg.steps, step)

    def say(message: str) -> None:
        (bar.write if progress else log)(message)

    G.train()
    D.train()
    loop_start = time.perf_counter()
    done = False
    while step < cfg.steps and not done:
        if hasattr(objective, "begin_step"):
            objective.begin_step(step)
        for k in range(cfg.d_steps):
            index = stream.indices(batches)
            real = dataset.model_input(index, channels_last)
            if text_encoder is not None:
                labels = objective.batch_conditions(dataset, index)  # caption embeddings, one per image
            else:
                labels = dataset.labels[index] if dataset.labels is not None else None
            batches += 1
            z = torch.randn(cfg.batch_size, latent_dim, device=device, generator=z_generator)
            last = k == cfg.d_steps - 1
            # Only the last D step's samples feed G's step; earlier ones need no graph through G.
            with autocast, (contextlib.nullcontext() if last else frozen(G)):
                out_d = objective.d_step(real, z, labels)
            opt_D.zero_grad(set_to_none=True)
            out_d.loss.backward()
            opt_D.step()
        with autocast:
            out_g = objective.g_step(out_d.fake)
        opt_G.zero_grad(set_to_none=True)
        out_g.loss.backward()
        opt_G.step()
        if ema is not None:
            ema.update(G, step)
        step += 1
        bar.update(1)

        for name, value in {**out_d.stats, **out_g.stats}.items():
            sums[name] = sums[name] + value.float() if name in sums else value.float()
        interval_steps += 1
        finite_check = device.type == "cpu" or step % cfg.log_every == 0 or step % cfg.checkpoint_every == 0
        if finite_check:
            check_finite(out_d.stats["d_loss"], out_g.stats["g_loss"], step, checkpoint_dir, cfg)

        # ------------------------------------------------------------ logging
        out_of_time = cfg.time_limit > 0 and time.perf_counter() - loop_start >= cfg.time_limit
        done = step == cfg.steps or out_of_time
        if out_of_time:
            say(f"train.time_limit: stopping at step {step} after {time.perf_counter() - loop_start:.0f} s")
        if step % cfg.log_every == 0 or done:
            check_finite(sums["d_loss"], sums["g_loss"], step, checkpoint_dir, cfg)
            elapsed = time.perf_counter() - interval_start
            rate = interval_steps * cfg.batch_size / max(elapsed, 1e-9)
            last_row = {
                "step": step,
                "images_seen": step * cfg.batch_size * cfg.d_steps,
                **{name: round(float(total) / interval_steps, 6) for name, total in sums.items()},
                "images_per_second": round(rate, 1),
            }
            alarms = monitor.on_log(last_row)
            if alarms:
                last_row["alarms"] = alarms
                for alarm in alarms:
                    say(f"ALARM {alarm}")
            append_jsonl(log_path, last_row)
            if writer is not None:
                for name, value in last_row.items():
                    if name != "step":
                        writer.add_scalar(name.replace("(", "_").replace(")", ""), value, step)
            bar.set_postfix({k: f"{v:.3g}" for k, v in last_row.items() if k in POSTFIX})
            sums, interval_steps, interval_start = {}, 0, time.perf_counter()

        # ------------------------------------------------------------ samples and checkpoints
        evaluate_now = evaluation is not None and (step % cfg.eval_every == 0 or done)
        if ema is not None and (step % cfg.sample_every == 0 or step % cfg.checkpoint_every == 0 or done or evaluate_now):
            ema.recalibrate(latent_dim, cfg.batch_size, cfg.seed + 2, device)
        if evaluate_now:
            evaluation.run(config, step, ema.model if ema else G, ema is not None, device, monitor, say)
        if step % cfg.sample_every == 0 or done:
            write_samples(run_dir, step, ema.model if ema else G, fixed_z, dataset, fixed_labels, grid_columns)
        if step % cfg.checkpoint_every == 0 or done:
            save_checkpoint(checkpoint_dir, config, step, batches, G, D, ema, opt_G, opt_D, z_generator, device)
            prune_checkpoints(checkpoint_dir, cfg.keep_checkpoints)
            export_generator(run_dir / "generator.safetensors", ema.model if ema else G, config.to_dict(), step,
                             ema is not None, text_encoder)  # fmt: skip
    bar.close()
    if writer is not None:
        writer.close()

    # ---------------------------------------------------------------- summary pictures
    write_loss_plot(log_path, run_dir / "losses.png")
    write_progress_gif(run_dir)
    return RunResult(run_dir, step, rate, last_row)


class PeriodicEvaluation:
    """Scores G during training, appends to metrics.jsonl, keeps best/generator.safetensors."""

    def __init__(self, run_dir: Path, extractor: dict[str, Any], cfg, dataset: Dataset):
        self.run_dir, self.extractor, self.cfg = run_dir, extractor, cfg
        self.dataset = dataset.to("cpu")  # the data being trained on: the reference, without loading it again
        self.best_path = run_dir / "best" / "metrics.json"
        self.best = json.loads(self.best_path.read_text())["metrics"][cfg.eval_best] if self.best_path.is_file() else None

    def run(self, config: RunConfig, step: int, model: nn.Module, ema: bool, device, monitor: Monitor, say) -> None:
        from gankit.metrics.evaluate import append_row, evaluate_generator, format_value, lower_is_better
        from gankit.sampling import GeneratorPipeline

        pipeline = GeneratorPipeline(copy.deepcopy(model), config, step, ema, device)
        cfg = self.cfg
        row = evaluate_generator(pipeline, cfg.eval_metrics, cfg.eval_samples, "train", 10000, cfg.seed,
                                 self.extractor, data=self.dataset)  # fmt: skip
        row["source"] = "training"
        row["alarms"] = monitor.on_eval(step, row["metrics"])
        append_row(self.run_dir / "metrics.jsonl", row)
        value = row["metrics"][cfg.eval_best]
        lower = lower_is_better(cfg.eval_best)
        improved = self.best is None or (value < self.best if lower else value > self.best)
        summary = ", ".join(f"{k} {format_value(v)}" for k, v in row["metrics"].items())
        say(f"eval step {step}: {summary}{' (best so far)' if improved else ''}")
        for alarm in row["alarms"]:
            say(f"ALARM {alarm}")
        if improved:
            self.best = value
            export_generator(self.run_dir / "best" / "generator.safetensors", model, config.to_dict(), step, ema)
            atomic_write_text(self.best_path, json.dumps(row, indent=2) + "\n")


def plan_evaluation(config: RunConfig, dataset: Dataset, run_dir: Path) -> PeriodicEvaluation:
    """Check the evaluation settings before training starts (an unknown metric fails now, not at step N)."""
    from gankit.metrics.evaluate import METRICS, default_extractor, parse_metrics
    from gankit.metrics.extractors import build_extractor

    cfg = config.train
    names = parse_metrics(cfg.eval_metrics)
    keys = [k for n in names for k in METRICS[n].keys if not k.endswith(("histogram", "per_class", "to_class", "per_code"))]  # scalars
    if cfg.eval_best not in keys:
        raise TrainingError(f"train.eval_best={cfg.eval_best!r} is not reported by train.eval_metrics {names}; choose one of {keys}")
    extractor = {"name": "evaluator", "weights": cfg.eval_evaluator} if cfg.eval_evaluator else default_extractor(config.data, dataset.kind)
    build_extractor(extractor)
    return PeriodicEvaluation(run_dir, extractor, cfg, dataset)


POSTFIX = ("d_loss", "g_loss", "D(x)", "D(G(z))", "d_accuracy", "images_per_second")


def _without_completion(config: RunConfig) -> RunConfig:
    """The model section with the data-derived fields removed, for comparing configs."""
    filled = ("resolution", "channels", "shape", "output", "d_q_outputs", "stage1")
    model = {k: v for k, v in config.model.items() if k not in filled}
    return dataclasses.replace(config, model=model)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def check_finite(d_loss: torch.Tensor, g_loss: torch.Tensor, step: int, checkpoint_dir: Path, cfg) -> None:
    bad = [name for name, value in (("d_loss", d_loss), ("g_loss", g_loss)) if not math.isfinite(float(value))]
    if not bad:
        return
    existing = list_checkpoints(checkpoint_dir) if checkpoint_dir.is_dir() else []
    where = (
        f"the last good checkpoint (step {existing[-1][0]}) is intact in {checkpoint_dir}"
        if existing
        else "no checkpoint was written before it"
    )
    advice = DIVERGENCE_ADVICE.format(lr_d=cfg.lr_d, lr_g=cfg.lr_g, precision=cfg.precision)
    raise Divergence(f"training diverged by step {step}: {' and '.join(bad)} is not finite; {where}.\n{advice}")


def make_progress_bar(enabled: bool, total: int, initial: int):
    import sys

    from tqdm.auto import tqdm

    # In a log file (not a terminal) redraw every 30 s instead of every 0.1 s.
    interval = 0.1 if sys.stderr.isatty() else 30.0
    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True, desc="train",
                mininterval=interval)


def open_tensorboard(run_dir: Path, enabled: bool, log: Callable[[str], None]):
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log("tensorboard: not installed, skipping event files (pip install tensorboard to get them)")
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_log(path: Path, step: int) -> None:
    """Drop log rows written after ``step`` (by a run that stopped after its last checkpoint)."""
    rows = read_jsonl(path)
    kept = [r for r in rows if r.get("step", 0) <= step]
    if len(kept) != len(rows):
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def text_grid_inputs(G: nn.Module, objective, count: int, seed: int, rows: int = 8):
    """The grid of a text-to-image run: ``rows`` training captions, ``count // rows`` columns with the same
    z and conditioning-augmentation noise down each column (what ``gankit sample RUN --text ...`` draws for
    samples 0..columns-1 of ``seed``). Returns z joined with that noise (``write_samples`` takes it apart),
    the rows' caption embeddings and the number of columns."""
    from gankit.sampling import caption_grid_latents

    columns = max(1, count // rows)
    z, noise = caption_grid_latents(rows, columns, G.latent_dim, G.condition_noise_dim, seed)
    text = objective.grid_conditions(rows).cpu().repeat_interleave(columns, dim=0)
    return torch.cat([z, noise], dim=1), text, columns


def fixed_grid_inputs(count: int, latent_dim: int, seed: int, num_classes: int, layout=None):
    """The inputs (and labels) of the sample grids: G's inputs for samples 0..count-1 of ``seed`` (what
    ``gankit sample RUN --seed seed`` draws); for a conditional G, one row per class with the same
    count // num_classes latents in every row (``gankit sample RUN --labels all --n count//K``)."""
    if not num_classes:
        return generator_inputs(count, latent_dim, seed, 0, layout), None
    columns = max(1, count // num_classes)
    z = latents(columns, latent_dim, seed).repeat(num_classes, 1)
    return z, torch.arange(num_classes).repeat_interleave(columns)


@torch.no_grad()
def write_samples(
    run_dir: Path, step: int, G: nn.Module, z: torch.Tensor, dataset: Dataset, labels: torch.Tensor | None = None,
    columns: int | None = None,
) -> None:
    """The fixed-z grid in eval mode: what ``gankit sample RUN --seed <train.seed>`` will draw."""
    was_training = G.training
    G.eval()
    if getattr(G, "text_dim", 0):  # text: ``labels`` are caption embeddings, z carries the noise after latent_dim
        out = G(z[:, : G.latent_dim], labels, z[:, G.latent_dim :]).float().cpu()
    else:
        out = (G(z) if labels is None else G(z, labels)).float().cpu()
    G.train(was_training)
    if dataset.kind == "images":
        picture = image_grid(to_uint8_images(out).numpy(), columns=columns)
    else:
        reference = dataset.x[: len(out) * 4].cpu().numpy()
        picture = scatter_plot(out.numpy(), reference)
    save_picture(picture, run_dir / "samples" / f"step-{step:08d}.png")
    save_picture(picture, run_dir / "samples.png")


def write_loss_plot(log_path: Path, path: Path) -> None:
    rows = read_jsonl(log_path)
    if not rows:
        return
    steps = [r["step"] for r in rows]
    losses = {n: (steps, [r[n] for r in rows]) for n in ("d_loss", "g_loss") if n in rows[0]}
    outputs = {n: (steps, [r[n] for r in rows]) for n in ("D(x)", "D(G(z))") if n in rows[0]}
    top, bottom = line_plot(losses, "losses"), line_plot(outputs, "mean D output on real, D(x), and fake, D(G(z))")
    from PIL import Image

    picture = Image.new("RGB", (top.width, top.height + bottom.height), "white")
    picture.paste(top, (0, 0))
    picture.paste(bottom, (0, top.height))
    save_picture(picture, path)


def write_progress_gif(run_dir: Path, max_frames: int = 40) -> None:
    from PIL import Image

    files = sorted((run_dir / "samples").glob("step-*.png"))
    if len(files) < 2:
        return
    stride = math.ceil(len(files) / max_frames)
    chosen = files[::stride]
    if chosen[-1] != files[-1]:
        chosen.append(files[-1])
    frames = [Image.open(f).convert("RGB") for f in chosen]
    save_gif(frames, run_dir / "progress.gif")


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(folder, config, step, batches, G, D, ema, opt_G, opt_D, z_generator, device) -> Path:
    from gankit import __version__

    tensors = {**prefixed("G", G.state_dict()), **prefixed("D", D.state_dict())}
    if ema is not None:
        tensors.update(prefixed("G_ema", ema.model.state_dict()))
    opt_g_tensors, opt_g_groups = optimizer_to_tensors("opt_G", opt_G)
    opt_d_tensors, opt_d_groups = optimizer_to_tensors("opt_D", opt_D)
    tensors.update(opt_g_tensors)
    tensors.update(opt_d_tensors)
    tensors.update(rng_state(z_generator, device))
    path = Path(folder) / f"ckpt-{step:08d}.safetensors"
    metadata = {
        "format": FORMAT_CHECKPOINT,
        "config": config.to_dict(),
        "step": step,
        "batches": batches,
        "opt_G.param_groups": opt_g_groups,
        "opt_D.param_groups": opt_d_groups,
        "gankit_version": __version__,
    }
    write_tensors(path, tensors, metadata)
    return path


def load_checkpoint(path, G, D, ema, opt_G, opt_D, z_generator, device, log=print) -> tuple[int, int]:
    tensors, metadata = read_tensors(path, FORMAT_CHECKPOINT)
    G.load_state_dict(unprefixed("G", tensors))
    D.load_state_dict(unprefixed("D", tensors))
    if ema is not None:
        ema_state = unprefixed("G_ema", tensors)
        if not ema_state:  # EMA turned on for a continuation: the average starts from G's weights here
            log(f"{path.name} has no EMA weights: the EMA of G starts from G's weights at step {metadata['step']}")
        ema.model.load_state_dict(ema_state or G.state_dict())
    optimizer_from_tensors("opt_G", opt_G, {k: v.to(device) for k, v in tensors.items()}, metadata["opt_G.param_groups"])
    optimizer_from_tensors("opt_D", opt_D, {k: v.to(device) for k, v in tensors.items()}, metadata["opt_D.param_groups"])
    set_rng_state(tensors, z_generator, device)
    return int(metadata["step"]), int(metadata["batches"])


def prune_checkpoints(folder: Path, keep: int) -> None:
    for _, path in list_checkpoints(folder)[:-keep]:
        path.unlink(missing_ok=True)
