"""What D's features respond to: guided backpropagation (Springenberg et al. 2015), as in figure 5 of
Radford et al. 2015.

For chosen channels of D's last convolutional layer, the real images that
activate each channel most (its spatial maximum) are found in a pool of
training images, and the gradient of that maximum with respect to the input is
computed with guided backpropagation: through every ReLU/LeakyReLU only
positive gradients flow, and only where the unit's input was positive. The same
is done for a randomly initialized D of the same architecture as the baseline
(the paper's comparison: trained features respond to object parts, random ones
to little).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gankit.files import atomic_write_text
from gankit.images import image_grid, save_picture


class _GuidedRelu(torch.autograd.Function):
    """LeakyReLU forward; guided backward: grad.clamp(min=0) where the input was positive, else 0."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        return F.leaky_relu(x, slope)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0), None


class GuidedActivation(nn.Module):
    def __init__(self, slope: float):
        super().__init__()
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _GuidedRelu.apply(x, self.slope)


def guided_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every ReLU/LeakyReLU replaced by its guided version."""
    model = copy.deepcopy(model)

    def replace(module: nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, nn.LeakyReLU):
                setattr(module, name, GuidedActivation(child.negative_slope))
            elif isinstance(child, nn.ReLU):
                setattr(module, name, GuidedActivation(0.0))
            else:
                replace(child)

    replace(model)
    return model.eval()


def _to_input(images: torch.Tensor) -> torch.Tensor:
    return images.float().div(127.5).sub(1.0)


@torch.no_grad()
def channel_scores(D: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """(N, C): each image's spatial maximum of each channel of D's last conv layer."""
    if getattr(D, "pack", 1) > 1:
        raise ValueError("this analysis reads single images; a PacGAN D (model.d_pack > 1) judges groups of them")
    D.eval()
    out = []
    for i in range(0, len(images), batch_size):
        last = D.features(_to_input(images[i : i + batch_size]))[-1]
        out.append(last.flatten(2).amax(dim=2))
    return torch.cat(out)


def input_gradients(D: nn.Module, images: torch.Tensor, channel: int, guided: bool = True) -> torch.Tensor:
    """d(spatial max of ``channel`` in D's last conv layer) / d(input), per image: (N, C, H, W)."""
    net = guided_copy(D) if guided else copy.deepcopy(D).eval()
    x = _to_input(images).requires_grad_(True)
    activation = net.features(x)[-1][:, channel].flatten(1).amax(dim=1)
    (grad,) = torch.autograd.grad(activation.sum(), x)
    return grad


def to_picture(grad: torch.Tensor) -> np.ndarray:
    """Gradient maps -> uint8 (N, H, W, C), each scaled by its own largest magnitude around mid-grey."""
    scale = grad.flatten(1).abs().amax(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return ((grad / scale) * 127.5 + 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def visualize_channels(
    D: nn.Module, pool: torch.Tensor, channels: list[int] | None = None, top: int = 4, count: int = 6
) -> tuple[np.ndarray, dict]:
    """Rows of (image, guided map) pairs for each channel's ``top`` activating images in ``pool``."""
    scores = channel_scores(D, pool)
    if channels is None:  # the most active channels on this pool, so no row shows a dead unit
        channels = scores.mean(0).argsort(descending=True)[:count].tolist()
    cells, info = [], {}
    for c in channels:
        best = scores[:, c].argsort(descending=True)[:top]
        maps = to_picture(input_gradients(D, pool[best], c))
        real = pool[best].permute(0, 2, 3, 1).numpy()
        for image, m in zip(real, maps):
            cells += [image, m]
        info[int(c)] = {"top_images": best.tolist(), "top_activations": scores[best, c].tolist()}
    return np.stack(cells), {"channels": info}


def write_visualization(
    trained: nn.Module,
    random: nn.Module,
    pool: torch.Tensor,
    out_dir: str | Path,
    channels: list[int] | None = None,
    top: int = 4,
) -> Path:

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "layout": f"each row: one channel of D's last conv layer; {top} pairs of (top-activating real image, "
        "its guided-backprop map; grey = 0, light = positive)"
    }
    for name, D in (("trained", trained), ("random", random)):
        cells, info = visualize_channels(D, pool, channels, top)
        save_picture(image_grid(cells, columns=2 * top), out / f"guided-backprop-{name}.png")
        summary[name] = info
    atomic_write_text(out / "visualize.json", json.dumps(summary, indent=2) + "\n")
    return out
