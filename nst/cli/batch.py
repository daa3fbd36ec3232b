"""`nst batch CONTENT_DIR STYLE [STYLE ...] -o OUT_DIR`: every image of a folder, the same styles."""

from pathlib import Path
from typing import List, Optional

import typer

from . import rayflags
from .interrupts import Interrupts
from .options import with_transfer_options


@with_transfer_options
def batch(
    content_dir: Path = typer.Argument(..., metavar="CONTENT_DIR", help="Folder of content images."),
    styles: List[Path] = typer.Argument(..., metavar="STYLE", help="One or more style images."),
    output_dir: Path = typer.Option(..., "--output", "-o", help="Folder for the results (created if missing)."),
    suffix: str = typer.Option(".png", help="Output format of every result, e.g. .png or .jpg (a.jpg -> a.jpg.png)."),
    overwrite: bool = typer.Option(
        False, help="Redo results in OUT_DIR that were made with other styles, options or inputs."
    ),
    ray: Optional[str] = rayflags.ADDRESS,
    ray_actors: int = rayflags.ACTORS,
    ray_threads: int = rayflags.THREADS,
    ray_gpus: float = rayflags.GPUS,
    *,
    options: dict,  # the shared options, passed by with_transfer_options
    run: dict,
) -> None:
    """Stylise every image in CONTENT_DIR into OUT_DIR/<name><suffix>. A rerun with the same styles and
    options resumes (results already made are skipped); processes sharing OUT_DIR share the work."""
    with Interrupts() as interrupts:  # Ctrl-C stops the batch even where it was started with SIGINT ignored
        if ray is None:
            _run_here(content_dir, styles, output_dir, suffix, overwrite, options, run, interrupts)
            return
        from nst.distributed.batch import batch_cli
        from nst.distributed.pool import RayResources

        resources = RayResources(ray_actors, ray_threads, ray_gpus, run["device"])
        batch_cli(content_dir, styles, output_dir, suffix, overwrite, ray, resources, options, run)


def _run_here(content_dir, styles, output_dir, suffix, overwrite: bool, options: dict, run: dict, interrupts) -> None:
    """The batch in this process, one image after another; `interrupts` is checked at every iteration and
    after every image, so a Ctrl-C that numba swallowed or turned into one image's failure still stops it."""
    from nst.batch.runner import batch_transfer
    from nst.engine import StyleTransfer

    st = StyleTransfer(device=run["device"], threads=run["threads"])
    say = (lambda *a: None) if run["quiet"] else typer.echo
    report = batch_transfer(
        st,
        content_dir,
        [str(s) for s in styles],
        output_dir,
        suffix,
        preset=run["preset"],
        bit_depth=run["bit_depth"],
        quality=run["quality"],
        overwrite=overwrite,
        on_start=lambda src, dst: say(f"{src.name} -> {dst}"),
        on_done=lambda src, error: interrupts() or (error and typer.echo(f"failed: {error}", err=True)),
        callback=interrupts,
        **options,
    )
    typer.echo(report.summary())
    if report.failed:
        raise typer.Exit(1)
