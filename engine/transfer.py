"""`StyleTransfer`: the Python API hosts embed.  Load the model once, then `transfer(...)` many times."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass

import numpy as np

from nst import kernels

from . import optimize
from .checks import check_options, host_only, style_blend, tiled
from .colour import match_colours, preserve_colours
from .errors import NstError
from .fused import build_fused
from .graphs import GraphPair, build_forward, build_graphs
from .images import as_image, fit_size, resize
from .inputs import INITS, initial_image, load_masks
from .memory import check_transfer, style_side
from .objective import FusedObjective, MaskedObjective, Objective, content_targets, style_targets
from .presets import Options, parse_layers, resolve_options
from .progress import Callback, Progress
from .runtime import FusedRunner, GraphRunner, release_free_heap, resolve_device
from .schedule import MIN_SIDE, next_scale_start, scale_schedule
from .tiling import TiledObjective, TileGrid, tile_pixels, tiled_style_targets
from .vgg import load_spec

# Which objective path each device uses by default: on the CPU, nst bench measured fused 1.01-1.20x faster
# at 256-1024 px (benchmarks/results/bench_cpu.json); CUDA not yet measured (benchmarks/gpu.sh).
DEFAULT_PATH = {"cpu": "fused", "cuda": "fused"}


@dataclass
class Prepared:
    """A transfer ready to optimise: its objective, first image and options."""

    objective: Objective
    x0: np.ndarray
    options: Options
    stopped: bool = False  # set when the callback ended the run


class StyleTransfer:
    """Neural style transfer on ONNX Runtime.  One instance serves many transfers without reloading."""

    def __init__(
        self, device: str = "cpu", threads: int | None = None, model: str | None = None, profile: str | None = None
    ) -> None:
        self.device = resolve_device(device)
        self.threads = threads
        self.profile = profile  # a file prefix: sessions record ONNX Runtime profiles (see runtime.node_placement)
        if threads:
            import numba

            numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
        self.spec = load_spec(str(model) if model else None)
        self._runners: dict[tuple, GraphRunner] = {}
        self._style_cache: dict[tuple, dict] = {}  # Gram targets by style pixels and settings

    def runner(self, opts: Options):
        """Sessions for the options' layers, pooling and objective path, built once and cached."""
        path = self.path(opts)
        layers = self.spec.in_order([*opts.content_layers, *opts.style_layers])
        key = (tuple(layers), opts.pooling, path) + (
            (tuple(opts.content_layers), tuple(opts.style_layers)) if path == "fused" else ()
        )
        if key not in self._runners:
            self._runners[key] = self._build_runner(opts, layers, path)
            release_free_heap()  # the graphs' protos are gone now: give their pages back
        return self._runners[key]

    def _build_runner(self, opts: Options, layers: list[str], path: str):
        if path == "fused":  # a features graph for the targets (built when needed); no backward graph

            def features() -> GraphPair:
                forward, saved = build_forward(self.spec, layers, opts.pooling, for_backward=False)
                return GraphPair(forward, None, saved, tuple(layers))

            fused = build_fused(self.spec, list(opts.content_layers), list(opts.style_layers), opts.pooling)
            return FusedRunner(features, tuple(layers), fused, self.device, self.threads, self.profile)
        return GraphRunner(
            build_graphs(self.spec, layers, opts.pooling), self.device, self.threads, profile=self.profile
        )

    def sessions(self) -> dict:
        """Every ONNX Runtime session built so far, by runner and role (for profiling and inspection)."""
        return {
            f"{index}_{role}": session
            for index, runner in enumerate(self._runners.values())
            for role, session in runner.sessions.items()
        }

    def path(self, opts: Options) -> str:
        """The objective path: as asked, or per device the one the benchmark measured faster (masks and
        gradient normalisation live on the split path)."""
        if opts.path != "auto":
            return opts.path
        return "split" if host_only(opts) else DEFAULT_PATH[self.device.name]

    def options(self, preset: str | None = None, **overrides) -> Options:
        """Resolve and check options (layer specs may be strings like 'relu1_1:1,relu2_1:0.5')."""
        for key in ("content_layers", "style_layers"):
            if isinstance(overrides.get(key), str):
                overrides[key] = parse_layers(overrides[key], key.replace("_", "-"))
        opts = resolve_options(preset, **overrides)
        check_options(opts, self.spec.relu_names)
        return opts

    def load(self, content, styles, opts: Options) -> tuple[np.ndarray, list[np.ndarray]]:
        """Decode the content and style images (paths or arrays), colour-matching the styles if asked."""
        styles = [styles] if isinstance(styles, (str, os.PathLike, np.ndarray)) else list(styles)
        if not styles:
            raise NstError("give at least one style image")
        style_blend(opts.style_blend, len(styles))  # check the blend before any decoding
        content_img = as_image(content, "content image", opts.size)  # a large JPEG decodes reduced
        style_imgs = [as_image(s, f"style image {i + 1}", style_side(opts)) for i, s in enumerate(styles)]
        return content_img, [match_colours(s, content_img, opts.match_colors) for s in style_imgs]

    def prepare(self, content, styles, preset: str | None = None, **overrides) -> Prepared:
        """Load and size the images, compute the targets and the first image; nothing is optimised yet."""
        opts = self.options(preset, **overrides)
        init_image = self._init_image(opts)
        content_img, style_imgs = self.load(content, styles, opts)
        return self.prepare_images(content_img, style_imgs, opts, init_image)

    def _init_image(self, opts: Options) -> np.ndarray | None:
        if isinstance(opts.init, np.ndarray):
            return as_image(opts.init, "init image")
        return None if opts.init in INITS else as_image(opts.init, "init image")

    def prepare_images(
        self, content_img: np.ndarray, style_imgs: list[np.ndarray], opts: Options, init_image: np.ndarray | None = None
    ) -> Prepared:
        """`prepare` for decoded HxWx3 float32 images at the options' size."""
        h, w = fit_size(*content_img.shape[:2], opts.size)
        if min(h, w) < MIN_SIDE:
            raise NstError(
                f"at --size {opts.size} the content image would be {w}x{h}; the network needs at "
                f"least {MIN_SIDE} px on each side: raise --size"
            )
        content_x = kernels.hwc_to_nchw(resize(content_img, h, w), 1.0)
        side = style_side(opts)
        style_xs = [kernels.hwc_to_nchw(resize(s, *fit_size(*s.shape[:2], side)), 1.0) for s in style_imgs]
        runner = self.runner(opts)
        blend = style_blend(opts.style_blend, len(style_imgs))
        if tiled(opts, h, w):
            return self._prepare_tiled(
                runner, content_x, style_xs, blend, opts, self._first_image(opts, content_x, init_image, h, w)
            )
        content_target, shapes = content_targets(runner, content_x, opts)
        if opts.style_masks is not None:
            masks = load_masks(opts.style_masks, len(style_imgs), h, w)
            each = [style_targets(runner, [x], [1.0], opts) for x in style_xs]
            objective = MaskedObjective(runner, content_target, each, masks, blend, opts, shapes)
            return Prepared(objective, self._first_image(opts, content_x, init_image, h, w), opts)
        style_target = self._style_target(style_xs, blend, opts, lambda: style_targets(runner, style_xs, blend, opts))
        if self.path(opts) == "fused":
            runner.drop_features()  # targets done: its memory goes to the objective
            objective = FusedObjective(runner, content_target, style_target, opts, shapes)
        else:
            objective = Objective(runner, content_target, style_target, opts)
        return Prepared(objective, self._first_image(opts, content_x, init_image, h, w), opts)

    def _prepare_tiled(
        self,
        runner,
        content_x: np.ndarray,
        style_xs: list[np.ndarray],
        blend: list[float],
        opts: Options,
        x0: np.ndarray,
    ) -> Prepared:
        """A tiled objective: content features and style Grams assembled tile by tile, exactly."""
        grid = TileGrid(self.spec, list(runner.loss_layers), *content_x.shape[2:], opts.tile, opts.pooling)
        content_target = grid.features(runner, content_x, list(opts.content_layers))
        style_target = self._style_target(
            style_xs, blend, opts, lambda: tiled_style_targets(runner, self.spec, style_xs, blend, opts, opts.tile)
        )
        return Prepared(TiledObjective(runner, grid, content_target, style_target, opts), x0, opts)

    def _style_target(self, style_xs: list[np.ndarray], blend: list[float], opts: Options, compute) -> dict:
        """Gram targets from the cache (by style pixels and settings), computed by `compute()` when absent."""
        key = (
            tuple(hashlib.sha1(s.tobytes()).hexdigest() for s in style_xs),
            tuple(blend),
            tuple(opts.style_layers.items()),
            opts.convention,
            opts.pooling,
        )
        if key not in self._style_cache:
            while len(self._style_cache) >= 8:
                self._style_cache.pop(next(iter(self._style_cache)))
            self._style_cache[key] = compute()
        return self._style_cache[key]

    @staticmethod
    def _scale_start(result: np.ndarray, content_img: np.ndarray, opts: Options) -> np.ndarray:
        """A finer scale's first image: the coarser result enlarged, plus (when the run started from the
        content) the content's detail that the coarser scale could not hold."""
        if not (isinstance(opts.init, str) and opts.init == "content"):
            return result
        return next_scale_start(result, resize(content_img, *fit_size(*content_img.shape[:2], opts.size)))

    def _first_image(self, opts: Options, content_x: np.ndarray, init_image: np.ndarray | None, h: int, w: int):
        if init_image is not None:
            return kernels.hwc_to_nchw(resize(init_image, h, w), 1.0)
        return initial_image(opts.init, content_x, self.spec.mean, opts.seed)

    def objective(self, content, styles, preset: str | None = None, **overrides) -> Objective:
        """The objective alone, for hosts that drive their own optimizer (`loss_and_grad(image)`)."""
        return self.prepare(content, styles, preset, **overrides).objective

    def transfer(
        self, content, styles, preset: str | None = None, callback: Callback | None = None, **overrides
    ) -> np.ndarray:
        """Stylise `content` (path or HxWx3 RGB array) with `styles`; returns an HxWx3 uint8 RGB array.

        Options are the CLI's flags as keyword arguments (size=, iterations=, scales=, optimizer=, lr=,
        content_weight=, style_weight=, tv_weight=, style_blend=, style_scale=, init=, pooling=, seed=,
        content_layers=, style_layers=, preserve_colors=, match_colors=, path=, history=, tile=, ...).
        `callback(progress)` runs after every iteration.
        """
        return to_uint8(self.stylize(content, styles, preset, callback, **overrides))

    def stylize(
        self, content, styles, preset: str | None = None, callback: Callback | None = None, **overrides
    ) -> np.ndarray:
        """As `transfer`, but returns HxWx3 float32 in 0..255 with the optimiser's full precision."""
        opts = self.options(preset, **overrides)
        self.check_memory(opts, content, styles)  # from the files' headers, before anything is decoded
        init_image = self._init_image(opts)
        content_img, style_imgs = self.load(content, styles, opts)
        self.check_memory(opts, content_img, style_imgs)  # again with every size known
        sizes, iterations = scale_schedule(opts)
        result = None
        for index, (size, count) in enumerate(zip(sizes, iterations)):
            step = opts.with_overrides(size=size, iterations=count)
            start = init_image if result is None else self._scale_start(result, content_img, step)
            prepared = self.prepare_images(content_img, style_imgs, step, start)
            result = kernels.nchw_to_hwc_float(self.run(prepared, callback, (index, len(sizes))))
            if prepared.stopped:  # the callback asked to stop: skip the finer scales
                break
        result = resize(result, *fit_size(*content_img.shape[:2], opts.size))  # a no-op unless stopped early
        if opts.preserve_colors != "none":
            result = preserve_colours(result, resize(content_img, *result.shape[:2]), opts.preserve_colors)
        return result

    def check_memory(self, opts: Options, content, styles) -> None:
        """Refuse a transfer that will not fit in memory, naming settings that would (memory.check_transfer)."""
        layers = list(set(opts.content_layers) | set(opts.style_layers))
        check_transfer(
            opts, content, styles, self.path(opts), self.device, lambda core: tile_pixels(self.spec, layers, core)
        )

    def run(self, prepared: Prepared, callback: Callback | None = None, scale: tuple[int, int] = (0, 1)) -> np.ndarray:
        """Optimise a prepared transfer; returns the (1, 3, H, W) float32 result in 0..255."""
        opts = prepared.options
        start = time.perf_counter()

        def on_eval(k: int, x: np.ndarray, losses) -> bool:
            if callback is None:
                return False
            progress = Progress(
                k, opts.iterations, losses.as_dict(), time.perf_counter() - start, x, scale=scale[0], scales=scale[1]
            )
            returned = callback(progress)
            prepared.stopped = progress.stopped or returned is True
            return prepared.stopped

        if opts.optimizer in ("lbfgs", "lbfgsb"):
            minimize = optimize.lbfgs if opts.optimizer == "lbfgs" else optimize.lbfgsb
            x = minimize(prepared.objective, prepared.x0, opts.iterations, on_eval, opts.history)
        elif isinstance(prepared.objective, FusedObjective):  # image and moments stay on the device
            x = optimize.adam_on_device(
                prepared.objective, prepared.x0, opts.iterations, on_eval, opts.lr, clip=opts.clip_pixels
            )
        else:
            x = optimize.adam(prepared.objective, prepared.x0, opts.iterations, on_eval, opts.lr, clip=opts.clip_pixels)
        prepared.objective.runner.release()
        return x


def to_uint8(image: np.ndarray) -> np.ndarray:
    """HxWx3 float 0..255 -> uint8, rounded."""
    return np.clip(np.floor(image + 0.5), 0, 255).astype(np.uint8)
