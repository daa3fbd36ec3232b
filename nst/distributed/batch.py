"""`nst batch --ray`: one task per image on actors that load the model once. The batch is checked and planned
as without Ray (nst.batch.runner.plan_batch: names, records, refusals); each actor makes its images under the
same claims and atomic writes, so a retried task, a rerun or a second process neither loses nor redoes work."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from nst.batch.runner import BatchJob, BatchReport, Outcome, plan_batch

from .pool import RayResources, connect, run_all, start_actors


def make_one(st, item: tuple, job: BatchJob) -> Outcome:
    """In an actor: one image of the planned batch."""
    content, target = item
    return job.one(st, content, target)


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
    overwrite: bool = False,
    on_done=None,
    **overrides,
) -> BatchReport:
    """`nst.batch.runner.batch_transfer`, with the images spread over Ray actors."""
    from nst.engine import StyleTransfer

    planner = StyleTransfer()  # options and style checks only: no session is built, no thread setting changed
    job = plan_batch(planner, content_dir, styles, out_dir, suffix, preset, bit_depth, quality, overwrite, **overrides)
    report = BatchReport()
    done = [(c, t) for c, t in job.targets if t.exists() and job.folder.mismatch(t, c) is None]
    report.skipped += [t for _, t in done]
    todo = [pair for pair in job.targets if pair not in done]
    if todo:
        ray = connect(address, resources)
        actors = start_actors(ray, resources)
        for outcome in run_all(ray, actors, partial(make_one, job=job), todo, on_done):
            report.add(outcome)
    return report


def batch_cli(
    content_dir, styles, output_dir, suffix, overwrite: bool, address, resources: RayResources, options: dict, run: dict
) -> None:
    """`nst batch --ray`: run, print the summary, exit 1 when an image failed."""
    import typer

    say = (lambda *a: None) if run["quiet"] else typer.echo

    def done(outcome: Outcome) -> None:
        """The lines the local runner prints: each image made, and each failure even when quiet."""
        if outcome.status == "written":
            say(f"{Path(outcome.content).name} -> {outcome.target}")
        elif outcome.status == "failed":
            typer.echo(f"failed: {outcome.error}", err=True)

    report = batch_on_ray(
        content_dir,
        [str(s) for s in styles],
        output_dir,
        suffix,
        address,
        resources,
        run["preset"],
        run["bit_depth"],
        run["quality"],
        overwrite,
        on_done=done,
        **options,
    )
    typer.echo(report.summary())
    if report.failed:
        raise typer.Exit(1)
