"""Outbound webhooks: a dead endpoint's effect on a healthy one, and what publishing costs.

1. **Isolation** (the default): the real processes, ``manage.py db_worker``
   (the task queue: the fan-out) and ``manage.py run_webhooks`` (the sender), as subprocesses
   against the given database, with one restaurant (``bench-webhooks``) and two endpoints on
   loopback, served by a receiver process of this script (asyncio): ``healthy`` answers 200 at
   once, ``dead`` accepts the connection, reads the request and never answers (every attempt
   waits out the sender's 15 s timeout). This process publishes ``item.sold_out_changed``
   (menus/events.py) at RATE events a minute for DURATION seconds, each in its own
   transaction in the restaurant's tenant context, and notes the time each commit returned;
   the receiver notes when each ``webhook-id`` (the event's id) arrived. Reported: the delay
   from commit to arrival at the healthy endpoint (median, p95, p99, max), with the dead
   endpoint enabled and, as the baseline, disabled; and the same delay cut into stages from
   the rows the processes wrote: commit -> the fan-out task started (the task queue's wait),
   -> the delivery row created (the fan-out), -> arrival (the sender: wake, claim, request).
   ``--tuned COUNT:INTERVAL`` adds a third configuration: the dead endpoint enabled, with
   COUNT ``db_worker`` processes at ``--interval INTERVAL``. Each run measures every
   configuration (fresh processes for each, each run starting one configuration later);
   medians over runs and the ratio to the baseline of the same run.
2. **Publishing overhead** (``--placement``): orders placed in this process through the
   checkout service (``parse_checkout`` + ``place_order``, as bench/order_placement.py's
   ``/bench/place-order``) for ``bench-orders-1``, with its three endpoints (every event type,
   every scope) enabled and disabled in alternating batches: the statements of one placement
   in each configuration (they must be the same) and orders/s, the median of the rounds'
   ratios. With ``--with-workers`` the task worker and the sender run during the batches and
   the endpoints answer 200 (the fan-out and sending compete for the same cores), and each
   batch starts with the queue empty.

Usage (the database URL's server needs the three roles, nordkestrel/dbroles.py):

    .venv/bin/python bench/webhook_delivery.py --runs 2 --duration 150 \\
        --database-url postgres://nkapp@127.0.0.1:5432/nkbench [--worker-interval 0.1]
    .venv/bin/python bench/webhook_delivery.py --placement --runs 7 --batch 100 [--with-workers] \\
        --database-url postgres://nkapp@127.0.0.1:5432/nkbench

Results go to stdout as Markdown tables with the command that produced them; bench/RESULTS.md
records them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
SLUG = "bench-webhooks"
PLACEMENT_SLUG = "bench-orders-1"
DATABASE_URL = "postgres://nkapp@127.0.0.1:5432/nkbench"
REDIS_URL = "redis://127.0.0.1:6379/9"
TARGET_SECONDS = 2.0
PLACEMENT_TARGET = 0.05
HEALTHY, DEAD = "healthy", "dead"


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"median": math.nan, "p95": math.nan, "p99": math.nan, "max": math.nan}
    return {
        "median": statistics.median(values),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values),
    }


# --- The receiver (a process of its own) ----------------------------------------------------


def receiver(out: str) -> None:
    """Two listeners on loopback; prints their ports as JSON, then appends one line per
    request to ``out``: kind, webhook-id, arrival time (time.time())."""

    async def main() -> None:
        log = open(out, "a", buffering=1)  # noqa: SIM115 - open for the process's life

        async def read_request(reader: asyncio.StreamReader) -> str:
            head = await reader.readuntil(b"\r\n\r\n")
            headers = {}
            for line in head.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            await reader.readexactly(int(headers.get("content-length", "0")))
            return headers.get("webhook-id", "-")

        async def healthy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                message = await read_request(reader)
                arrived = time.time()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                await writer.drain()
                log.write(f"{HEALTHY} {message} {arrived:.6f}\n")
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        async def dead(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                message = await read_request(reader)
                log.write(f"{DEAD} {message} {time.time():.6f}\n")
                while await reader.read(4096):  # never answer; wait for the sender to give up
                    pass
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        servers = {
            HEALTHY: await asyncio.start_server(healthy, "127.0.0.1", 0, backlog=1024),
            DEAD: await asyncio.start_server(dead, "127.0.0.1", 0, backlog=1024),
        }
        ports = {kind: server.sockets[0].getsockname()[1] for kind, server in servers.items()}
        print(json.dumps(ports), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()

    asyncio.run(main())


@contextmanager
def receiving(out: Path) -> Iterator[dict[str, int]]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--receiver", str(out)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        yield json.loads(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(timeout=10)


def arrivals(out: Path, kind: str) -> dict[str, float]:
    """webhook-id -> first arrival of that kind."""
    found: dict[str, float] = {}
    if out.exists():
        for line in out.read_text().splitlines():
            got, message, at = line.split()
            if got == kind and message not in found:
                found[message] = float(at)
    return found


# --- Processes and Django -------------------------------------------------------------------


def base_env(database_url: str, redis_url: str) -> dict[str, str]:
    inherited = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    return {
        **inherited,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": "nordkestrel.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(BENCH)]),
        "LOG_LEVEL": "WARNING",
        "DJANGO_DEBUG": "false",
        "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
        # The order email of --placement goes nowhere.
        "RESEND_API_KEY": "",
    }


def setup_django(env: dict[str, str]) -> None:
    import django

    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    django.setup()


@contextmanager
def workers(
    env: dict[str, str], interval: float | None, logs: Path, task_workers: int = 1
) -> Iterator[None]:
    """``task_workers`` ``db_worker`` processes (every queue) and one ``run_webhooks``, as
    production runs them; their output appended to ``logs``."""
    worker = [sys.executable, "manage.py", "db_worker", "--queue-name", "*", "--no-reload"]
    if interval is not None:
        worker += ["--interval", str(interval)]
    commands = [*[worker] * task_workers, [sys.executable, "manage.py", "run_webhooks"]]
    with logs.open("a") as log:
        processes = [
            subprocess.Popen(
                command, cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=log
            )
            for command in commands
        ]
    try:
        yield
    finally:
        # Killed, not stopped: the sender would otherwise wait out the dead endpoint's requests.
        for process in processes:
            os.killpg(process.pid, signal.SIGKILL)
        for process in processes:
            process.wait(timeout=30)


def bench_restaurant(slug: str) -> Any:
    from tenants.models import Restaurant

    restaurant, _ = Restaurant.objects.get_or_create(
        slug=slug,
        defaults={"name": "Bench Webhooks", "clerk_organization_id": "org_bench_webhooks"},
    )
    Restaurant.objects.filter(pk=restaurant.pk).update(status=Restaurant.Status.ACTIVE)
    restaurant.refresh_from_db()
    return restaurant


def reset_endpoints(restaurant: Any, urls: dict[str, str]) -> dict[str, int]:
    """The restaurant's endpoints are exactly ``urls`` (every type, every scope); the earlier
    runs' deliveries and attempts are deleted. Endpoint ids by name."""
    from staff.roles import Scope
    from tenants.context import tenant_context
    from webhooks import messages
    from webhooks.models import Attempt, Delivery, Endpoint

    with tenant_context(restaurant):
        Attempt.objects.all().delete()
        Delivery.objects.all().delete()
        Endpoint.objects.all().delete()
        return {
            name: Endpoint.objects.create(
                url=url,
                description=f"bench {name}",
                event_types=[],
                secret=messages.new_secret(),
                scopes=sorted(str(scope) for scope in Scope),
            ).pk
            for name, url in urls.items()
        }


