"""HTTP pieces of ``conflict-ie serve`` that are not routes: the body-size limit and the API key.

Both work on plain ASGI scopes and Starlette requests, without FastAPI.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json


class BodyTooLarge(Exception):
    """Raised while reading a body that passed the limit (the app answers 413)."""


class BodyLimit:
    """Pure ASGI middleware: refuse a body over ``limit`` bytes with 413, by its Content-Length
    or, without one, while it streams in (nothing over the limit is buffered)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _send_json(send, 413, {"error": f"body: {int(declared)} bytes; at most {self.limit} "
                                                         "(--max-body-mb)", "field": "body"})
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _send_json(send, 413, {"error": f"body: over {self.limit} bytes (--max-body-mb)",
                                             "field": "body"})


async def _send_json(send, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def _key_of(request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if scheme.lower() == "basic" and value:
        try:
            _, _, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
            return password
        except (binascii.Error, UnicodeDecodeError):
            return None
    return request.headers.get("x-api-key")


def authorized(request, key: str | None) -> bool:
    """Whether the request carries ``key`` (always, when the server has no key)."""
    if key is None:
        return True
    given = _key_of(request)
    return given is not None and hmac.compare_digest(given.encode(), key.encode())


class BodyLimitApp(BodyLimit):
    """The FastAPI app behind :class:`BodyLimit`; ``.app`` is the FastAPI app (``.state.service``)."""

    @property
    def state(self):
        return self.app.state
