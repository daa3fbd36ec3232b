"""`StyleTransfer`: the Python API hosts embed.  Load the model once, then `transfer(...)` many times."""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

import kernels

from . import optimize
from .errors import NstError
from .graphs import build_graphs
from .colour import MATCHING, PRESERVE, match_colours, preserve_colours
from .images import as_image, fit_size, resize
from .fused import build_fused
from .objective import FusedObjective, MaskedObjective, Objective, content_targets, style_targets
from .presets import Options, parse_layers, resolve_options
from .progress import Callback, Progress
from .runtime import FusedRunner, GraphRunner, resolve_device
from .vgg import load_spec

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "random", "noisy-content")
PATHS = ("auto", "split", "fused")
# Which objective path each device uses by default (benchmarks/results/paths.json measures both).
DEFAULT_PATH = {"cpu": "fused", "cuda": "fused"}
MIN_SIDE = 32
MAX_SIDE = 8192


@dataclass
class Prepared:
    """A transfer ready to optimise: its objective, first image and options."""

    objective: Objective
    x0: np.ndarray
    options: Options


class StyleTransfer:
    """Neural style transfer on ONNX Runtime.  One instance serves many transfers without reloading."""

    def __init__(self, device: str = "cpu", threads: int | None = None, model: str | None = None) -> None:
        self.device = resolve_device(device)
        self.threads = threads
        if threads:
            import numba

            numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
        self.spec = load_spec(str(model) if model else None)
        self._runners: dict[tuple, GraphRunner] = {}
        self._style_cache: dict[tuple, dict] = {}  # Gram targets by style pixels and settings

    def runner(self, opts: Options):
        """Sessions for the options' layers, pooling and objective path, built once and cached."""
        path = self.path(opts)
        layers = sorted(set(opts.content_layers) | set(opts.style_layers), key=self.spec.relu_names.index)
        key = (tuple(layers), opts.pooling, path) + ((tuple(opts.content_layers), tuple(opts.style_layers))
                                                     if path == "fused" else ())
        if key not in self._runners:
            pair = build_graphs(self.spec, layers, opts.pooling)
            if path == "fused":
                fused = build_fused(self.spec, list(opts.content_layers), list(opts.style_layers), opts.pooling)
                self._runners[key] = FusedRunner(pair, fused, self.device, self.threads)
            else:
                self._runners[key] = GraphRunner(pair, self.device, self.threads)
            del pair
        return self._runners[key]

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
        content_img = as_image(content, "content image")
        style_imgs = [as_image(s, f"style image {i + 1}") for i, s in enumerate(styles)]
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

    def prepare_images(self, content_img: np.ndarray, style_imgs: list[np.ndarray], opts: Options,
                       init_image: np.ndarray | None = None) -> Prepared:
        """`prepare` for decoded HxWx3 float32 images at the options' size."""
        h, w = fit_size(*content_img.shape[:2], opts.size)
        if min(h, w) < MIN_SIDE:
            raise NstError(f"at --size {opts.size} the content image would be {w}x{h}; the network needs at "
                           f"least {MIN_SIDE} px on each side: raise --size")
        content_x = kernels.hwc_to_nchw(resize(content_img, h, w), 1.0)
        style_side = max(MIN_SIDE, round(opts.size * opts.style_scale))
        style_xs = [kernels.hwc_to_nchw(resize(s, *fit_size(*s.shape[:2], style_side)), 1.0) for s in style_imgs]
        runner = self.runner(opts)
        content_target, shapes = content_targets(runner, content_x, opts)
        blend = style_blend(opts.style_blend, len(style_imgs))
        if opts.style_masks is not None:
            masks = load_masks(opts.style_masks, len(style_imgs), h, w)
            each = [style_targets(runner, [x], [1.0], opts) for x in style_xs]
            objective = MaskedObjective(runner, content_target, each, masks, blend, opts, shapes)
            return Prepared(objective, self._first_image(opts, content_x, init_image, h, w), opts)
        key = (tuple(hashlib.sha1(s.tobytes()).hexdigest() for s in style_imgs), style_side, tuple(blend),
               tuple(opts.style_layers.items()), opts.convention, opts.pooling, opts.match_colors)
        if key not in self._style_cache:
            while len(self._style_cache) >= 8:
                self._style_cache.pop(next(iter(self._style_cache)))
            self._style_cache[key] = style_targets(runner, style_xs, blend, opts)
        style_target = self._style_cache[key]
        if self.path(opts) == "fused":
            objective = FusedObjective(runner, content_target, style_target, opts, shapes)
        else:
            objective = Objective(runner, content_target, style_target, opts)
        return Prepared(objective, self._first_image(opts, content_x, init_image, h, w), opts)

    def _first_image(self, opts: Options, content_x: np.ndarray, init_image: np.ndarray | None, h: int, w: int):
        if init_image is not None:
            return kernels.hwc_to_nchw(resize(init_image, h, w), 1.0)
        return initial_image(opts.init, content_x, self.spec.mean, opts.seed)

    def objective(self, content, styles, preset: str | None = None, **overrides) -> Objective:
        """The objective alone, for hosts that drive their own optimizer (`loss_and_grad(image)`)."""
        return self.prepare(content, styles, preset, **overrides).objective

    def transfer(self, content, styles, preset: str | None = None, callback: Callback | None = None,
                 **overrides) -> np.ndarray:
        """Stylise `content` (path or HxWx3 RGB array) with `styles`; returns an HxWx3 uint8 RGB array.

        Options are the CLI's flags as keyword arguments (size=, iterations=, scales=, optimizer=, lr=,
        content_weight=, style_weight=, tv_weight=, style_blend=, style_scale=, init=, pooling=, seed=,
        content_layers=, style_layers=, preserve_colors=, match_colors=, path=).
        `callback(progress)` runs after every iteration.
        """
        return to_uint8(self.stylize(content, styles, preset, callback, **overrides))

    def stylize(self, content, styles, preset: str | None = None, callback: Callback | None = None,
                **overrides) -> np.ndarray:
        """As `transfer`, but returns HxWx3 float32 in 0..255 with the optimiser's full precision."""
        opts = self.options(preset, **overrides)
        init_image = self._init_image(opts)
        content_img, style_imgs = self.load(content, styles, opts)
        sizes, iterations = scale_schedule(opts)
        result = None
        for index, (size, count) in enumerate(zip(sizes, iterations)):
            step = opts.with_overrides(size=size, iterations=count)
            prepared = self.prepare_images(content_img, style_imgs, step, result if result is not None else init_image)
            result = kernels.nchw_to_hwc_float(self.run(prepared, callback, (index, len(sizes))))
        if opts.preserve_colors != "none":
            result = preserve_colours(result, resize(content_img, *result.shape[:2]), opts.preserve_colors)
        return result

    def run(self, prepared: Prepared, callback: Callback | None = None,
            scale: tuple[int, int] = (0, 1)) -> np.ndarray:
        """Optimise a prepared transfer; returns the (1, 3, H, W) float32 result in 0..255."""
        opts = prepared.options
        start = time.perf_counter()

        def on_eval(k: int, x: np.ndarray, losses) -> bool:
            if callback is None:
                return False
            progress = Progress(k, opts.iterations, losses.as_dict(), time.perf_counter() - start, x,
                                scale=scale[0], scales=scale[1])
            returned = callback(progress)
            return progress.stopped or returned is True

        if opts.optimizer == "lbfgs":
            x = optimize.lbfgs(prepared.objective, prepared.x0, opts.iterations, on_eval)
        else:
            x = optimize.adam(prepared.objective, prepared.x0, opts.iterations, on_eval, opts.lr,
                              clip=opts.preset != "seed")
        prepared.objective.runner.release()
        return x