def enable(
    restaurant: Any, endpoint_ids: Sequence[int], enabled: bool, *, forget: bool = True
) -> None:
    """Switch the endpoints on or off; with ``forget`` (no sender running) the restaurant's
    deliveries and attempts are deleted too."""
    from tenants.context import tenant_context
    from webhooks.models import Attempt, Delivery, Endpoint

    with tenant_context(restaurant):
        Endpoint.objects.filter(pk__in=list(endpoint_ids)).update(
            enabled=enabled, failing_since=None, failure_warned_at=None
        )
        if forget:
            Attempt.objects.all().delete()
            Delivery.objects.all().delete()


def queued_tasks() -> int:
    """Tasks waiting for a worker (a task a killed worker left running stays so: not
    counted)."""
    from django.tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(status=TaskResultStatus.READY).count()


def wait_queue_empty(timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while queued_tasks() and time.monotonic() < deadline:
        time.sleep(0.2)


# --- 1. Isolation ---------------------------------------------------------------------------


def publish_one(restaurant: Any, n: int) -> tuple[str, float]:
    """One ``item.sold_out_changed`` in its own transaction: (event id, commit time)."""
    from django.utils import timezone

    from menus.events import ITEM_SOLD_OUT_CHANGED
    from nordkestrel import events
    from tenants.context import tenant_context

    with tenant_context(restaurant):
        event = ITEM_SOLD_OUT_CHANGED.new(
            restaurant_id=restaurant.pk,
            payload={
                "kind": "item",
                "id": n + 1,
                "name": f"Bench item {n + 1}",
                "sold_out": n % 2 == 0,
                "changed_at": events.timestamp(timezone.now()),
            },
        )
        events.publish(event)
    return str(event.id), time.time()


def stages(event_ids: Sequence[str], endpoint_id: int) -> dict[str, dict[str, float]]:
    """Per event: when its fan-out task started and finished, when the healthy endpoint's
    delivery was created, and when its attempt was recorded (epoch seconds), read as the
    platform role."""
    from django.db import connections

    with connections["platform"].cursor() as cursor:
        cursor.execute(
            """
            SELECT t.args_kwargs #>> '{kwargs,event_ids,0}', extract(epoch FROM t.started_at),
                   extract(epoch FROM t.finished_at)
              FROM django_tasks_database_dbtaskresult t
             WHERE t.args_kwargs #>> '{kwargs,event_ids,0}' = ANY(%s)
            """,
            [list(event_ids)],
        )
        tasks = {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
        cursor.execute(
            """
            SELECT d.message_id, extract(epoch FROM d.created_at),
                   extract(epoch FROM d.last_attempt_at)
              FROM webhooks_delivery d
             WHERE d.endpoint_id = %s AND d.message_id = ANY(%s)
            """,
            [endpoint_id, list(event_ids)],
        )
        deliveries = {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
    result: dict[str, dict[str, float]] = {}
    for event_id in event_ids:
        started, finished = tasks.get(event_id, (None, None))
        created, recorded = deliveries.get(event_id, (None, None))
        result[event_id] = {
            "task_started": float(started) if started is not None else math.nan,
            "task_finished": float(finished) if finished is not None else math.nan,
            "delivery_created": float(created) if created is not None else math.nan,
            "recorded": float(recorded) if recorded is not None else math.nan,
        }
    return result


def isolation_phase(
    env: dict[str, str],
    restaurant: Any,
    endpoints: dict[str, int],
    out: Path,
    phase: Phase,
    args: argparse.Namespace,
) -> dict[str, Any]:
    dead_enabled, task_workers, worker_interval = phase[1:]
    enable(restaurant, [endpoints[HEALTHY]], True)
    enable(restaurant, [endpoints[DEAD]], dead_enabled)
    interval = 60.0 / args.rate
    count = int(args.duration * args.rate / 60)
    logs = out.with_name("workers.log")
    with workers(env, worker_interval, logs, task_workers):
        # Warm up: both processes up, connections open, the healthy endpoint answered.
        warm = [publish_one(restaurant, n)[0] for n in range(3)]
        deadline = time.monotonic() + 300  # behind any leftover tasks
        while not set(warm) <= arrivals(out, HEALTHY).keys():
            if time.monotonic() > deadline:
                raise RuntimeError("the warm-up events never arrived")
            time.sleep(0.2)
        wait_queue_empty()  # what an earlier configuration left, run by these processes
        time.sleep(2)
        committed: dict[str, float] = {}
        started = time.monotonic()
        late = 0.0
        for n in range(count):
            wait = started + n * interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            else:
                late = max(late, -wait)
            event_id, at = publish_one(restaurant, n)
            committed[event_id] = at
        elapsed = time.monotonic() - started
        deadline = time.monotonic() + args.drain
        while time.monotonic() < deadline:
            if committed.keys() <= arrivals(out, HEALTHY).keys():
                break
            time.sleep(0.5)
        backlog = queued_tasks()
    log = out.with_name("workers.log").read_text()
    errors = sum(1 for line in log.splitlines() if '"level":"error"' in line)
    healthy = arrivals(out, HEALTHY)
    dead_requests = sum(1 for m in arrivals(out, DEAD) if m in committed)
    delays = [healthy[e] - at for e, at in committed.items() if e in healthy]
    # An event that never arrived counts as later than any that did.
    missing = [math.inf] * (count - len(delays))
    parts = stages(list(committed), endpoints[HEALTHY])
    cut: dict[str, list[float]] = {"queue": [], "fanout": [], "task": [], "sender": []}
    for event_id, at in committed.items():
        row = parts[event_id]
        if event_id in healthy and not math.isnan(row["delivery_created"]):
            cut["queue"].append(row["task_started"] - at)
            cut["fanout"].append(row["delivery_created"] - row["task_started"])
            cut["task"].append(row["task_finished"] - row["task_started"])
            cut["sender"].append(healthy[event_id] - row["delivery_created"])
    return {
        "published": count,
        "rate_per_min": count / elapsed * 60,
        "publisher_late_s": late,
        "arrived": len(delays),
        "dead_requests": dead_requests,
        "backlog_at_end": backlog,
        "worker_errors": errors,
        "delay": summary(delays + missing),
        "over_target": sum(1 for d in delays if d > TARGET_SECONDS),
        "stages": {name: summary(values) for name, values in cut.items()},
        "load_average": os.getloadavg()[0],
    }


def fanout_statements(restaurant: Any) -> list[str]:
    """The statements one fan-out task sends (``deliver_events`` run in this process for one
    event, the endpoints as they are), not counting the queue's own (claim, result)."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    from events.tasks import deliver_events

    event_id, _ = publish_one(restaurant, 0)
    with (
        CaptureQueriesContext(connections["default"]) as default,
        CaptureQueriesContext(connections["platform"]) as platform,
    ):
        deliver_events.call(restaurant_id=restaurant.pk, event_ids=[event_id])
    return [
        " ".join(query["sql"].split())[:120]
        for query in [*default.captured_queries, *platform.captured_queries]
    ]


def isolation(env: dict[str, str], args: argparse.Namespace) -> None:
    setup_django(env)
    restaurant = bench_restaurant(SLUG)
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "arrivals.log"
        with receiving(out) as ports:
            urls = {kind: f"http://127.0.0.1:{port}/hooks" for kind, port in ports.items()}
            endpoints = reset_endpoints(restaurant, urls)
            counted = fanout_statements(restaurant)
            runs: list[dict[str, Any]] = []
            phases = isolation_phases(args)
            for run in range(args.runs):
                # Each run starts one phase later, so drift on the machine hits them alike.
                shift = run % len(phases)
                result: dict[str, Any] = {}
                for phase in phases[shift:] + phases[:shift]:
                    result[phase[0]] = isolation_phase(env, restaurant, endpoints, out, phase, args)
                    print(f"run {run + 1}, {phase[0]}: {json.dumps(result[phase[0]])}",
                          file=sys.stderr)  # fmt: skip
                runs.append(result)
    report_isolation(args, runs, counted, [phase[0] for phase in phases])


# (name, dead endpoint enabled, db_worker processes, db_worker --interval)
Phase = tuple[str, bool, int, float | None]
BASELINE = "baseline"


def isolation_phases(args: argparse.Namespace) -> list[Phase]:
    phases: list[Phase] = [
        (BASELINE, False, args.task_workers, args.worker_interval),
        ("with dead endpoint", True, args.task_workers, args.worker_interval),
    ]
    if args.tuned:
        count, _, interval = args.tuned.partition(":")
        phases.append(
            (f"with dead endpoint, {count} db_worker, --interval {interval}", True,
             int(count), float(interval))
        )  # fmt: skip
    return phases


def report_isolation(
    args: argparse.Namespace, runs: list[dict[str, Any]], counted: list[str], names: list[str]
) -> None:
    interval = args.worker_interval if args.worker_interval is not None else "1 (default)"
    print(f"\nCommand: `{command_line()}`")
    print(f"{args.rate}/min for {args.duration} s per configuration, {args.runs} runs; "
          f"{args.task_workers} db_worker process(es), --interval {interval}\n")  # fmt: skip
    print("Delay commit -> arrival at the healthy endpoint, seconds, per run:\n")
    print("| run | configuration | published | arrived | rate/min | median | p95 | p99 | max "
          f"| > {TARGET_SECONDS:g} s | dead endpoint requests | load avg |")  # fmt: skip
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, run in enumerate(runs, 1):
        for name in names:
            r = run[name]
            d = r["delay"]
            print(f"| {n} | {name} | {r['published']} | {r['arrived']} | "
                  f"{r['rate_per_min']:.0f} | {d['median']:.3f} | {d['p95']:.3f} | "
                  f"{d['p99']:.3f} | {d['max']:.3f} | {r['over_target']} | "
                  f"{r['dead_requests']} | {r['load_average']:.1f} |")  # fmt: skip
    print("\nMedian of the runs (ratio: against the baseline of the same run, median):\n")
    print("| configuration | median s | p95 s | p99 s | max s | median vs baseline "
          "| p99 vs baseline | max vs baseline |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        cells = [
            statistics.median(run[name]["delay"][f] for run in runs)
            for f in ("median", "p95", "p99", "max")
        ]
        ratios = [
            statistics.median(run[name]["delay"][f] / run[BASELINE]["delay"][f] for run in runs)
            for f in ("median", "p99", "max")
        ]
        print(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " | "
              + " | ".join(f"{r:.2f}x" for r in ratios) + " |")  # fmt: skip
    print(
        "\nStages (seconds; median of the runs): queue = commit -> fan-out task started; "
        "fanout = task started -> delivery row created; task = the whole fan-out task; "
        "sender = delivery row -> arrival\n"
    )
    print("| configuration | stage | median | p95 | p99 | max |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name in names:
        for stage in ("queue", "fanout", "task", "sender"):
            cells = [
                statistics.median(run[name]["stages"][stage][f] for run in runs)
                for f in ("median", "p95", "p99", "max")
            ]
            print(f"| {name} | {stage} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    print(f"\nOne fan-out task (two endpoints enabled) sends {len(counted)} statements besides "
          "the queue's own:\n")  # fmt: skip
    for line in counted:
        print(f"  {line}")
    print()
    for name in names[1:]:
        worst = statistics.median(run[name]["delay"]["max"] for run in runs)
        p99 = statistics.median(run[name]["delay"]["p99"] for run in runs)
        verdict = "met" if worst < TARGET_SECONDS else "NOT met"
        print(f"Target (healthy endpoint under {TARGET_SECONDS:g} s), {name}: {verdict} "
              f"(max {worst:.3f} s, p99 {p99:.3f} s, medians of the runs)")  # fmt: skip


# --- 2. Publishing overhead ----------------------------------------------------------------


def placement(env: dict[str, str], args: argparse.Namespace) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "bench_orders", "setup", "--restaurants", "1", "--items",
         "80"],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    setup_django(env)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from orders.checkout_request import parse_checkout, parse_idempotency_key
    from orders.management.commands.bench_orders import cart
    from orders.placement import place_order
    from tenants.models import Restaurant

    restaurant = Restaurant.objects.get(slug=PLACEMENT_SLUG)
    lines = cart(restaurant, 3)

    def place() -> None:
        key = uuid.uuid4().hex
        body = {"lines": lines, "name": "Bench Diner", "email": f"{key}@bench.example.com"}
        checkout = parse_checkout(body, restaurant.zone)
        _, created = place_order(
            restaurant=restaurant, request=checkout, idempotency_key=parse_idempotency_key(key)
        )
        assert created

    def statements() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            place()
        return [" ".join(q["sql"].split())[:140] for q in captured.captured_queries]

    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "arrivals.log"
        with receiving(out) as ports:
            urls = {
                f"endpoint {n}": f"http://127.0.0.1:{ports[HEALTHY]}/hooks/{n}" for n in (1, 2, 3)
            }
            endpoints = list(reset_endpoints(restaurant, urls).values())
            forget = not args.with_workers  # the sender may hold deliveries: leave them
            configs: dict[str, Callable[[], None]] = {
                "no endpoint": lambda: enable(restaurant, endpoints, False, forget=forget),
                "3 endpoints": lambda: enable(restaurant, endpoints, True, forget=forget),
            }
            logs = out.with_name("workers.log")
            with (
                workers(env, args.worker_interval, logs, args.task_workers)
                if args.with_workers
                else _nothing()
            ):
                counted: dict[str, list[str]] = {}
                for name, switch in configs.items():
                    switch()
                    for _ in range(20):
                        place()
                    counted[name] = statements()
                rates: dict[str, list[float]] = {name: [] for name in configs}
                ratios = []
                for run in range(args.runs):
                    order = list(configs.items())[:: 1 if run % 2 == 0 else -1]
                    for name, switch in order:
                        switch()
                        if args.with_workers:
                            wait_queue_empty()
                        started = time.perf_counter()
                        for _ in range(args.batch):
                            place()
                        rates[name].append(args.batch / (time.perf_counter() - started))
                    ratios.append(rates["3 endpoints"][-1] / rates["no endpoint"][-1])
                    print(f"round {run + 1}: {ratios[-1]:.3f}", file=sys.stderr)
                if args.with_workers:
                    wait_queue_empty()
                    time.sleep(2)
            delivered = len(arrivals(out, HEALTHY))
    report_placement(args, counted, rates, ratios, delivered)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def report_placement(
    args: argparse.Namespace,
    counted: dict[str, list[str]],
    rates: dict[str, list[float]],
    ratios: list[float],
    delivered: int,
) -> None:
    print(f"\nCommand: `{command_line()}`")
    workers_note = "db_worker and run_webhooks running" if args.with_workers else "no worker"
    print(f"{args.runs} rounds of {args.batch} orders per configuration, {workers_note}\n")
    print("Statements of one placement (Django's CaptureQueriesContext):\n")
    for name, sql in counted.items():
        print(f"{name}: {len(sql)}")
        for line in sql:
            print(f"  {line}")

    def shape(sql: str) -> str:  # the statement without its values
        return re.sub(r"'[^']*'|\b\d+\b", "?", sql)

    same = [*map(shape, counted["no endpoint"])] == [*map(shape, counted["3 endpoints"])]
    print(f"\nthe same statements in both (values aside): {same}")
    print("\n| configuration | orders/s (median) | vs no endpoint |")
    print("| --- | ---: | ---: |")
    base = statistics.median(rates["no endpoint"])
    for name, values in rates.items():
        print(f"| {name} | {statistics.median(values):.1f} | "
              f"{statistics.median(values) / base:.3f}x |")  # fmt: skip
    ratio = statistics.median(ratios)
    verdict = "met" if abs(1 - ratio) <= PLACEMENT_TARGET or ratio > 1 else "NOT met"
    print(f"\nround by round, 3 endpoints / no endpoint: median {ratio:.3f}x "
          f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)}); target within "
          f"{PLACEMENT_TARGET:.0%}: {verdict}")  # fmt: skip
    if args.with_workers:
        print(f"webhook requests that reached the receiver: {delivered}")
    if not same:
        raise SystemExit("the placing transaction differs between the configurations")


def command_line() -> str:
    return shlex.join([Path(sys.executable).name, "bench/webhook_delivery.py", *sys.argv[1:]])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--redis-url", default=REDIS_URL)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--placement", action="store_true", help="measure publishing overhead")
    parser.add_argument("--rate", type=int, default=1000, help="events a minute")
    parser.add_argument("--duration", type=int, default=150, help="seconds of publishing")
    parser.add_argument("--drain", type=int, default=60, help="seconds to wait for arrivals")
    parser.add_argument(
        "--worker-interval", type=float, default=None, help="db_worker --interval (its default)"
    )
    parser.add_argument("--task-workers", type=int, default=1, help="db_worker processes")
    parser.add_argument(
        "--tuned", help="COUNT:INTERVAL: also the dead endpoint with this many db_worker processes"
    )
    parser.add_argument("--batch", type=int, default=100, help="orders per placement batch")
    parser.add_argument("--with-workers", action="store_true")
    parser.add_argument("--receiver", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        return receiver(args.receiver)
    env = base_env(args.database_url, args.redis_url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    if args.placement:
        return placement(env, args)
    return isolation(env, args)


if __name__ == "__main__":
    main()
