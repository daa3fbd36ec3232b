"""`nst bench`: time the objective per provider, path and size; print a table, write JSON and a chart."""

from pathlib import Path
from typing import Optional

import typer

from nst.engine.choices import BENCH_PRESET, DEVICES, GRAPH_PATHS, OPTIMIZERS, PROVIDERS

from .options import Optimizer, Preset


def bench(
    providers: Optional[str] = typer.Option(
        None, help=f"Providers to measure, comma-separated: {', '.join(DEVICES)} [every available one]."
    ),
    sizes: str = typer.Option("256,512,1024", help="Square image sides in pixels."),
    paths: Optional[str] = typer.Option(
        None, help=f"Objective paths to compare, of {', '.join(GRAPH_PATHS)} [every one the preset runs on]."
    ),
    preset: Preset = typer.Option(Preset(BENCH_PRESET), help="The objective timed: a preset's losses, one scale."),
    iterations: int = typer.Option(5, help="Timed evaluations per case."),
    warmup: int = typer.Option(2, help="Evaluations run first and not timed."),
    threads: Optional[int] = typer.Option(None, help="CPU threads (default: all cores)."),
    optimizer: Optional[Optimizer] = typer.Option(
        None, help=f"{OPTIMIZERS.help()} [the preset's own where nst steps it, else lbfgs]."
    ),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the full report as JSON here."),
    chart: Optional[Path] = typer.Option(None, help="Write a PNG chart of achieved GFLOP/s here."),
) -> None:
    """Time the objective (forward, backward, optimizer step) on each provider, path and size."""
    import json

    from nst.bench.chart import bench_chart
    from nst.bench.timing import bench_optimizer, benchmark, plan
    from nst.engine.images import check_folder, check_writable, write_bytes, write_image

    if json_path is not None:
        check_folder(json_path)
    if chart is not None:
        check_writable(chart)
    step = optimizer.value if optimizer else bench_optimizer(preset.value)
    cases = plan(providers, sizes, paths, iterations, warmup, threads, step, preset.value)
    typer.echo(HEADER)
    report = benchmark(cases, on_result=lambda row: typer.echo(format_row(row)))
    for verdict in report["faster_path"]:
        typer.echo(
            f"{verdict['provider']} {verdict['size']} px: {verdict['faster']} path is faster "
            f"({verdict['speedup']:.2f}x)"
        )
    for provider, floor in report["machine"]["sgemm_gflop_per_s"].items():
        typer.echo(f"{provider} SGEMM floor: {floor:.0f} GFLOP/s" if floor else f"{provider} SGEMM floor: failed")
    if json_path is not None:
        write_bytes(json_path, (json.dumps(report, indent=2) + "\n").encode())
    if chart is not None:
        write_image(chart, bench_chart(report))


HEADER = (
    f"{'provider':<8} {'path':<6} {'optim':<5} {'size':>9} {'median s':>9} {'spread s':>15} {'MP/s':>7} "
    f"{'GFLOP/s':>8} {'of SGEMM':>8} {'host MB':>8} {'GPU MB':>7}  nodes off provider"
)


def format_row(row: dict) -> str:
    """One table line for a measured case (or its error)."""
    size = f"{row.get('width', row['size'])}x{row.get('height', row['size'])}"
    head = f"{row['provider']:<8} {row['path']:<6} {row.get('optimizer', 'lbfgs'):<5} {size:>9}"
    if "error" in row:
        return f"{head} failed: {row['error']}"
    gpu = f"{row['peak_gpu_mb']:.0f}" if row.get("peak_gpu_mb") is not None else "-"
    fraction = f"{row['fraction_of_sgemm']:.0%}" if "fraction_of_sgemm" in row else "-"
    spread = f"{row['min_s']:.3f}-{row['max_s']:.3f}"
    return (
        f"{head} {row['median_s']:>9.3f} {spread:>15} {row['megapixels_per_s']:>7.3f} {row['gflop_per_s']:>8.1f} "
        f"{fraction:>8} {row['peak_host_mb']:>8.0f} {gpu:>7}  {off_provider(row)}{matching(row)}"
    )


def matching(row: dict) -> str:
    """The nn loss's matching beside the evaluations, or nothing for other losses."""
    if "match_s" not in row:
        return ""
    return (
        f"\n{'':<8} matching every position: {row['match_s']:.3f} s once per scale "
        f"({row['match_s'] / row['median_s']:.1f} evaluations, {row['match_gflop'] / row['match_s']:.1f} GFLOP/s)"
    )


def off_provider(row: dict) -> str:
    """Nodes that ran on another provider than the one asked for (ONNX Runtime's fallback), or 'none'."""
    wanted = PROVIDERS[row["provider"]]
    others = {p: ops for p, ops in row.get("placement", {}).items() if p != wanted}
    if not others:
        return "none"
    return "; ".join(
        f"{p.replace('ExecutionProvider', '')}: " + ",".join(f"{op} x{n}" for op, n in sorted(ops.items()))
        for p, ops in others.items()
    )
