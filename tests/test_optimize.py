"""The optimizers on problems with known answers: a box-constrained quadratic, budgets, stopping."""

from __future__ import annotations

import numpy as np
import pytest

from nst.engine import optimize
from nst.engine.objective import Losses


class Quadratic:
    """f(x) = 1/2 x'Hx - b'x over pixels, its minimum partly outside 0..255 so the bounds bind."""

    def __init__(self, n: int = 600, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        a = rng.standard_normal((n, n)) / np.sqrt(n)
        self.h = a @ a.T + 0.05 * np.eye(n)
        self.b = self.h @ rng.uniform(-200, 450, n)
        self.last = None
        self.calls = 0

    def loss_and_grad(self, image: np.ndarray):
        self.calls += 1
        x = image.reshape(-1).astype(np.float64)
        f = 0.5 * x @ self.h @ x - self.b @ x
        self.last = Losses(f, f, 0.0, 0.0)
        return f, (self.h @ x - self.b).astype(np.float32).reshape(image.shape)

    def solution(self) -> np.ndarray:
        from scipy.optimize import minimize

        n = self.b.size
        fun = lambda x: (0.5 * x @ self.h @ x - self.b @ x, self.h @ x - self.b)
        return minimize(
            fun,
            np.full(n, 128.0),
            jac=True,
            method="L-BFGS-B",
            bounds=[(0, 255)] * n,
            options={"maxiter": 5000, "ftol": 0, "gtol": 1e-10},
        ).x


X0 = np.full((1, 3, 20, 10), 128.0, np.float32)


@pytest.mark.parametrize("history", [1, 5, 30])
def test_lbfgs_finds_the_box_constrained_minimum(history):
    problem = Quadratic()
    x = optimize.lbfgs(problem, X0, 400, lambda *a: False, history).reshape(-1)
    want = problem.solution()
    assert x.min() >= 0 and x.max() <= 255
    assert np.mean((x <= 0) | (x >= 255)) > 0.2  # the bounds really bind
    np.testing.assert_allclose(x, want, atol=0.5)


def test_lbfgs_beats_steepest_descent_and_matches_lbfgsb_per_evaluation():
    losses = {}
    for name in ("lbfgs", "lbfgsb"):
        problem = Quadratic(seed=1)
        x = getattr(optimize, name)(problem, X0, 40, lambda *a: False, 10)
        losses[name] = problem.loss_and_grad(x)[0]
    best = Quadratic(seed=1)
    floor = best.loss_and_grad(best.solution().astype(np.float32).reshape(X0.shape))[0]
    start = Quadratic(seed=1).loss_and_grad(X0)[0]
    gap = {name: (loss - floor) / (start - floor) for name, loss in losses.items()}
    assert gap["lbfgs"] < 1e-3 and gap["lbfgs"] < 3 * gap["lbfgsb"] + 1e-6, gap


def test_lbfgs_spends_exactly_the_budget_and_returns_the_best_image():
    problem = Quadratic()
    seen = []
    x = optimize.lbfgs(problem, X0, 25, lambda k, image, losses: seen.append((k, losses.total, image)) or False, 10)
    assert problem.calls == 25
    assert [k for k, _, _ in seen] == list(range(25))
    best = min(seen, key=lambda item: item[1])
    np.testing.assert_array_equal(x, best[2])
    assert all(item[2] is not seen[0][2] for item in seen[1:])  # callbacks get their own copies


def test_lbfgs_stops_when_the_callback_asks():
    problem = Quadratic()
    optimize.lbfgs(problem, X0, 100, lambda k, *a: k == 6, 10)
    assert problem.calls == 7
