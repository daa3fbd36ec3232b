"""LruCache: bounded, least recently used out first, one build per key however many threads ask."""

from __future__ import annotations

import threading
import time

import pytest

from nst.engine.cache import LruCache


def test_bounded_least_recently_used_first():
    evictions = []
    cache = LruCache(2, after_evict=lambda: evictions.append(1))
    assert cache.get("a", lambda: 1) == 1 and cache.get("b", lambda: 2) == 2
    assert cache.get("a", lambda: pytest.fail("rebuilt")) == 1  # a is now the most recent
    cache.get("c", lambda: 3)
    assert "b" not in cache and "a" in cache and len(cache) == 2 and evictions == [1]
    assert cache.values() == [1, 3]


def test_one_build_per_key_across_threads_and_failed_builds_are_not_kept():
    cache = LruCache(4)
    builds = []

    def build():
        builds.append(1)
        time.sleep(0.2)  # long enough that every thread asks while the first build runs
        return object()

    values = []
    threads = [threading.Thread(target=lambda: values.append(cache.get("k", build))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(builds) == 1 and len(values) == 4 and all(v is values[0] for v in values)
    with pytest.raises(ZeroDivisionError):
        cache.get("bad", lambda: 1 / 0)
    assert "bad" not in cache and cache.get("bad", lambda: 5) == 5
