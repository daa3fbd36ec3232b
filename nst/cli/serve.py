"""`nst serve`: the HTTP host (transfers over the network, the web page), on the `serve` extra."""

from pathlib import Path
from typing import Any, Optional

import typer

from nst.engine.errors import NstError
from nst.serve.config import ServeConfig, check_bind

from .interrupts import interrupted


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on; beyond loopback it needs --token."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    workers: Optional[int] = typer.Option(None, help="Transfers at once [one per 2 cores]; each gets its cores."),
    data: Optional[Path] = typer.Option(None, help="Folder for jobs and results [the user data folder]."),
    token: Optional[str] = typer.Option(
        None, envvar="NST_TOKEN", show_default=False, help="Every request needs Authorization: Bearer TOKEN."
    ),
    max_upload_mb: float = typer.Option(ServeConfig.max_upload_mb, help="Largest request (all its images) in MB."),
    max_megapixels: float = typer.Option(
        ServeConfig.max_megapixels, help="Largest uploaded image in megapixels, read from its header."
    ),
    max_size: int = typer.Option(ServeConfig.max_size, help="Largest result side in pixels a client may ask for."),
    max_iterations: int = typer.Option(
        ServeConfig.max_iterations, help="Most iterations of one transfer, all scales together."
    ),
    queue: int = typer.Option(ServeConfig.queue, help="Jobs that may wait for a worker; more get 429."),
    keep_hours: float = typer.Option(
        ServeConfig.keep_hours, help="Finished results are removed after this many hours."
    ),
    upload_seconds: float = typer.Option(
        ServeConfig.upload_seconds, help="Longest an upload may take; a slower one gets 408 and frees its place."
    ),
) -> None:
    """Serve transfers over HTTP (docs/serve.md) and the web page at /."""
    try:
        from nst.serve.app import create_app
        from nst.serve.run import listen, run
    except ImportError:
        from nst.engine.diagnostics import install

        raise NstError(f"nst serve needs the serve extra: {install('cpu,serve')}") from None
    check_bind(host, token)
    settings: dict[str, Any] = dict(
        token=token,
        max_upload_mb=max_upload_mb,
        max_megapixels=max_megapixels,
        max_size=max_size,
        max_iterations=max_iterations,
        queue=queue,
        keep_hours=keep_hours,
        upload_seconds=upload_seconds,
    )
    settings.update({k: v for k, v in (("data", data), ("workers", workers)) if v is not None})
    config = ServeConfig(**settings).checked()
    sock = listen(host, port)
    app = create_app(config)
    where = f"[{host}]" if ":" in host else host  # an IPv6 address goes in brackets in a URL
    typer.echo(
        f"nst serve: http://{where}:{port}/ ({config.workers} worker(s) x {config.threads} thread(s), "
        f"jobs in {config.data})"
    )
    try:
        run(app, sock)
    except KeyboardInterrupt:  # the server has shut down gracefully, then Ctrl-C's own signal comes back
        interrupted("nst serve stopped; running and queued jobs stay queued and resume at the next start")
