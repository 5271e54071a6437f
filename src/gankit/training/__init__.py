"""Training: the loop (``loop.py``), its checkpoints (``checkpoints.py``), the EMA of G (``ema.py``), what a
run writes (``outputs.py``, ``export.py``) and periodic evaluation (``evaluation.py``)."""

from gankit.training.checkpoints import TrainingError
from gankit.training.loop import Divergence, RunResult, train

__all__ = ["Divergence", "RunResult", "TrainingError", "train"]
