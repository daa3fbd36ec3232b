"""`nst serve`'s process: the app under uvicorn, where a request to stop also ends the open event streams.

uvicorn waits for open connections before it shuts the app down and cancels what is left after its grace
period; an event stream never ends by itself, so without a word from here each would be cancelled mid-send
and logged as an error.
"""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

GRACE_SECONDS = 5  # for open requests to end; the transfers themselves stop and stay queued


def run(app: FastAPI, host: str, port: int) -> None:
    """Serve `app` (from `create_app`) until SIGINT or SIGTERM."""
    server = app.state.server

    class Uvicorn(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            server.stopping = True  # event streams see it within a second and end
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=GRACE_SECONDS)
    Uvicorn(config).run()
