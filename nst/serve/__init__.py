"""nst.serve: the HTTP host of `nst serve` and its web page (needs the `serve` extra: pip install -e ".[cpu,serve]").

from nst.serve import create_app
app = create_app(data="/var/lib/nst", token="...")   # an ASGI app; mount it or run it with uvicorn
"""

from __future__ import annotations


def create_app(config=None, **settings):
    """The ASGI app (FastAPI); settings are `nst.serve.config.ServeConfig`'s fields."""
    from .app import create_app as build

    return build(config, **settings)


__all__ = ["create_app"]
