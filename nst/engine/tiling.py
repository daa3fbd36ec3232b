"""Tiled evaluation for print-size images: the objective of the whole image, computed tile by tile.

Each tile is a core (the pixels it is responsible for) plus a margin ("halo") as wide as the deepest loss
layer's receptive field reaches, so the features of the core equal those of the whole image, and tile
corners sit on multiples of 16 so every pooling window matches the whole image's.  Style statistics are
global: one pass sums each tile's core Gram (and feature sums, for the W2 loss) into the image's, a second
pass (in reverse order, so it starts from the tile the first pass ended with) turns the global style error
into each core's feature gradient and runs the backward graph; the tiles' image gradients add up to the
whole image's.  The grid moves between evaluations, so no tile border stays in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nst import kernels
from nst.kernels.wasserstein import w2_coefficients

from .graphs.vgg import pooled_size
from .objective import Objective, _flat
from .presets import CONVENTIONS, Options

ALIGN = 16  # 2^pools before relu5_1: tile corners on this grid keep pooling windows aligned


@dataclass(frozen=True)
class Tile:
    """A tile's rows and columns in the image: [y0, y1) x [x0, x1) with halo, [cy0, cy1) x [cx0, cx1) core."""

    y0: int
    y1: int
    x0: int
    x1: int
    cy0: int
    cy1: int
    cx0: int
    cx1: int


def reach(spec, layer: str) -> int:
    """How far (pixels) a feature of `layer` sees beyond its own position: 3x3 convolutions reach one
    step both ways, 2x2 pooling one step forward, each step the layer's stride; rounded up to ALIGN."""
    extent, stride = 0, 1
    for item in spec.truncated(layer):
        if item.kind in ("conv", "pool"):
            extent += stride
        if item.kind == "pool":
            stride *= 2
    return math.ceil(extent / ALIGN) * ALIGN


def spans(length: int, core: int, halo: int, offset: int) -> list[tuple[int, int, int, int]]:
    """(start, end, core start, core end) along one axis: cores of `core` pixels from `offset` (a first,
    shorter core before it), each widened by `halo` within the image."""
    cuts = sorted({0, length} | set(range(offset % core, length, core)))
    return [(max(0, a - halo), min(length, b + halo), a, b) for a, b in zip(cuts, cuts[1:])]


def tiles(h: int, w: int, core: int, halo: int, offset: tuple[int, int] = (0, 0)) -> list[Tile]:
    """The tiles covering an h x w image; cores partition it."""
    return [
        Tile(y0, y1, x0, x1, cy0, cy1, cx0, cx1)
        for y0, y1, cy0, cy1 in spans(h, core, halo, offset[0])
        for x0, x1, cx0, cx1 in spans(w, core, halo, offset[1])
    ]


