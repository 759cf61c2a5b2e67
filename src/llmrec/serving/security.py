"""The server's optional API key: `Authorization: Bearer KEY`, compared in constant time.

The key is read from a file (`llmrec serve --api-key-file`), never from the command line, where
other users of the machine could read it in the process list.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection
from pathlib import Path

from pydantic import SecretStr
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from llmrec.errors import ConfigError

MIN_KEY_CHARS = 16


def read_api_key(path: Path) -> SecretStr:
    """The file's text without surrounding whitespace: at least 16 characters of UTF-8."""
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the API key: {error}") from None
    if len(key) < MIN_KEY_CHARS:
        raise ConfigError(f"{path}: the API key must have at least {MIN_KEY_CHARS} characters")
    return SecretStr(key)


class ApiKeyGuard:
    """ASGI middleware: 401 unless a request carries `Authorization: Bearer KEY`, checked before
    anything else is read. `open_paths` (GET /health, a load balancer's probe) need no key."""

    def __init__(self, app: ASGIApp, key: SecretStr, open_paths: Collection[str]) -> None:
        self.app, self.open_paths = app, frozenset(open_paths)
        self.expected = key.get_secret_value().encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in self.open_paths:
            scheme, _, token = dict(scope["headers"]).get(b"authorization", b"").partition(b" ")
            # Constant time: the comparison does not tell how much of a guess was right.
            if not (scheme.lower() == b"bearer" and hmac.compare_digest(token, self.expected)):
                refusal = JSONResponse(
                    {"detail": "missing or wrong API key"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)
