"""ASGI layers in front of every route: the bearer token, and the request size counted as it arrives."""

from __future__ import annotations

import hmac
import json

PUBLIC = ("/", "/favicon.ico")  # the page and its assets hold no data; the page asks for the token itself
PUBLIC_PREFIX = "/static/"


class BodyTooLarge(Exception):
    """The request body passed the upload limit while it was being received."""


async def _answer(send, status: int, reason: str, headers: list | None = None) -> None:
    body = json.dumps({"error": reason}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body})


class TokenGuard:
    """Every request but the page's own files needs `Authorization: Bearer <token>` (401 without or wrong, RFC 6750)."""

    def __init__(self, app, token: str | None, on_refuse) -> None:
        self.app, self.token, self.on_refuse = app, token, on_refuse

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not self.token or path in PUBLIC or path.startswith(PUBLIC_PREFIX):
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not value:
            self.on_refuse(401)
            return await _answer(
                send, 401, "this server needs Authorization: Bearer <token>", [(b"www-authenticate", b"Bearer")]
            )
        if not hmac.compare_digest(value.strip().encode(), self.token.encode()):
            self.on_refuse(401)  # RFC 6750: an invalid token is 401 with the error in WWW-Authenticate
            challenge = b'Bearer error="invalid_token"'
            return await _answer(
                send, 401, "the token is not this server's; ask its operator for it", [(b"www-authenticate", challenge)]
            )
        await self.app(scope, receive, send)


class UploadLimit:
    """Refuse a body over `limit` bytes: at once from its Content-Length, or as it streams in (413)."""

    def __init__(self, app, limit: int, on_refuse) -> None:
        self.app, self.limit, self.on_refuse = app, limit, on_refuse

    def refusal(self) -> str:
        return f"the upload is larger than this server's {self.limit / 2**20:g} MB; send smaller images"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT"):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            self.on_refuse(413)
            return await _answer(send, 413, self.refusal())
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge(self.refusal())
            return message

        await self.app(scope, counted, send)
