"""`nst serve`'s process: the app under uvicorn, where a request to stop also ends the open event streams.

uvicorn waits for open connections before it shuts the app down and cancels what is left after its grace
period; an event stream never ends by itself, so without a word from here each would be cancelled mid-send
and logged as an error.
"""

from __future__ import annotations

import socket

import uvicorn
from fastapi import FastAPI

from nst.engine.errors import NstError

GRACE_SECONDS = 5  # for open requests to end; the transfers themselves stop and stay queued


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else starts, so a taken port or a bad host is one line."""
    try:
        family = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart need not wait
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        raise NstError(f"--host {host} --port {port}: {exc.strerror or exc}; choose another port or host") from None
    return sock


def run(app: FastAPI, sock: socket.socket) -> None:
    """Serve `app` (from `create_app`) on `sock` (from `listen`) until SIGINT or SIGTERM."""
    server = app.state.server

    class Uvicorn(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            server.stopping = True  # event streams see it within a second and end
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=GRACE_SECONDS)
    Uvicorn(config).run(sockets=[sock])
