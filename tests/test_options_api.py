"""The API takes resolved Options directly: the CLI and `nst batch` resolve once and pass them through."""

from __future__ import annotations

import numpy as np
import pytest

import nst.engine.transfer as transfer_module
from nst.batch.runner import batch_transfer
from nst.engine.errors import NstError
from nst.engine.images import write_image

from .conftest import stripes, synthetic


def test_options_give_the_same_image_as_keywords(st):
    content, style = synthetic(40, 44), stripes(40, 40)
    keywords = dict(size=40, iterations=3, scales=2, init="random", seed=5)
    opts = st.options("johnson", **keywords)
    by_keywords = st.stylize(content, [style], "johnson", **keywords)
    by_options = st.stylize(content, [style], options=opts)
    assert np.array_equal(by_keywords, by_options)
    # keywords still override resolved options, with the same rules as over a preset
    assert np.array_equal(
        st.transfer(content, [style], options=opts, iterations=2),
        st.transfer(content, [style], "johnson", **(keywords | {"iterations": 2})),
    )


def test_options_are_not_resolved_again(st, monkeypatch):
    opts = st.options("nst", size=40, iterations=1, scales=1)
    monkeypatch.setattr(transfer_module, "resolve_options", lambda *a, **k: pytest.fail("resolved a second time"))
    assert st.transfer(synthetic(40, 40), [stripes(40, 40)], options=opts).shape == (40, 40, 3)


def test_batch_resolves_once(st, tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        write_image(photos / f"p{i}.png", synthetic(40, 40, seed=i))
    write_image(tmp_path / "style.png", stripes(40, 40))
    calls = []
    real = transfer_module.resolve_options
    monkeypatch.setattr(transfer_module, "resolve_options", lambda *a, **k: calls.append(1) or real(*a, **k))
    report = batch_transfer(st, photos, [str(tmp_path / "style.png")], tmp_path / "out", size=40, iterations=1)
    assert len(report.written) == 2 and len(calls) == 1


def test_options_mistakes_are_one_line_errors(st):
    opts = st.options(size=40)
    with pytest.raises(NstError, match="not both"):
        st.options("seed", options=opts)
    with pytest.raises(NstError, match="options= takes"):
        st.options(options={"size": 40})
    with pytest.raises(NstError, match="out of range"):  # options built by hand are checked too
        st.options(options=opts.with_overrides(size=10))
