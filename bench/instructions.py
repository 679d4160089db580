"""Instructions per request, counted by valgrind's callgrind: a figure that does not move with
the load on a shared machine, for comparing two versions of the code on the same data.

For each path (``/healthz``, the storefront menu of ``bench_orders``' first restaurant, and a
3-line checkout through the storefront API, all in one process through Django's test client
and the same embedded PostgreSQL and Redis as ``bench/order_placement.py``), the script runs
itself under callgrind twice, with SMALL and LARGE requests after the same warm-up, and
reports (total(LARGE) - total(SMALL)) / (LARGE - SMALL): the Python process's instructions per
request, start-up and warm-up cancelled out. PostgreSQL's and Redis's own work is not
counted (they are other processes); ``bench_orders queries`` counts the statements.

Run ``bench/order_placement.py`` once first (it creates and fills its database). Usage, in
each checkout to compare:

    .venv/bin/python bench/instructions.py [--small 20] [--large 220]
        [--paths healthz,menu,checkout]

Needs valgrind (Debian package ``valgrind``). Results go to stdout as a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
WARM_UP = 20


def measure(path: str, count: int) -> None:
    """Inside callgrind: WARM_UP then ``count`` requests of ``path``."""
    sys.path.insert(0, str(HERE))
    import order_placement as bench  # bench/order_placement.py, beside this script

    bench.setup_django(bench.base_env(bench.DATABASE_URL, os.environ["BENCH_REDIS_URL"]))
    from django.test import Client

    from orders.management.commands.bench_orders import host as storefront_host

    if path == "checkout":
        request = bench.checkout_client(bench.FIRST)
    else:
        client = Client(HTTP_HOST=storefront_host(bench.FIRST))
        url = "/healthz" if path == "healthz" else "/api/v1/storefront/menu"

        def request() -> None:
            response = client.get(url)
            assert response.status_code == 200, response.status_code

    for _ in range(WARM_UP + count):
        request()


def collected(path: str, count: int, redis_url: str) -> int:
    with tempfile.TemporaryDirectory() as directory:
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={directory}/out",
             sys.executable, __file__, "--measure", path, str(count)],
            env={**os.environ, "BENCH_REDIS_URL": redis_url}, capture_output=True, text=True,
        )  # fmt: skip
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode or not found:
        raise RuntimeError(f"callgrind run failed:\n{run.stderr[-3000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=20)
    parser.add_argument("--large", type=int, default=220)
    parser.add_argument("--paths", default="healthz,menu,checkout")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(args.measure[0], int(args.measure[1]))
    print("| path | instructions per request | vs /healthz |")
    print("| --- | ---: | ---: |")
    per: dict[str, float] = {}
    for path in args.paths.split(","):
        small = collected(path, args.small, args.redis_url)
        large = collected(path, args.large, args.redis_url)
        per[path] = (large - small) / (args.large - args.small)
        ratio = f"{per['healthz'] / per[path]:.2f}x" if "healthz" in per else "-"
        print(f"| {path} | {per[path]:,.0f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
