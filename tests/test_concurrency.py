"""Threads sharing one StyleTransfer get the images the same calls give one after another, and the
runner cache stays bounded with its evicted sessions freed."""

from __future__ import annotations

import gc
import threading
import weakref

import numpy as np
import pytest

from nst.engine import StyleTransfer

from .conftest import stripes, synthetic

JOBS = [  # distinct contents, styles and seeds, so a mix-up between the threads shows in the images
    (synthetic(48, 56, seed=1), stripes(48, 48), 1),
    (synthetic(56, 48, seed=2), stripes(40, 64)[::-1].copy(), 2),
]


def _both(st: StyleTransfer, **options) -> tuple[list, list]:
    """The two jobs run one after another, then at once from two threads (each job twice, so the threads
    overlap for many evaluations)."""
    run = lambda job: st.stylize(job[0], [job[1]], size=48, init="random", seed=job[2], **options)  # noqa: E731
    sequential = [run(job) for job in JOBS]
    results: list = [None] * len(JOBS)
    errors: list = []
    barrier = threading.Barrier(len(JOBS))

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = [run(JOBS[index]) for _ in range(2)]
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(JOBS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    return sequential, results


@pytest.mark.parametrize(
    "options",
    [
        {"path": "split", "iterations": 4},
        {"path": "fused", "iterations": 4},
        {"path": "fused", "optimizer": "adam", "iterations": 6},
    ],
    ids=["split", "fused", "fused-adam"],
)
def test_two_threads_give_the_sequential_images(options):
    st = StyleTransfer(device="cpu")
    sequential, concurrent = _both(st, **options)
    for alone, together in zip(sequential, concurrent):
        for image in together:
            assert np.array_equal(alone, image)
    assert not np.array_equal(sequential[0][:48, :48], sequential[1][:48, :48])


def test_runner_cache_is_bounded_and_frees_what_it_evicts():
    st = StyleTransfer(device="cpu", max_runners=2)
    content, style = synthetic(40, 40), stripes(40, 40)
    settings = [  # three runners: two layer sets and another pooling
        {"style_layers": "relu1_1,relu2_1"},
        {"style_layers": "relu1_1"},
        {"style_layers": "relu1_1", "pooling": "avg"},
    ]
    run = lambda **kw: st.transfer(content, [style], size=40, iterations=2, path="split", **kw)  # noqa: E731
    first = run(**settings[0])
    evicted = weakref.ref(st._runners.values()[0])
    for extra in settings[1:]:
        run(**extra)
        assert len(st._runners) <= 2
    gc.collect()
    assert evicted() is None  # its sessions are gone, not just out of the cache
    assert np.array_equal(run(**settings[0]), first)  # built again after eviction: the same image
    assert np.array_equal(
        StyleTransfer(device="cpu").transfer(content, [style], size=40, iterations=2, path="split", **settings[0]),
        first,
    )


def test_cache_sizes_are_checked():
    from nst.engine.errors import NstError

    with pytest.raises(NstError, match="max_runners"):
        StyleTransfer(device="cpu", max_runners=0)
