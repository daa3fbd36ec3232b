"""`StyleTransfer`: the Python API hosts embed.  Load the model once, then `transfer(...)` many times."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Callable, cast

import numpy as np

from nst import kernels

from . import optimize
from .cache import LruCache
from .checks import check_callback, check_options, check_preset, check_sides, clamp_threads, style_blend
from .colour import colour_correct, match_colours, preserve_colours
from .errors import NstError
from .graphs.fused import build_fused
from .graphs.matching import build_matching
from .graphs.network import GraphPair, build_forward, build_graphs
from .graphs.vgg import load_spec
from .images import as_image, fit_image, fit_size, resize
from .inputs import INITS, initial_image, load_masks
from .kinds import graph_path, objective_kind
from .memory import check_transfer, style_side
from .neighbour_tiles import MARGIN, TiledNeighbourObjective, hypercolumns, image_parts, tile_grid
from .neighbours import Matcher, NeighbourObjective, style_columns
from .objective import Differentiable, FusedObjective, MaskedObjective, Objective, content_targets, style_targets
from .presets import Options, override, parse_layers, resolve_options
from .progress import Callback, Progress, work_shares
from .pyramid import PyramidObjective
from .runtime import FusedRunner, GraphRunner, Runner, make_session, release_free_heap, resolve_device
from .schedule import fitting_scales, next_scale_start, scale_schedule
from .tiling import TiledObjective, TileGrid, tile_pixels, tiled_style_targets


@dataclass
class Prepared:
    """A transfer ready to optimise: its objective, first image and options."""

    objective: Differentiable
    x0: np.ndarray
    options: Options
    stopped: bool = False  # set when the callback ended the run


class StyleTransfer:
    """Neural style transfer on ONNX Runtime.  One instance serves many transfers without reloading.

    Threads may call one instance at once, and each call gives the image it gives alone.  The runners
    (ONNX Runtime sessions, which run concurrently, and the weights, held once) are shared; everything an
    evaluation leaves for the next (the forward pass's saved tensors, the fused path's bound targets,
    Adam's moments) belongs to its thread or its objective.  So concurrent transfers run in parallel at
    the cost of their own activations only, where a pool of runners per key would hold the weights and
    sessions again for each; the memory check sees what is free when each transfer starts.  The caches are
    locked and build each runner once, however many threads ask for it.  At most `max_runners` runners are
    kept, least recently used dropped first (each holds its sessions' weights and buffers), and
    `max_style_targets` sets of style Gram targets.
    """

    def __init__(
        self,
        device: str = "cpu",
        threads: int | None = None,
        model: str | None = None,
        profile: str | None = None,
        max_runners: int = 2,
        max_style_targets: int = 8,
    ) -> None:
        self.device = resolve_device(device)
        threads, note = clamp_threads(threads)
        if note:
            warnings.warn(note, stacklevel=2)
        self.threads = threads
        self.profile = profile  # a file prefix: sessions record ONNX Runtime profiles (see runtime.node_placement)
        self._host_threads()
        self.spec = load_spec(str(model) if model else None)
        for name, value in (("max_runners", max_runners), ("max_style_targets", max_style_targets)):
            if not isinstance(value, int) or value < 1:
                raise NstError(f"StyleTransfer({name}={value!r}): give a whole number of at least 1")
        self._runners: LruCache[Runner] = LruCache(max_runners, after_evict=release_free_heap)
        self._style_cache: LruCache[dict] = LruCache(max_style_targets)  # Gram targets by style pixels and settings
        self._matching_session = None  # the nn loss's matching graph, built when first needed
        self._matching_lock = threading.Lock()

    def _host_threads(self) -> None:
        """numba's thread count is per calling thread: set it in each thread that runs a transfer."""
        if self.threads:
            import numba

            most = numba.config.NUMBA_NUM_THREADS  # pyright: ignore  (numba sets its config attributes at run time)
            numba.set_num_threads(max(1, min(int(self.threads), most)))

    def runner(self, opts: Options, path: str | None = None) -> Runner:
        """Sessions for the options' layers, pooling and graph path (by default the options' own), built once
        and cached."""
        path = path or self.path(opts)
        layers = self.spec.in_order([*opts.content_layers, *opts.style_layers])
        fused = (opts.style_loss, tuple(opts.content_layers), tuple(opts.style_layers)) if path == "fused" else ()
        key = (tuple(layers), opts.pooling, opts.padding, path, *fused)
        return self._runners.get(key, lambda: self._build_runner(opts, layers, path))

    def _build_runner(self, opts: Options, layers: list[str], path: str) -> Runner:
        try:
            return self._new_runner(opts, layers, path)
        finally:
            release_free_heap()  # the graphs' protos are gone now: give their pages back

    def _new_runner(self, opts: Options, layers: list[str], path: str) -> Runner:
        if path == "fused":  # a features graph for the targets (built when needed); no backward graph

            def features() -> GraphPair:
                forward, saved = build_forward(self.spec, layers, opts.pooling, False, opts.padding)
                return GraphPair(forward, None, saved, tuple(layers))

            fused = build_fused(
                self.spec,
                list(opts.content_layers),
                list(opts.style_layers),
                opts.pooling,
                opts.padding,
                opts.style_loss,
            )
            return FusedRunner(features, tuple(layers), fused, self.device, self.threads, self.profile)
        return GraphRunner(
            build_graphs(self.spec, layers, opts.pooling, opts.padding), self.device, self.threads, profile=self.profile
        )

    def sessions(self) -> dict:
        """Every ONNX Runtime session built so far, by runner and role (for profiling and inspection)."""
        return {
            f"{index}_{role}": session
            for index, runner in enumerate(self._runners.values())
            for role, session in runner.sessions.items()
        }

    def kind(self, opts: Options, h: int | None = None, w: int | None = None) -> str:
        """The objective kind of the transfer (or an h x w step of it): fused, split, masked or tiled."""
        return objective_kind(opts, self.device.name, h, w)

    def path(self, opts: Options) -> str:
        """The graph path of the transfer: fused, or split (which the masked and tiled kinds also run)."""
        return graph_path(self.kind(opts))

    def options(self, preset: str | None = None, options: Options | None = None, **overrides) -> Options:
        """Resolve and check options: the preset's, or `options` resolved before (by this method, as the CLI
        does), with keyword overrides applied (layer specs may be strings like 'relu1_1:1,relu2_1:0.5')."""
        check_preset(preset)
        for key in ("content_layers", "style_layers"):
            if isinstance(overrides.get(key), str):
                overrides[key] = parse_layers(overrides[key], key.replace("_", "-"))
        if options is None:
            opts = resolve_options(preset, **overrides)
        elif not isinstance(options, Options):
            raise NstError(f"options= takes what StyleTransfer.options() returns, not {type(options).__name__}")
        elif preset is not None:
            raise NstError("give preset= or options=, not both: options already hold their preset's defaults")
        else:
            opts = override(options, **overrides)
        check_options(opts, self.spec.relu_names)
        return opts

    def load(self, content, styles, opts: Options) -> tuple[np.ndarray, list[np.ndarray]]:
        """Decode the content and style images (paths or arrays), colour-matching the styles if asked."""
        self._host_threads()  # load begins every transfer (stylize, prepare) in the thread that runs it
        if isinstance(styles, (str, os.PathLike, np.ndarray)):
            styles = [styles]
        elif not isinstance(styles, (list, tuple)):
            raise NstError(f"styles: expected a list of image paths or arrays, got {type(styles).__name__}")
        if not styles:
            raise NstError("give at least one style image")
        style_blend(opts.style_blend, len(styles))  # check the blend before any decoding
        content_img = as_image(content, "content image", opts.size)  # a large JPEG decodes reduced
        style_imgs = [as_image(s, f"style image {i + 1}", style_side(opts)) for i, s in enumerate(styles)]
        return content_img, [match_colours(s, content_img, opts.match_colors) for s in style_imgs]

    def prepare(
        self, content, styles, preset: str | None = None, options: Options | None = None, **overrides
    ) -> Prepared:
        """Load and size the images, compute the targets and the first image; nothing is optimised yet."""
        opts = self.options(preset, options, **overrides)
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
        height, width = content_img.shape[:2]
        check_sides(height, width, opts.size)
        h, w = fit_size(height, width, opts.size)
        content_x = kernels.hwc_to_nchw(resize(content_img, h, w), 1.0)
        side = style_side(opts)
        style_xs = [kernels.hwc_to_nchw(resize(s, *fit_image(s, side)), 1.0) for s in style_imgs]
        kind = self.kind(opts, h, w)
        x0 = self._first_image(opts, content_x, init_image, h, w)
        if kind == "neighbour":
            objective = cast(Differentiable, self._neighbour(self.runner(opts, "split"), content_x, style_xs, x0, opts))
            return Prepared(objective, x0, opts)
        build = {"fused": self._fused, "split": self._split, "masked": self._masked, "tiled": self._tiled}[kind]
        blend = style_blend(opts.style_blend, len(style_imgs))
        objective = build(self.runner(opts, graph_path(kind)), content_x, style_xs, blend, opts)
        return Prepared(objective, x0, opts)

    def _neighbour(self, runner, content_x, style_xs, x0, opts: Options) -> NeighbourObjective:
        """The nn loss: the style hypercolumns, then each position matched from `alpha` of the content and
        the rest of the scale's first image (style blend weights do not apply: every style's positions
        are candidates)."""
        h, w = content_x.shape[2:]
        grid = tile_grid(self.spec, list(runner.loss_layers), h, w, opts)
        content_target: dict[str, np.ndarray] = {}
        if opts.content_layers:
            layers = list(opts.content_layers)
            content_target = (
                grid.features(runner, content_x, layers) if grid else content_targets(runner, content_x, opts)[0]
            )
        sources = [image_parts(runner, self.spec, x, opts) for x in style_xs]  # each style's columns and parts
        style, centre = style_columns([columns for columns, _ in sources], [parts for _, parts in sources])
        runner.release()
        matcher = Matcher(self._matching(), style, centre)
        columns = hypercolumns(self.spec, h, w, opts)
        if grid is None:
            return NeighbourObjective(runner, matcher, columns, content_x, x0, content_target, opts)
        return TiledNeighbourObjective(grid, runner, matcher, columns, content_x, x0, content_target, opts)

    def _matching(self):
        """The matching graph's session, built once."""
        with self._matching_lock:
            if self._matching_session is None:
                self._matching_session = make_session(
                    build_matching().SerializeToString(), self.device, self.threads, layout_rewrite=False
                )
            return self._matching_session

    def _split(self, runner, content_x, style_xs, blend, opts: Options) -> Objective:
        """ONNX forward and backward, the losses on the host."""
        content_target, _ = content_targets(runner, content_x, opts)
        style_target = self._style_target(style_xs, blend, opts, self._targets(runner, style_xs, blend, opts))
        return Objective(runner, content_target, style_target, opts)

    def _fused(self, runner, content_x, style_xs, blend, opts: Options) -> FusedObjective:
        """One ONNX graph for the losses, Gram matrices and gradient; targets bound once on the device."""
        content_target, shapes = content_targets(runner, content_x, opts)
        style_target = self._style_target(style_xs, blend, opts, self._targets(runner, style_xs, blend, opts))
        runner.drop_features()  # targets done: its memory goes to the objective
        return FusedObjective(runner, content_target, style_target, opts, shapes)

    def _masked(self, runner, content_x, style_xs, blend, opts: Options) -> MaskedObjective:
        """The split objective with each style's loss read through its mask, against its own Gram target."""
        content_target, shapes = content_targets(runner, content_x, opts)
        masks = load_masks(opts.style_masks, len(style_xs), *content_x.shape[2:])
        each = [self._targets(runner, [x], [1.0], opts)() for x in style_xs]
        return MaskedObjective(runner, content_target, each, masks, blend, opts, shapes)

    def _tiled(self, runner, content_x, style_xs, blend, opts: Options) -> TiledObjective:
        """The split objective tile by tile: content features and style Grams assembled exactly."""
        h, w = content_x.shape[2:]
        grid = TileGrid(self.spec, list(runner.loss_layers), h, w, opts.tile, opts.pooling)
        content_target = grid.features(runner, content_x, list(opts.content_layers))
        style_target = self._style_target(
            style_xs, blend, opts, lambda: tiled_style_targets(runner, self.spec, style_xs, blend, opts, opts.tile)
        )
        return TiledObjective(runner, grid, content_target, style_target, opts)

    def _targets(self, runner, style_xs: list[np.ndarray], blend: list[float], opts: Options) -> Callable[[], dict]:
        """How to compute the style targets: in tiles where a style image is larger than --tile (a coarse
        scale of a tiled run sees them at the final size, or at --style-size), else each whole."""
        if opts.tile and any(max(x.shape[2:]) > opts.tile for x in style_xs):
            return lambda: tiled_style_targets(runner, self.spec, style_xs, blend, opts, opts.tile)
        return lambda: style_targets(runner, style_xs, blend, opts)

    def _style_target(self, style_xs: list[np.ndarray], blend: list[float], opts: Options, compute) -> dict:
        """Gram targets from the cache (by style pixels and settings), computed by `compute()` when absent."""
        key = (
            tuple(hashlib.sha1(s.tobytes()).hexdigest() for s in style_xs),
            tuple(blend),
            tuple(opts.style_layers.items()),
            opts.convention,
            opts.style_loss,
            opts.padding,
            opts.pooling,
        )
        return self._style_cache.get(key, compute)

    @staticmethod
    def _scale_start(result: np.ndarray, content_img: np.ndarray, opts: Options) -> np.ndarray:
        """A finer scale's first image: the coarser result enlarged, plus (when the run started from the
        content) the content's detail that the coarser scale could not hold."""
        if not (isinstance(opts.init, str) and opts.init == "content" and opts.detail):
            return result
        return next_scale_start(result, resize(content_img, *fit_image(content_img, opts.size)))

    def _first_image(self, opts: Options, content_x: np.ndarray, init_image: np.ndarray | None, h: int, w: int):
        if init_image is not None:
            return kernels.hwc_to_nchw(resize(init_image, h, w), 1.0)
        return initial_image(str(opts.init), content_x, self.spec.mean, opts.seed)  # one of INITS here

    def objective(
        self, content, styles, preset: str | None = None, options: Options | None = None, **overrides
    ) -> Differentiable:
        """The objective alone, for hosts that drive their own optimizer (`loss_and_grad(image)`)."""
        return self.prepare(content, styles, preset, options, **overrides).objective

    def transfer(
        self,
        content,
        styles,
        preset: str | None = None,
        callback: Callback | None = None,
        options: Options | None = None,
        **overrides,
    ) -> np.ndarray:
        """Stylise `content` (path or HxWx3 RGB array) with `styles`; returns an HxWx3 uint8 RGB array.

        Options are the CLI's flags as keyword arguments (size=, iterations=, scales=, optimizer=, lr=,
        content_weight=, style_weight=, tv_weight=, style_blend=, style_scale=, init=, pooling=, seed=,
        content_layers=, style_layers=, preserve_colors=, match_colors=, path=, history=, tile=, ...), or
        `options=` resolved once by `StyleTransfer.options(...)` (keywords then override those).
        `callback(progress)` runs after every iteration.
        """
        return to_uint8(self.stylize(content, styles, preset, callback, options, **overrides))

    def stylize(
        self,
        content,
        styles,
        preset: str | None = None,
        callback: Callback | None = None,
        options: Options | None = None,
        **overrides,
    ) -> np.ndarray:
        """As `transfer`, but returns HxWx3 float32 in 0..255 with the optimiser's full precision."""
        check_callback(callback)
        opts = self.options(preset, options, **overrides)
        self.check_memory(opts, content, styles)  # from the files' headers, before anything is decoded
        init_image = self._init_image(opts)
        content_img, style_imgs = self.load(content, styles, opts)
        height, width = content_img.shape[:2]
        check_sides(height, width, opts.size)
        sizes, iterations = fitting_scales(*scale_schedule(opts), height, width)
        pixels = [h * w for h, w in (fit_size(height, width, size) for size in sizes)]
        shares = work_shares(pixels, iterations)
        self.check_memory(opts, content_img, style_imgs)  # again with every size known
        result = None
        for index, (size, count) in enumerate(zip(sizes, iterations)):
            step = opts.with_overrides(size=size, iterations=count, style_size=self._scale_style_size(opts))
            start = init_image if result is None else self._scale_start(result, content_img, step)
            prepared = self.prepare_images(content_img, style_imgs, step, start)
            result = kernels.nchw_to_hwc_float(self.run(prepared, callback, (index, len(sizes)), shares))
            if prepared.stopped:  # the callback asked to stop: skip the finer scales
                break
        if result is None:
            raise ValueError("a schedule with no scales")
        result = resize(result, *fit_image(content_img, opts.size))  # a no-op unless stopped early
        if opts.colour_correction:
            styles_now = [resize(s, *fit_image(s, opts.size)) for s in style_imgs]  # the authors' style size
            result = colour_correct(result, resize(content_img, *result.shape[:2]), styles_now)
        if opts.preserve_colors != "none":
            result = preserve_colours(result, resize(content_img, *result.shape[:2]), opts.preserve_colors)
        return result

    @staticmethod
    def _scale_style_size(opts: Options) -> int | None:
        """The style images' side at every scale of `opts`'s schedule: fixed by style_size, or the final one
        with style_at_final; None lets each scale's size decide."""
        return style_side(opts) if opts.style_at_final else None

    def check_memory(self, opts: Options, content, styles) -> None:
        """Refuse a transfer that will not fit in memory, naming settings that would (memory.check_transfer)."""
        layers = list(set(opts.content_layers) | set(opts.style_layers))
        margin = MARGIN if opts.style_loss == "nn" else 0
        check_transfer(
            opts,
            content,
            styles,
            self.path(opts),
            self.device,
            lambda core: tile_pixels(self.spec, layers, core, margin),
        )

    def run(
        self,
        prepared: Prepared,
        callback: Callback | None = None,
        scale: tuple[int, int] = (0, 1),
        shares: tuple[float, ...] = (1.0,),
    ) -> np.ndarray:
        """Optimise a prepared transfer; returns the (1, 3, H, W) float32 result in 0..255. `shares` are the
        scales' parts of the whole run (work_shares), told to the callback for one overall progress."""
        opts = prepared.options
        self._host_threads()
        start = time.perf_counter()

        average = IterateAverage(opts.average) if opts.average else None

        def on_eval(k: int, x: np.ndarray, losses) -> bool:
            if average is not None:
                average.update(x)
            if callback is None:
                return False
            progress = Progress(
                k,
                opts.iterations,
                losses.as_dict(),
                time.perf_counter() - start,
                x,
                scale=scale[0],
                scales=scale[1],
                shares=shares,
            )
            returned = callback(progress)
            prepared.stopped = progress.stopped or returned is True
            return prepared.stopped

        if opts.pyramid:  # the optimizer steps the coefficients; everything else sees the image
            pyramid = PyramidObjective(prepared.objective, prepared.x0.shape)
            coefficients = MINIMIZERS[opts.optimizer](
                pyramid,
                pyramid.decompose(prepared.x0),
                opts.with_overrides(clip_pixels=False),
                lambda k, c, losses: bool(callback or average) and on_eval(k, pyramid.synthesize(c), losses),
            )
            x = np.clip(pyramid.synthesize(coefficients), 0.0, 255.0)  # the authors clip once, at the end
        else:
            x = MINIMIZERS[opts.optimizer](prepared.objective, prepared.x0, opts, on_eval)
        prepared.objective.runner.release()
        return x if average is None else average.value()


class IterateAverage:
    """A bias-corrected exponential moving average of the iterates (as Adam's moments): it keeps the
    optimiser's progress and drops its last steps' jitter, the grain a single iterate shows.
    nst averages every evaluated image, so with L-BFGS the rare rejected line-search trial counts too."""

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.sum: np.ndarray | None = None
        self.weight = 0.0

    def update(self, x) -> None:
        x = np.asarray(x if isinstance(x, np.ndarray) else x.numpy(), np.float32)
        if self.sum is None:
            self.sum = np.zeros_like(x)
        self.sum *= np.float32(self.decay)
        self.sum += np.float32(1.0 - self.decay) * x
        self.weight = self.weight * self.decay + (1.0 - self.decay)

    def value(self) -> np.ndarray:
        if self.sum is None:
            raise ValueError("no iterate was averaged")
        return np.clip(self.sum / np.float32(self.weight), 0.0, 255.0)


def _adam(objective: Objective, x0: np.ndarray, opts: Options, on_eval) -> np.ndarray:
    """Adam; on the fused objective the image and moments stay on the device."""
    step = optimize.adam_on_device if isinstance(objective, FusedObjective) else optimize.adam
    return step(objective, x0, opts.iterations, on_eval, opts.lr, clip=opts.clip_pixels, beta2=opts.beta2)


# How each of choices.OPTIMIZERS minimises a prepared objective: (objective, first image, options, on_eval).
MINIMIZERS = {
    "lbfgs": lambda objective, x0, opts, on_eval: optimize.lbfgs(objective, x0, opts.iterations, on_eval, opts.history),
    "lbfgsb": lambda objective, x0, opts, on_eval: optimize.lbfgsb(
        objective, x0, opts.iterations, on_eval, opts.history
    ),
    "adam": _adam,
}


def to_uint8(image: np.ndarray) -> np.ndarray:
    """HxWx3 float 0..255 -> uint8, rounded."""
    return np.clip(np.floor(image + 0.5), 0, 255).astype(np.uint8)
