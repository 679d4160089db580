"""The storefront menu read against the minimal Django JSON view: requests/s and p99 on loopback.

Publishes a 200-item menu (``manage.py bench_menu``, about 62 KB of JSON), serves the project
with granian as in production (``--interface wsgi --workers 2 --blocking-threads 1``) and loads
it with wrk (Debian package `wrk`), in one server run per cache configuration:
- ``/healthz``: the project's minimal JSON view (through the whole middleware stack);
- ``GET /api/v1/storefront/menu`` with ``Host: bench-menu.localhost``: the full menu (200);
- the same with ``If-None-Match: <its ETag>``: the revalidation answer (304).

Each path is measured RUNS times, the paths taking turns so drift on a noisy machine hits them
alike; the median is reported with the ratio against ``/healthz`` in the same server run.
Targets (issue 5): the full menu at 0.75 of ``/healthz`` or more, the 304 at 0.95 or more.
Development settings with ``DJANGO_DEBUG=false`` and ``LOG_LEVEL=WARNING``; the cache is the
process-local memory cache (no ``REDIS_URL``) and then Redis (``--redis-url``, empty to skip).
Usage:

    .venv/bin/python bench/menu_read.py [--runs 5] [--duration 8] [--connections 32]
        [--redis-url redis://127.0.0.1:6379/3]

Results go to stdout as a Markdown table; bench/RESULTS.md records them.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from servers import port_free, wait_until_up  # bench/servers.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
PORT = 8097  # bench/servers.py uses 8099; both may be run on one machine
WORKERS = 2
SLUG = "bench-menu"
ITEMS = 200
HOST = f"{SLUG}.localhost"  # <slug>.<STOREFRONT_DOMAIN>, whose default is localhost
MENU = "/api/v1/storefront/menu"
BASELINE = "/healthz"
TARGETS = {"menu (200)": 0.75, "menu (304)": 0.95}

GRANIAN = [
    sys.executable, "-m", "granian", "--interface", "wsgi", "nordkestrel.wsgi:application",
    "--host", "127.0.0.1", "--port", str(PORT), "--workers", str(WORKERS),
    "--blocking-threads", "1", "--log-level", "warning",
]  # fmt: skip


def parse_wrk(output: str) -> tuple[float, float, float]:
    """(requests/s, p99 ms, bytes read per response)."""
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"{errors.group(1)} failed responses:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    match = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)
    assert match is not None, output
    value, unit = float(match.group(1)), match.group(2)
    p99_ms = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    read = re.search(r"(\d+) requests in [\d.]+\w+, ([\d.]+)([KMG]?B) read", output)
    assert read is not None, output
    scale = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}[read.group(3)]
    return rps, p99_ms, float(read.group(2)) * scale / int(read.group(1))


def fetch_menu(headers: dict[str, str] | None = None) -> tuple[int, str, int]:
    """(status, ETag, body length) of one storefront read."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}{MENU}", headers={"Host": HOST, **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["ETag"], len(response.read())
    except urllib.error.HTTPError as error:  # urllib raises on 304
        return error.code, error.headers["ETag"], len(error.read())


def measure(extra_env: dict[str, str], runs: int, duration: int, connections: int) -> dict:
    inherited = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env = {**inherited, "LOG_LEVEL": "WARNING", "DJANGO_DEBUG": "false", **extra_env}
    # The menu is (re)announced to this configuration's cache before the server starts.
    subprocess.run(
        [sys.executable, "manage.py", "bench_menu", "--slug", SLUG, "--items", str(ITEMS)],
        cwd=ROOT, env=env, check=True,
    )  # fmt: skip
    if not port_free(PORT):
        raise RuntimeError(f"port {PORT} is taken")
    server = subprocess.Popen(GRANIAN, cwd=ROOT, env=env, start_new_session=True)
    try:
        wait_until_up(f"http://127.0.0.1:{PORT}{BASELINE}")
        status, etag, size = fetch_menu()
        if status != 200 or not etag or size < 50_000:
            raise RuntimeError(f"the menu read answered {status}, ETag {etag!r}, {size} bytes")
        status, _, empty = fetch_menu({"If-None-Match": etag})
        if status != 304 or empty:
            raise RuntimeError(f"the revalidation answered {status} with {empty} bytes")
        url = f"http://127.0.0.1:{PORT}"
        cases = {
            BASELINE: ["wrk", f"{url}{BASELINE}"],
            "menu (200)": ["wrk", "-H", f"Host: {HOST}", f"{url}{MENU}"],
            "menu (304)": ["wrk", "-H", f"Host: {HOST}", "-H", f"If-None-Match: {etag}",
                           f"{url}{MENU}"],
        }  # fmt: skip
        for command in cases.values():  # warm every worker and its caches
            subprocess.run(
                [*command[:-1], "-t2", "-c8", "-d2s", command[-1]], capture_output=True, check=True
            )
        samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in cases}
        for _ in range(runs):
            for name, command in cases.items():
                out = subprocess.run(
                    [*command[:-1], "-t2", f"-c{connections}", f"-d{duration}s", "--latency",
                     command[-1]],
                    capture_output=True, text=True, check=True,
                ).stdout  # fmt: skip
                samples[name].append(parse_wrk(out))
        results = {
            name: tuple(statistics.median(s[i] for s in values) for i in range(3))
            for name, values in samples.items()
        }
        # Under load too, the body must be the whole menu for 200 and empty for 304.
        if results["menu (200)"][2] < size or results["menu (304)"][2] > 1024:
            raise RuntimeError(f"unexpected bytes per response: {results}")
        return {"size": size, **results}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/3",
        help="second configuration's REDIS_URL; empty to measure the memory cache only",
    )  # fmt: skip
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")

    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, check=True
    )
    configurations: dict[str, dict[str, str]] = {"local memory cache": {}}
    if args.redis_url:
        configurations[f"Redis ({args.redis_url})"] = {"REDIS_URL": args.redis_url}
    table = {
        name: measure(extra_env, args.runs, args.duration, args.connections)
        for name, extra_env in configurations.items()
    }
    size = next(iter(table.values()))["size"]
    print(f"\ngranian, {WORKERS} workers, 1 blocking thread each; wrk -t2 -c{args.connections} "
          f"-d{args.duration}s, median of {args.runs} runs; {ITEMS}-item menu, "
          f"{size:,} bytes of JSON\n")  # fmt: skip
    print("| cache | path | req/s | vs /healthz | p99 ms | KB/response |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    verdicts = []
    for config, results in table.items():
        baseline = results[BASELINE][0]
        for name in (BASELINE, *TARGETS):
            rps, p99, per_response = results[name]
            ratio = rps / baseline
            print(f"| {config} | {name} | {rps:,.0f} | {ratio:.2f}x | {p99:.1f} "
                  f"| {per_response / 1024:.1f} |")  # fmt: skip
            if name in TARGETS:
                met = "met" if ratio >= TARGETS[name] else "MISSED"
                verdicts.append(f"{config}, {name}: {ratio:.2f} (target {TARGETS[name]}) {met}")
    print("\n" + "\n".join(verdicts))


if __name__ == "__main__":
    main()
