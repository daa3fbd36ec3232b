"""The options `nst transfer` and `nst batch` share, declared once and added to each command."""

import functools
import inspect
from enum import Enum
from typing import TYPE_CHECKING, Any, Optional, cast

import typer

from nst.engine.choices import (
    AUTO,
    DEFAULT_DEVICE,
    DEVICES,
    INITS,
    MATCHING,
    MAX_SIDE,
    MIN_SIDE,
    OPTIMIZERS,
    PADDINGS,
    PATHS,
    POOLINGS,
    PRESERVE,
    STYLE_LOSSES,
)
from nst.engine.presets import DEFAULT_PRESET, PRESETS


def choice_enum(name: str, values) -> type[Enum]:
    """A str Enum of the engine's choices `values`, which typer turns into a checked, listed option."""
    return cast("type[Enum]", Enum(name, [(value, value) for value in values], type=str))


if TYPE_CHECKING:  # Enums made at run time are not types to a checker: it sees their base
    Optimizer = Enum
    Pooling = Enum
    Preset = Enum
    Path_ = Enum
    DeviceName = Enum
    PreserveColors = Enum
    MatchColors = Enum
    StyleLoss = Enum
    Padding = Enum
else:
    Optimizer = choice_enum("Optimizer", OPTIMIZERS)
    Pooling = choice_enum("Pooling", POOLINGS)
    Preset = choice_enum("Preset", PRESETS)
    Path_ = choice_enum("Path_", PATHS)
    DeviceName = choice_enum("DeviceName", DEVICES)
    PreserveColors = choice_enum("PreserveColors", PRESERVE)
    MatchColors = choice_enum("MatchColors", MATCHING)
    StyleLoss = choice_enum("StyleLoss", STYLE_LOSSES)
    Padding = choice_enum("Padding", PADDINGS)


def _value(option):
    return option.value if isinstance(option, Enum) else option


def _shared(
    preset: Preset = typer.Option(Preset(DEFAULT_PRESET), help="Defaults for every option below."),
    size: Optional[int] = typer.Option(
        None, help=f"Longest side of the output in pixels, {MIN_SIDE}..{MAX_SIDE} [{PRESETS[DEFAULT_PRESET].size}]."
    ),
    iterations: Optional[int] = typer.Option(None, help="Objective evaluations (forward+backward passes) per scale."),
    scales: Optional[str] = typer.Option(
        None, help="Multi-scale: a count (halving down from --size) or sizes, e.g. 128,256,512."
    ),
    scale_iterations: Optional[str] = typer.Option(None, help="Iterations per scale, e.g. 300,200,100."),
    scale_ratio: Optional[float] = typer.Option(
        None, help="With a count of --scales: each scale's size over the coarser one's (2: halving; 1.414)."
    ),
    detail: Optional[bool] = typer.Option(
        None, "--detail/--no-detail", help="With --init content: finer scales start with the content's fine detail."
    ),
    optimizer: Optional[Optimizer] = typer.Option(None, help=f"{OPTIMIZERS.help()}."),
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
    style_size: Optional[int] = typer.Option(
        None, help="Longest side of the style images at every scale (0: as --style-at-final says)."
    ),
    style_at_final: Optional[bool] = typer.Option(
        None,
        "--style-at-final/--style-per-scale",
        help="Every scale sees the style images at the final --size (times --style-scale), or shrunk with each scale.",
    ),
    style_loss: Optional[StyleLoss] = typer.Option(None, help=f"Style statistics matched: {STYLE_LOSSES.help()}."),
    alpha: Optional[float] = typer.Option(
        None, help="With --style-loss nn: the content's share (0..1) of the image matched at each scale [nnst: 0.75]."
    ),
    pyramid: Optional[bool] = typer.Option(
        None, "--pyramid/--no-pyramid", help="Adam steps the image's Laplacian pyramid coefficients (nnst: on)."
    ),
    colour_correction: Optional[bool] = typer.Option(
        None,
        "--colour-correction/--no-colour-correction",
        help="NNST's final colour correction: the content's chroma moved to the style's (nnst: on).",
    ),
    average: Optional[float] = typer.Option(
        None, help="Decay of a moving average of the iterates kept as the result, e.g. 0.99 (0: off)."
    ),
    padding: Optional[Padding] = typer.Option(None, help=f"First convolution's padding: {PADDINGS.help()}."),
    init: Optional[str] = typer.Option(None, help=f"The first image: {INITS.help()}, or an image path."),
    pooling: Optional[Pooling] = typer.Option(None, help=f"{POOLINGS.help()}."),
    seed: Optional[int] = typer.Option(None, help="Random seed for noise and random initialisation."),
    preserve_colors: Optional[PreserveColors] = typer.Option(
        None, help=f"Keep the content's colours: {PRESERVE.help()}."
    ),
    match_colors: Optional[MatchColors] = typer.Option(
        None, help=f"Recolour the styles to the content first: {MATCHING.help()}."
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
    device: DeviceName = typer.Option(DeviceName(DEFAULT_DEVICE), help=f"Execution provider: {DEVICES.help()}."),
    threads: Optional[int] = typer.Option(None, help="CPU threads (default: all cores)."),
    path: Path_ = typer.Option(Path_(AUTO), help=f"Objective path: {PATHS.help()}."),
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

    cast(Any, wrapper).__signature__ = inspect.Signature(own + list(SHARED.values()))  # what typer reads
    return wrapper
