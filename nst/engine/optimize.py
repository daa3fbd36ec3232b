"""Optimizers over the image pixels: nst's L-BFGS (numba, float32 memory, projected onto 0..255), scipy's
L-BFGS-B (the classic reference the johnson preset uses) and Adam (numba step).

Both spend exactly `iterations` objective evaluations (forward + backward passes), so budgets compare,
and both call `on_eval(k, x, losses)` after evaluation k; a True return stops the run.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from nst import kernels

from .errors import NstError
from .objective import Losses, Objective

OnEval = Callable[[int, Any, Losses], bool]  # the image: an ndarray, or an OrtValue on the device (adam_on_device)
PIXEL_RANGE = (0.0, 255.0)


def _finite(on_eval: OnEval) -> Callable[[int, Any, Losses | None], bool]:
    """`on_eval` behind a check that the loss is finite: an overflow (huge weights or learning rate) would
    otherwise end L-BFGS silently or let Adam write a black image. It takes the objective's `last` terms."""

    def checked(k: int, x, losses: Losses | None) -> bool:
        if losses is None:
            raise RuntimeError(f"evaluation {k} recorded no losses")
        if not math.isfinite(losses.total):
            raise NstError(
                f"the loss is not finite ({losses.total}) at iteration {k}: the weights are too large for float32; "
                "lower --style-weight, --content-weight or --tv-weight (and --lr with adam)"
            )
        return on_eval(k, x, losses)

    return checked


def _finite_gradient(grad: np.ndarray, k: int) -> np.ndarray:
    if not np.isfinite(grad).all():
        raise NstError(
            f"the gradient is not finite at iteration {k}: the weights are too large for float32; "
            "lower --style-weight, --content-weight or --tv-weight"
        )
    return grad


def _finite_image(x: np.ndarray) -> np.ndarray:
    """The result, refused when it holds NaN or infinity (a last step taken on an overflowed gradient)."""
    if not np.isfinite(x).all():
        raise NstError("the image is not finite after the last step: lower --lr or the loss weights")
    return x


class _Stop(Exception):
    """Raised inside the scipy objective to end L-BFGS-B at the budget or on request."""


class _StepMemory:
    """The last `history` steps s and gradient changes y of L-BFGS, float32, in a ring of slots with one
    spare that takes each trial step before it is known to be kept."""

    def __init__(self, history: int, n: int) -> None:
        self.history = history
        self.S = np.empty((history + 1, n), np.float32)
        self.Y = np.empty((history + 1, n), np.float32)
        self.kept: list[int] = []  # slots, oldest first

    @property
    def curved(self) -> bool:
        """Whether a pair with positive curvature is kept: then unit steps are tried."""
        return bool(self.kept)

    def spare(self) -> int:
        return next(i for i in range(self.history + 1) if i not in self.kept)

    def direction(self, gp: np.ndarray, d: np.ndarray) -> float:
        """d = -H gp over the free pixels (steepest descent without memory); returns gp.d."""
        return kernels.lbfgs_direction(gp, self.S, self.Y, np.array(self.kept, np.int64), d)

    def keep(self, slot: int, sy: float, yy: float) -> None:
        """Keep the pair in `slot` where the curvature is positive (else the memory stays as it was)."""
        if sy > 1e-10 * yy:
            self.kept = (self.kept + [slot])[-self.history :]

    def clear(self) -> None:
        self.kept = []


def lbfgs(objective: Objective, x0: np.ndarray, iterations: int, on_eval: OnEval, history: int = 10) -> np.ndarray:
    """Minimise inside the pixel range with nst's own L-BFGS; returns the best image evaluated.

    Projected L-BFGS: the two-loop direction over the free pixels (those not held on a bound by their
    gradient), the step clipped into the box, unit steps tried first and shortened (by a safeguarded
    quadratic fit) until the Armijo condition holds.  The step memory is float32 (8 bytes per value and
    step against scipy's 16) and each iteration is a few passes over the image in numba, so a long memory
    costs little time.  Almost every iteration takes the unit step: one evaluation per iteration.
    """
    low, high = PIXEL_RANGE
    shape, n = x0.shape, x0.size
    memory = _StepMemory(history, n)
    x = np.clip(np.ascontiguousarray(x0, np.float32).reshape(-1), low, high)
    gp, d, x_try = np.empty(n, np.float32), np.empty(n, np.float32), np.empty(n, np.float32)
    reach = 1.0  # steepest-descent steps move the furthest pixel this far; grows while they succeed
    count = [0]
    on_eval = _finite(on_eval)

    def evaluate(point: np.ndarray):
        loss, grad = objective.loss_and_grad(point.reshape(shape))
        stop = bool(on_eval(count[0], point.reshape(shape).copy(), objective.last))  # the buffer is reused
        _finite_gradient(grad, count[0])
        count[0] += 1
        return loss, np.array(grad, np.float32).reshape(-1), stop or count[0] >= iterations

    f, g, done = evaluate(x)
    best_f, best_x = f, x.copy()
    while not done and kernels.projected_gradient(x, g, low, high, gp) > 0.0:
        if memory.direction(gp, d) >= 0:  # the memory gave no descent direction: start it over
            memory.clear()
            continue
        t = 1.0 if memory.curved else reach / float(np.abs(d).max())
        slot, tries = memory.spare(), 0
        while True:
            tries += 1
            kernels.projected_step(x, d, t, low, high, x_try)
            f_try, g_try, done = evaluate(x_try)
            sy, yy, sg = kernels.store_step(x_try, x, g_try, g, memory.S[slot], memory.Y[slot])
            if f_try < best_f:
                best_f, best_x = f_try, x_try.copy()
            if f_try <= f + 1e-4 * sg or done:
                break
            # The minimum of the quadratic through f, its slope and f_try, kept within [0.1, 0.5] t.
            curvature = f_try - f - sg
            t *= min(0.5, max(0.1, -sg / (2.0 * curvature))) if curvature > 0 else 0.5
        if f_try > f + 1e-4 * sg:
            break  # out of budget (or stopped) inside a line search
        if not memory.curved:  # a first try that held: reach four times as far next time
            reach = reach * 4.0 if tries == 1 else t * float(np.abs(d).max())
        memory.keep(slot, sy, yy)
        x, x_try, f, g = x_try, x, f_try, g_try
    return _finite_image(best_x.reshape(shape))


