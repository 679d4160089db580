"""The application under its production server (granian, WSGI) in a subprocess, for tests that
stage an outage of a dependency underneath a real web process.

The process reads its settings from the environment like any deployment: the tests point
``DATABASE_URL`` and ``REDIS_URL`` at fault proxies (tests/support/faultproxy.py) in front
of the test database and Redis, and leave every timeout at its default, so what is measured
is what production does.

Usage::

    with LiveServer(database_url=..., redis_url=...) as server:
        reply = server.request("GET", "/healthz")
        reply.status, reply.json(), reply.seconds
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# The production command (README), with one worker process: one blocking thread serves
# every request, so a request stuck on a dependency holds up the ones behind it.
GRANIAN = [
    sys.executable, "-m", "granian", "--interface", "wsgi", "nordkestrel.wsgi:application",
    "--host", "127.0.0.1", "--workers", "1", "--blocking-threads", "1", "--no-ws",
]  # fmt: skip


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    def __init__(self, *, database_url: str, redis_url: str, **env: str) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DJANGO_ENV": "development",
            "DJANGO_DEBUG": "false",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self._log = tempfile.NamedTemporaryFile(prefix="liveserver-", suffix=".log")  # noqa: SIM115
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LiveServer:
        self._process = subprocess.Popen(
            [*GRANIAN, "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log()}")
            try:
                if self.request("GET", "/healthz", timeout=2).status == 200:
                    return self
            except OSError:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"the server did not start:\n{self.log()}")

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def log(self) -> str:
        """What the server wrote (JSON log lines, tracebacks), for assertions and failures."""
        return Path(self._log.name).read_text(errors="replace")

    def request(
        self,
        method: str,
        path: str,
        *,
        host: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> Reply:
        """One request on a fresh connection; ``body`` (not bytes or str) is sent as JSON."""
        sent_headers = {"Host": f"{host or '127.0.0.1'}:{self.port}", **(headers or {})}
        payload: bytes | None = None
        if body is not None:
            if isinstance(body, bytes):
                payload = body
            elif isinstance(body, str):
                payload = body.encode()
            else:
                payload = json.dumps(body).encode()
                sent_headers.setdefault("Content-Type", "application/json")
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=payload, headers=sent_headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        return Reply(
            status=response.status,
            headers={name.lower(): value for name, value in response.getheaders()},
            body=data,
            seconds=time.monotonic() - started,
        )
