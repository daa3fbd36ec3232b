"""A Ray cluster (local or at an address) and a pool of actors that each load the model once.

Actors are restarted when their process dies and their running task retried (Ray's max_restarts and
max_task_retries); every task skips outputs already written and writes atomically, so a retry neither
loses nor writes anything twice.
"""

from __future__ import annotations

import logging
import math
import os
from collections import deque
from dataclasses import dataclass

from nst.engine.errors import NstError

RETRIES = 3  # restarts of a dead actor, and retries of the task it was running


@dataclass(frozen=True)
class RayResources:
    """How many actors, and what each holds: CPU threads, GPUs (a fraction shares one), the device."""

    actors: int = 2
    threads: int = 1
    gpus: float = 0.0
    device: str = "cpu"

    def check(self) -> None:
        """Before any work (NaN GPUs included): one line saying what the flags take."""
        if self.actors < 1 or self.threads < 1 or not (0 <= self.gpus < math.inf):
            raise NstError("--ray-actors and --ray-threads must be at least 1, --ray-gpus at least 0")


def connect(address: str | None, resources: RayResources):
    """Join the cluster at `address`, or start a local one sized for the actors ('local' or None)."""
    local = address in (None, "", "local")
    if local:
        # Ray turns token authentication on for a new local cluster and warns about it at every start unless
        # the mode is named; naming it (read when ray is first imported) keeps the protection and keeps
        # Ray's notice out of the user's terminal.
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    try:
        import ray
    except ImportError:
        from nst.engine.diagnostics import install

        raise NstError(f"--ray needs Ray: {install('cpu,ray')}") from None
    resources.check()
    if ray.is_initialized():
        return ray
    if local:
        ray.init(
            address="local",  # a new cluster of its own, never one some other process started
            num_cpus=resources.actors * resources.threads,
            num_gpus=math.ceil(resources.actors * resources.gpus) if resources.gpus else None,  # whole GPUs
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
    else:
        ray.init(address=address, logging_level=logging.WARNING)
    return ray


class Worker:
    """One model copy (a StyleTransfer) in an actor process; runs whatever task it is handed."""

    def __init__(self, device: str, threads: int) -> None:
        from nst.engine import StyleTransfer

        self.st = StyleTransfer(device=device, threads=threads)

    def pid(self) -> int:
        import os

        return os.getpid()

    def call(self, task, *args):
        """Run `task(st, *args)` with this actor's model."""
        return task(self.st, *args)


def start_actors(ray, resources: RayResources) -> list:
    """The actors, each reserving its threads and GPUs, restarted (and their task retried) if they die."""
    remote = ray.remote(max_restarts=RETRIES, max_task_retries=RETRIES)(Worker)
    options = {"num_cpus": resources.threads, "num_gpus": resources.gpus}
    return [remote.options(**options).remote(resources.device, resources.threads) for _ in range(resources.actors)]


def run_all(ray, actors: list, task, items: list, on_result=None) -> list:
    """`task(st, item)` for every item, spread over the actors as they come free; results in finishing order.
    Interrupted (or failing), it cancels the running tasks and stops the actors before returning, so what is
    on disk no longer changes under a count."""
    queue, free, running, results = deque(items), list(actors), {}, []
    try:
        while queue or running:
            while queue and free:
                actor = free.pop()
                running[actor.call.remote(task, queue.popleft())] = actor
            ready, _ = ray.wait(list(running), num_returns=1)
            free.append(running.pop(ready[0]))
            results.append(ray.get(ready[0]))
            if on_result:
                on_result(results[-1])
    except BaseException:
        try:
            cancel(ray, list(running))
        finally:
            stop(ray, actors)
        raise
    return results


def cancel(ray, refs: list, timeout: float = 2.0) -> None:
    """Cancel running tasks and give them a moment to end: an actor killed while its task runs has Ray
    announce a retry that never comes (actors are not restarted after an interruption). A task that Ctrl-C
    reached in its worker ends at once; one that did not is killed with its actor after `timeout`."""
    for ref in refs:
        ray.cancel(ref)
    if refs:
        ray.wait(refs, num_returns=len(refs), timeout=timeout)


def stop(ray, actors: list) -> None:
    """Kill the actors and wait until each is gone (a call on a dead actor raises)."""
    for actor in actors:
        ray.kill(actor, no_restart=True)
    for actor in actors:
        try:
            ray.get(actor.pid.options(max_task_retries=0).remote(), timeout=30)
        except Exception:  # RayActorError once it is dead; a timeout leaves it to Ray's shutdown
            pass