def lbfgsb(objective: Objective, x0: np.ndarray, iterations: int, on_eval: OnEval, history: int = 10) -> np.ndarray:
    """Minimise with scipy's L-BFGS-B inside the pixel range; returns the best image evaluated.

    Setting up the bounds is slow next to an iteration (scipy converts them element by element), so a run
    restarts it only when it stops early.
    """
    from scipy.optimize import minimize

    shape = x0.shape
    best = {"loss": np.inf, "x": x0.copy()}
    state = {"k": 0, "stopped": False}
    on_eval = _finite(on_eval)

    def fun(flat: np.ndarray):
        if state["k"] >= iterations or state["stopped"]:
            raise _Stop
        x = flat.astype(np.float32).reshape(shape)
        loss, grad = objective.loss_and_grad(x)
        if loss < best["loss"]:
            best["loss"], best["x"] = loss, x
        state["stopped"] = bool(on_eval(state["k"], x, objective.last))
        _finite_gradient(grad, state["k"])
        state["k"] += 1
        return loss, grad.astype(np.float64).ravel()

    start = x0.astype(np.float64).ravel()
    stalls = 0
    while state["k"] < iterations and not state["stopped"] and stalls < 3:
        before = state["k"]
        try:
            minimize(
                fun,
                start,
                jac=True,
                method="L-BFGS-B",
                bounds=_bounds(),
                options={
                    "maxfun": iterations - state["k"] + 1,
                    "maxiter": iterations,
                    "maxcor": history,
                    "ftol": 0.0,
                    "gtol": 0.0,
                },
            )
        except _Stop:
            break
        # L-BFGS-B ended early (line search could not progress): restart from the best point.
        stalls = stalls + 1 if state["k"] - before < 3 else 0
        start = best["x"].astype(np.float64).ravel()
    return _finite_image(best["x"])


def _bounds():
    from scipy.optimize import Bounds

    return Bounds(*PIXEL_RANGE)  # the same bounds for every pixel value


def adam(
    objective: Objective,
    x0: np.ndarray,
    iterations: int,
    on_eval: OnEval,
    lr: float,
    clip: bool = True,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> np.ndarray:
    """Adam on the pixels; returns the image after the last step (clipped to 0..255 when `clip`)."""
    x = np.ascontiguousarray(x0, dtype=np.float32).copy()
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    low, high = PIXEL_RANGE if clip else (-np.inf, np.inf)
    flat = x.reshape(-1)
    on_eval = _finite(on_eval)
    for k in range(iterations):
        _, grad = objective.loss_and_grad(x)
        if on_eval(k, x, objective.last):
            break
        _finite_gradient(grad, k)
        kernels.adam_step(flat, grad.reshape(-1), m.reshape(-1), v.reshape(-1), k + 1, lr, beta1, beta2, eps, low, high)
    return _finite_image(x)


def adam_on_device(
    objective,
    x0: np.ndarray,
    iterations: int,
    on_eval: OnEval,
    lr: float,
    clip: bool = True,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> np.ndarray:
    """`adam` for the fused objective with everything on its device (CPU or CUDA): the image, gradient and
    moments stay there as OrtValues and only the loss scalars come back; `on_eval` gets the image as an
    OrtValue (Progress copies it only when asked)."""
    from .runtime import to_device

    runner = objective.runner
    stepper = runner.adam()
    low, high = PIXEL_RANGE if clip else (-np.inf, np.inf)
    x = to_device(x0, runner.device)
    on_eval = _finite(on_eval)
    for k in range(iterations):
        content, style, grad = runner.evaluate_on_device(x)
        x_next, tv = stepper.step(x, grad, k + 1, lr, beta1, beta2, eps, low, high, objective.options.tv_weight)
        objective.record(content, style, tv)
        if on_eval(k, x, objective.last):
            break
        x = x_next
    return _finite_image(x.numpy())
