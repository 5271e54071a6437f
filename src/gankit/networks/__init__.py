"""Networks: one family per file (``dcgan.py``, ``mlp.py``, ``text_dcgan.py``, ``stackgan_stage2.py``, ``pix2pix.py``,
``srgan.py``), the evaluator network (``classifier.py``), what they share
(``common.py``), and the text encoders (``text_encoders.py``). Importing this package registers the families
in ``MODELS``."""

from gankit.data import DataSpec  # noqa: F401
from gankit.networks.common import (  # noqa: F401
    FeatureShape,
    HeadBuilder,
    HeadedD,
    RETIRED_HEAD_OPTIONS,
    Family,
    LabelInput,
    MODELS,
    MinibatchStd,
    Staged,
    apply_spectral_norm,
    averaged_batchnorm,
    block_outputs,
    build_network,
    no_heads,
    check_discriminator_options,
    check_matches,
    deterministic_sampling,
    complete_classes,
    complete_image_options,
    projection_embedding,
    require_labels,
)

# Importing the family modules registers them.
from gankit.networks import bigan, dcgan, mlp, pix2pix, srgan, stackgan_stage2, text_dcgan  # noqa: E402,F401,I001
