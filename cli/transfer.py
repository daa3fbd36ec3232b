"""`nst transfer CONTENT STYLE [STYLE ...] -o OUT`: one transfer with a progress bar."""

from pathlib import Path
from typing import List, Optional

import typer

from .options import with_transfer_options


@with_transfer_options
def transfer(
    content: Path = typer.Argument(..., metavar="CONTENT", help="Content image (PNG, JPEG, WebP, BMP, GIF, TIFF)."),
    styles: List[Path] = typer.Argument(..., metavar="STYLE", help="One or more style images."),
    output: Path = typer.Option(..., "--output", "-o", help="Output image (.png, .jpg, .webp, .bmp, .tif)."),
    save_every: int = typer.Option(0, help="Also save the image every N iterations as OUT_<N>.ext."),
    metrics: Optional[Path] = typer.Option(None, help="Write one JSON object per iteration to this file."),
    options: dict = None,
    run: dict = None,
) -> None:
    """Stylise CONTENT with one or more STYLE images and write the result to OUT."""
    from nst.engine import MetricsWriter, SaveEvery, SeedReport, StyleTransfer
    from nst.engine.images import check_folder, check_output, save_result
    from nst.engine.progress import chain
    from nst.engine.transfer import to_uint8

    from .progressbar import ProgressBar

    check_output(output, run["bit_depth"], run["quality"])
    if metrics is not None:
        check_folder(metrics)
    st = StyleTransfer(device=run["device"], threads=run["threads"])
    opts = st.options(run["preset"], **options)
    report = SeedReport(opts.content_weight, opts.style_weight) if opts.report == "seed" else None
    writer = MetricsWriter(metrics) if metrics is not None else None
    bar = None if run["quiet"] or report else ProgressBar()
    try:
        with bar if bar else _Null():
            result = st.stylize(
                str(content),
                [str(s) for s in styles],
                callback=chain(report, writer, SaveEvery(output, save_every), bar),
                options=opts,
            )
    finally:
        if writer:
            writer.close()
    save_result(output, result, run["bit_depth"], run["quality"])
    if report:
        report.finish(to_uint8(result))
    if not run["quiet"]:
        typer.echo(f"wrote {output} ({result.shape[1]}x{result.shape[0]})")


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
