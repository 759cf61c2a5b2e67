"""Server hardening: slow and stalled clients (a real uvicorn server on localhost), the optional
API key and Host check, and no /docs page that would load assets from a CDN."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import SecretStr

from llmrec.cli.main import entry
from llmrec.data.catalogue import Catalogue, Item
from llmrec.errors import ConfigError
from llmrec.models.pop import PopConfig, Popularity
from llmrec.recommender import Recommender
from llmrec.serving.app import create_app
from llmrec.serving.connections import server_config
from llmrec.serving.schemas import ServeSettings
from llmrec.serving.security import read_api_key

KEY = "a-long-enough-test-key"
BODY = b'{"history": ["i1"], "k": 3}'


def _app(settings: ServeSettings):
    items = [Item(f"i{index}", title=f"product {index} red") for index in range(20)]
    model = Popularity(PopConfig(), Catalogue.from_items(items))
    model.fit([np.arange(20), np.arange(5)])
    return create_app(Recommender(model), settings)


@contextmanager
def _live_server(max_connections: int, timeout_read_s: float) -> Iterator[int]:
    """The app on uvicorn, as `llmrec serve` configures it, in a thread on a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = ServeSettings(batch_wait_ms=0, read_timeout_s=timeout_read_s)
    config = server_config(
        _app(settings),
        "127.0.0.1",
        port,
        timeout_keep_alive_s=5,
        timeout_read_s=timeout_read_s,
        max_connections=max_connections,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _recommend(port: int) -> tuple[int, float]:
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("POST", "/recommend", BODY, {"content-type": "application/json"})
        status = connection.getresponse().status
    finally:
        connection.close()
    return status, time.monotonic() - started


def _is_closed_by_server(sock: socket.socket, within_s: float) -> bool:
    sock.settimeout(within_s)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_stalled_clients_beyond_the_cap_do_not_stop_a_normal_request() -> None:
    cap, read_timeout_s = 8, 1.0
    with _live_server(cap, read_timeout_s) as port, ExitStack() as stack:
        stalled = []
        for index in range(3 * cap):  # some send nothing, some half a request's headers
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
            if index % 2:
                sock.sendall(b"POST /recommend HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-")
            stalled.append(sock)
        time.sleep(0.2)  # let the server accept them all
        status, seconds = _recommend(port)
        assert status == 200 and seconds < 2.0
        # The cap closed the oldest stalled connections at once, the read timeout the others.
        assert _is_closed_by_server(stalled[0], within_s=0.5)
        assert all(_is_closed_by_server(sock, read_timeout_s + 2) for sock in stalled)

        body_stall = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
        body_stall.sendall(
            b"POST /recommend HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b'Content-Length: 50\r\n\r\n{"hist'
        )
        body_stall.settimeout(read_timeout_s + 2)
        assert body_stall.recv(1024).startswith(b"HTTP/1.1 408 ")
        assert _recommend(port)[0] == 200


@pytest.fixture(scope="module")
def keyed_client() -> Iterator[TestClient]:
    settings = ServeSettings(batch_wait_ms=0, api_key=SecretStr(KEY))
    with TestClient(_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer wrong-key-of-some-length"}, {"authorization": f"Basic {KEY}"}],
    ids=["none", "wrong", "other scheme"],
)
def test_an_api_key_guards_every_route_but_health(
    keyed_client: TestClient, headers: dict[str, str]
) -> None:
    # Checked before the body is read: a malformed body without the key is a 401 too.
    assert keyed_client.post("/recommend", content=b"{", headers=headers).status_code == 401
    response = keyed_client.post("/recommend", content=BODY, headers=headers)
    assert response.status_code == 401 and response.json() == {"detail": "missing or wrong API key"}
    assert response.headers["www-authenticate"] == "Bearer"
    assert keyed_client.get("/items/i1", headers=headers).status_code == 401
    assert keyed_client.get("/openapi.json", headers=headers).status_code == 401
    assert keyed_client.get("/health", headers=headers).status_code == 200


def test_the_right_api_key_is_served(keyed_client: TestClient) -> None:
    headers = {"authorization": f"Bearer {KEY}"}
    json_headers = {**headers, "content-type": "application/json"}
    assert keyed_client.post("/recommend", content=BODY, headers=json_headers).status_code == 200
    assert keyed_client.get("/items/i1", headers=headers).json()["item_id"] == "i1"
    spec = keyed_client.get("/openapi.json", headers=headers).json()
    assert "401" in spec["paths"]["/recommend"]["post"]["responses"]


def test_allowed_hosts_refuse_other_host_headers() -> None:
    settings = ServeSettings(batch_wait_ms=0, allowed_hosts=("localhost", "127.0.0.1"))
    with TestClient(_app(settings), base_url="http://localhost:8000") as client:
        assert client.get("/health").status_code == 200
        rebound = client.get("/health", headers={"host": "attacker.example:8000"})
        assert rebound.status_code == 400


def test_no_docs_page_loads_assets_from_a_cdn() -> None:
    with TestClient(_app(ServeSettings(batch_wait_ms=0))) as client:
        assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404
        assert client.get("/openapi.json").json()["info"]["title"] == "llmrec"


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"short\n", "at least 16 characters"), (b"\xff" * 20, "cannot read the API key")],
)
def test_an_unusable_api_key_file_is_a_config_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "key"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        read_api_key(path)
    path.write_text(f"  {KEY}\n", encoding="utf-8")
    assert read_api_key(path).get_secret_value() == KEY


def test_serve_refuses_a_short_api_key_in_one_line(
    pop_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("short", encoding="utf-8")
    with pytest.raises(SystemExit) as exited:
        entry(["serve", str(pop_dir), "--api-key-file", str(key_file)])
    stderr = capsys.readouterr().err
    assert exited.value.code == 2 and stderr.count("\n") == 1
    assert stderr.startswith(f"error: {key_file}: the API key must have at least 16 characters")


def test_serve_on_a_port_in_use_ends_with_one_error_line(
    pop_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SystemExit) as exited:
            entry(["serve", str(pop_dir), "--port", str(port)])
    stderr = capsys.readouterr().err
    assert exited.value.code == 2 and "Traceback" not in stderr
    assert stderr.splitlines()[-1] == f"error: could not listen on 127.0.0.1:{port}"