def core_slice(tile: Tile, shape: tuple[int, ...], stride: int) -> tuple[slice, slice]:
    """The rows and columns of a tile's activation (shape (1, C, h, w), `stride` pixels per position) that
    belong to its core; a core that ends at the tile's end keeps the activation's last row or column."""
    rows = slice((tile.cy0 - tile.y0) // stride, (tile.cy1 - tile.y0) // stride if tile.cy1 < tile.y1 else shape[2])
    cols = slice((tile.cx0 - tile.x0) // stride, (tile.cx1 - tile.x0) // stride if tile.cx1 < tile.x1 else shape[3])
    return rows, cols


def strides(spec, layers) -> dict[str, int]:
    """Pixels per activation position for each layer (2 to the number of poolings before it)."""
    out, stride = {}, 1
    for item in spec.layers:
        if item.kind == "pool":
            stride *= 2
        if item.name in layers:
            out[item.name] = stride
    return out


def layer_shapes(spec, layers, h: int, w: int, pooling: str) -> dict[str, tuple[int, int, int, int]]:
    """(1, C, h, w) of an h x w image's activation at each of `layers`, without running the network."""
    return {
        layer: (1, spec.channels(layer), *pooled_size(h, w, s, pooling)) for layer, s in strides(spec, layers).items()
    }


def _crop(image: np.ndarray, tile: Tile) -> np.ndarray:
    return np.ascontiguousarray(image[:, :, tile.y0 : tile.y1, tile.x0 : tile.x1])


class TileGrid:
    """Tiles of one image size for a runner's loss layers, with a grid that moves per evaluation."""

    def __init__(self, spec, layers, h: int, w: int, core: int, pooling: str = "max", margin: int = 0) -> None:
        """`margin`: pixels beyond the deepest layer's reach that each tile's features are exact for."""
        self.h, self.w, self.core, self.pooling = h, w, core, pooling
        self.halo = reach(spec, spec.deepest(layers)) + margin
        self.strides = strides(spec, layers)

    def size(self, layer: str) -> tuple[int, int]:
        """(h, w) of the whole image's activation at `layer`."""
        return pooled_size(self.h, self.w, self.strides[layer], self.pooling)

    def at(self, step: int) -> list[Tile]:
        """The tiles for evaluation `step`: the grid shifts by a different multiple of ALIGN each time."""
        positions = max(self.core // ALIGN, 1)
        shift = (step * 5 % positions) * ALIGN, (step * 3 % positions) * ALIGN
        return tiles(self.h, self.w, self.core, self.halo, shift)

    def cores(self, runner, image: np.ndarray, step: int = 0, reverse: bool = False, first=None):
        """Yield (tile, activations, {layer: core slices}) for each tile of `image`, in reverse grid order if
        asked. `first`: the last item of a pass just made, whose forward state the runner still holds; it
        must be the first tile of this pass and is yielded without running its forward again."""
        order = self.at(step)[::-1] if reverse else self.at(step)
        if first is not None:
            assert first[0] == order[0], "the reused tile must come first"
            yield first
            order = order[1:]
        for tile in order:
            acts = runner.forward(_crop(image, tile))
            yield tile, acts, {name: core_slice(tile, a.shape, self.strides[name]) for name, a in acts.items()}

    def grams(self, runner, image: np.ndarray, layers, step: int = 0):
        """The whole image's Gram matrix F F^T and feature sums F 1 (un-normalised, float64) per layer, and the
        pass's last (tile, activations, core slices): the runner still holds that tile's forward state, so a
        second pass in reverse order can start from it (one tile's forward less per evaluation)."""
        grams: dict[str, np.ndarray] = {}
        sums: dict[str, np.ndarray] = {}
        last = None
        for last in self.cores(runner, image, step):
            _, acts, where = last
            for layer in layers:
                rows, cols = where[layer]
                core = _flat(np.ascontiguousarray(acts[layer][:, :, rows, cols]))
                part, total = kernels.gram(core).astype(np.float64), core.sum(axis=1, dtype=np.float64)
                grams[layer] = grams[layer] + part if layer in grams else part
                sums[layer] = sums[layer] + total if layer in sums else total
        if last is None:
            raise ValueError("a tile grid with no tiles")
        return grams, sums, last

    def features(self, runner, image: np.ndarray, layers) -> dict[str, np.ndarray]:
        """The whole image's activations of `layers`, assembled from the tiles' cores."""
        out: dict[str, np.ndarray] = {}
        for tile, acts, where in self.cores(runner, image):
            for layer in layers:
                a, (rows, cols), s = acts[layer], where[layer], self.strides[layer]
                if layer not in out:
                    out[layer] = np.zeros((1, a.shape[1], *self.size(layer)), np.float32)
                block = a[:, :, rows, cols]
                out[layer][
                    :, :, tile.cy0 // s : tile.cy0 // s + block.shape[2], tile.cx0 // s : tile.cx0 // s + block.shape[3]
                ] = block
        runner.release()
        return out


class TiledObjective(Objective):
    """The split objective of the whole image, evaluated in tiles (see the module docstring)."""

    def __init__(
        self,
        runner,
        grid: TileGrid,
        content_target: dict[str, np.ndarray],
        style_target: dict[str, np.ndarray],
        options: Options,
    ) -> None:
        super().__init__(runner, content_target, style_target, options)
        self.grid = grid

    def network(self, image: np.ndarray) -> tuple[float, float, np.ndarray]:
        opts, conv, step = self.options, CONVENTIONS[self.options.convention], self.evaluations
        grams, sums, last = self.grid.grams(self.runner, image, list(opts.style_layers), step)
        style, coeffs, offsets = 0.0, {}, {}
        for layer, weight in opts.style_layers.items():
            c, positions = grams[layer].shape[0], math.prod(self.grid.size(layer))
            if opts.style_loss == "w2":
                moments = grams[layer] / positions, sums[layer] / positions
                loss, coeffs[layer], offsets[layer] = w2_coefficients(
                    *moments, positions, self.w2[layer], opts.style_weight * weight
                )
            else:
                loss, coeffs[layer] = kernels.gram_loss(
                    grams[layer].astype(np.float32),
                    self.style_target[layer],
                    conv.gram_divisor(c, *self.grid.size(layer)),
                    conv.style_scale(opts.style_weight * weight, c),
                )
            style += loss
        content, grad = 0.0, np.zeros_like(image)
        for tile, acts, where in self.grid.cores(self.runner, image, step, reverse=True, first=last):
            grads = {name: np.zeros_like(a) for name, a in acts.items()}
            for layer, coeff in coeffs.items():
                rows, cols = where[layer]
                core = acts[layer][0][:, rows, cols]
                part = coeff @ core.reshape(core.shape[0], -1)
                if layer in offsets:
                    part += offsets[layer][:, None]
                grads[layer][0][:, rows, cols] += part.reshape(core.shape)
            for layer, weight in opts.content_layers.items():
                content += content_term(self, layer, weight, tile, acts[layer], where[layer], grads[layer])
            grad[:, :, tile.y0 : tile.y1, tile.x0 : tile.x1] += self.runner.backward(grads)
        self.runner.release()
        return content, style, grad


def content_term(objective, layer: str, weight: float, tile: Tile, act: np.ndarray, where, grad: np.ndarray) -> float:
    """The content loss of one tile's core at `layer` for a tiled objective (its `grid`, `content_target` and
    `options`), adding its gradient into `grad`."""
    rows, cols = where
    s = objective.grid.strides[layer]
    core = np.ascontiguousarray(act[0][:, rows, cols])
    target = objective.content_target[layer][0][
        :, tile.cy0 // s : tile.cy0 // s + core.shape[1], tile.cx0 // s : tile.cx0 // s + core.shape[2]
    ]
    scale = CONVENTIONS[objective.options.convention].content_scale(
        objective.options.content_weight * weight, core.shape[0], *objective.grid.size(layer)
    )
    loss, g = kernels.content_loss_grad(core.ravel(), np.ascontiguousarray(target).ravel(), scale)
    grad[0][:, rows, cols] += g.reshape(core.shape)
    return loss


def tiled_style_targets(
    runner, spec, styles: list[np.ndarray], blend: list[float], options: Options, core: int
) -> dict[str, np.ndarray]:
    """`objective.style_targets` for style images of any size: each Gram (or W2 moments) summed over tiles."""
    convention = CONVENTIONS[options.convention]
    targets: dict[str, np.ndarray] = {}
    for style, weight in zip(styles, blend):
        h, w = style.shape[2:]
        grid = TileGrid(spec, list(runner.loss_layers), h, w, core, options.pooling)
        grams, sums, _ = grid.grams(runner, style, list(options.style_layers))
        runner.release()
        for layer, g in grams.items():
            if options.style_loss == "w2":  # wasserstein.moments of the whole image
                positions = math.prod(grid.size(layer))
                g = (np.concatenate([g, sums[layer][None]]) * (weight / positions)).astype(np.float32)
            else:
                g = (g * (weight / convention.gram_divisor(g.shape[0], *grid.size(layer)))).astype(np.float32)
            targets[layer] = g if layer not in targets else targets[layer] + g
    return targets


def tile_pixels(spec, layers, core: int, margin: int = 0) -> int:
    """Pixels of the largest tile (core plus halo on both sides): what the network holds at once."""
    side = core + 2 * (reach(spec, spec.deepest(layers)) + margin)
    return side * side
