"""A bounded memo for the hot path: values worked out once from what clients and services send
(header rules, checked header lines, parsed URLs), by the bytes or text they came from."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Memo(dict[K, V]):
    """A dict that starts over when it holds ``most`` entries: a few keys repeat on nearly
    every request, and the rest (request-made values) must not grow the process. Read it with
    ``get`` (a plain dict lookup); add with :meth:`keep`."""

    __slots__ = ("most",)

    def __init__(self, most: int) -> None:
        super().__init__()
        self.most = most

    def keep(self, key: K, value: V) -> V:
        """Remember ``value`` for ``key`` (emptying the memo first when it is full); ``value``."""
        if len(self) >= self.most:
            self.clear()
        self[key] = value
        return value
