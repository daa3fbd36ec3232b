"""The options `nst transfer` and `nst batch` share, declared once and added to each command."""

import functools
import inspect
from enum import Enum
from typing import Optional

import typer


class Optimizer(str, Enum):
    lbfgs = "lbfgs"
    lbfgsb = "lbfgsb"
    adam = "adam"


class Pooling(str, Enum):
    max = "max"
    avg = "avg"


class Preset(str, Enum):
    nst = "nst"
    johnson = "johnson"
    seed = "seed"


class Path_(str, Enum):
    auto = "auto"
    split = "split"
    fused = "fused"


class DeviceName(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


def _value(option):
    return option.value if isinstance(option, Enum) else option


def _shared(
    preset: Preset = typer.Option(Preset.nst, help="Defaults for every option below."),
    size: Optional[int] = typer.Option(None, help="Longest side of the output in pixels [512]."),
    iterations: Optional[int] = typer.Option(None, help="Objective evaluations (forward+backward passes) per scale."),
    scales: Optional[str] = typer.Option(
        None, help="Multi-scale: a count (halving down from --size) or sizes, e.g. 128,256,512."
    ),
    scale_iterations: Optional[str] = typer.Option(None, help="Iterations per scale, e.g. 300,200,100."),
    optimizer: Optional[Optimizer] = typer.Option(
        None, help="lbfgs (nst's bounded L-BFGS), lbfgsb (scipy's L-BFGS-B, the johnson preset's) or adam."
    ),
    history: Optional[int] = typer.Option(
        None, help="L-BFGS memory in past steps (more: better steps, 8 bytes per pixel value each; 16 with lbfgsb)."
    ),
    lr: Optional[float] = typer.Option(None, help="Adam learning rate (pixels, 0..255 scale)."),
    content_weight: Optional[float] = typer.Option(None, help="Weight of the content loss."),
    style_weight: Optional[float] = typer.Option(None, help="Weight of the style loss."),
    tv_weight: Optional[float] = typer.Option(None, help="Weight of the total-variation loss."),
    content_layers: Optional[str] = typer.Option(None, help="Content layers, e.g. relu4_2 or relu4_2:1,relu5_1:0.5."),
    style_layers: Optional[str] = typer.Option(
        None, help="Style layers with optional weights, e.g. relu1_1:1,relu2_1:0.5."
    ),
    style_blend: Optional[str] = typer.Option(None, help="Blend weights of the style images, e.g. 3,7."),
    style_scale: Optional[float] = typer.Option(None, help="Style image size relative to --size."),
    init: Optional[str] = typer.Option(
        None, help="content, noise, random, noisy-content (the assignment's), or an image path."
    ),
    pooling: Optional[Pooling] = typer.Option(None, help="max (as trained) or avg (TensorFlow SAME)."),
    seed: Optional[int] = typer.Option(None, help="Random seed for noise and random initialisation."),
    preserve_colors: Optional[str] = typer.Option(None, help="Keep the content's colours: none, ycbcr or lab."),
    match_colors: Optional[str] = typer.Option(
        None, help="Recolour the styles to the content first: none, histogram or meancov."
    ),
    style_masks: Optional[str] = typer.Option(
        None, help="One mask image per style, comma-separated (white: the style applies; an empty entry: everywhere)."
    ),
    tile: Optional[int] = typer.Option(
        None,
        help="Optimise images larger than this many pixels per side in tiles "
        "(exact gradients, style statistics over the whole image): print sizes.",
    ),
    normalize_gradients: bool = typer.Option(
        False, help="Scale each layer's gradient to unit L1 norm times its weight (jcjohnson's -normalize_gradients)."
    ),
    quality: int = typer.Option(95, help="JPEG/WebP quality."),
    bit_depth: int = typer.Option(8, help="8, or 16 for PNG/TIFF with the optimiser's precision."),
    device: DeviceName = typer.Option(DeviceName.cpu, help="Execution provider."),
    threads: Optional[int] = typer.Option(None, help="CPU threads (default: all cores)."),
    path: Path_ = typer.Option(
        Path_.auto,
        help="Objective path: split (numba losses on the host), fused (one "
        "ONNX graph), auto (the faster one measured for the device).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Only its signature is used."""


SHARED = inspect.signature(_shared).parameters
RUN_KEYS = ("quality", "bit_depth", "device", "threads", "quiet", "preset")


def with_transfer_options(command):
    """Add the shared options to `command`, which receives them as one dict named `options`
    (engine options, enum values unwrapped) and `run` (output, device and display settings)."""
    own = [p for name, p in inspect.signature(command).parameters.items() if name not in ("options", "run")]

    @functools.wraps(command)
    def wrapper(**kwargs):
        shared = {k: kwargs.pop(k) for k in list(kwargs) if k in SHARED}
        shared = {k: v.value if isinstance(v, Enum) else v for k, v in shared.items()}
        run = {k: shared.pop(k) for k in RUN_KEYS}
        if isinstance(shared.get("scales"), str) and shared["scales"].isdigit():
            shared["scales"] = int(shared["scales"])
        return command(options=shared, run=run, **kwargs)

    wrapper.__signature__ = inspect.Signature(own + list(SHARED.values()))
    return wrapper
