"""VGG19's convolutional features (Simonyan & Zisserman 2015), for SRGAN's "VGG54" content loss when a user has
the ImageNet weights (nothing is downloaded here).

The weights come from a safetensors file holding the ``features.<i>.weight`` / ``features.<i>.bias`` tensors
of torchvision's ``vgg19`` (convert a torchvision checkpoint once, in your own Python, with
``safetensors.torch.save_file({k: v for k, v in model.state_dict().items() if k.startswith("features.")}, F)``;
gankit reads no pickles). The net runs up to phi_{5,4}: the 4th convolution of the 5th block after its ReLU,
before the 5th max-pool (Ledig et al. 2017, section 2.2.2). Inputs in [-1, 1] are mapped to [0, 1], gray is
repeated to RGB, and ImageNet's mean and std are applied, as the weights expect.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from gankit.files import check_state, read_weights_file

# VGG19's configuration "E": channels per conv, "M" a 2x2 max-pool.
LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512)
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """torchvision's ``vgg19().features`` up to the ReLU after conv5_4 (same module indices)."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=False)]
                channels = item
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.float() + 1) / 2
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.features((x - self.mean) / self.std)


def load_vgg19_features(path: str | Path) -> VGG19Features:
    """VGG19's features from a safetensors file of torchvision's ``features.*`` tensors (checked: names,
    shapes, finite values), frozen and in eval mode."""
    tensors = read_weights_file(
        path,
        "VGG19's features.* weights (objective.content_network)",
        "see gankit/networks/vgg.py for the one-line conversion",
    )
    net = VGG19Features()
    tensors = {
        k: v for k, v in tensors.items() if k.startswith("features.") and int(k.split(".")[1]) < len(net.features)
    }
    check_state(path, "VGG19 features", tensors, net.state_dict())
    net.load_state_dict(tensors)
    return net.eval().requires_grad_(False)