def host_only(opts: Options) -> bool:
    """Options that only the split path implements."""
    return opts.style_masks is not None or opts.normalize_gradients


def load_masks(sources, count: int, h: int, w: int) -> list[np.ndarray]:
    """One HxW float32 mask in 0..1 per style (None: everywhere), resized to the content's size."""
    if isinstance(sources, str):
        sources = [s.strip() or None for s in sources.split(",")]
    sources = list(sources)
    if len(sources) != count:
        raise NstError(f"--style-masks has {len(sources)} mask(s) for {count} style image(s); give one per style "
                       "(an empty entry means everywhere)")
    masks = []
    for i, source in enumerate(sources):
        if source is None:
            masks.append(np.ones((h, w), np.float32))
            continue
        import cv2

        grey = (as_image(source, f"style mask {i + 1}").mean(axis=2) / 255.0).astype(np.float32)
        masks.append(np.clip(cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA), 0.0, 1.0))
    return masks


def to_uint8(image: np.ndarray) -> np.ndarray:
    """HxWx3 float 0..255 -> uint8, rounded."""
    return np.clip(np.floor(image + 0.5), 0, 255).astype(np.uint8)


def scale_schedule(opts: Options) -> tuple[list[int], list[int]]:
    """Sizes (longest side) and iterations of each scale, coarse to fine, ending at exactly `size`."""
    if isinstance(opts.scales, str):
        try:
            sizes = [int(v) for v in opts.scales.split(",") if v.strip()]
        except ValueError:
            raise NstError(f"--scales {opts.scales!r}: give a count or sizes such as 128,256,512") from None
        if not sizes or sizes != sorted(sizes) or sizes[-1] != opts.size:
            raise NstError(f"--scales {opts.scales!r}: sizes must increase and end at --size {opts.size}")
    else:
        count = int(opts.scales)
        if not 1 <= count <= 8:
            raise NstError(f"--scales {count}: give 1..8 scales")
        halvings = [min(opts.size, max(MIN_SIDE * 2, round(opts.size / 2 ** (count - 1 - i)))) for i in range(count)]
        sizes = sorted(set(halvings))  # small sizes collapse: never below 64 px nor above --size
    if opts.scale_iterations:
        try:
            counts = [int(v) for v in str(opts.scale_iterations).split(",") if v.strip()]
        except ValueError:
            raise NstError(f"--scale-iterations {opts.scale_iterations!r}: give numbers such as 300,200,100") from None
        expected = len(sizes) if isinstance(opts.scales, str) else int(opts.scales)
        if len(counts) != expected or min(counts) < 1:
            raise NstError(f"--scale-iterations needs {expected} positive counts, one per scale")
        counts = counts[len(counts) - len(sizes):]  # collapsed small scales drop their first counts
    else:
        counts = [opts.iterations] * len(sizes)
    return sizes, counts


