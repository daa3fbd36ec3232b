"""Adam on the device (fused path): the step graph against the numba kernels, standard operators only,
and a transfer that matches the host Adam on the same objective."""

from __future__ import annotations

import numpy as np
import pytest

from nst import kernels
from nst.engine.graphs.adamstep import build_adam_step
from nst.engine.runtime import DeviceAdam, resolve_device, to_device

from .conftest import stripes, synthetic


def test_step_graph_uses_standard_operators_only():
    model = build_adam_step()
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}


@pytest.mark.parametrize("clip", [True, False])
def test_step_graph_matches_the_kernels(clip):
    rng = np.random.default_rng(5)
    shape = (1, 3, 9, 13)
    x = rng.uniform(0, 255, shape).astype(np.float32)
    g, m, v = (rng.normal(0, s, shape).astype(np.float32) for s in (50.0, 1.0, 1.0))
    v = np.abs(v)
    low, high = (0.0, 255.0) if clip else (-np.inf, np.inf)
    stepper = DeviceAdam(resolve_device("cpu"))
    stepper.m, stepper.v = to_device(m, stepper.device), to_device(v, stepper.device)
    x_next, tv = stepper.step(
        to_device(x, stepper.device), to_device(g, stepper.device), 3, 20.0, 0.9, 0.999, 1e-8, low, high, 0.05
    )
    want_tv, tv_grad = kernels.tv_loss_grad(x[0], 0.05)
    want_x, want_m, want_v = x.copy().ravel(), m.copy().ravel(), v.copy().ravel()
    kernels.adam_step(want_x, (g + tv_grad[None]).ravel(), want_m, want_v, 3, 20.0, 0.9, 0.999, 1e-8, low, high)
    assert tv == pytest.approx(want_tv, rel=1e-6)
    np.testing.assert_allclose(x_next.numpy().ravel(), want_x, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(stepper.m.numpy().ravel(), want_m, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stepper.v.numpy().ravel(), want_v, rtol=1e-5, atol=1e-4)


def test_device_adam_transfer_matches_host_adam(st, monkeypatch):
    from nst.engine import optimize

    kwargs = dict(size=48, iterations=6, optimizer="adam", lr=4.0, tv_weight=0.01, path="fused")
    content, style = synthetic(40, 48), stripes(40, 40)
    seen = []
    device = st.stylize(content, [style], callback=lambda p: seen.append((p.losses, p.image().shape)), **kwargs)
    monkeypatch.setattr(optimize, "adam_on_device", lambda objective, *a, **k: optimize.adam(objective, *a, **k))
    host_seen = []
    host = st.stylize(content, [style], callback=lambda p: host_seen.append(p.losses), **kwargs)
    assert len(seen) == 6 and seen[0][1] == (40, 48, 3)
    for (losses, _), want in zip(seen, host_seen):
        for term in ("content", "style", "tv"):
            assert losses[term] == pytest.approx(want[term], rel=1e-3, abs=1e-6)
    assert np.abs(device - content).mean() > 2  # it moved
    assert np.mean(np.abs(device - host)) < 0.05 and np.percentile(np.abs(device - host), 99) < 1.0


def test_device_adam_stops_on_request(st):
    seen = []
    st.stylize(
        synthetic(40, 40),
        [stripes(40, 40)],
        size=40,
        iterations=9,
        optimizer="adam",
        path="fused",
        callback=lambda p: seen.append(p.iteration) or p.iteration == 2,
    )
    assert seen == [0, 1, 2]
