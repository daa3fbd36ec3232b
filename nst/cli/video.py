"""`nst video INPUT STYLE [STYLE ...] -o OUTPUT`: a video or folder of frames, stylised without flicker."""

from pathlib import Path
from typing import List, Optional

import typer

from nst.video.settings import DEFAULT_TEMPORAL_WEIGHT

from . import rayflags
from .interrupts import Interrupts, interrupted
from .options import with_transfer_options


@with_transfer_options
def video(
    input: Path = typer.Argument(..., metavar="INPUT", help="A video file or a folder of frames (sorted by name)."),
    styles: List[Path] = typer.Argument(..., metavar="STYLE", help="One or more style images."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="A .mp4 or .avi file, or else a folder of PNG frames 000000.png, ..."
    ),
    frames: Optional[str] = typer.Option(None, help="Frames A:B of the input (A to B-1), e.g. 0:100."),
    temporal_weight: Optional[float] = typer.Option(
        None,
        help="Weight of the temporal term (mean squared difference to the warped previous output) "
        f"[{DEFAULT_TEMPORAL_WEIGHT:g}]; 0: warm start only.",
    ),
    independent: bool = typer.Option(False, "--independent", help="Stylise every frame alone (flickers)."),
    flow: str = typer.Option("dis", help="Optical flow: dis or farneback."),
    warm_iterations: Optional[int] = typer.Option(
        None, help="Iterations for frames after the first [a third of the first frame's full-size pass]."
    ),
    fps: Optional[float] = typer.Option(None, help="Frame rate of a video output [the input's, else 25]."),
    ray: Optional[str] = rayflags.ADDRESS,
    ray_actors: int = rayflags.ACTORS,
    ray_threads: int = rayflags.THREADS,
    ray_gpus: float = rayflags.GPUS,
    ray_chunk: int = typer.Option(
        24, help="With --ray: frames per chunk (each chunk also re-runs 4 frames before it)."
    ),
    *,
    options: dict,  # the shared options, passed by with_transfer_options
    run: dict,
) -> None:
    """Stylise every frame of INPUT in order; each starts from the previous result moved by optical flow.
    Finished frames are kept: a rerun (or one after Ctrl-C) resumes."""
    from nst.engine.errors import NstError
    from nst.video.job import VideoJob

    if ray is not None:  # the Ray flags too are checked before the frames folder is made
        from nst.distributed.pool import RayResources

        RayResources(ray_actors, ray_threads, ray_gpus, run["device"]).check()
        if ray_chunk < 1:
            raise NstError(f"--ray-chunk {ray_chunk}: give at least 1 frame per chunk")
    job = VideoJob.plan(
        input,
        [str(s) for s in styles],
        output,
        frames,
        temporal_weight=temporal_weight,
        independent=independent,
        flow=flow,
        warm_iterations=warm_iterations,
        fps=fps,
        preset=run["preset"],
        options=options,
        bit_depth=run["bit_depth"],
    )
    say = (lambda *a: None) if run["quiet"] else typer.echo
    try:
        with Interrupts():
            if ray is not None:
                from nst.distributed.pool import RayResources
                from nst.distributed.video import video_on_ray

                resources = RayResources(ray_actors, ray_threads, ray_gpus, run["device"])
                video_on_ray(job, ray, resources, ray_chunk, say=say)
            else:
                _run_here(job, run)
    except KeyboardInterrupt:
        kept = job.done_count()
        interrupted(f"interrupted: {kept} of {len(job.indices)} frames kept in {job.folder}; rerun to resume")
    warning = job.finish()
    if warning:
        typer.echo(f"warning: {warning}", err=True)
    say(f"wrote {output} ({len(job.indices)} frames)")


def _run_here(job, run: dict) -> None:
    """In this process, with a progress bar over frames."""
    from nst.engine import StyleTransfer

    from .progressbar import FrameBar

    st = StyleTransfer(device=run["device"], threads=run["threads"])
    if run["quiet"]:
        job.run(st)
        return
    with FrameBar(len(job.indices), job.done_count(asides=False)) as bar:  # this runner writes no asides
        job.run(st, on_frame=bar.frame, callback=bar.iteration)
