"""`nst transfer CONTENT STYLE [STYLE ...] -o OUT`: one transfer with a progress bar."""

from contextlib import nullcontext
from pathlib import Path
from typing import List, Optional

import typer

from .options import with_transfer_options


@with_transfer_options
def transfer(
    content: Path = typer.Argument(..., metavar="CONTENT", help="Content image (PNG, JPEG, WebP, BMP, GIF, TIFF)."),
    styles: List[Path] = typer.Argument(..., metavar="STYLE", help="One or more style images."),
    output: Path = typer.Option(..., "--output", "-o", help="Output image (.png, .jpg, .webp, .bmp, .tif)."),
    save_every: int = typer.Option(
        0, help="Also save the image every N iterations as OUT_<N>.ext (OUT_s<scale>_<N>.ext with several scales)."
    ),
    metrics: Optional[Path] = typer.Option(None, help="Write one JSON object per iteration to this file."),
    *,
    options: dict,  # the shared options, passed by with_transfer_options
    run: dict,
) -> None:
    """Stylise CONTENT with one or more STYLE images and write the result to OUT."""
    from nst.engine import MetricsWriter, SaveEvery
    from nst.engine.images import check_folder, check_output, save_result
    from nst.engine.progress import chain
    from nst.engine.transfer import to_uint8

    from .interrupts import Interrupts, interrupted
    from .progressbar import ProgressBar

    check_output(output, run["bit_depth"], run["quality"])
    if metrics is not None:
        check_folder(metrics)
    snapshots = SaveEvery(output, save_every)
    writer = None
    try:
        with Interrupts() as interrupts:
            st, opts, report = _setup(content, styles, output, metrics, snapshots, options, run)
            writer = MetricsWriter(metrics) if metrics is not None else None
            bar = None if run["quiet"] or report else ProgressBar()
            with bar if bar else nullcontext():
                interrupts()
                result = st.stylize(
                    str(content),
                    [str(s) for s in styles],
                    callback=chain(interrupts, report, writer, snapshots, bar),
                    options=opts,
                )
            interrupts()
    except KeyboardInterrupt:
        kept = writer.close() if writer else False
        interrupted(f"interrupted: {output} was not written; {_kept(snapshots.written, metrics if kept else None)}")
    finally:
        if writer:  # the record of the iterations that ran, whatever the ending (none ran: the file is untouched)
            writer.close()
    save_result(output, result, run["bit_depth"], run["quality"])
    if report:
        report.finish(to_uint8(result))
    if not run["quiet"]:
        typer.echo(f"wrote {output} ({result.shape[1]}x{result.shape[0]})")


def _setup(content: Path, styles: List[Path], output: Path, metrics: Optional[Path], snapshots, options, run):
    """The engine, the resolved options and the seed report (or None), once no output is one of the inputs."""
    from nst.engine import StyleTransfer
    from nst.engine.checks import clamp_threads
    from nst.engine.outputs import input_files, refuse_inputs
    from nst.engine.schedule import scale_schedule
    from nst.seedreport import SeedReport

    threads, note = clamp_threads(run["threads"])
    if note:
        typer.echo(f"warning: {note}", err=True)
    st = StyleTransfer(device=run["device"], threads=threads)
    opts = st.options(run["preset"], **options)
    report = SeedReport.beside(output, opts.content_weight, opts.style_weight) if opts.report == "seed" else None
    counts = scale_schedule(opts)[1]
    writes = [("the output (-o)", output), *[("a --save-every snapshot", p) for p in snapshots.paths(counts)]]
    writes += [("the --metrics file", metrics)] if metrics is not None else []
    writes += [("a --preset seed report image", p) for p in report.paths(sum(counts))] if report else []
    refuse_inputs(writes, input_files(content, styles, opts))
    return st, opts, report


def _kept(snapshots: list, metrics) -> str:
    """What an interrupted run leaves, in words."""
    kept = []
    if snapshots:
        span = snapshots[0].name if len(snapshots) == 1 else f"{snapshots[0].name} .. {snapshots[-1].name}"
        kept.append(f"{len(snapshots)} snapshot(s) kept ({span})")
    if metrics is not None:
        kept.append(f"the metrics so far are in {metrics}")
    return "; ".join(kept) if kept else "nothing else was written"
