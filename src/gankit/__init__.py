"""gankit: the classic GAN family as one tested PyTorch package.

Python entry points:

    >>> import gankit
    >>> config = gankit.load_config("dcgan-digits", ["train.steps=200"])
    >>> result = gankit.train(config, "runs/digits")
    >>> images = gankit.load_generator("runs/digits").sample(16, seed=0)  # uint8 (16, H, W, C)
"""

__version__ = "0.1.0"

from gankit.config import RunConfig, TrainConfig, load_config  # noqa: E402
from gankit.sampling import GeneratorPipeline, load_generator  # noqa: E402
from gankit.training import train  # noqa: E402

__all__ = ["RunConfig", "TrainConfig", "load_config", "train", "load_generator", "GeneratorPipeline", "__version__"]
