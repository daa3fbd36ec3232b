"""`nst info`: version, model file and hash, execution providers, numba cache state."""

from __future__ import annotations

import typer


def info() -> None:
    """Show the version, the model file and its hash, the execution providers and the numba cache state."""
    from nst.engine.diagnostics import describe

    for key, value in describe().items():
        typer.echo(f"{key:<22} {value}")
