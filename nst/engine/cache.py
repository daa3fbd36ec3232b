"""A small bounded cache that threads can share: what StyleTransfer keeps its sessions and targets in."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")


class LruCache(Generic[V]):
    """At most `maxsize` values by key, each built on first use; the least recently used goes first.

    A value is built once even when threads ask for its key at the same time (the others wait for that one
    build); builds of different keys run at once.  `after_evict()` runs (outside the lock) once values were
    pushed out and dropped, for example to hand their memory back; a value still in use elsewhere lives on
    until its user lets go of it.
    """

    def __init__(self, maxsize: int, after_evict: Callable[[], object] | None = None) -> None:
        self.maxsize = maxsize
        self.after_evict = after_evict
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._building: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], V]) -> V:
        """The value for `key`, built by `build()` when absent (a failed build raises here and is not kept)."""
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
                gate = self._building.get(key)
                if gate is None:
                    gate = self._building[key] = threading.Event()
                    break
            gate.wait()  # another thread builds it: take its value (or build it ourselves if that failed)
        try:
            value = build()
            with self._lock:
                self._items[key] = value
                evicted = 0
                while len(self._items) > self.maxsize:
                    self._items.popitem(last=False)
                    evicted += 1
        finally:
            with self._lock:
                del self._building[key]
            gate.set()
        if evicted and self.after_evict is not None:
            self.after_evict()
        return value

    def values(self) -> list[V]:
        """The values held now, least recently used first."""
        with self._lock:
            return list(self._items.values())

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items
