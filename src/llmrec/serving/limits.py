"""Request-body limits for the server: larger bodies get 413 before any parsing, and a body that
stalls (no bytes for `read_timeout_s`) gets 408, so a slow client cannot hold a request open."""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimits:
    """ASGI middleware: 413 when Content-Length or the bytes streamed pass `max_bytes`; 408 when
    the next chunk of the body takes longer than `read_timeout_s` (None: no timeout)."""

    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout_s: float | None = None) -> None:
        self.app, self.max_bytes, self.read_timeout_s = app, max_bytes, read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large()(scope, receive, send)
            return
        received, is_body_done = 0, False

        async def limited() -> Message:  # a chunked body has no Content-Length to check
            nonlocal received, is_body_done
            if is_body_done:  # later calls wait for a disconnect while answering: no timeout
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout_s)
            except TimeoutError:
                raise HTTPException(408, self._stalled()) from None
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, self._message())
            is_body_done = not message.get("more_body", False)
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return f"request body is larger than the limit of {self.max_bytes} bytes"

    def _stalled(self) -> str:
        return f"no request body bytes for {self.read_timeout_s} s (the read timeout)"

    def _too_large(self) -> JSONResponse:
        return JSONResponse({"detail": self._message()}, status_code=413)
