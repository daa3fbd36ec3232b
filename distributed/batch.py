"""`nst batch --ray`: one task per image on actors that load the model once; results land atomically and
images already written are skipped, so a rerun (or a retried task) resumes."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from nst.engine.batch import BatchReport, list_images
from nst.engine.errors import NstError
from nst.engine.images import as_image, check_output, save_result

from .pool import RayResources, connect, run_all, start_actors


def stylize_one(st, item: tuple, styles: list, preset, overrides: dict, bit_depth: int, quality: int):
    """In an actor: stylise one image into its target unless it is there; returns (status, source, detail)."""
    source, target = item
    if Path(target).exists():
        return "skipped", source, target
    try:
        result = st.stylize(source, styles, preset, **overrides)
        save_result(target, result, bit_depth, quality)
    except NstError as exc:
        return "failed", source, str(exc)
    return "written", source, target


def batch_on_ray(
    content_dir,
    styles: list,
    out_dir,
    suffix: str,
    address: str | None,
    resources: RayResources,
    preset: str | None = None,
    bit_depth: int = 8,
    quality: int = 95,
    on_done=None,
    **overrides,
) -> BatchReport:
    """`nst.engine.batch.batch_transfer`, with the images spread over Ray actors."""
    contents = list_images(content_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_output(out / f"probe{suffix}", bit_depth, quality)
    style_imgs = [as_image(s, f"style image {i + 1}") for i, s in enumerate(styles)]
    items = [(str(c), str(out / f"{c.stem}{suffix}")) for c in contents]
    report = BatchReport()
    report.skipped += [Path(t) for _, t in items if Path(t).exists()]
    todo = [item for item in items if not Path(item[1]).exists()]
    if todo:
        ray = connect(address, resources)
        actors = start_actors(ray, resources)
        task = partial(
            stylize_one, styles=style_imgs, preset=preset, overrides=overrides, bit_depth=bit_depth, quality=quality
        )
        for status, source, detail in run_all(ray, actors, task, todo, on_done):
            if status == "failed":
                report.failed.append((Path(source), detail))
            else:
                (report.written if status == "written" else report.skipped).append(Path(detail))
    return report


def batch_cli(content_dir, styles, output_dir, suffix, address, actors: tuple, options: dict, run: dict) -> None:
    """`nst batch --ray`: run, print the summary, exit 1 when an image failed."""
    import typer

    say = (lambda *a: None) if run["quiet"] else typer.echo
    report = batch_on_ray(
        content_dir,
        [str(s) for s in styles],
        output_dir,
        suffix,
        address,
        RayResources(*actors, run["device"]),
        run["preset"],
        run["bit_depth"],
        run["quality"],
        on_done=lambda r: say(f"{Path(r[1]).name}: {r[0]}" + (f" ({r[2]})" if r[0] == "failed" else "")),
        **options,
    )
    typer.echo(report.summary())
    if report.failed:
        raise typer.Exit(1)
