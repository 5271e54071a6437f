"""Feature extractors: uint8 images (or float points) -> features and, where they exist, class logits.

Every extractor describes itself with a ``card`` (name, weights sha256,
preprocessing, feature size) that is copied into each score it produces.
Real and generated samples go through the same extractor in the same form:
uint8 images, so generated samples are quantized exactly as a saved PNG would be.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import torch

from gankit.metrics.classifier import load_evaluator
from gankit.networks.classifier import check_skill, skill
from gankit.registry import ConfigError, NoOptions, Registry


@dataclasses.dataclass
class Features:
    features: np.ndarray  # (N, F) float32
    logits: np.ndarray | None = None  # (N, K) float32
    labels: np.ndarray | None = None  # (N,) the class each sample is (real) or was drawn for (generated)
    # What the condition knows of each generated sample besides its label (Condition.evaluation_inputs), by name:
    # e.g. "codes", the categorical code value each was drawn with. Metrics read the targets they declare.
    targets: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


class Extractor:
    card: dict[str, Any]
    has_logits: bool = False  # whether it gives class logits (Inception Score, class metrics)
    progress: bool = False  # a progress bar while embedding many images

    def batches(self, n: int, batch_size: int, what: str = "features") -> Any:
        """The batch starts of n items, with a progress bar when asked and worth it."""
        from tqdm.auto import tqdm

        starts = range(0, n, batch_size)
        return tqdm(starts, desc=what, unit="batch", leave=False, disable=not self.progress or len(starts) < 4)

    def __call__(self, x: torch.Tensor) -> Features:
        raise NotImplementedError

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ConfigError if ``x`` is not what this extractor reads."""


EXTRACTORS: Registry = Registry("feature extractor")


@dataclasses.dataclass
class EvaluatorOptions:
    weights: str = ""  # built-in evaluator name (a dataset name) or a .safetensors path
    batch_size: int = 256
    device: str = "cpu"


@EXTRACTORS.register("evaluator", EvaluatorOptions, "a gankit-trained classifier: penultimate features + logits")
class EvaluatorExtractor(Extractor):
    def __init__(self, options: EvaluatorOptions):
        if not options.weights:
            raise ConfigError(
                "the evaluator extractor needs weights (a built-in name such as fashion-mnist, or a path)"
            )
        self.evaluator = load_evaluator(options.weights, options.device)
        # channels-last convolutions: about twice as fast on a CPU (features equal to 1e-6)
        self.evaluator.net.to(memory_format=torch.channels_last)
        self.batch_size, self.device = options.batch_size, torch.device(options.device)
        info = self.evaluator.info
        check_skill(info, repr(options.weights), lambda message: warnings.warn(message, stacklevel=3))
        self.classifier = info.get("kind", "classifier") == "classifier"  # a self-supervised one has no class logits
        self.has_logits = self.classifier
        self.card = {
            "extractor": "evaluator",
            "evaluator_kind": info.get("kind", "classifier"),
            "weights": options.weights,
            "weights_sha256": self.evaluator.sha256,
            "evaluator_test_accuracy": info.get("test_accuracy"),
            "evaluator_skill": skill(info),
            "evaluator_dataset": info["dataset"],
            "feature_dim": self.evaluator.net.feature_dim,
            "layout": "channels_last",
            "preprocessing": f"uint8 (N, {info['channels']}, "
            "{info['resolution']}, {info['resolution']}) -> x / 127.5 - 1; "
            "penultimate layer (after global average pooling) as features"
            + ("; the network's first conv has stride 2" if info.get("stem_stride", 1) == 2 else ""),
        }

    def check_input(self, x: torch.Tensor) -> None:
        want = (self.evaluator.channels, self.evaluator.resolution, self.evaluator.resolution)
        if x.dtype != torch.uint8 or tuple(x.shape[1:]) != want:
            raise ConfigError(
                f"the evaluator {self.card['weights']!r} reads uint8 images of shape {want}, got {x.dtype} "
                f"{tuple(x.shape[1:])}; train an evaluator for this data (gankit evaluator train) and pass it"
            )

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> Features:
        self.check_input(x)
        features, logits = [], []
        for i in self.batches(len(x), self.batch_size):
            batch = x[i : i + self.batch_size].to(self.device).float().div_(127.5).sub_(1.0)
            batch = batch.contiguous(memory_format=torch.channels_last)
            f, out = self.evaluator.net.features_and_logits(batch)
            features.append(f.float().cpu())
            logits.append(out.float().cpu())
        return Features(torch.cat(features).numpy(), torch.cat(logits).numpy() if self.classifier else None)


