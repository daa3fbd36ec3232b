#!/usr/bin/env python3
"""Serve this folder on 127.0.0.1 with the headers WebAssembly threads need (cross-origin isolation).

    python3 serve.py [--port 8001] [--folder DIR]

Any static server works if it sends `Cross-Origin-Opener-Policy: same-origin` and
`Cross-Origin-Embedder-Policy: require-corp`; without them the page runs on one thread.
"""

import argparse
import functools
import http.server
import sys
from pathlib import Path


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".wasm": "application/wasm", ".onnx": "application/octet-stream"}  # fmt: skip

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, *args) -> None:  # quiet: one line at start is enough
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port (8001: beside nst serve's 8000)")
    parser.add_argument("--folder", default=str(Path(__file__).resolve().parent))
    args = parser.parse_args()
    if not (Path(args.folder) / "index.html").is_file():
        sys.exit(f"error: {args.folder} holds no index.html; give the folder nst export --web wrote")
    handler = functools.partial(Handler, directory=args.folder)
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    except OSError as exc:
        sys.exit(f"error: cannot listen on 127.0.0.1:{args.port} ({exc.strerror}); choose another --port")
    with server:
        print(f"serving {args.folder} at http://127.0.0.1:{server.server_address[1]}/", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass  # Ctrl-C is how one stops it


if __name__ == "__main__":
    main()
