"""gankit's error families. A leaf module: every other module raises one of these for a failure a user can
act on, and the command line prints its message without a traceback (``gankit --debug ...`` shows one).

Every message names the file or setting at fault, what was wrong with it, and what to do.

- :class:`ConfigError`: a configuration value is missing, unknown, of the wrong type or out of range;
- :class:`DataError`: a data file or folder is missing, corrupt, of the wrong shape or type;
- :class:`CheckpointError`: a gankit file (checkpoint, export, text encoder, cache) is missing, corrupt,
  tampered with, or does not fit the model its configuration describes;
- :class:`UsageError`: a command's arguments do not fit together or do not fit the file they name;
- :class:`TrainingError`: a run cannot start or go on (the run folder is busy or unwritable, a checkpoint
  cannot be written, training diverged).
"""

from __future__ import annotations


class GankitError(Exception):
    """A failure with a message meant for the user (no traceback needed)."""


class ConfigError(GankitError, ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


class DataError(GankitError, ValueError):
    """A data file or folder is missing, corrupt, or of the wrong shape or type."""


class CheckpointError(GankitError, ValueError):
    """A gankit file (checkpoint, export, text encoder, cache) is missing, corrupt or of another format."""


class TrainingError(GankitError, RuntimeError):
    """Training cannot start or cannot go on (busy or unwritable run folder, failed save, divergence)."""


class UsageError(GankitError, ValueError):
    """A command's arguments do not fit together, or do not fit the file they name (``--labels`` for a
    generator that takes none)."""
