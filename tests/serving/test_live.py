"""`llmrec serve` for real: a subprocess on a free localhost port, called over HTTP, then stopped
with SIGTERM while a request is in flight (graceful shutdown answers it first)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def _wait_for_health(url: str, process: subprocess.Popen, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as response:
                return json.loads(response.read())
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url}/health did not answer within {timeout_s} s")


def test_serve_answers_over_http_and_shuts_down_gracefully(pop_dir: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "llmrec", "-v", "serve", str(pop_dir), "--port", str(port)]
    # A long batch wait keeps the last request in flight while SIGTERM arrives.
    command += ["--batch-wait-ms", "1000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for_health(url, process)["model"] == "pop"
        status, answer = _post(url + "/recommend", {"history": ["i1", "prodct 2 blue"], "k": 4})
        assert status == 200 and len(answer["items"]) == 4
        assert [entry["item_id"] for entry in answer["history"]] == ["i1", "i2"]  # "2" counts

        in_flight: list[tuple[int, dict]] = []
        body = {"history": ["i3"], "k": 2}
        thread = threading.Thread(target=lambda: in_flight.append(_post(url + "/recommend", body)))
        thread.start()
        time.sleep(0.4)
        process.send_signal(signal.SIGTERM)
        thread.join(timeout=30)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    status, answer = in_flight[0]
    assert status == 200 and len(answer["items"]) == 2
    # uvicorn re-raises SIGTERM after its graceful shutdown, the usual exit of a stopped server.
    assert process.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in stderr and "Traceback" not in stderr
