"""Data: the dataset contract (``dataset.py``) and the sources that load into it (``sources.py``,
``captions.py``, ``packed.py``: memory-mapped data from ``gankit data pack``, ``pairs.py``: paired images),
registered in ``DATASETS`` when
this package is imported."""

from gankit.data.dataset import (  # noqa: F401
    BatchStream,
    DATASETS,
    DataError,
    DataSpec,
    Dataset,
    data_identity,
    has_test_split,
    load_dataset,
    to_uint8_images,
    with_split,
)

# Importing the source modules registers them.
from gankit.data import captions, packed, pairs, sources  # noqa: E402,F401,I001
