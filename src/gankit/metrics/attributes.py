"""The attribute classifier of the captioned scenes: does an image show what its caption says?

One position-keeping conv net (``text.ImageEncoder``) with one linear output per attribute value,
read as four heads: class (10), colour (8), size (3), position (9). Trained on the real train split;
its accuracy on the real test split, all four attributes right at once, is the ceiling that text
consistency of generated images is read against (issue 7), separately for scenes whose (class,
colour) pair the train split shows and for the held-out pairs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gankit.data.captions import CLASSES, COLOURS, POSITIONS, SIZES
from gankit.files import CheckpointError, check_state, read_tensors, write_tensors
from gankit.formats import metadata_field
from gankit.networks import averaged_batchnorm
from gankit.networks.text_encoders import ImageEncoder

HEADS = {"class": len(CLASSES), "colour": len(COLOURS), "size": len(SIZES), "position": len(POSITIONS)}


class AttributeNet(nn.Module):
    def __init__(self, channels: int = 3, resolution: int = 64, width: int = 32):
        super().__init__()
        self.encoder = ImageEncoder(channels, resolution, sum(HEADS.values()), width)
        self.resolution, self.width = resolution, width

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """uint8 or [-1, 1] images (N, C, R, R) -> logits per attribute."""
        if x.dtype == torch.uint8:
            x = x.float() / 127.5 - 1
        return dict(zip(HEADS, self.encoder(x).split(list(HEADS.values()), dim=1)))


def retint(x: torch.Tensor, colour: torch.Tensor, background: torch.Tensor, new_colour: torch.Tensor) -> torch.Tensor:
    """Scenes ``x`` (uint8 (N, 3, R, R)) with their item repainted from ``colour`` to ``new_colour`` (indices).

    A scene pixel is background * (1 - a) + colour * a (``captions.render``), so the item's opacity a is
    read back from the channel where colour and background differ most, and the pixel is rebuilt with
    the new colour."""
    palette = torch.tensor(list(COLOURS.values()), dtype=torch.float32)
    bg = background.float()[:, None]
    old, new = palette[colour] - bg, palette[new_colour] - bg  # (N, 3), relative to the background
    channel = old.abs().argmax(dim=1)
    rows = torch.arange(len(x))
    alpha = ((x[rows, channel].float() - bg[:, :, None]) / old[rows, channel][:, None, None]).clamp(0, 1)
    out = bg[:, :, None, None] + new[:, :, None, None] * alpha[:, None]
    return out.round().clamp(0, 255).to(torch.uint8)


def train_attribute_classifier(
    data,
    steps: int = 1500,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    width: int = 32,
    retint_share: float = 0.5,
    log=print,
) -> AttributeNet:
    """Train on a captions dataset's images and ``extras["attributes"]`` (cross-entropy summed over heads).

    With ``retint_share`` > 0, that share of every batch has its items repainted in a random colour
    (:func:`retint`, colour target changed with it): the train split never shows the held-out (class,
    colour) pairs, and without repainting the class head learns to lean on colour (class accuracy 0.59
    on the test split, where half the scenes use a held-out pair)."""
    attributes = data.extras.get("attributes")
    if attributes is None:
        raise ValueError(f"dataset {data.name!r} has no attributes (the dataset gankit data make-captions builds has)")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    targets = {k: torch.as_tensor(np.asarray(attributes[k]), dtype=torch.long) for k in HEADS}
    if retint_share > 0 and "background" not in attributes:
        raise ValueError(
            "repainting needs the scenes' background levels: rebuild the data with gankit data make-captions"
        )
    background = torch.as_tensor(np.asarray(attributes.get("background", np.zeros(len(data.x)))))
    net = AttributeNet(data.x.shape[1], data.x.shape[-1], width)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for step in range(1, steps + 1):
        index = torch.randint(len(data.x), (batch_size,), generator=generator)
        x, wanted = data.x[index], {k: targets[k][index] for k in HEADS}
        repaint = int(retint_share * batch_size)
        if repaint:
            colours = torch.randint(len(COLOURS), (repaint,), generator=generator)
            x = torch.cat(
                [retint(x[:repaint], wanted["colour"][:repaint], background[index[:repaint]], colours), x[repaint:]]
            )
            wanted["colour"] = torch.cat([colours, wanted["colour"][repaint:]])
        logits = net(x)
        loss = sum(nn.functional.cross_entropy(logits[k], wanted[k]) for k in HEADS)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % max(1, steps // 10) == 0 or step == steps:
            log(f"attribute classifier step {step}/{steps}: loss {loss.item():.4f}")
    # BatchNorm statistics averaged over 50 batches of the final weights: with the lagging running
    # averages this net lost most of its colour and size accuracy in eval mode (0.65 and 0.46 on
    # training scenes it gets 1.0 on with batch statistics).
    with averaged_batchnorm(net):
        for _ in range(50):
            net(data.x[torch.randint(len(data.x), (batch_size,), generator=generator)])
    return net.eval()


@torch.no_grad()
def predict(net: AttributeNet, x: torch.Tensor, batch_size: int = 500) -> dict[str, np.ndarray]:
    """Predicted attribute indices of uint8 images (N, C, R, R)."""
    out: dict[str, list[np.ndarray]] = {k: [] for k in HEADS}
    for i in range(0, len(x), batch_size):
        for k, logits in net(x[i : i + batch_size]).items():
            out[k].append(logits.argmax(dim=1).numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def consistency(
    predicted: dict[str, np.ndarray], wanted: dict[str, np.ndarray], heldout: np.ndarray | None = None
) -> dict:
    """Per-attribute accuracy and the share of images with all four right; with ``heldout`` (bool per
    image), the all-right share for seen and held-out (class, colour) pairs separately."""
    right = {k: np.asarray(predicted[k]) == np.asarray(wanted[k]) for k in HEADS}
    every = np.logical_and.reduce(list(right.values()))
    result = {f"{k}_accuracy": float(v.mean()) for k, v in right.items()}
    result["all_accuracy"] = float(every.mean())
    if heldout is not None:
        heldout = np.asarray(heldout, dtype=bool)
        result["all_accuracy_seen"] = float(every[~heldout].mean()) if (~heldout).any() else float("nan")
        result["all_accuracy_heldout"] = float(every[heldout].mean()) if heldout.any() else float("nan")
    return result


FORMAT = "gankit-attribute-classifier-1"


def save_attribute_classifier(path, net: AttributeNet, report: dict) -> None:
    """safetensors with the weights; metadata: the resolution and the test ``report`` (the ceiling)."""
    write_tensors(
        path,
        net.state_dict(),
        {
            "format": FORMAT,
            "resolution": net.resolution,
            "width": net.width,
            "channels": net.encoder.body[0].in_channels,
            "report": report,
        },
    )


def load_attribute_classifier(path) -> tuple[AttributeNet, dict]:
    """The classifier in ``path`` and its test report; every tensor checked against the rebuilt net first."""
    tensors, metadata = read_tensors(path, FORMAT)
    channels, resolution = (
        metadata_field(path, metadata, "channels", int),
        metadata_field(path, metadata, "resolution", int),
    )
    width = metadata_field(path, metadata, "width", int, 32)
    if channels not in (1, 3) or not 4 <= resolution <= 1024 or not 1 <= width <= 1024:
        raise CheckpointError(f"{path}: damaged metadata: channels {channels}, resolution {resolution}, width {width}")
    net = AttributeNet(channels, resolution, width)
    check_state(path, "the attribute classifier's weights", tensors, net.state_dict())
    net.load_state_dict(tensors)
    return net.eval(), metadata_field(path, metadata, "report", dict)
