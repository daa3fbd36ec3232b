"""`nst transfer CONTENT STYLE [STYLE ...] -o OUT`: one transfer with a progress bar."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer


class Optimizer(str, Enum):
    lbfgs = "lbfgs"
    adam = "adam"


class Pooling(str, Enum):
    max = "max"
    avg = "avg"


class Preset(str, Enum):
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


def transfer(
    content: Path = typer.Argument(..., help="Content image (PNG, JPEG, WebP, BMP, GIF, TIFF)."),
    styles: List[Path] = typer.Argument(..., help="One or more style images."),
    output: Path = typer.Option(..., "--output", "-o", help="Output image (.png, .jpg, .webp, .bmp, .tif)."),
    preset: Preset = typer.Option(Preset.johnson, help="Defaults for every option below."),
    size: Optional[int] = typer.Option(None, help="Longest side of the output in pixels [johnson 512]."),
    iterations: Optional[int] = typer.Option(None, help="Objective evaluations (forward+backward passes) per scale."),
    scales: Optional[str] = typer.Option(None, help="Multi-scale: a count (halving down from --size) or sizes, e.g. 128,256,512."),
    scale_iterations: Optional[str] = typer.Option(None, help="Iterations per scale, e.g. 300,200,100."),
    optimizer: Optional[Optimizer] = typer.Option(None, help="lbfgs (bounded L-BFGS-B) or adam."),
    lr: Optional[float] = typer.Option(None, help="Adam learning rate (pixels, 0..255 scale)."),
    content_weight: Optional[float] = typer.Option(None, help="Weight of the content loss."),
    style_weight: Optional[float] = typer.Option(None, help="Weight of the style loss."),
    tv_weight: Optional[float] = typer.Option(None, help="Weight of the total-variation loss."),
    content_layers: Optional[str] = typer.Option(None, help="Content layers, e.g. relu4_2 or relu4_2:1,relu5_1:0.5."),
    style_layers: Optional[str] = typer.Option(None, help="Style layers with optional weights, e.g. relu1_1:1,relu2_1:0.5."),
    style_blend: Optional[str] = typer.Option(None, help="Blend weights of the style images, e.g. 3,7."),
    style_scale: Optional[float] = typer.Option(None, help="Style image size relative to --size."),
    init: Optional[str] = typer.Option(None, help="content, noise, random, noisy-content (the assignment's), or an image path."),
    pooling: Optional[Pooling] = typer.Option(None, help="max (as trained) or avg (TensorFlow SAME)."),
    seed: Optional[int] = typer.Option(None, help="Random seed for noise and random initialisation."),
    preserve_colors: Optional[str] = typer.Option(None, help="Keep the content's colours: none, ycbcr or lab."),
    match_colors: Optional[str] = typer.Option(None, help="Recolour the styles to the content first: none, histogram or meancov."),
    quality: int = typer.Option(95, help="JPEG/WebP quality."),
    bit_depth: int = typer.Option(8, help="8, or 16 for PNG/TIFF with the optimiser's precision."),
    device: DeviceName = typer.Option(DeviceName.cpu, help="Execution provider."),
    threads: Optional[int] = typer.Option(None, help="CPU threads (default: all cores)."),
    path: Path_ = typer.Option(Path_.auto, help="Objective path: split (numba losses on the host), fused (one "
                               "ONNX graph), auto (the faster one measured for the device)."),
    save_every: int = typer.Option(0, help="Also save the image every N iterations as OUT_<N>.ext."),
    metrics: Optional[Path] = typer.Option(None, help="Write one JSON object per iteration to this file."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Stylise CONTENT with one or more STYLE images and write the result to OUT."""
    from engine import MetricsWriter, SaveEvery, SeedReport, StyleTransfer
    from engine.images import check_output, check_writable, save_result
    from engine.progress import chain
    from engine.transfer import to_uint8

    from .progressbar import ProgressBar

    check_output(output, bit_depth, quality)
    if metrics is not None:
        check_writable(metrics.with_suffix(".png"))
    st = StyleTransfer(device=_value(device), threads=threads)
    scales_value = int(scales) if scales and scales.isdigit() else scales
    opts = st.options(_value(preset), size=size, iterations=iterations, scales=scales_value,
                      scale_iterations=scale_iterations, optimizer=_value(optimizer), lr=lr,
                      content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
                      content_layers=content_layers, style_layers=style_layers, style_blend=style_blend,
                      style_scale=style_scale, init=init, pooling=_value(pooling), seed=seed, path=_value(path),
                      preserve_colors=preserve_colors, match_colors=match_colors)
    report = SeedReport(opts.content_weight, opts.style_weight) if opts.report == "seed" else None
    writer = MetricsWriter(metrics) if metrics is not None else None
    bar = None if quiet or report else ProgressBar()
    try:
        with bar if bar else _Null():
            result = st.stylize(str(content), [str(s) for s in styles], callback=chain(
                report, writer, SaveEvery(output, save_every), bar), **_fields(opts))
    finally:
        if writer:
            writer.close()
    save_result(output, result, bit_depth, quality)
    if report:
        report.finish(to_uint8(result))
    if not quiet:
        typer.echo(f"wrote {output} ({result.shape[1]}x{result.shape[0]})")


def _fields(opts) -> dict:
    """The resolved options as keyword arguments (the preset is already applied)."""
    from dataclasses import fields

    return {f.name: getattr(opts, f.name) for f in fields(opts)}


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
