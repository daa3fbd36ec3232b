"""Optimizers over the image pixels: L-BFGS-B (scipy, bounded to 0..255) and Adam (numba step).

Both spend exactly `iterations` objective evaluations (forward + backward passes), so budgets compare,
and both call `on_eval(k, x, losses)` after evaluation k; a True return stops the run.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

import kernels

from .objective import Losses, Objective

OnEval = Callable[[int, np.ndarray, Losses], bool]
PIXEL_RANGE = (0.0, 255.0)


class _Stop(Exception):
    """Raised inside the scipy objective to end L-BFGS-B at the budget or on request."""


def lbfgs(objective: Objective, x0: np.ndarray, iterations: int, on_eval: OnEval,
          history: int = 10) -> np.ndarray:
    """Minimise with scipy's L-BFGS-B inside the pixel range; returns the best image evaluated.

    Its per-iteration cost is about 30 ms at 512 px; setting up the bounds costs about 3 s once per run
    (scipy converts them element by element), so a run restarts it only when it stops early.
    """
    from scipy.optimize import minimize

    shape = x0.shape
    best = {"loss": np.inf, "x": x0.copy()}
    state = {"k": 0, "stopped": False}

    def fun(flat: np.ndarray):
        if state["k"] >= iterations or state["stopped"]:
            raise _Stop
        x = flat.astype(np.float32).reshape(shape)
        loss, grad = objective.loss_and_grad(x)
        if loss < best["loss"]:
            best["loss"], best["x"] = loss, x
        state["stopped"] = bool(on_eval(state["k"], x, objective.last))
        state["k"] += 1
        return loss, grad.astype(np.float64).ravel()

    start = x0.astype(np.float64).ravel()
    stalls = 0
    while state["k"] < iterations and not state["stopped"] and stalls < 3:
        before = state["k"]
        try:
            minimize(fun, start, jac=True, method="L-BFGS-B", bounds=_bounds(start.size),
                     options={"maxfun": iterations - state["k"] + 1, "maxiter": iterations,
                              "maxcor": history, "ftol": 0.0, "gtol": 0.0})
        except _Stop:
            break
        # L-BFGS-B ended early (line search could not progress): restart from the best point.
        stalls = stalls + 1 if state["k"] - before < 3 else 0
        start = best["x"].astype(np.float64).ravel()
    return best["x"]


def _bounds(n: int):
    from scipy.optimize import Bounds

    return Bounds(np.full(n, PIXEL_RANGE[0]), np.full(n, PIXEL_RANGE[1]))


def adam(objective: Objective, x0: np.ndarray, iterations: int, on_eval: OnEval, lr: float,
         clip: bool = True, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> np.ndarray:
    """Adam on the pixels; returns the image after the last step (clipped to 0..255 when `clip`)."""
    x = np.ascontiguousarray(x0, dtype=np.float32).copy()
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    low, high = PIXEL_RANGE if clip else (-np.inf, np.inf)
    flat = x.reshape(-1)
    for k in range(iterations):
        _, grad = objective.loss_and_grad(x)
        if on_eval(k, x, objective.last):
            break
        kernels.adam_step(flat, grad.reshape(-1), m.reshape(-1), v.reshape(-1), k + 1, lr,
                          beta1, beta2, eps, low, high)
    return x


def adam_on_device(objective, x0: np.ndarray, iterations: int, on_eval: OnEval, lr: float, clip: bool = True,
                   beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> np.ndarray:
    """`adam` for the fused objective with everything on its device (CPU or CUDA): the image, gradient and
    moments stay there as OrtValues and only the loss scalars come back; `on_eval` gets the image as an
    OrtValue (Progress copies it only when asked)."""
    from .runtime import to_device

    runner = objective.runner
    stepper = runner.adam()
    low, high = PIXEL_RANGE if clip else (-np.inf, np.inf)
    x = to_device(x0, runner.device)
    for k in range(iterations):
        content, style, grad = runner.evaluate_on_device(x)
        x_next, tv = stepper.step(x, grad, k + 1, lr, beta1, beta2, eps, low, high, objective.options.tv_weight)
        objective.record(content, style, tv)
        if on_eval(k, x, objective.last):
            break
        x = x_next
    return x.numpy()
