"""`nst` entry point: registers one module per command and turns engine errors into one line."""

from __future__ import annotations

import sys

import typer

from . import batch, bench, export, info, serve, transfer, video
from .interrupts import INTERRUPTED, report_interruption

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
app.command("serve")(serve.serve)
app.command("video")(video.video)
app.command("export")(export.export)


def optional_ray_address(argv: list[str]) -> list[str]:
    """`--ray` may stand alone (a local cluster): give it the value 'local' unless an address follows
    (host:port, ray://..., or 'auto'), which click cannot tell by itself."""
    out = []
    for i, arg in enumerate(argv):
        out.append(arg)
        following = argv[i + 1] if i + 1 < len(argv) else ""
        if arg == "--ray" and not (":" in following or following in ("auto", "local")):
            out.append("local")
    return out


def _one_line_warnings() -> None:
    """The engine's NstWarning (a setting it changed so the run goes on) as one `warning:` line, without
    Python's file and line."""
    import warnings

    from nst.engine.errors import NstWarning

    shown = warnings.showwarning

    def show(message, category, *args, **kwargs):
        if issubclass(category, NstWarning):
            typer.echo(f"warning: {message}", err=True)
        else:
            shown(message, category, *args, **kwargs)

    warnings.showwarning = show


def main() -> None:
    """Run the app; a usage error or an NstError becomes `error: ...` on stderr and exit status 2."""
    from nst.engine.errors import NstError

    args = optional_ray_address(sys.argv[1:]) or ["--help"]
    _one_line_warnings()
    try:
        code = app(args=args, standalone_mode=False)
    except typer.TyperException as exc:  # click's usage block and message, in one line
        ctx = getattr(exc, "ctx", None)
        command = [args[0]] if args and any(c.name == args[0] for c in app.registered_commands) else []
        hint = f" ({ctx.command_path if ctx else ' '.join(['nst', *command])} --help shows the options)"
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        typer.echo(f"error: {message}{hint}", err=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except NstError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        code = INTERRUPTED
    if code == INTERRUPTED:  # typer turns Ctrl-C into exit status 130 without a word
        report_interruption()
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
