"""One place decides the objective kind; every kind's objective and runner meet the shared protocols."""

from __future__ import annotations

import numpy as np
import pytest

from nst.engine.kinds import graph_path, objective_kind
from nst.engine.neighbours import NeighbourObjective
from nst.engine.objective import Differentiable, FusedObjective, MaskedObjective, Objective
from nst.engine.presets import Options
from nst.engine.runtime import Runner
from nst.engine.tiling import TiledObjective

from .conftest import stripes, synthetic


@pytest.mark.parametrize(
    "options, size, kind",
    [
        ({}, None, "fused"),  # auto: the device's default
        ({"path": "split"}, None, "split"),
        ({"normalize_gradients": True}, None, "split"),
        ({"style_masks": (None,)}, None, "masked"),
        ({"tile": 256, "size": 512}, None, "tiled"),
        ({"tile": 256, "size": 512}, (200, 256), "split"),  # a step no larger than a tile is not tiled
        ({"tile": 1024, "size": 512}, None, "fused"),
        ({"style_loss": "w2"}, None, "split"),  # on a CPU the host's eigh beats Newton-Schulz in the graph
        ({"style_loss": "nn"}, None, "neighbour"),
    ],
)
def test_objective_kind(options, size, kind):
    assert objective_kind(Options(**options), "cpu", *(size or ())) == kind
    assert graph_path(kind) == ("fused" if kind == "fused" else "split")


@pytest.mark.parametrize(
    "overrides, cls",
    [
        ({"path": "fused"}, FusedObjective),
        ({"path": "split"}, Objective),
        ({"style_masks": [None]}, MaskedObjective),
        ({"tile": 32, "style_loss": "gram"}, TiledObjective),
        ({"style_loss": "nn"}, NeighbourObjective),
    ],
)
def test_each_kind_builds_its_objective_behind_the_protocols(st, overrides, cls):
    prepared = st.prepare(synthetic(40, 48), [stripes(40, 48)], size=48, iterations=1, **overrides)
    objective = prepared.objective
    assert type(objective) is cls
    assert isinstance(objective, Differentiable) and isinstance(objective.runner, Runner)
    loss, grad = objective.loss_and_grad(prepared.x0)
    assert np.isfinite(loss) and grad.shape == prepared.x0.shape
