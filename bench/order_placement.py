"""Order placement against a bare order-inserting view: orders/s and p99 on loopback.

Sets up its own database (``nordkestrel_bench_orders`` on the embedded PostgreSQL, migrated)
and ``manage.py bench_orders setup``: RESTAURANTS restaurants ``bench-orders-<n>``, each with
a published 80-item menu, open for the whole run, no cap on orders per slot. Then serves the
project with granian as in production (``--interface wsgi --workers 2 --blocking-threads 1``)
under ``bench/bench_settings.py`` (the project's settings and URLs plus two bench-only views on
the application host) and loads it with wrk (Debian package `wrk`) and a Lua script that sends
every request with its own ``Idempotency-Key`` and diner email and a cart of three lines with
options:
- ``baseline``: ``POST /bench/bare-order``, a view that inserts a customer, an order and three
  lines in one transaction in the tenant context, through the ORM, and nothing else;
- ``service``: ``POST /bench/place-order``, ``parse_checkout`` + ``place_order`` behind the
  same bare view (what the checkout costs without the API view around it);
- ``checkout, 1 restaurant``: ``POST /api/v1/storefront/checkout`` on one storefront host;
- ``checkout, N restaurants``: the same, the Host header rotating over N restaurants.

Two configurations, both with Redis as the cache (``--redis-url``), ``CHECKOUT_RATE`` so high
it never refuses, and the project's task queue (the order email is queued; no worker runs it
here): django-ratelimit counting as in production, and switched off (``RATELIMIT_ENABLE =
False``), to price its checks on the write path.

One server per configuration, all running at once; every (configuration, case) takes its turn,
RUNS rounds, so drift on a noisy machine hits them alike. The median is reported with the
ratio against the baseline of the same server. Every response must be 201, and after each
run the database must hold one new order per response wrk counted (plus at most one per
connection: requests in flight when wrk stops still complete). Also printed: the queries one
order takes for carts of 1, 3 and 20 lines (``bench_orders queries``), and in one process,
one django-ratelimit check against that Redis and whole checkouts with it on and off.
Target (issue 6): checkout at 0.5 of the baseline or more. Usage:

    .venv/bin/python bench/order_placement.py [--runs 5] [--duration 8] [--connections 32]
        [--restaurants 20] [--redis-url redis://127.0.0.1:6379/5]
    .venv/bin/python bench/order_placement.py --profile 2000  # cProfile, checkouts in-process
    .venv/bin/python bench/order_placement.py --in-process 100  # quick ratio, one process

Results go to stdout as a Markdown table; bench/RESULTS.md records them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from servers import (  # bench/servers.py, beside this script
    ensure_database,
    manage,
    port_free,
    wait_until_up,
)

from nordkestrel.database import role_url

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
PORT = 8093  # and up, one per configuration; servers.py uses 8099, menu_read.py 8097
WORKERS = 2
ITEMS = 80
DATABASE_URL = f"postgres://nordkestrel@/nordkestrel_bench_orders?host={ROOT}/.data/postgres"
CHECKOUT = "/api/v1/storefront/checkout"
BASELINE = "baseline"
FIRST = "bench-orders-1"  # the restaurant of the one-restaurant cases
TARGET = 0.5
# Far above anything a run sends from its one client address: the limiter counts, never refuses.
UNLIMITED_RATE = "1000000000/m"

PRODUCTION_LIKE = "limiter on"
LIMITER_OFF = "limiter off"
# One server each.
CONFIGURATIONS = {
    PRODUCTION_LIKE: {"BENCH_RATELIMIT": "true"},
    LIMITER_OFF: {"BENCH_RATELIMIT": "false"},
}

GRANIAN = [
    sys.executable, "-m", "granian", "--interface", "wsgi", "nordkestrel.wsgi:application",
    "--host", "127.0.0.1", "--workers", str(WORKERS),
    "--blocking-threads", "1", "--log-level", "warning",
]  # fmt: skip

# wrk Lua: ``targets`` (prepended) lists {path, host, restaurant, lines}; each thread takes
# them in turn. Every request gets its own key and email (args[1] is unique per wrk run).
LUA = r"""
local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1]
  sent = 0
  failed = 0
  first_failure = nil
end

