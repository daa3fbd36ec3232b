"""Neural-neighbour style transfer (Kolkin et al., arXiv 2203.13215): the `nn` style loss.

Each position's hypercolumn (several layers' features, each divided by its channel count and resized to a
quarter of the image's size, concatenated) is matched to its nearest style hypercolumn under cosine
distance, both centred by the style's mean; the loss is the mean centred cosine distance from the result's
hypercolumns to their matched targets. Matching runs in blocks of positions through the ONNX graph of
`graphs.matching`, so the content x style distance matrix never exists whole.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from ..kernels.neighbours import cosine_loss_grad, linear_taps, resize_adjoint_add, resize_into
from .graphs.matching import TINY
from .objective import Objective
from .presets import Options
from .runtime import GraphRunner

BLOCK_BYTES = 48 << 20  # the largest (positions x style) distance block or hypercolumn block, in bytes


def linear_weights(n_out: int, n_in: int, align_corners: bool) -> np.ndarray:
    """(n_out, n_in) matrix of 1-D linear interpolation (PyTorch's bilinear, without antialiasing)."""
    low, frac = linear_taps(n_out, n_in, align_corners)
    m = np.zeros((n_out, n_in), np.float32)
    rows = np.arange(n_out)
    np.add.at(m, (rows, low), 1.0 - frac)
    np.add.at(m, (rows, np.minimum(low + 1, n_in - 1)), frac)
    return m


Window = tuple[slice, slice]  # grid rows and columns of hypercolumns


class Hypercolumns:
    """The hypercolumns of one image size, built and differentiated a block of positions at a time, from
    activations of the whole image or of a tile (`origin`: each layer's first row and column in it)."""

    def __init__(self, shapes: dict[str, tuple[int, ...]], layers: dict[str, float], height: int, width: int) -> None:
        self.layers = layers
        self.grid = (max(1, height // 4), max(1, width // 4))  # the authors' hypercolumn grid: a quarter size
        self.channels = sum(shapes[layer][1] for layer in layers)
        gh, gw = self.grid
        self.taps = {
            layer: (*linear_taps(gh, shapes[layer][2], True), *linear_taps(gw, shapes[layer][3], True))
            for layer in layers
        }

    @property
    def positions(self) -> int:
        return self.grid[0] * self.grid[1]

    def blocks(self, others: int = 0, rows: slice | None = None, cols: slice | None = None) -> Iterator[Window]:
        """Windows of whole grid rows (within `rows` and `cols`, default all) whose hypercolumns, and their
        distances to `others` style positions, fit in BLOCK_BYTES."""
        rows = slice(0, self.grid[0]) if rows is None else rows
        cols = slice(0, self.grid[1]) if cols is None else cols
        width = max(1, cols.stop - cols.start)
        step = max(1, BLOCK_BYTES // (4 * width * max(self.channels, others, 1)))
        for r0 in range(rows.start, rows.stop, step):
            yield slice(r0, min(rows.stop, r0 + step)), cols

    def _taps(self, layer: str, window: Window, origin: dict[str, tuple[int, int]] | None):
        """The window's taps into `layer` of activations whose first row and column are `origin`'s."""
        row_low, row_frac, col_low, col_frac = self.taps[layer]
        rows, cols = window
        oy, ox = origin[layer] if origin else (0, 0)
        return row_low[rows] - oy, row_frac[rows], col_low[cols] - ox, col_frac[cols]

    def block(self, acts: dict[str, np.ndarray], window: Window, origin=None) -> np.ndarray:
        """(positions, C) hypercolumns of a window of the grid from (1, C_l, h, w) activations, a position per
        row so that each position's dot products read contiguous memory."""
        rows, cols = window
        n = rows.stop - rows.start
        dtype = np.result_type(np.float32, *acts.values())
        out = np.empty((n * (cols.stop - cols.start), self.channels), dtype)
        offset = 0
        for layer, weight in self.layers.items():
            a = acts[layer][0]
            resize_into(a, *self._taps(layer, window, origin), 0, n, dtype.type(weight / a.shape[0]), out, offset)
            offset += a.shape[0]
        return out

    def add_adjoint(self, grads: dict[str, np.ndarray], g: np.ndarray, window: Window, origin=None) -> None:
        """Add d loss / d activation for d loss / d hypercolumns `g` (positions, C) of a window."""
        offset, n = 0, window[0].stop - window[0].start
        for layer, weight in self.layers.items():
            grad = grads[layer][0]
            scale = g.dtype.type(weight / grad.shape[0])
            resize_adjoint_add(g, offset, *self._taps(layer, window, origin), 0, n, scale, grad)
            offset += grad.shape[0]

    @property
    def everywhere(self) -> Window:
        """The window of every position."""
        return slice(0, self.grid[0]), slice(0, self.grid[1])

    def all(self, acts: dict[str, np.ndarray]) -> np.ndarray:
        """Every position's hypercolumn from the whole image's activations, (positions, C)."""
        return gather(self, whole(self, acts))


Part = tuple[dict[str, np.ndarray], Window, "dict[str, tuple[int, int]] | None"]
# Activations of the whole image or of a tile, the window of the grid whose hypercolumns they give exactly,
# and each layer's first row and column in them (None: the whole image).


def whole(columns: Hypercolumns, acts: dict[str, np.ndarray]) -> list[Part]:
    """The whole image's activations as the only part."""
    return [(acts, columns.everywhere, None)]


def gather(columns: Hypercolumns, parts: Iterable[Part]) -> np.ndarray:
    """Every position's hypercolumn, (positions, C), filled a block at a time (no second copy)."""
    out = None
    for acts, window, origin in parts:
        for rows, cols in columns.blocks(0, *window):
            block = columns.block(acts, (rows, cols), origin)
            if out is None:
                out = np.empty((*columns.grid, columns.channels), block.dtype)
            out[rows, cols] = block.reshape(-1, cols.stop - cols.start, columns.channels)
    assert out is not None, "parts with no positions"
    return out.reshape(-1, columns.channels)


def style_columns(
    columns: Sequence[Hypercolumns], parts: Sequence[Callable[[], Iterable[Part]]]
) -> tuple[np.ndarray, np.ndarray]:
    """The hypercolumns of every style image (`columns` and the `parts` of its activations), centred by their
    mean and scaled to unit length, (S, C), and that mean (1, C). Several styles pool their positions (each
    match picks from any)."""
    each = [gather(c, p()) for c, p in zip(columns, parts)]
    s = np.concatenate(each, axis=0) if len(each) > 1 else each[0]
    centre = s.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
    s -= centre
    s /= np.maximum(np.linalg.norm(s, axis=1, keepdims=True), np.float32(TINY))
    return s, centre


def query_mean(columns: Hypercolumns, parts: Iterable[Part]) -> np.ndarray:
    """The mean hypercolumn over every position, (1, C) float32, summed a block at a time in float64."""
    total = np.zeros((1, columns.channels))
    for acts, window, origin in parts:
        for block in columns.blocks(0, *window):
            total += columns.block(acts, block, origin).sum(axis=0, dtype=np.float64)
    return (total / columns.positions).astype(np.float32)


class Matcher:
    """The matching graph's session, looped over blocks of positions."""

    def __init__(self, session, style: np.ndarray, centre: np.ndarray) -> None:
        self.session, self.style, self.centre = session, style, centre

    def match(self, columns: Hypercolumns, parts: Callable[[], Iterable[Part]]) -> tuple[np.ndarray, np.ndarray]:
        """Each position's nearest style column and its distance, (positions,) int64 and float32, from the
        activations `parts()` gives (asked twice: for the query's mean, then for the matching). The query
        is centred by its own mean, as the style is by its own: centred by the style's mean, every query
        would keep the offset between the two images' features and most would match the same few style
        columns (the authors' centre(x), centre(y); over all positions, not per block of them)."""
        centre = query_mean(columns, parts())
        index, distance = np.empty(columns.grid, np.int64), np.empty(columns.grid, np.float32)
        for acts, window, origin in parts():
            for block in columns.blocks(self.style.shape[0], *window):
                feeds = {"rows": columns.block(acts, block, origin), "centre": centre, "style": self.style}
                i, d = self.session.run(["index", "distance"], feeds)
                shape = (-1, block[1].stop - block[1].start)
                index[block], distance[block] = i.reshape(shape), d.reshape(shape)
        return index.reshape(-1), distance.reshape(-1)


def neighbour_loss_grad(
    features: np.ndarray, style: np.ndarray, index: np.ndarray, centre: np.ndarray, scale: float
) -> tuple[float, np.ndarray]:
    """scale * sum over positions p of (1 - cos(features[p] - centre, style[index[p]])) for (P, C) features
    and unit style rows (S, C), and its gradient with respect to the features."""
    t = features.dtype.type
    return cosine_loss_grad(features, style, index, centre.reshape(-1), t(scale), t(TINY))


class NeighbourObjective(Objective):
    """The `nn` style loss (plus any content loss): targets are the style hypercolumns nearest to those of
    a blend of the content and the scale's first image (`alpha` of the content), matched once when the
    objective is built, that is at every scale, from the image as it then is."""

    def __init__(
        self,
        runner: GraphRunner,
        matcher: Matcher,
        columns: Hypercolumns,
        content_x: np.ndarray,
        start: np.ndarray,
        content_target: dict[str, np.ndarray],
        options: Options,
    ) -> None:
        super().__init__(runner, content_target, {}, options)
        self.matcher, self.columns = matcher, columns
        self.index = np.zeros(columns.positions, np.int64)
        query = np.float32(options.alpha) * content_x + np.float32(1.0 - options.alpha) * start
        self.matched_distance = self.match(query)  # how far the targets are from the query

    def parts(self, image: np.ndarray) -> Callable[[], Iterable[Part]]:
        """The activations of `image` for the matching: one forward pass of the whole image."""
        acts = self.runner.forward(image)
        return lambda: whole(self.columns, acts)

    def match(self, query: np.ndarray) -> float:
        """Match every position of `query`'s hypercolumns again; returns their mean distance."""
        self.index, distance = self.matcher.match(self.columns, self.parts(query))
        self.runner.release()
        return float(distance.mean())

    def window_grads(self, acts: dict[str, np.ndarray], grads: dict[str, np.ndarray], window: Window, origin) -> float:
        """The nn loss of a window's positions, its activation gradients added into `grads`, block by block."""
        scale = self.options.style_weight / self.columns.positions  # the authors' mean over positions
        total, index = 0.0, self.index.reshape(self.columns.grid)
        for block in self.columns.blocks(self.columns.channels, *window):
            features = self.columns.block(acts, block, origin)
            loss, g = neighbour_loss_grad(
                features, self.matcher.style, index[block].ravel(), self.matcher.centre, scale
            )
            total += loss
            self.columns.add_adjoint(grads, g, block, origin)
        return total

    def layer_grads(self, acts: dict[str, np.ndarray]) -> tuple[float, float, dict[str, np.ndarray]]:
        content, grads = self.content_grads(acts)
        for layer, a in acts.items():
            if layer not in grads:
                grads[layer] = np.zeros_like(a)
        style = self.window_grads(acts, grads, self.columns.everywhere, None)
        return content, style, grads
