"""What several command groups share."""

import argparse
import contextlib
import errno
import math
import os
import sys
from pathlib import Path
from typing import Iterator

from gankit.errors import UsageError
from gankit.ownership import check_writable

NO_EMA_HELP = "a checkpoint that holds an EMA of G: use the raw G instead (exports hold one of the two)"
CONDITION_NOISE_HELP = (
    "StackGAN: scale of the conditioning-augmentation noise when drawing (c = mu + sigma * "
    "scale * eps); 1 is the paper's sampling, 0 uses the mean mu: truer to the caption, less varied"
)


def feature_fn(extractor):
    """Features of uint8 images under an extractor (None: no extractor)."""
    return None if extractor is None else (lambda x: extractor(x).features)


def whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {'at least 1' if minimum == 1 else f'>= {minimum}'}, got {value}")
    return value


def count(text: str) -> int:
    """An argparse type: a whole number >= 1 (a count or a size)."""
    return whole_number(text, 1)


def count_up_to(maximum: int):
    """An argparse type: a whole number from 1 to ``maximum`` (a count whose work grows with it)."""

    def parse(text: str) -> int:
        value = whole_number(text, 1)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum:,}, got {value:,}")
        return value

    parse.__name__ = "count"
    return parse


def seed_list(text: str) -> list[int]:
    """An argparse type: comma-separated seeds (whole numbers >= 0), 2 to 64 of them."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated seeds (whole numbers >= 0) such as 0,1,5; got {text!r}"
        )
    if not 2 <= len(parts) <= 64:
        raise argparse.ArgumentTypeError(f"expected 2 to 64 seeds, got {len(parts)} in {text!r}")
    return [int(p) for p in parts]


def seed(text: str) -> int:
    """An argparse type: a seed, a whole number >= 0."""
    return whole_number(text, 0)


def non_negative(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def positive(text: str) -> float:
    """An argparse type: a finite number > 0."""
    value = non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be a finite number > 0, got 0")
    return value


def output_path(text: str) -> str:
    """An argparse type: a file or folder gankit may write, checked before any work starts (not a run's own
    files; the nearest existing folder above it must be writable; an existing file must be writable)."""
    path = Path(text).expanduser()
    try:
        check_writable(path)
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if path.exists() and not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"{path} is not writable")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise argparse.ArgumentTypeError(f"{path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{path}: cannot write in {ancestor} (permission denied)")
    return text


# Help for arguments that mean the same in every command (a command may still give its own).
GENERIC_HELP = {
    "seed": "random seed: the same seed gives the same result",
    "device": "where to run: cpu, cuda, cuda:N or mps",
    "source": "run folder, generator.safetensors export, or checkpoint",
    "quiet": "no progress bars or per-epoch lines",
    "batch_size": "samples per forward pass (memory vs speed; the samples do not depend on it)",
}


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help with each option's default added where the text does not already say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            default is None
            or default is False
            or default is argparse.SUPPRESS
            or default == []
            or not action.option_strings
            or "default" in text.lower()
            or action.nargs == 0
        ):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """gankit's argument parser: defaults shown in --help, generic help for common arguments."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):
        if not kwargs.get("help"):
            name = kwargs.get("dest") or args[-1].lstrip("-").replace("-", "_")
            if name in GENERIC_HELP:
                kwargs["help"] = GENERIC_HELP[name]
        return super().add_argument(*args, **kwargs)


class SurvivingStream:
    """A console stream whose reader may go away (``gankit train ... | tee log`` when Ctrl-C also ends tee; a
    closed terminal): the first write that finds the pipe closed (EPIPE) or the terminal gone (EIO) points the
    file descriptor at /dev/null and every later write succeeds there, so the run goes on to save its
    checkpoint instead of dying in a print."""

    def __init__(self, stream):
        self.stream, self.lost = stream, False

    def lose(self) -> None:
        self.lost = True
        with contextlib.suppress(OSError, ValueError):  # Python's own flush at exit then writes to /dev/null too
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.stream.fileno())
            os.close(null)

    def guarded(self, action, *args):
        if self.lost:
            return None
        try:
            return action(*args)
        except OSError as error:
            if error.errno not in (errno.EPIPE, errno.EIO):
                raise
            self.lose()
            return None

    def write(self, text: str) -> int:
        self.guarded(self.stream.write, text)
        return len(text)

    def flush(self) -> None:
        self.guarded(self.stream.flush)

    def __getattr__(self, name):  # fileno, isatty, encoding, ...: the real stream's
        return getattr(self.stream, name)


@contextlib.contextmanager
def surviving_output() -> Iterator[None]:
    """sys.stdout and sys.stderr as :class:`SurvivingStream` for the block (a training's whole run)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SurvivingStream(sys.stdout), SurvivingStream(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def load_source(source: str, **options):
    """``gankit.load_generator`` for a command: says on stderr which of a run's generators it drew from (the best
    one, by the run's periodic evaluation, unless RUN@last or RUN@STEP asks for another)."""
    from gankit.inference import load_generator

    pipeline = load_generator(source, **options)
    if pipeline.source_note:
        print(f"{source}: {pipeline.source_note}", file=sys.stderr)
    return pipeline
