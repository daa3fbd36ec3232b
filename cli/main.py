"""`nst` entry point: registers one module per command and turns engine errors into one line."""

from __future__ import annotations

import sys

import typer

from . import batch, bench, export, info, transfer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Neural style transfer on ONNX Runtime (no PyTorch or TensorFlow at run time).",
)
app.command("transfer")(transfer.transfer)
app.command("batch")(batch.batch)
app.command("info")(info.info)
app.command("bench")(bench.bench)
app.command("export")(export.export)


def main() -> None:
    """Run the app; any NstError becomes `error: ...` on stderr and exit status 2."""
    from nst.engine.errors import NstError

    try:
        app()
    except NstError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted; no output was written", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
