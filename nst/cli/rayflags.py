"""The --ray flags `nst batch` and `nst video` share (declared once; nothing here imports ray)."""

from typing import Optional

import typer

ADDRESS: Optional[str] = typer.Option(
    None,
    "--ray",
    metavar="[ADDRESS]",
    help="Run on Ray: alone (or 'local') starts a local cluster, else joins ADDRESS.",
)
ACTORS: int = typer.Option(2, "--ray-actors", help="With --ray: actors (model copies) working at once.")
THREADS: int = typer.Option(1, "--ray-threads", help="With --ray: CPU threads per actor.")
GPUS: float = typer.Option(0.0, "--ray-gpus", help="With --ray: GPUs per actor (with --device cuda).")
