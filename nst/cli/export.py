"""`nst export DIR`: write a bundle (features.onnx, step.onnx, manifest.json; for the nn style loss also
style_columns.onnx and matching.onnx) that any ONNX Runtime can run."""

from pathlib import Path
from typing import Optional

import typer

from nst.engine.choices import PADDINGS, STYLE_LOSSES
from nst.engine.presets import DEFAULT_PRESET

from .options import Padding, Pooling, Preset, StyleLoss


def export(
    folder: Path = typer.Argument(..., metavar="DIR", help="Folder to write the bundle into (created if missing)."),
    preset: Preset = typer.Option(Preset(DEFAULT_PRESET), help="Loss weights and layers from this preset."),
    content_layers: Optional[str] = typer.Option(None, help="Content layers, e.g. relu4_2 or relu4_2:1,relu5_1:0.5."),
    style_layers: Optional[str] = typer.Option(None, help="Style layers with optional weights, e.g. relu1_1:1."),
    pooling: Optional[Pooling] = typer.Option(None, help="max (as trained) or avg (TensorFlow SAME)."),
    style_loss: Optional[StyleLoss] = typer.Option(None, help=f"Style statistics: {STYLE_LOSSES.help()}."),
    padding: Optional[Padding] = typer.Option(None, help=f"First convolution's padding: {PADDINGS.help()}."),
    web: bool = typer.Option(False, help="Also write the browser page and its runtime: a folder to serve statically."),
    force: bool = typer.Option(False, help="Overwrite a bundle already in DIR."),
) -> None:
    """Export the objective, its gradient and an Adam step as standard ONNX graphs plus a manifest (docs/bundle.md)."""
    from nst.bundle.export import export_folder

    summary = export_folder(
        folder,
        preset.value,
        content_layers=content_layers,
        style_layers=style_layers,
        pooling=pooling.value if pooling else None,
        style_loss=style_loss.value if style_loss else None,
        padding=padding.value if padding else None,
        web=web,
        force=force,
    )
    typer.echo(summary)