@EXTRACTORS.register("raw", NoOptions, "the samples themselves (2D points; images as pixels in [0, 1])")
class RawExtractor(Extractor):
    def __init__(self, options: NoOptions):
        self.card = {
            "extractor": "raw",
            "weights_sha256": None,
            "preprocessing": "points as they are; images / 255, flattened",
        }

    def __call__(self, x: torch.Tensor) -> Features:
        values = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
        return Features(values.flatten(1).cpu().numpy())


@dataclasses.dataclass
class InceptionOptions:
    # A safetensors file of the standard FID Inception weights (pytorch-fid's pt_inception-2015-12-05, converted:
    # see gankit/networks/inception.py): gankit's own network, no torchvision. "" uses torch-fidelity instead.
    weights: str = ""
    batch_size: int = 64
    device: str = "cpu"


@EXTRACTORS.register(
    "inception",
    InceptionOptions,
    "the FID Inception-v3 (2048-d pool, logits): gankit's network with weights=FILE, or torch-fidelity's",
)
class InceptionExtractor(Extractor):
    """Standard Inception features for comparison with published FID/IS/KID: gankit's own FID Inception network
    with a weights file the user provides, or the torch-fidelity extra."""

    has_logits = True

    def __init__(self, options: InceptionOptions):
        self.batch_size, self.device = options.batch_size, torch.device(options.device)
        if options.weights:
            from gankit.networks.inception import load_fid_inception

            self.net = load_fid_inception(options.weights).to(self.device)
            from gankit.files import tensor_checksum

            digest = tensor_checksum(dict(self.net.state_dict())).removeprefix("sha256:")
            source = f"gankit's FID Inception-v3 with {options.weights}"
        else:
            try:
                from torch_fidelity import FeatureExtractorInceptionV3
            except ImportError:
                raise ConfigError(
                    "the inception extractor needs the standard FID Inception weights: pass them as a file, "
                    "gankit evaluate --inception-weights inception-fid.safetensors (converted once from "
                    "pytorch-fid's file: see gankit/networks/inception.py), or pip install 'gankit[inception]' "
                    "(torch-fidelity, which downloads them once)"
                ) from None
            try:
                self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"])
            except OSError as error:  # the weights download failed (offline)
                raise ConfigError(
                    f"torch-fidelity could not fetch the Inception weights ({error}); offline, give "
                    "the weights file: gankit evaluate --inception-weights inception-fid.safetensors"
                ) from None
            self.net = self.net.to(self.device).eval()
            digest, source = None, "torch-fidelity inception-v3-compat (pt_inception-2015-12-05)"
        self.card = {
            "extractor": "inception",
            "weights": source,
            "weights_sha256": digest,
            "feature_dim": 2048,
            "preprocessing": "uint8 RGB (gray repeated to 3 channels) resized to 299x299 (bilinear), scaled to [-1, 1]",
        }

    def check_input(self, x: torch.Tensor) -> None:
        if x.dtype != torch.uint8:
            raise ConfigError("the inception extractor reads uint8 images")

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> Features:
        self.check_input(x)
        features, logits = [], []
        for i in self.batches(len(x), self.batch_size, "Inception features"):
            batch = x[i : i + self.batch_size].to(self.device)
            if batch.shape[1] == 1:
                batch = batch.expand(-1, 3, -1, -1)
            f, out = self.net(batch)
            features.append(f.float().cpu())
            logits.append(out.float().cpu())
        return Features(torch.cat(features).numpy(), torch.cat(logits).numpy())


def build_extractor(section: dict[str, Any]) -> Extractor:
    entry, options = EXTRACTORS.resolve(section, "extractor")
    return entry.factory(options)
