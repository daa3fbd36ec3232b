"""One definition of each set of choices: the CLI's choices, `nst bench`'s plan and the engine's
implementations all come from nst.engine.choices (and presets.PRESETS)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from nst.bench.timing import plan
from nst.cli.main import app
from nst.engine import choices
from nst.engine.errors import NstError
from nst.engine.presets import DEFAULT_PRESET, PRESETS


def _listed(command: str) -> tuple[dict[str, tuple[str, ...]], str]:
    """{option: the choices its help lists as <a|b|c>} and each option's help, from `nst COMMAND --help`."""
    out = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"}).output
    found = re.findall(r"--([a-z-]+) <([a-z|-]+\|[a-z|-]+)>", out)
    return {flag.replace("-", "_"): tuple(values.split("|")) for flag, values in found}, " ".join(out.split())


ENGINE = {
    "preset": tuple(PRESETS),
    "optimizer": choices.OPTIMIZERS.names,
    "pooling": choices.POOLINGS.names,
    "path": choices.PATHS.names,
    "device": choices.DEVICES.names,
    "preserve_colors": choices.PRESERVE.names,
    "match_colors": choices.MATCHING.names,
}


@pytest.mark.parametrize("command", ["transfer", "batch"])
def test_cli_choices_are_the_engines(command):
    listed, text = _listed(command)
    assert {name: listed.get(name) for name in ENGINE} == ENGINE
    assert f"[default: {DEFAULT_PRESET}]" in text and f"[default: {choices.AUTO}]" in text
    assert f"[default: {choices.DEFAULT_DEVICE}]" in text
    assert choices.INITS.help() in text  # init also takes a path: its kinds are in its help
    assert f"{choices.MIN_SIDE}..{choices.MAX_SIDE}" in text


def test_bench_choices_and_plan_are_the_engines():
    listed, text = _listed("bench")
    assert listed["optimizer"] == choices.OPTIMIZERS.names
    assert f"of {', '.join(choices.GRAPH_PATHS)} [every one the preset runs on]" in text
    assert "[default: johnson]" in text  # the preset timed by default: the classic objective
    assert choices.GRAPH_PATHS == tuple(p for p in choices.PATHS if p != choices.AUTO)
    assert {c.path for c in plan("cpu", "64", "", 1, 1, None)} == set(choices.GRAPH_PATHS)
    for optimizer in choices.OPTIMIZERS:
        assert plan("cpu", "64", "fused", 1, 1, None, optimizer)[0].optimizer == optimizer
    with pytest.raises(NstError, match=f"{choices.MIN_SIDE}..{choices.MAX_SIDE}"):
        plan("cpu", str(choices.MIN_SIDE - 1), "fused", 1, 1, None)


def test_every_choice_has_its_implementation():
    import numpy as np

    from nst.engine.colour import match_colours, preserve_colours
    from nst.engine.inputs import initial_image
    from nst.engine.transfer import MINIMIZERS

    assert tuple(MINIMIZERS) == choices.OPTIMIZERS.names
    assert set(choices.PROVIDERS) == set(choices.DEVICES) == set(choices.DEFAULT_PATH)
    assert set(choices.DEFAULT_PATH.values()) <= set(choices.GRAPH_PATHS)
    image = np.full((4, 4, 3), 100.0, np.float32)
    for space in choices.PRESERVE.names[1:]:  # the first is "none"
        assert preserve_colours(image, image, space).shape == image.shape
    for method in choices.MATCHING:
        assert match_colours(image, image, method).shape == image.shape
    content = np.full((1, 3, 8, 8), 100.0, np.float32)
    for kind in choices.INITS:
        assert initial_image(kind, content, np.zeros((1, 3, 1, 1), np.float32), 0).shape == content.shape


def test_choices_check_lists_the_values():
    with pytest.raises(NstError, match=r"unknown optimizer 'sgd' \(--optimizer\); use one of: lbfgs, lbfgsb, adam"):
        choices.OPTIMIZERS.check("sgd")
    assert choices.POOLINGS.check("avg") == "avg"
    assert choices.POOLINGS.help() == "max (as trained) or avg (TensorFlow SAME)"
    assert list(choices.PATHS) == ["auto", "split", "fused"] and "fused" in choices.PATHS and len(choices.PATHS) == 3
