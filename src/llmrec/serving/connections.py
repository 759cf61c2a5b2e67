"""uvicorn's h11 connection handling with two guards against slow or stalled clients.

- Read timeout: a connection must deliver a request's headers within `read_timeout_s` of
  connecting. uvicorn times only the wait between requests on a kept-alive connection
  (`timeout_keep_alive`), so a client that connects and sends nothing is kept forever.
- Connection cap: uvicorn's `limit_concurrency` answers 503 once that many connections are open,
  and stalled clients count. Here a new connection that reaches the cap first closes the
  connection that has waited longest for a request (never one with a request in flight), so
  stalled clients cannot hold every slot, or every file descriptor.

`server_config` makes the uvicorn config `llmrec serve` runs, with these guards.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

GRACEFUL_SHUTDOWN_S = 30  # in-flight requests get this long after SIGINT / SIGTERM


class GuardedH11Protocol(H11Protocol):
    def __init__(self, *args: Any, read_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout_s = read_timeout_s
        self.connected_at = self.loop.time()
        self._read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect_request()
        if self.limit_concurrency is not None:
            self._keep_under_cap(self.limit_concurrency)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._expect_request()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
        super().connection_lost(exc)

    def _expect_request(self) -> None:
        """Close the connection unless a request's headers arrive within the read timeout
        (uvicorn's keep-alive timer stops at the first byte, so it cannot tell)."""
        if self._read_timer is not None:
            self._read_timer.cancel()
        cycle = self.cycle  # a new request replaces it
        self._read_timer = self.loop.call_later(
            self.read_timeout_s,
            lambda: self.close_idle() if self.cycle is cycle else None,
        )

    def is_waiting_for_request(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _keep_under_cap(self, cap: int) -> None:
        # A closed connection leaves the set a loop iteration later: count the open ones.
        others = [
            connection
            for connection in self.connections
            if connection is not self
            and isinstance(connection, GuardedH11Protocol)
            and not connection.transport.is_closing()
        ]
        waiting = [connection for connection in others if connection.is_waiting_for_request()]
        if len(others) + 1 >= cap and waiting:
            min(waiting, key=lambda connection: connection.connected_at).close_idle()

    def close_idle(self) -> None:
        if not self.transport.is_closing() and self.is_waiting_for_request():
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_handler()  # uvicorn's way to close an idle connection


def server_config(
    app: Any,
    host: str,
    port: int,
    *,
    timeout_keep_alive_s: int,
    timeout_read_s: float,
    max_connections: int,
    log_level: str = "warning",
) -> uvicorn.Config:
    """uvicorn's settings for `app`, with the guarded protocol (h11) and the connection cap."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=partial(GuardedH11Protocol, read_timeout_s=timeout_read_s),  # type: ignore[arg-type]
        timeout_keep_alive=timeout_keep_alive_s,
        limit_concurrency=max_connections,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
