"""Neural-neighbour style transfer (Kolkin et al., arXiv 2203.13215): the `nn` style loss.

Each position's hypercolumn (several layers' features, each divided by its channel count and resized to a
quarter of the image's size, concatenated) is matched to its nearest style hypercolumn under cosine
distance, both centred by the style's mean; the loss is the mean centred cosine distance from the result's
hypercolumns to their matched targets. Matching runs in blocks of positions through the ONNX graph of
`graphs.matching`, so the content x style distance matrix never exists whole.
"""

from __future__ import annotations

from typing import Iterator

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


class Hypercolumns:
    """The hypercolumns of one image size, built and differentiated a block of rows at a time."""

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

    def blocks(self, others: int = 0) -> Iterator[tuple[int, int]]:
        """Row ranges whose hypercolumns (and distances to `others` style positions) fit in BLOCK_BYTES."""
        gh, gw = self.grid
        step = max(1, min(gh, BLOCK_BYTES // (4 * gw * max(self.channels, others, 1))))
        for r0 in range(0, gh, step):
            yield r0, min(gh, r0 + step)

    def block(self, acts: dict[str, np.ndarray], r0: int, r1: int) -> np.ndarray:
        """(positions, C) hypercolumns of grid rows r0..r1 from (1, C_l, h, w) activations, a position per row
        so that each position's dot products read contiguous memory."""
        dtype = np.result_type(np.float32, *acts.values())
        out = np.empty(((r1 - r0) * self.grid[1], self.channels), dtype)
        offset = 0
        for layer, weight in self.layers.items():
            a = acts[layer][0]
            resize_into(a, *self.taps[layer], r0, r1, dtype.type(weight / a.shape[0]), out, offset)
            offset += a.shape[0]
        return out

    def add_adjoint(self, grads: dict[str, np.ndarray], g: np.ndarray, r0: int, r1: int) -> None:
        """Add d loss / d activation for d loss / d hypercolumns `g` (positions, C) of rows r0..r1."""
        offset = 0
        for layer, weight in self.layers.items():
            grad = grads[layer][0]
            scale = g.dtype.type(weight / grad.shape[0])
            resize_adjoint_add(g, offset, *self.taps[layer], r0, r1, scale, grad)
            offset += grad.shape[0]

    def all(self, acts: dict[str, np.ndarray]) -> np.ndarray:
        """Every position's hypercolumn, (positions, C), filled a block at a time (no second copy)."""
        gw = self.grid[1]
        out = np.empty((self.positions, self.channels), np.result_type(np.float32, *acts.values()))
        for r0, r1 in self.blocks():
            out[r0 * gw : r1 * gw] = self.block(acts, r0, r1)
        return out


def style_columns(
    runner: GraphRunner, styles: list[np.ndarray], layers: dict[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    """The style hypercolumns of every style image, centred by their mean and scaled to unit length,
    (S, C), and that mean (1, C). Several styles pool their positions (each match picks from any)."""
    columns = []
    for style in styles:
        acts = runner.forward(style)
        shapes = {layer: acts[layer].shape for layer in layers}
        columns.append(Hypercolumns(shapes, layers, *style.shape[2:]).all(acts))
    runner.release()
    s = np.concatenate(columns, axis=0) if len(columns) > 1 else columns[0]
    centre = s.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
    s -= centre
    s /= np.maximum(np.linalg.norm(s, axis=1, keepdims=True), np.float32(TINY))
    return s, centre


def query_mean(columns: Hypercolumns, acts: dict[str, np.ndarray]) -> np.ndarray:
    """The mean hypercolumn over every position, (1, C) float32, summed a block at a time in float64."""
    total = np.zeros((1, columns.channels))
    for r0, r1 in columns.blocks():
        total += columns.block(acts, r0, r1).sum(axis=0, dtype=np.float64)
    return (total / columns.positions).astype(np.float32)


class Matcher:
    """The matching graph's session, looped over blocks of positions."""

    def __init__(self, session, style: np.ndarray, centre: np.ndarray) -> None:
        self.session, self.style, self.centre = session, style, centre

    def match(self, columns: Hypercolumns, acts: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Each position's nearest style column and its distance, (positions,) int64 and float32. The query
        is centred by its own mean, as the style is by its own: centred by the style's mean, every query
        would keep the offset between the two images' features and most would match the same few style
        columns (the authors' centre(x), centre(y); over all positions, not per block of them)."""
        index, distance = [], []
        centre = query_mean(columns, acts)
        for r0, r1 in columns.blocks(self.style.shape[0]):
            feeds = {"rows": columns.block(acts, r0, r1), "centre": centre, "style": self.style}
            i, d = self.session.run(["index", "distance"], feeds)
            index.append(i)
            distance.append(d)
        return np.concatenate(index), np.concatenate(distance)


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
        content_x: np.ndarray,
        start: np.ndarray,
        content_target: dict[str, np.ndarray],
        options: Options,
    ) -> None:
        super().__init__(runner, content_target, {}, options)
        self.matcher = matcher
        query = np.float32(options.alpha) * content_x + np.float32(1.0 - options.alpha) * start
        acts = runner.forward(query)
        self.columns = Hypercolumns({k: a.shape for k, a in acts.items()}, options.style_layers, *content_x.shape[2:])
        self.index, distance = matcher.match(self.columns, acts)
        runner.release()
        self.matched_distance = float(distance.mean())  # how far the targets are from the query

    def match(self, query: np.ndarray) -> float:
        """Match every position of `query`'s hypercolumns again; returns their mean distance."""
        self.index, distance = self.matcher.match(self.columns, self.runner.forward(query))
        self.runner.release()
        return float(distance.mean())

    def style_grads(self, acts: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> float:
        """The nn loss, its activation gradients added into `grads`, block by block."""
        for layer in self.options.style_layers:
            if layer not in grads:
                grads[layer] = np.zeros_like(acts[layer])
        scale = self.options.style_weight / self.columns.positions  # the authors' mean over positions
        total, gw = 0.0, self.columns.grid[1]
        for r0, r1 in self.columns.blocks(self.columns.channels):
            features = self.columns.block(acts, r0, r1)
            index = self.index[r0 * gw : r1 * gw]
            loss, g = neighbour_loss_grad(features, self.matcher.style, index, self.matcher.centre, scale)
            total += loss
            self.columns.add_adjoint(grads, g, r0, r1)
        return total

    def layer_grads(self, acts: dict[str, np.ndarray]) -> tuple[float, float, dict[str, np.ndarray]]:
        content, grads = self.content_grads(acts)
        style = self.style_grads(acts, grads)
        for layer, a in acts.items():
            if layer not in grads:
                grads[layer] = np.zeros_like(a)
        return content, style, grads
