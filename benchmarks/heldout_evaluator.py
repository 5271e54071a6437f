"""The held-out evaluator of benchmarks/vs_recipe.py: a classifier no tuning decision ever reads.

gankit's presets are tuned on the shipped evaluator (``gankit/evaluators/*.safetensors``, a BatchNorm CNN of
3x3 convolutions, max pooling and global average pooling, width 24, seed 0). A preset could learn that one
network's blind spots; so the benchmark also scores every run with this one, which differs in architecture,
width, optimizer and seed: a 5x5 first convolution, GroupNorm and GELU, average pooling, a fully connected
128-d feature layer (the features it scores in), width 32, SGD with Nesterov momentum, seed 2027. It lives
here, outside the package, and a test fails if any preset or training module names it.

    python benchmarks/heldout_evaluator.py --dataset fashion-mnist    # trains and caches it (a few minutes)

Weights go to ``runs/heldout-evaluators/<dataset>.safetensors`` (safetensors: no pickled code) with a JSON
beside it (test accuracy, seconds, the weights' sha256).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

FOLDER = Path("runs/heldout-evaluators")
SEED = 2027
WIDTH = 32
FEATURES = 128


class HeldOutNet(nn.Module):
    def __init__(self, channels: int, num_classes: int, width: int = WIDTH, features: int = FEATURES):
        super().__init__()

        def block(c_in: int, c_out: int, kernel: int = 3) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2), nn.GroupNorm(8, c_out), nn.GELU()]

        self.body = nn.Sequential(
            *block(channels, width, 5),
            nn.AvgPool2d(2),
            *block(width, 2 * width),
            nn.AvgPool2d(2),
            *block(2 * width, 2 * width),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(2 * width * 16, features),
            nn.GELU(),
        )
        self.head = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def to_input(images: torch.Tensor) -> torch.Tensor:
    return images.float().div(127.5).sub(1.0)


def load_split(dataset: str, split: str):
    from gankit.data import load_dataset

    section = {"name": dataset, "split": split}
    if dataset == "digits":
        section["resolution"] = 32
    data = load_dataset(section)
    return data.x, data.labels


def train(dataset: str, epochs: int, log=print) -> Path:
    """Train, save and return the weights file."""
    torch.manual_seed(SEED)
    x, y = load_split(dataset, "train")
    if dataset == "digits":  # its test split is the benchmark's reference: tested on 20% of the train split
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SEED))
        cut = len(x) // 5
        test_x, test_y, x, y = x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]
    else:
        test_x, test_y = load_split(dataset, "test")
    net = HeldOutNet(x.shape[1], int(y.max()) + 1)
    batch = 128
    steps = epochs * (len(x) // batch)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.05, total_steps=steps)
    generator = torch.Generator().manual_seed(SEED)
    start = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(x), generator=generator)
        for i in range(len(x) // batch):
            index = order[i * batch : (i + 1) * batch]
            images = to_input(x[index])
            shift = torch.randint(-2, 3, (2,), generator=generator).tolist()  # random shifts of up to 2 px
            images = torch.roll(images, shifts=shift, dims=(2, 3))
            loss = F.cross_entropy(net(images), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
        log(f"held-out evaluator epoch {epoch + 1}/{epochs}: test accuracy {accuracy(net, test_x, test_y):.4f}")
    FOLDER.mkdir(parents=True, exist_ok=True)
    path = FOLDER / f"{dataset}.safetensors"
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(path))
    info = {
        "dataset": dataset,
        "channels": x.shape[1],
        "num_classes": int(y.max()) + 1,
        "test_accuracy": accuracy(net, test_x, test_y),
        "epochs": epochs,
        "seed": SEED,
        "width": WIDTH,
        "features": FEATURES,
        "seconds": round(time.perf_counter() - start, 1),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    path.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    return path


@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    correct = sum(int((net(to_input(x[i : i + 500])).argmax(1) == y[i : i + 500]).sum()) for i in range(0, len(x), 500))
    return correct / len(x)


class HeldOutEvaluator:
    """Features (the 128-d layer) of uint8 (N, C, H, W) images under the cached held-out net."""

    def __init__(self, dataset: str, epochs: int = 4, log=print):
        path = FOLDER / f"{dataset}.safetensors"
        if not path.is_file():
            log(f"training the held-out evaluator for {dataset} (once; cached in {path})")
            train(dataset, epochs, log)
        self.info = json.loads(path.with_suffix(".json").read_text())
        self.net = HeldOutNet(self.info["channels"], self.info["num_classes"]).eval()
        self.net.load_state_dict(load_file(str(path)))

    @torch.no_grad()
    def __call__(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        x = torch.as_tensor(images)
        return torch.cat([self.net.body(to_input(x[i : i + 500])) for i in range(0, len(x), 500)]).numpy()

    @torch.no_grad()
    def predict(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """The class the held-out net sees in each uint8 (N, C, H, W) image."""
        x = torch.as_tensor(images)
        return torch.cat([self.net(to_input(x[i : i + 500])).argmax(1) for i in range(0, len(x), 500)]).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description="train and cache the held-out evaluator")
    parser.add_argument("--dataset", default="fashion-mnist", choices=("fashion-mnist", "digits"))
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    path = train(args.dataset, args.epochs)
    print(json.loads(path.with_suffix(".json").read_text()))


if __name__ == "__main__":
    main()
