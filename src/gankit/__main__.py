"""``python -m gankit ...`` (what torchrun starts: ``torchrun --nproc_per_node=N -m gankit train ...``)."""

import sys

from gankit.cli import main

sys.exit(main())