function request()
  sent = sent + 1
  local target = targets[(sent + id) % #targets + 1]
  local key = prefix .. "-" .. id .. "-" .. sent
  local body = '{"lines":' .. target.lines .. ',"name":"Bench Diner","email":"' .. key ..
    '@bench.example.com","tip":100}'
  local headers = {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = key,
    ["X-Bench-Restaurant"] = target.restaurant,
  }
  if target.host then headers["Host"] = target.host end
  return wrk.format("POST", target.path, headers, body)
end

function response(status, headers, body)
  if status ~= 201 then
    failed = failed + 1
    if first_failure == nil then first_failure = status .. " " .. string.sub(body, 1, 300) end
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("failed")
    local failure = thread:get("first_failure")
    if failure then io.write("first failure: " .. failure .. "\n") end
  end
  io.write("not 201: " .. total .. "\n")
end
"""


def lua_script(directory: Path, name: str, targets: list[dict[str, Any]]) -> Path:
    def entry(target: dict[str, Any]) -> str:
        host = f'"{target["host"]}"' if target["host"] else "nil"
        return (
            f'  {{path = "{target["path"]}", host = {host}, '
            f'restaurant = "{target["slug"]}", lines = [==[{json.dumps(target["lines"])}]==]}},'
        )

    script = directory / f"{name}.lua"
    script.write_text("targets = {\n" + "\n".join(map(entry, targets)) + "\n}\n" + LUA)
    return script


def parse_wrk(output: str) -> tuple[float, float, int]:
    """(requests/s, p99 ms, responses)."""
    failed = re.search(r"not 201: (\d+)", output)
    assert failed is not None, output
    if int(failed.group(1)) or "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"failed responses:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    match = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)
    assert match is not None, output
    value, unit = float(match.group(1)), match.group(2)
    p99_ms = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    done = re.search(r"(\d+) requests in", output)
    assert done is not None, output
    return rps, p99_ms, int(done.group(1))


def base_env(database_url: str, redis_url: str) -> dict[str, str]:
    inherited = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    return {
        **inherited,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CHECKOUT_RATE": UNLIMITED_RATE,
        "DJANGO_SETTINGS_MODULE": "bench_settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(BENCH)]),
        "LOG_LEVEL": "WARNING",
        "DJANGO_DEBUG": "false",
    }


def order_count(database_url: str) -> int:
    """Orders in the database once the server is idle: requests wrk abandoned when it
    stopped still complete, so count until two counts 0.3 s apart agree."""
    # As the platform role, the only one that sees every restaurant's orders.
    with psycopg.connect(role_url(database_url, "platform"), autocommit=True) as db:
        previous = -1
        while True:
            row = db.execute("SELECT count(*) FROM orders_order").fetchone()
            assert row is not None
            if row[0] == previous:
                return previous
            previous = row[0]
            time.sleep(0.3)


def measure(
    env: dict[str, str], cases: dict[str, Path], args: argparse.Namespace
) -> dict[str, dict[str, tuple[float, float]]]:
    """{configuration: {case: (median orders/s, median p99 ms)}}. One server per configuration,
    all up at once; each round loads every (configuration, case) in turn, starting one turn
    later each round, so drift on a noisy machine hits them alike and configurations compare
    as fairly as cases do."""
    ports = {config: PORT + n for n, config in enumerate(CONFIGURATIONS)}
    taken = [port for port in ports.values() if not port_free(port)]
    if taken:
        raise RuntimeError(f"ports {taken} are taken")
    servers = [
        subprocess.Popen(
            [*GRANIAN, "--port", str(ports[config])],
            cwd=ROOT,
            env={**env, **extra},
            start_new_session=True,
        )
        for config, extra in CONFIGURATIONS.items()
    ]
    try:
        for port in ports.values():
            wait_until_up(f"http://127.0.0.1:{port}/healthz")

        def wrk(port: int, script: Path, connections: int, duration: int) -> tuple[float, float]:
            before = order_count(args.database_url)
            out = subprocess.run(
                ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
                 "--latency", "-s", str(script), f"http://127.0.0.1:{port}", "--",
                 uuid.uuid4().hex[:10]],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            rps, p99, responses = parse_wrk(out)
            placed = order_count(args.database_url) - before
            if not responses <= placed <= responses + connections:
                raise RuntimeError(f"{responses} responses but {placed} new orders:\n{out}")
            return rps, p99

        for port in ports.values():  # warm every worker: menus parsed, connections open
            for script in cases.values():
                wrk(port, script, 8, 2)
        samples: dict[tuple[str, str], list[tuple[float, float]]] = {
            (config, name): [] for config in ports for name in cases
        }
        turns = list(samples.items())
        for run in range(args.runs):
            # Each round starts one turn later, so no case always follows the same one.
            shift = run % len(turns)
            for (config, name), values in turns[shift:] + turns[:shift]:
                values.append(wrk(ports[config], cases[name], args.connections, args.duration))
                print(f"run {run + 1}, {config}, {name}: {values[-1][0]:.0f}/s", file=sys.stderr)
        table: dict[str, dict[str, tuple[float, float]]] = {config: {} for config in ports}
        for (config, name), values in samples.items():
            rates, p99s = zip(*values, strict=True)
            table[config][name] = (statistics.median(rates), statistics.median(p99s))
        return table
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
        for server in servers:
            server.wait(timeout=30)


def setup_django(env: dict[str, str]) -> None:
    """Django in this process, with the bench environment and settings."""
    import django

    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    django.setup()


def checkout_client(slug: str) -> Any:
    """A function that places one order through the storefront API (Django's test client)."""
    from django.test import Client

    from orders.management.commands.bench_orders import cart, host
    from tenants.models import Restaurant

    lines = cart(Restaurant.objects.get(slug=slug), 3)
    client = Client(HTTP_HOST=host(slug))

    def checkout() -> None:
        key = uuid.uuid4().hex
        body = {"lines": lines, "name": "Bench Diner", "email": f"{key}@bench.example.com"}
        response = client.post(
            CHECKOUT, body, content_type="application/json", headers={"Idempotency-Key": key}
        )
        assert response.status_code == 201, response.content

    return checkout


def time_limiter(env: dict[str, str], count: int, slug: str) -> None:
    """What the checkout's rate-limit check costs, in one process against the configured
    cache: one ``nordkestrel.ratelimit.limit`` call, and whole checkouts with django-ratelimit
    on and off in alternating batches of ``count`` (medians; the difference is per pair)."""
    setup_django(env)
    from django.conf import settings
    from django.test import RequestFactory, override_settings

    from nordkestrel.ratelimit import OnOutage, limit

    request = RequestFactory().post(CHECKOUT, REMOTE_ADDR="127.0.0.1")
    checkout = checkout_client(slug)
    for _ in range(20):
        checkout()
    checks: list[float] = []
    on: list[float] = []
    off: list[float] = []
    for _ in range(9):
        started = time.perf_counter()
        for _ in range(count):
            limit(request, group="checkout", rate=settings.CHECKOUT_RATE, on_outage=OnOutage.ALLOW)
        checks.append((time.perf_counter() - started) / count * 1000)
        for enabled, batches in ((True, on), (False, off)):
            with override_settings(RATELIMIT_ENABLE=enabled):
                started = time.perf_counter()
                for _ in range(count):
                    checkout()
                batches.append((time.perf_counter() - started) / count * 1000)
    print(
        json.dumps(
            {
                "check_ms": statistics.median(checks),
                "checkout_on_ms": statistics.median(on),
                "checkout_off_ms": statistics.median(off),
                "difference_ms": statistics.median(a - b for a, b in zip(on, off, strict=True)),
            }
        )
    )


def in_process(env: dict[str, str], count: int, slug: str) -> None:
    """The checkout against the bare view in this one process (Django's test client, no
    server, no concurrency): alternating batches of ``count`` orders, 7 rounds, the median
    wall time per order of each and their ratio per round. A quick check while changing
    the checkout; the server run above is the measurement of record."""
    setup_django(env)
    from django.test import Client

    from orders.management.commands.bench_orders import cart
    from tenants.models import Restaurant

    checkout = checkout_client(slug)
    lines = cart(Restaurant.objects.get(slug=slug), 3)
    bare = Client(HTTP_X_BENCH_RESTAURANT=slug)

    def baseline() -> None:
        key = uuid.uuid4().hex
        body = {"lines": lines, "name": "Bench Diner", "email": f"{key}@bench.example.com"}
        response = bare.post(
            "/bench/bare-order", body, content_type="application/json",
            headers={"Idempotency-Key": key},
        )  # fmt: skip
        assert response.status_code == 201, response.content

    def batch(place: Any) -> float:
        started = time.perf_counter()
        for _ in range(count):
            place()
        return (time.perf_counter() - started) / count * 1000

    for _ in range(20):
        baseline()
        checkout()
    rounds = [(batch(baseline), batch(checkout)) for _ in range(7)]
    base, check = zip(*rounds, strict=True)
    ratio = statistics.median(b / c for b, c in rounds)
    print(f"in one process, median of 7 rounds of {count}: baseline {statistics.median(base):.2f} "
          f"ms, checkout {statistics.median(check):.2f} ms per order; checkout at {ratio:.2f}x "
          f"the baseline's rate")  # fmt: skip


def profile(env: dict[str, str], count: int, slug: str) -> None:
    """cProfile of ``count`` checkouts through Django's test client in this one process, in
    CPU time: what this process computes, not the waits (database, Redis, other processes)."""
    import cProfile
    import pstats

    setup_django(env)
    checkout = checkout_client(slug)
    for _ in range(20):
        checkout()
    profiler = cProfile.Profile(time.process_time)
    started = time.perf_counter()
    profiler.enable()
    for _ in range(count):
        checkout()
    profiler.disable()
    elapsed = time.perf_counter() - started
    print(f"{count} checkouts, {elapsed / count * 1000:.2f} ms each (wall) under the profiler\n")
    stats = pstats.Stats(profiler).sort_stats("cumulative")
    stats.print_stats(45)
    stats.sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--restaurants", type=int, default=20)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--profile", type=int, default=0, help="profile this many checkouts")
    parser.add_argument("--time-limiter", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--in-process", type=int, default=0, help="compare in one process, batches of this many"
    )
    args = parser.parse_args()
    env = base_env(args.database_url, args.redis_url)
    if args.time_limiter:
        return time_limiter(env, args.time_limiter, FIRST)
    if shutil.which("wrk") is None and not (args.profile or args.in_process):
        sys.exit("wrk is needed: apt-get install -y wrk")

    ensure_database(args.database_url)
    manage(env, "migrate", "--noinput", "-v0")
    setup = ["bench_orders", "setup", "--restaurants", str(args.restaurants), "--items", str(ITEMS)]
    carts = json.loads(manage(env, *setup))
    if args.profile:
        return profile(env, args.profile, FIRST)
    if args.in_process:
        return in_process(env, args.in_process, FIRST)
    queries = json.loads(manage(env, "bench_orders", "queries", "--items", str(ITEMS)))
    timing = subprocess.run(
        [sys.executable, __file__, "--time-limiter", "50", "--database-url", args.database_url,
         "--redis-url", args.redis_url],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if timing.returncode:
        raise RuntimeError(f"timing the limiter failed:\n{timing.stderr[-3000:]}")
    limiter = json.loads(timing.stdout)

    one, many = carts[0], f"checkout, {args.restaurants} restaurants"
    with tempfile.TemporaryDirectory() as directory:
        scripts = {
            BASELINE: lua_script(
                Path(directory), "baseline", [{**one, "path": "/bench/bare-order", "host": None}]
            ),
            "service, 1 restaurant": lua_script(
                Path(directory), "service", [{**one, "path": "/bench/place-order", "host": None}]
            ),
            "checkout, 1 restaurant": lua_script(
                Path(directory), "one", [{**one, "path": CHECKOUT}]
            ),
            many: lua_script(
                Path(directory), "many", [{**cart, "path": CHECKOUT} for cart in carts]
            ),
        }
        table = measure(env, scripts, args)

    print(f"\ngranian, {WORKERS} workers, 1 blocking thread each; wrk -t2 -c{args.connections} "
          f"-d{args.duration}s, median of {args.runs} runs; cache Redis ({args.redis_url}); "
          f"{ITEMS}-item menus, 3 lines with options per order\n")  # fmt: skip
    print("| configuration | case | orders/s | vs baseline | p99 ms |")
    print("| --- | --- | ---: | ---: | ---: |")
    verdicts = []
    for config, results in table.items():
        baseline = results[BASELINE][0]
        for name, (rps, p99) in results.items():
            ratio = rps / baseline
            print(f"| {config} | {name} | {rps:,.0f} | {ratio:.2f}x | {p99:.1f} |")
            if name.startswith("checkout"):
                met = "met" if ratio >= TARGET else "MISSED"
                verdicts.append(f"{config}, {name}: {ratio:.2f} (target {TARGET}) {met}")
    print("\n" + "\n".join(verdicts))
    on, off = table[PRODUCTION_LIKE], table[LIMITER_OFF]
    for name in ("checkout, 1 restaurant", many):
        # Each worker serves one request at a time: worker-ms per order = workers / rate.
        cost = WORKERS * 1000 * (1 / on[name][0] - 1 / off[name][0])
        print(f"django-ratelimit on the write path, {name}: {on[name][0] / off[name][0]:.2f}x "
              f"the orders/s without it; {cost:+.2f} worker-ms per order")  # fmt: skip
    print(f"in one process against {args.redis_url}: one check {limiter['check_ms']:.3f} ms; "
          f"a checkout {limiter['checkout_on_ms']:.2f} ms with django-ratelimit, "
          f"{limiter['checkout_off_ms']:.2f} ms without, {limiter['difference_ms']:+.3f} ms "
          f"(median of paired batches)")  # fmt: skip
    print("\nqueries per order (BEGIN/SAVEPOINT/COMMIT included), by lines in the cart:")
    for path, counts in queries.items():
        print(f"- {path}: " + ", ".join(f"{n} lines: {c}" for n, c in counts.items()))


if __name__ == "__main__":
    main()
