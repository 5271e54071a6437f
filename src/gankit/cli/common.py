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
GENERATOR_FLAGS_HELP = (
    "The generator adds flags for its own inputs and settings, named after its condition's controls (`gankit info "
    "RUN` lists them as sample_flags): --labels 3,Sneaker or all (class-conditional; several give a grid, one row "
    "each), --codes.cat0 2 / --codes.cont0 -1.5 (InfoGAN), --text CAPTION (text-to-image; several give a grid), "
    "--condition-noise-scale 0..2 (StackGAN: 1 is the paper's sampling, 0 draws from the caption's mean)."
)


def control_flag(name: str) -> str:
    """The command-line flag of a condition control (``condition_noise_scale`` -> ``--condition-noise-scale``)."""
    return "--" + name.replace("_", "-")


def takes_generator_flags(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Mark a command whose generator adds flags of its own (:func:`generator_flags` reads them)."""
    parser.set_defaults(generator_flags=True)
    parser.epilog = GENERATOR_FLAGS_HELP
    return parser


def looks_like_value(token: str) -> bool:
    """A token that is a flag's value rather than a flag (negative numbers included)."""
    if not token.startswith("-"):
        return True
    try:
        float(token)
        return True
    except ValueError:
        return False


def split_generator_flags(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[list[str], list[str]]:
    """(the arguments for ``parser``, the generator's own flags as ``--flag=value`` tokens): for a command that
    ``takes_generator_flags``, every ``--flag`` its parser does not know is taken out with its value (``--flag
    value`` or ``--flag=value``; a value may hold spaces or start with a minus sign), so argparse never sees it
    and never takes its value for a positional (``gankit sample --text "a red bag" RUN``)."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    where = next((i for i, token in enumerate(argv) if token in commands), None)
    if where is None or not commands[argv[where]].get_default("generator_flags"):
        return argv, []
    known = list(commands[argv[where]]._option_string_actions)
    rest, flags = argv[: where + 1], []
    i = where + 1
    while i < len(argv):
        token = argv[i]
        if token == "--":
            rest += argv[i:]
            break
        name = token.split("=", 1)[0]
        if token.startswith("--") and not any(k.startswith(name) for k in known):
            if "=" not in token and i + 1 < len(argv) and looks_like_value(argv[i + 1]):
                token, i = f"{token}={argv[i + 1]}", i + 1
            flags.append(token)
        else:
            rest.append(token)
        i += 1
    return rest, flags


def generator_flags(pipeline, argv: list[str], inputs: bool = True) -> tuple[dict[str, list], dict[str, float]]:
    """The flags a generator's condition offers (one per control of ``Condition.controls()``; settings only
    unless ``inputs``), read from ``argv``: ({input name: its values, in order}, {setting name: value}). A flag
    may repeat; one entry may stand for several values (``--labels all``). Anything else is refused, naming the
    flags this generator takes."""
    from gankit.variants import CONDITIONS

    condition = pipeline.condition
    controls = [c for c in condition.controls() if c["type"] != "image" and (inputs or c["type"] == "setting")]
    flags = {control_flag(c["name"]): c for c in controls}
    values: dict[str, list] = {}
    for token in argv:
        flag, _, text = token.partition("=")
        if flag in flags and not _:
            raise UsageError(f"{flag} needs a value: {flag} VALUE")
        if flag not in flags:
            offered = ", ".join(flags) or "none"
            key = flag.lstrip("-").replace("-", "_").split(".")[0]
            owner = next((c for c in CONDITIONS.values() if key in c.accepts), None)
            what = f"{owner.refusal}: it is" if owner is not None else "this generator is"
            raise UsageError(f"{flag}: {what} {condition.summary()} (the flags of its inputs: {offered})")
        name = flags[flag]["name"]
        try:
            values.setdefault(name, []).extend(condition.parse_input(name, text))
        except ValueError as error:
            raise UsageError(f"{flag}: {error}") from None
    settings = {}
    for c in controls:
        if c["type"] == "setting" and c["name"] in values:
            if len(values[c["name"]]) > 1:
                raise UsageError(f"{control_flag(c['name'])} takes one value")
            settings[c["name"]] = float(values.pop(c["name"])[0])
    return values, settings


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