def style_blend(blend: Sequence[float] | str | None, count: int) -> list[float]:
    """Blend weights for `count` styles, normalised to sum to 1 (equal when not given)."""
    if blend is None:
        return [1.0 / count] * count
    if isinstance(blend, str):
        try:
            blend = [float(v) for v in blend.split(",") if v.strip()]
        except ValueError:
            raise NstError(f"--style-blend {blend!r}: give comma-separated numbers such as 3,7") from None
    values = [float(v) for v in blend]
    if len(values) != count:
        raise NstError(f"--style-blend has {len(values)} weight(s) for {count} style image(s); give one per style")
    if any(v < 0 or not np.isfinite(v) for v in values) or sum(values) <= 0:
        raise NstError("--style-blend weights must be non-negative numbers with a positive sum")
    total = sum(values)
    return [v / total for v in values]


def initial_image(kind: str, content: np.ndarray, mean: np.ndarray, seed: int) -> np.ndarray:
    """The first image: the content, Gaussian noise, uniform random pixels, or the assignment's noisy
    content."""
    if kind == "content":
        return content.copy()
    rng = np.random.RandomState(seed)
    _, _, h, w = content.shape
    if kind == "noise":
        # Gaussian noise (sigma 32 levels) around the network's mean colour.
        noise = mean + rng.normal(0.0, 32.0, content.shape)
        return np.ascontiguousarray(np.clip(noise, 0, 255), dtype=np.float32)
    if kind == "noisy-content":
        # The assignment: numpy seeded, two randn() draws, then 0.6 * U(-20, 20) + 0.4 * content
        # in mean-subtracted space.
        rng.randn()
        rng.randn()
        noise = rng.uniform(-20, 20, (1, h, w, 3)).astype(np.float32).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(noise * 0.6 + (content - mean) * 0.4 + mean, dtype=np.float32)
    return np.ascontiguousarray(rng.uniform(0, 255, content.shape), dtype=np.float32)


def check_options(opts: Options, relu_names: list[str]) -> None:
    """Reject bad options before any work starts, each with a one-line reason."""
    if opts.optimizer not in OPTIMIZERS:
        raise NstError(f"unknown optimizer {opts.optimizer!r}; use one of: {', '.join(OPTIMIZERS)}")
    if opts.path not in PATHS:
        raise NstError(f"unknown objective path {opts.path!r}; use one of: {', '.join(PATHS)}")
    if opts.path == "fused" and host_only(opts):
        raise NstError("style masks and --normalize-gradients need --path split (or auto)")
    if opts.pooling not in ("max", "avg"):
        raise NstError(f"unknown pooling {opts.pooling!r}; use max or avg")
    if not (MIN_SIDE <= opts.size <= MAX_SIDE):
        raise NstError(f"--size {opts.size} is out of range; use {MIN_SIDE}..{MAX_SIDE} pixels")
    if opts.preserve_colors not in PRESERVE:
        raise NstError(f"--preserve-colors {opts.preserve_colors!r}: use one of {', '.join(PRESERVE)}")
    if opts.match_colors not in MATCHING:
        raise NstError(f"--match-colors {opts.match_colors!r}: use one of {', '.join(MATCHING)}")
    scale_schedule(opts)
    if opts.iterations < 1:
        raise NstError(f"--iterations {opts.iterations}: give at least 1")
    if not (0.05 <= opts.style_scale <= 8):
        raise NstError(f"--style-scale {opts.style_scale} is out of range; use 0.05..8")
    for name, value in (("content-weight", opts.content_weight), ("style-weight", opts.style_weight),
                        ("tv-weight", opts.tv_weight), ("lr", opts.lr)):
        if not np.isfinite(value) or value < 0:
            raise NstError(f"--{name} {value} must be a non-negative number")
    for flag, layers in (("content-layers", opts.content_layers), ("style-layers", opts.style_layers)):
        for layer, weight in layers.items():
            if layer not in relu_names:
                raise NstError(f"--{flag}: unknown layer {layer!r}; choose from {', '.join(relu_names)}")
            if not np.isfinite(weight) or weight < 0:
                raise NstError(f"--{flag}: weight {weight} of {layer} must be a non-negative number")
    if not opts.content_layers and not opts.style_layers:
        raise NstError("no content or style layers: give at least one layer")
