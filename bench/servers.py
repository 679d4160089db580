"""Which WSGI server to run in production: requests/s and p99 latency on loopback.

Serves the project under each candidate server and loads it with wrk (Debian package `wrk`):
- ``/healthz``: a bare JSON view through the whole middleware stack, no database;
- ``/readyz``: one database round trip and one cache round trip per request.

Each (server, path) pair is measured RUNS times and the median is reported, with the ratio
against gunicorn's sync worker measured in the same run. Usage:

    .venv/bin/python bench/servers.py [--runs 3] [--duration 8] [--connections 32]

Results go to stdout as a Markdown table; bench/RESULTS.md records them with the choice.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT = 8099
WORKERS = os.cpu_count() or 2

GRANIAN = [
    sys.executable, "-m", "granian", "--interface", "wsgi", "nordkestrel.wsgi:application",
    "--host", "127.0.0.1", "--port", str(PORT), "--workers", str(WORKERS),
    "--blocking-threads", "1", "--log-level", "warning",
]  # fmt: skip
# name -> (command, extra environment)
SERVERS: dict[str, tuple[list[str], dict[str, str]]] = {
    "gunicorn sync": ([
        sys.executable, "-m", "gunicorn", "nordkestrel.wsgi:application",
        "--bind", f"127.0.0.1:{PORT}", "--workers", str(WORKERS), "--worker-class", "sync",
        "--log-level", "warning",
    ], {}),
    "gunicorn gthread (4 threads)": ([
        sys.executable, "-m", "gunicorn", "nordkestrel.wsgi:application",
        "--bind", f"127.0.0.1:{PORT}", "--workers", str(WORKERS), "--worker-class", "gthread",
        "--threads", "4", "--log-level", "warning",
    ], {}),
    "granian wsgi (blocking-threads 1)": (GRANIAN, {}),
    "granian, DB_CONN_MAX_AGE=0": (GRANIAN, {"DB_CONN_MAX_AGE": "0"}),
}  # fmt: skip
PATHS = ["/healthz", "/readyz"]


def manage(env: dict[str, str], *args: str) -> str:
    """``manage.py`` with ``env``, its output (for the benchmarks' setup commands)."""
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
        capture_output=True, text=True,
    ).stdout  # fmt: skip


def ensure_database(database_url: str) -> None:
    """Create the benchmark's own database on the server of ``database_url`` if missing, as
    the schema's owner (the application role may create nothing: nordkestrel/dbroles.py)."""
    import psycopg

    from nordkestrel.database import role_url

    owner_url = role_url(database_url, "owner")
    name = owner_url.split("?")[0].rsplit("/", 1)[1]
    with psycopg.connect(owner_url.replace(f"/{name}?", "/postgres?"), autocommit=True) as db:
        if db.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            db.execute(f'CREATE DATABASE "{name}"')


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server did not come up at {url}")


def port_free(port: int = PORT) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def parse_wrk(output: str) -> tuple[float, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    match = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)
    assert match is not None, output
    value, unit = float(match.group(1)), match.group(2)
    p99_ms = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"{errors.group(1)} failed responses:\n{output}")
    return rps, p99_ms


def measure(
    command: list[str], extra_env: dict[str, str], runs: int, duration: int, connections: int
) -> dict:
    env = {**os.environ, "LOG_LEVEL": "WARNING", "DJANGO_DEBUG": "false", **extra_env}
    if not port_free():
        raise RuntimeError(f"port {PORT} is taken")
    server = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    try:
        wait_until_up(f"http://127.0.0.1:{PORT}/healthz")
        results = {}
        for path in PATHS:
            url = f"http://127.0.0.1:{PORT}{path}"
            subprocess.run(["wrk", "-t2", "-c8", "-d2s", url], capture_output=True, check=True)
            samples = []
            for _ in range(runs):
                out = subprocess.run(
                    ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", url],
                    capture_output=True, text=True, check=True,
                ).stdout  # fmt: skip
                samples.append(parse_wrk(out))
            results[path] = (
                statistics.median(s[0] for s in samples),
                statistics.median(s[1] for s in samples),
            )
        return results
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")

    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, check=True
    )
    table = {
        name: measure(command, extra_env, args.runs, args.duration, args.connections)
        for name, (command, extra_env) in SERVERS.items()
    }
    baseline = table["gunicorn sync"]
    print(f"{WORKERS} workers each; wrk -t2 -c{args.connections} -d{args.duration}s, "
          f"median of {args.runs} runs\n")  # fmt: skip
    print("| server | path | req/s | vs gunicorn sync | p99 ms |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, results in table.items():
        for path, (rps, p99) in results.items():
            ratio = rps / baseline[path][0]
            print(f"| {name} | {path} | {rps:,.0f} | {ratio:.2f}x | {p99:.1f} |")


if __name__ == "__main__":
    main()
