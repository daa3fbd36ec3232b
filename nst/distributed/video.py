"""`nst video --ray`: the clip cut into chunks (fixed length, a few overlapping frames blended), one chunk
per actor at a time; frames land atomically in the job's frames folder, so a retried chunk or a rerun
resumes at the first frame missing."""

from __future__ import annotations

from functools import partial

from nst.video.chunks import LEAD, TAIL, blend_overlaps, plan_chunks
from nst.video.stylize import frame_path, stylize_frames

from .pool import RayResources, connect, run_all, start_actors


def stylize_chunk(st, chunk, job) -> list[int]:
    """In an actor: stylise one chunk's frames in order; returns the indices it wrote."""
    for sub in (LEAD, TAIL):
        (job.folder / sub).mkdir(exist_ok=True)
    frames = job.frames(range(chunk.start, chunk.stop))
    place = partial(chunk.place, job.folder)
    records = stylize_frames(job.stylizer(st), frames, job.folder, bit_depth=job.bit_depth, place=place)
    return [r.index for r in records]


def finished(folder, chunk) -> bool:
    """Whether every frame of the chunk is written, in the folder or set aside for blending."""
    return all(
        frame_path(folder, i).exists() or chunk.place(folder, i).exists() for i in range(chunk.start, chunk.stop)
    )


def video_on_ray(job, address: str | None, resources: RayResources, chunk: int = 24, overlap: int = 4, say=None):
    """Run a planned VideoJob's missing frames on Ray actors, then blend the chunk overlaps."""
    chunks = plan_chunks(job.indices, chunk, 0 if job.video.independent else overlap)
    todo = [c for c in chunks if not finished(job.folder, c)]
    if todo:
        ray = connect(address, resources)
        actors = start_actors(ray, resources)
        done = run_all(ray, actors, partial(stylize_chunk, job=job), todo)
        if say:
            say(f"{sum(len(d) for d in done)} frames stylised in {len(todo)} chunks on {len(actors)} actors")
    blend_overlaps(job.folder, chunks, job.bit_depth)
