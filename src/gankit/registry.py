"""Small name-based registries whose entries carry their own typed config.

Every pluggable part of gankit (model families, losses, objectives, datasets) is
registered under a name together with a dataclass describing its options. A
config section such as ``{"name": "dcgan", "g_width": 32}`` is resolved against
the entry's dataclass: unknown keys and wrongly typed values are errors that
say what was wrong and list what is valid.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from typing import Any, Callable, Generic, TypeVar

from gankit.errors import ConfigError  # noqa: F401  (re-exported: gankit.registry.ConfigError)

T = TypeVar("T")


@dataclasses.dataclass
class NoOptions:
    """The options of an entry that takes none."""


@dataclasses.dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    config_cls: type
    factory: T
    summary: str


class Registry(Generic[T]):
    """Maps names to (options dataclass, factory) pairs."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, config_cls: type, summary: str = "") -> Callable[[T], T]:
        if not dataclasses.is_dataclass(config_cls):
            raise TypeError(f"{self.kind} {name!r}: config_cls must be a dataclass")

        def decorate(factory: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, config_cls, factory, summary)
            return factory

        return decorate

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> Entry[T]:
        if name not in self._entries:
            raise ConfigError(f"unknown {self.kind} {name!r}; valid {self.kind} names: {', '.join(self.names())}")
        return self._entries[name]

    def resolve(self, section: dict[str, Any], where: str) -> tuple[Entry[T], Any]:
        """Return the entry named by ``section['name']`` and its validated options."""
        if not isinstance(section, dict) or not isinstance(section.get("name"), str):
            raise ConfigError(f"{where} must be a mapping with a 'name' (a string), got {str(section)[:200]}")
        entry = self.get(section["name"])
        options = {k: v for k, v in section.items() if k != "name"}
        return entry, build_dataclass(entry.config_cls, options, where)

    def items(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]


def memory_bytes() -> int:
    """This machine's physical memory in bytes (0 when unknown): the yardstick for sizes a config asks for."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def check_ranges(
    options: Any,
    where: str,
    positive: tuple[str, ...] = (),
    non_negative: tuple[str, ...] = (),
    at_most: dict[str, float] | None = None,
) -> None:
    """Size and range checks of an options dataclass (``where``: its config section, e.g. "model"). A None
    value (filled in later from the data) passes; a list is checked item by item."""

    def values(name):
        value = getattr(options, name)
        return [] if value is None else value if isinstance(value, (list, tuple)) else [value]

    for name in positive:
        if any(v < 1 for v in values(name)):
            raise ConfigError(f"{where}.{name} must be at least 1, got {getattr(options, name)}")
    for name in non_negative:
        if any(v < 0 for v in values(name)):
            raise ConfigError(f"{where}.{name} must be >= 0, got {getattr(options, name)}")
    for name, limit in (at_most or {}).items():
        if any(v > limit for v in values(name)):
            raise ConfigError(
                f"{where}.{name} is {getattr(options, name)}, more than the sensible limit {limit:g}; check the value"
            )


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def build_dataclass(cls: type, values: dict[str, Any], where: str):
    """Build ``cls(**values)`` after checking every key and value type."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(values).__name__}")
    retired = getattr(cls, "RETIRED", {})  # keys older configs carry whose meaning moved elsewhere: dropped
    values = {k: v for k, v in values.items() if k not in retired}
    valid = field_names(cls)
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)} in {where}; valid keys: {', '.join(valid)}")
    hints = typing.get_type_hints(cls)
    checked = {k: check_type(v, hints[k], f"{where}.{k}") for k, v in values.items()}
    try:
        return cls(**checked)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from error


def check_type(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a type annotation; return it (ints widened to float)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in args:
            try:
                return check_type(value, option, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(f"{where}: {value!r} matches none of {_type_name(annotation)}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
    if annotation is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected null, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_type = args[0] if args else Any
        return [check_type(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{where}: must be a finite number, got {value!r}")
            return float(value)
    elif annotation is str:
        if isinstance(value, str):
            return value
    elif dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        return build_dataclass(annotation, value, where)
    else:
        return value
    raise ConfigError(f"{where}: expected {_type_name(annotation)}, got {value!r}")


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")
