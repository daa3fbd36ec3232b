"""The nn style loss of images larger than --tile: hypercolumns, matching and gradients a tile at a time.

Each position of the hypercolumn grid belongs to the tile whose core holds its place in the image. These
tiles reach MARGIN pixels further than the other tiled objectives' (tiling.py), so the activations that a
position's bilinear taps read just outside its tile's core are those of the whole image, and each position
is built, matched and differentiated exactly within its own tile; the adjoints of a tile's positions land
in its exact rows, so the tiles' image gradients add up to the whole image's. The loss has no statistics
of the whole image: an evaluation is one pass over the tiles (the matching, once per scale, takes two).
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

import numpy as np

from .kinds import tiled
from .neighbours import Hypercolumns, Matcher, NeighbourObjective, Part, Window, whole
from .presets import Options
from .tiling import ALIGN, Tile, TileGrid, content_term, layer_shapes

# A position's taps read its layer's two rows nearest its place, which at a layer of 8 pixels a row lie up to
# 16 pixels beyond its tile's core: one ALIGN, which keeps every tile corner on the ALIGN grid. (relu5_x taps,
# 16 pixels a row, reach 32, within this plus the slack that rounding the halo up to ALIGN leaves there.)
MARGIN = ALIGN

Item = tuple[Tile, dict[str, np.ndarray], dict[str, tuple[slice, slice]], Window, dict[str, tuple[int, int]]]


def places(n_grid: int, n_pixels: int) -> np.ndarray:
    """Where each grid row (or column) sits in the image, in pixels: the hypercolumns' align-corners grid."""
    return np.arange(n_grid) * ((n_pixels - 1) / (n_grid - 1)) if n_grid > 1 else np.zeros(1)


class TileParts:
    """A tile grid's passes over an image, each tile with the window of positions it owns."""

    def __init__(self, grid: TileGrid, columns: Hypercolumns) -> None:
        self.grid, self.columns = grid, columns
        self.ys, self.xs = places(columns.grid[0], grid.h), places(columns.grid[1], grid.w)

    def window(self, tile: Tile) -> Window:
        """The grid positions whose place lies in the tile's core."""
        rows = np.searchsorted(self.ys, (tile.cy0, tile.cy1))
        cols = np.searchsorted(self.xs, (tile.cx0, tile.cx1))
        return slice(int(rows[0]), int(rows[1])), slice(int(cols[0]), int(cols[1]))

    def origin(self, tile: Tile) -> dict[str, tuple[int, int]]:
        """Each layer's first row and column in the tile's activations."""
        return {layer: (tile.y0 // s, tile.x0 // s) for layer, s in self.grid.strides.items()}

    def items(self, runner, image: np.ndarray, step: int = 0) -> Iterator[Item]:
        """(tile, activations, core slices, owned window, origin) for each tile; the runner holds the tile's
        forward state until the next one."""
        for tile, acts, where in self.grid.cores(runner, image, step):
            yield tile, acts, where, self.window(tile), self.origin(tile)

    def parts(self, runner, image: np.ndarray) -> Iterator[Part]:
        """(activations, owned window, origin) for each tile: what the matching and style columns read."""
        for _, acts, _, window, origin in self.items(runner, image):
            yield acts, window, origin


def tile_grid(spec, layers, h: int, w: int, opts: Options) -> TileGrid | None:
    """The tiles of an h x w image for the nn loss, or None when it is evaluated whole."""
    return TileGrid(spec, layers, h, w, opts.tile, opts.pooling, MARGIN) if tiled(opts, h, w) else None


def hypercolumns(spec, h: int, w: int, opts: Options) -> Hypercolumns:
    """The hypercolumns of the options' style layers for an image of h x w pixels."""
    return Hypercolumns(layer_shapes(spec, opts.style_layers, h, w, opts.pooling), opts.style_layers, h, w)


def image_parts(runner, spec, image: np.ndarray, opts: Options) -> tuple[Hypercolumns, Callable[[], Iterable[Part]]]:
    """The hypercolumns of `image`'s size and a function giving its activations' parts (tiles or whole)."""
    h, w = image.shape[2:]
    columns = hypercolumns(spec, h, w, opts)
    tiles = tile_grid(spec, list(runner.loss_layers), h, w, opts)
    if tiles is None:
        return columns, lambda: whole(columns, runner.forward(image))
    parts = TileParts(tiles, columns)
    return columns, lambda: parts.parts(runner, image)


class TiledNeighbourObjective(NeighbourObjective):
    """The nn objective of an image larger than --tile, evaluated tile by tile (see the module docstring)."""

    def __init__(self, grid: TileGrid, runner, matcher: Matcher, columns: Hypercolumns, *rest) -> None:
        """`rest`: NeighbourObjective's content_x, start, content_target and options."""
        # Set before the base class matches the first query through `parts`; content_term reads `grid` too.
        self.grid, self.tiles = grid, TileParts(grid, columns)
        super().__init__(runner, matcher, columns, *rest)

    def parts(self, image: np.ndarray) -> Callable[[], Iterable[Part]]:
        """The activations of `image` for the matching: a pass over the tiles each time it is asked."""
        return lambda: self.tiles.parts(self.runner, image)

    def network(self, image: np.ndarray) -> tuple[float, float, np.ndarray]:
        """Content and nn losses and their image gradient: forward, loss and backward a tile at a time."""
        content, style, grad = 0.0, 0.0, np.zeros_like(image)
        for tile, acts, where, window, origin in self.tiles.items(self.runner, image, self.evaluations):
            grads = {name: np.zeros_like(a) for name, a in acts.items()}
            style += self.window_grads(acts, grads, window, origin)
            for layer, weight in self.options.content_layers.items():
                content += content_term(self, layer, weight, tile, acts[layer], where[layer], grads[layer])
            grad[:, :, tile.y0 : tile.y1, tile.x0 : tile.x1] += self.runner.backward(grads)
        self.runner.release()
        return content, style, grad
