"""The picture scripts: a gallery grid and a loss-curve chart."""

import json

import numpy as np

from nst.engine.images import write_image
from scripts.gallery import render
from scripts.plot_metrics import plot, read_metrics

from .conftest import stripes, synthetic


def test_gallery_grid_has_a_row_per_content_and_a_column_per_style(tmp_path):
    paths = []
    for name, img in (("c1.png", synthetic(40, 50)), ("s1.png", stripes(40, 40)), ("s2.png", synthetic(30, 30, 5))):
        write_image(tmp_path / name, img)
        paths.append(str(tmp_path / name))
    grid = render([paths[0]], paths[1:], size=48, cell=32, preset="johnson", iterations=2)
    assert grid.shape == (64, 96, 3) and grid.dtype == np.uint8
    assert np.all(grid[:32, :32] == 255)  # the blank corner
    assert grid[32:, 32:].std() > 5  # transfers, not blank cells


def test_loss_plot_draws_every_series(tmp_path):
    rows = [
        {
            "iteration": i,
            "loss": 1e6 / (i + 1),
            "content": 1e-7 if i == 0 else 1e4,
            "style": 9e5 / (i + 1),
            "tv": 1e3,
            "seconds": i,
        }
        for i in range(50)
    ]
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    img = plot(read_metrics(path))
    assert img.shape == (500, 900, 3)
    for colour in ((20, 20, 20), (40, 110, 220), (220, 80, 40), (60, 160, 60)):
        assert np.any(np.all(img == colour, axis=2)), colour
