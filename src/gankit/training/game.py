"""The game a config describes: G and D built for the data, their optimizers and the variant's objective.

The trainer (``training/loop.py``) and the playground (``gankit serve``) both start here, so a net, an
optimizer or an objective is built one way whoever trains it."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch
from torch import nn

from gankit.config import RunConfig
from gankit.data import Dataset
from gankit.errors import ConfigError
from gankit.losses import build_loss
from gankit.networks import MODELS, build_network
from gankit.variants import VARIANTS, Objective, build_objective


@dataclasses.dataclass
class Game:
    config: RunConfig  # with the model section completed for the data (shapes, heads the variant needs)
    model_options: Any
    G: nn.Module
    D: nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    objective: Objective


def make_optimizer(module: nn.Module, lr: float, betas: tuple[float, float], device: torch.device):
    return torch.optim.Adam(module.parameters(), lr=lr, betas=betas, fused=device.type in ("cpu", "cuda"))


def lr_scale(step: int, steps: int, decay: float) -> float:
    """The factor on train.lr_g and train.lr_d at (0-based) step ``step`` of ``steps``: 1, then, over the last
    ``decay`` fraction of the steps, falling linearly so that the last step runs at 1/(decay * steps) of the rate.
    A function of the step alone: a resumed run takes exactly the rates of an uninterrupted one."""
    if decay <= 0:
        return 1.0
    return min(1.0, (steps - step) / (decay * steps))


def set_learning_rates(opt_G, opt_D, cfg, step: int) -> None:
    """Sets both optimizers' rates (train.lr_g / lr_d, scaled for step ``step`` by train.lr_decay) and betas."""
    scale = lr_scale(step, cfg.steps, cfg.lr_decay)
    for optimizer, lr in ((opt_G, cfg.lr_g), (opt_D, cfg.lr_d)):
        for group in optimizer.param_groups:
            group["lr"], group["betas"] = lr * scale, (cfg.beta1, cfg.beta2)


def build_game(
    config: RunConfig,
    dataset: Dataset,
    device: torch.device,
    channels_last: bool = False,
    adapt: Callable[[nn.Module, nn.Module], None] | None = None,
    note: str = "",
) -> Game:
    """G, D (initialized from the global RNG: seed it first), Adam for each and the objective. ``adapt(G, D)``
    runs before the optimizers are made (a layer swap); ``note`` is added to a model completion error."""
    family_entry, model_options = MODELS.resolve(config.model, "model")
    try:
        model_options = family_entry.factory.complete(model_options, dataset.spec)
    except ConfigError as error:
        raise ConfigError(f"{error}{note}") from error
    variant_entry, variant_options = VARIANTS.resolve(config.objective, "objective")
    model_options = variant_entry.factory.complete_model(
        model_options, variant_options
    )  # heads or sizes a variant needs
    config = dataclasses.replace(config, model={"name": family_entry.name, **dataclasses.asdict(model_options)})
    G = build_network(family_entry, model_options, "G").to(device)
    D = build_network(
        family_entry, model_options, "D", variant_entry.factory.d_heads(variant_options, model_options)
    ).to(device)
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    if adapt is not None:
        adapt(G, D)
    cfg = config.train
    betas = (cfg.beta1, cfg.beta2)
    opt_G = make_optimizer(G, cfg.lr_g, betas, device)
    opt_D = make_optimizer(D, cfg.lr_d, betas, device)
    objective = build_objective(config.objective, G, D, build_loss(config.loss), opt_D)
    return Game(config, model_options, G, D, opt_G, opt_D, objective)


def compile_for_training(game: Game, mode: str, log: Callable[[str], None]) -> None:
    """``train.compile``: G's and D's forward compiled in place by torch.compile (``nn.Module.compile``), so
    their parameters, state_dict keys, checkpoints and exports stay those of the eager nets. D stays eager when
    the objective differentiates D's gradients (no double backward in compiled graphs). On a CPU,
    "reduce-overhead" (CUDA graphs) has nothing to capture and compiles as "default". Call it after copies of G
    (the EMA) are made: a copy of a compiled module would call the original's forward."""
    if mode == "off":
        return
    device = next(game.G.parameters()).device
    torch_mode = "default" if mode == "reduce-overhead" and device.type != "cuda" else mode
    nets = [("G", game.G)]
    if game.objective.differentiates_d_gradients:
        log(f"train.compile={mode}: D stays eager (this objective differentiates D's gradients)")
    else:
        nets.append(("D", game.D))
    for _, net in nets:
        net.compile(mode=torch_mode)
    names = " and ".join(name for name, _ in nets)
    log(f"train.compile={mode}: {names} compiled (torch.compile mode {torch_mode}); the first steps compile")
