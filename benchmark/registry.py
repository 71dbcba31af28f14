"""Named registries for the pluggable parts: losses, penalties, networks, datasets, models.

One registry per kind of thing. The CLI choices, the spec validation and the error
messages all read from the registry, so they cannot drift apart. A researcher's own
module registers with the same decorator and is imported by `load_plugins`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from benchmark.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object mapping that refuses duplicates and explains unknown names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T | None = None) -> Callable[[T], T] | T:
        """Register `item` under `name`; usable as `@REGISTRY.register("name")`."""
        if not name or not name.replace("_", "").isalnum() or name != name.lower():
            raise ValueError(f"{self.kind} name {name!r} must be lower-case letters, digits, _")

        def add(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return add(item) if item is not None else add

    def get(self, name: str, field: str | None = None) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(field or self.kind, name, f"one of {self.names()}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def values(self) -> list[T]:
        """The registered objects, in the order they were registered."""
        return list(self._items.values())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def load_plugins(modules: Iterable[str]) -> None:
    """Import user modules so their `@register` decorators run.

    Any error while importing (a missing module, a syntax error, an exception the module
    raises, a duplicate registration, even `sys.exit()` or KeyboardInterrupt raised by the
    module's own code) is the user's input, so it becomes a ConfigError.
    """
    for module in modules:
        try:
            importlib.import_module(module)
        except (Exception, SystemExit, KeyboardInterrupt) as error:  # reported in one line
            detail = f"{type(error).__name__}: {error}".splitlines()[0]
            raise ConfigError("plugins", module, f"an importable module ({detail})") from None
