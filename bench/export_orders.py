"""The orders CSV export over HTTP against raw ``COPY``: rows/s and the web process's peak memory.

Sets up its own database (``nordkestrel_bench_export`` on the embedded PostgreSQL, migrated)
with one restaurant, ``bench-export`` (Europe/Helsinki, EUR), its owner, ORDERS orders of
CUSTOMERS customers and a card payment for every card order, written with ``INSERT ... SELECT
generate_series(...)`` in the restaurant's tenant context and vacuumed; kept when the
restaurant already has exactly ORDERS orders. The rows look like real ones where it matters to
the export: a year of timestamps, every status, pickup and delivery (addresses, notes with
commas), names with quotes, commas and non-ASCII letters, phone numbers starting with ``+``
and a few formula-like names (both neutralised), promotion codes, cancel reasons.

Then, RUNS rounds, the paths taking turns (the order rotating each round):
- ``formatted COPY``: psycopg's ``cursor.copy()`` of the export's own statement
  (``exports.copy.copy_statement`` for the orders type, no filters) in a transaction set up
  as ``exports.copy.stream_csv`` sets it up (the tenant setting, the restaurant's time zone),
  reading every row: the baseline;
- ``plain COPY``: ``COPY (SELECT * FROM orders_order WHERE restaurant_id = ...) TO STDOUT
  WITH (FORMAT csv, HEADER)``, nothing formatted, no join, no sort: a second reference;
- ``HTTP``: ``GET /api/v1/exports/orders.csv`` with an owner's development token (minted
  each round), served by granian as in production (``--interface wsgi --workers 2
  --blocking-threads 1``), development settings with ``DJANGO_DEBUG=false``,
  ``LOG_LEVEL=WARNING`` and ``EXPORT_RATE`` so high it never refuses; read by a streaming
  client (http.client, 1 MiB reads), rows counted by line (no cell holds a line break).

A warm-up round comes first, not counted (one download per worker); it checks that the
HTTP body is byte for byte the formatted COPY's output, row count included. During every
download the granian worker processes' resident memory is read from ``/proc/<pid>/status``
every 50 ms, and their peak (``VmHWM``, reset before each download through
``/proc/<pid>/clear_refs``) read after it; the worker that served is the one whose CPU time
grew. Reported: the medians, rows/s as a ratio against the formatted COPY of the same round,
and the serving worker's peak and its growth over its idle size just before the download.
Last, one slow client (4 MiB/s for 15 s, then it hangs up before the end): the worker's peak
while the client lags, and whether the server's transaction ended when the client left.
Targets (issue 8): HTTP at 0.8 of the formatted COPY's rows/s or more; a peak of at most
100 MB (10**6 bytes).
``--breakdown`` times COPY variants of the export instead (each kind of formatted column
written bare, no sort; see :func:`breakdown`): where the formatted COPY's time goes. Usage:

    .venv/bin/python bench/export_orders.py [--runs 5] [--orders 1000000] [--breakdown]

Results go to stdout as Markdown tables; bench/RESULTS.md records them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from servers import (  # bench/servers.py, beside this script
    ensure_database,
    manage,
    port_free,
    wait_until_up,
)

ROOT = Path(__file__).resolve().parent.parent
PORT = 8091  # servers.py uses 8099, menu_read.py 8097, order_placement.py 8093 and up
WORKERS = 2
SLUG = "bench-export"
OWNER = "user_bench_export_owner"
TIMEZONE = "Europe/Helsinki"
DATABASE_URL = f"postgres://nordkestrel@/nordkestrel_bench_export?host={ROOT}/.data/postgres"
EXPORT_PATH = "/api/v1/exports/orders.csv"
TARGET_RATIO = 0.8
TARGET_PEAK_MB = 100  # decimal megabytes, 10**6 bytes: 95.4 MiB
SAMPLE_SECONDS = 0.05
READ_SIZE = 1 << 20
# A client on a slow line, which leaves before the end.
SLOW_SECONDS = 15.0
SLOW_RATE = 4 * 1024 * 1024
MIB = 1024 * 1024
# Far above anything a run asks for: the limiter counts every export, never refuses.
UNLIMITED_RATE = "1000000000/h"

FORMATTED = "formatted COPY"
# The orders as stored: no formatting, no join, no sort.
PLAIN_COPY = (
    "COPY (SELECT * FROM orders_order WHERE restaurant_id = %(restaurant_id)s) "
    "TO STDOUT WITH (FORMAT csv, HEADER)"
)
PLAIN = "plain COPY"
HTTP = "HTTP"

GRANIAN = [
    sys.executable, "-m", "granian", "--interface", "wsgi", "nordkestrel.wsgi:application",
    "--host", "127.0.0.1", "--port", str(PORT), "--workers", str(WORKERS),
    "--blocking-threads", "1", "--log-level", "warning",
]  # fmt: skip

# The bench restaurant's rows, in its tenant context (row-level security checks every row).
# Customers first; order n takes customer number 1 + (n * 7919 mod customers), by id order.
# Orders are written in the order they were placed, as a live restaurant writes them: ids and
# the table's physical order follow created_at, which the export's plan depends on.
DELETE = [
    "DELETE FROM payments_payment WHERE restaurant_id = %(restaurant_id)s",
    "DELETE FROM orders_orderline WHERE restaurant_id = %(restaurant_id)s",
    "DELETE FROM orders_statuschange WHERE restaurant_id = %(restaurant_id)s",
    "DELETE FROM orders_order WHERE restaurant_id = %(restaurant_id)s",
    "DELETE FROM customers_customer WHERE restaurant_id = %(restaurant_id)s",
]
INSERT_CUSTOMERS = """
INSERT INTO customers_customer (
    restaurant_id, email, name, phone, order_count, total_spent, first_order_at, last_order_at,
    marketing_consent, consent_at, consent_source, consent_requested_at, created_at, updated_at
)
SELECT
    %(restaurant_id)s, 'diner' || k || '@example.com',
    CASE
        WHEN mod(k, 1000) = 7 THEN '=HYPERLINK("https://evil.example","Diner ' || k || '")'
        WHEN mod(k, 50) = 0 THEN 'O''Brien, "Ada" ' || k
        WHEN mod(k, 20) = 1 THEN 'Äijälä Öberg ' || k
        ELSE 'Diner ' || k
    END,
    '+358 40 ' || lpad(k::text, 7, '0'), 10, 25000,
    '2025-01-01T08:00:00Z', '2025-12-31T20:00:00Z',
    mod(k, 3) = 0, CASE WHEN mod(k, 3) = 0 THEN '2025-01-02T08:00:00Z'::timestamptz END,
    CASE WHEN mod(k, 3) = 0 THEN 'checkout' ELSE '' END, NULL, now(), now()
FROM generate_series(1, %(customers)s) AS k
"""
INSERT_ORDERS = """
INSERT INTO orders_order (
    restaurant_id, public_id, number, status, fulfilment, payment_method, customer_id,
    contact_name, contact_email, contact_phone, consent_requested, delivery_address,
    delivery_notes, scheduled_for, promised_at, slot_start, currency, subtotal, discount, tax,
    tax_rate, prices_include_tax, delivery_fee, tip, total, promotion_code, menu_version,
    idempotency_key, request_fingerprint, cancel_reason, created_at, placed_at, accepted_at,
    preparing_at, ready_at, completed_at, cancelled_at, refunded_at, updated_at
)
SELECT
    %(restaurant_id)s, gen_random_uuid(), n, o.status, o.fulfilment,
    CASE WHEN mod(n, 5) < 2 THEN 'card' ELSE 'in_person' END, c.id,
    c.name, c.email, c.phone, false,
    CASE WHEN o.fulfilment = 'delivery' THEN jsonb_build_object(
        'line1', 'Mannerheimintie ' || (mod(n, 200) + 1), 'line2', 'A ' || (mod(n, 40) + 1),
        'postal_code', '00' || (100 + mod(n, 900)), 'city', 'Helsinki') ELSE '{}'::jsonb END,
    CASE WHEN o.fulfilment = 'delivery' AND mod(n, 3) = 0 THEN 'Door code ' || (mod(n, 9000) + 1000)
        || ', "ring twice"' ELSE '' END,
    CASE WHEN mod(n, 10) = 0 THEN o.at + interval '2 hours' END,
    o.at + interval '25 minutes', date_trunc('hour', o.at + interval '25 minutes'),
    'EUR', o.subtotal, o.discount, round(o.subtotal * 14 / 114.0)::int, 14.000, true,
    o.delivery_fee, o.tip, o.subtotal - o.discount + o.delivery_fee + o.tip,
    CASE WHEN o.discount > 0 THEN 'SUMMER10' ELSE '' END, 1 + n / 50000,
    'bench-' || n, md5(n::text),
    CASE WHEN o.status = 'cancelled' THEN 'Out of salmon, sorry' ELSE '' END,
    o.at, o.at,
    CASE WHEN o.status <> 'cancelled' THEN o.at + interval '2 minutes' END,
    CASE WHEN o.status <> 'cancelled' THEN o.at + interval '5 minutes' END,
    CASE WHEN o.status <> 'cancelled' THEN o.at + interval '20 minutes' END,
    CASE WHEN o.status IN ('completed', 'refunded') THEN o.at + interval '30 minutes' END,
    CASE WHEN o.status = 'cancelled' THEN o.at + interval '3 minutes' END,
    CASE WHEN o.status = 'refunded' THEN o.at + interval '1 day' END,
    o.at + interval '30 minutes'
FROM generate_series(1, %(orders)s) AS n
CROSS JOIN LATERAL (
    SELECT
        timestamptz '2025-01-01T08:00:00Z'
            + n * (31536000.0 / %(orders)s) * interval '1 second' AS at,
        CASE WHEN mod(n, 100) < 90 THEN 'completed' WHEN mod(n, 100) < 96 THEN 'cancelled'
            WHEN mod(n, 100) < 97 THEN 'refunded' ELSE 'ready' END AS status,
        CASE WHEN mod(n, 10) < 3 THEN 'delivery' ELSE 'pickup' END AS fulfilment,
        1200 + mod(n * 37, 6000) AS subtotal,
        CASE WHEN mod(n, 20) = 0 THEN 300 ELSE 0 END AS discount,
        CASE WHEN mod(n, 10) < 3 THEN 490 ELSE 0 END AS delivery_fee,
        CASE WHEN mod(n, 4) = 0 THEN 200 ELSE 0 END AS tip
) AS o
JOIN (
    SELECT id, name, email, phone, row_number() OVER (ORDER BY id) AS k
    FROM customers_customer WHERE restaurant_id = %(restaurant_id)s
) AS c ON c.k = 1 + mod(n::bigint * 7919, %(customers)s)
ORDER BY n
"""
INSERT_PAYMENTS = """
INSERT INTO payments_payment (
    restaurant_id, order_id, account_id, payment_intent_id, client_secret, charge_id, status,
    amount, currency, application_fee_amount, amount_refunded, charge_refunded,
    charge_refunded_as_of, failure_message, created_at, succeeded_at, updated_at
)
SELECT
    %(restaurant_id)s, o.id, 'acct_bench', 'pi_bench_' || o.id, 'pi_bench_' || o.id || '_secret',
    'ch_bench_' || o.id, 'succeeded', o.total, o.currency, o.total / 50,
    CASE WHEN o.status = 'refunded' THEN o.total ELSE 0 END,
    CASE WHEN o.status = 'refunded' THEN o.total ELSE 0 END, 0, '',
    o.created_at, o.created_at + interval '1 minute', o.created_at + interval '1 minute'
FROM orders_order AS o
WHERE o.restaurant_id = %(restaurant_id)s AND o.payment_method = 'card'
ORDER BY o.id
"""


def base_env(database_url: str) -> dict[str, str]:
    inherited = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    return {
        **inherited,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "nordkestrel.settings",
        "EXPORT_RATE": UNLIMITED_RATE,
        "LOG_LEVEL": "WARNING",
        "DJANGO_DEBUG": "false",
    }


def populate(orders: int, customers: int) -> None:
    """In a Django process: the restaurant, its owner and its rows (kept when the restaurant
    already has ``orders`` orders); prints the export's COPY statement and the setup as JSON."""
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.db import connection
    from django.utils import timezone

    from exports.copy import copy_statement
    from exports.definitions import ORDERS
    from exports.registry import ExportFilters
    from staff.models import StaffMember
    from staff.roles import Role
    from tenants.context import tenant_context
    from tenants.models import Restaurant

    restaurant, _ = Restaurant.objects.get_or_create(
        slug=SLUG,
        defaults={
            "name": "Bench Export",
            "clerk_organization_id": "org_bench_export",
            "timezone": TIMEZONE,
            "currency": "EUR",
        },
    )
    params = {"restaurant_id": restaurant.pk, "orders": orders, "customers": customers}
    with tenant_context(restaurant), connection.cursor() as cursor:
        StaffMember.objects.get_or_create(
            clerk_user_id=OWNER,
            defaults={
                "email": "owner@bench-export.example.com",
                "name": "Owner of Bench Export",
                "role": Role.OWNER,
                "joined_at": timezone.now(),
            },
        )
        cursor.execute(
            "SELECT count(*) FROM orders_order WHERE restaurant_id = %s", [restaurant.pk]
        )
        existing = cursor.fetchone()[0]
    seconds = 0.0
    if existing != orders:
        started = time.perf_counter()
        with tenant_context(restaurant), connection.cursor() as cursor:
            for statement in DELETE:
                cursor.execute(statement, params)
            for statement in (INSERT_CUSTOMERS, INSERT_ORDERS, INSERT_PAYMENTS):
                cursor.execute(statement, params)
        with connection.cursor() as cursor:  # autocommit: VACUUM runs outside a transaction
            # Hint bits and statistics now, so no measured read pays for them.
            cursor.execute(
                "VACUUM (FREEZE, ANALYZE) orders_order, customers_customer, payments_payment"
            )
        seconds = time.perf_counter() - started
    statement, copy_params = copy_statement(restaurant, ORDERS, ExportFilters())
    print(
        json.dumps(
            {
                "restaurant_id": restaurant.pk,
                "timezone": restaurant.timezone,
                "statement": statement,
                "params": copy_params,
                "created": existing != orders,
                "seconds": seconds,
            }
        )
    )


@dataclass
class Read:
    seconds: float
    rows: int
    size: int
    crc: int = 0


def read_copy(
    db: psycopg.Connection[Any],
    statement: str,
    params: dict[str, Any] | None,
    setup: dict[str, Any],
    *,
    check: bool = False,
) -> Read:
    """One COPY read to the end, in a transaction set up as ``stream_csv`` sets up its own."""
    crc = 0
    started = time.perf_counter()
    with db.transaction(), db.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('app.restaurant_id', %s, true), set_config('TimeZone', %s, true)",
            [str(setup["restaurant_id"]), setup["timezone"]],
        )
        rows = size = 0
        with cursor.copy(statement, params) as copy:
            for data in copy:
                rows += 1
                size += len(data)
                if check:
                    crc = zlib.crc32(data, crc)
    return Read(time.perf_counter() - started, rows - 1, size, crc)  # less the header


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (granian's workers are its children)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for {pid}")


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM to its current size (Linux: 5 to clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Sampler:
    """VmRSS of each process every SAMPLE_SECONDS, in a thread, until stopped: the peak."""

    pids: list[int]
    peak_kb: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self.peak_kb = {pid: status_kb(pid, "VmRSS") for pid in self.pids}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            for pid in self.pids:
                self.peak_kb[pid] = max(self.peak_kb[pid], status_kb(pid, "VmRSS"))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        for pid in self.pids:
            self.peak_kb[pid] = max(self.peak_kb[pid], status_kb(pid, "VmRSS"))


def composition_kb(pid: int) -> dict[str, int]:
    """What a process's resident memory is: anonymous (its heap) and file-backed (code and
    libraries, shared with every process that maps them), and its proportional share (PSS)."""
    parts = {key: status_kb(pid, key) for key in ("RssAnon", "RssFile", "RssShmem")}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Pss", "Private_Clean", "Private_Dirty"):
            parts[key] = int(value.split()[0])
    return parts


@dataclass
class Download:
    read: Read
    cpu_seconds: float  # the serving worker's CPU time during the download
    idle_parts_kb: dict[str, int]  # its memory just before, by kind
    idle_kb: int  # the serving worker just before the download
    peak_kb: int  # its peak during it: the larger of the samples and VmHWM
    sampled_kb: int
    hwm_kb: int | None
    other_peak_kb: int  # the other workers' largest peak (they should stay idle)


def download(token: str, workers: list[int], *, check: bool = False) -> Download:
    idle = {pid: status_kb(pid, "VmRSS") for pid in workers}
    parts = {pid: composition_kb(pid) for pid in workers}
    resets = [reset_peak(pid) for pid in workers]  # every worker's, whatever the first gives
    hwm_reset = all(resets)
    ticks = {pid: cpu_ticks(pid) for pid in workers}
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=300)
    crc = lines = size = 0
    with Sampler(workers) as sampler:
        started = time.perf_counter()
        connection.request("GET", EXPORT_PATH, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {response.read()[:2000]!r}")
        while chunk := response.read1(READ_SIZE):
            lines += chunk.count(b"\n")
            size += len(chunk)
            if check:
                crc = zlib.crc32(chunk, crc)
        seconds = time.perf_counter() - started
    connection.close()
    serving = max(workers, key=lambda pid: cpu_ticks(pid) - ticks[pid])
    hwm = {pid: status_kb(pid, "VmHWM") for pid in workers} if hwm_reset else None
    peaks = {pid: max(sampler.peak_kb[pid], hwm[pid] if hwm else 0) for pid in workers}
    return Download(
        read=Read(seconds, lines - 1, size, crc),  # less the header
        cpu_seconds=(cpu_ticks(serving) - ticks[serving]) / os.sysconf("SC_CLK_TCK"),
        idle_parts_kb=parts[serving],
        idle_kb=idle[serving],
        peak_kb=peaks[serving],
        sampled_kb=sampler.peak_kb[serving],
        hwm_kb=hwm[serving] if hwm else None,
        other_peak_kb=max((peaks[pid] for pid in workers if pid != serving), default=0),
    )


@dataclass
class SlowDownload:
    read_mib: float
    idle_kb: int
    peak_kb: int
    open_transactions: int  # the server's transactions still open after the client left


def slow_download(
    token: str, workers: list[int], db: psycopg.Connection[Any], seconds: float, rate: float
) -> SlowDownload:
    """A client reading ``rate`` bytes/s for ``seconds``, then hanging up before the end: the worker
    must hold back (memory stays flat while the client lags), then end the COPY and its
    transaction."""
    idle = {pid: status_kb(pid, "VmRSS") for pid in workers}
    for pid in workers:
        reset_peak(pid)
    ticks = {pid: cpu_ticks(pid) for pid in workers}
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=300)
    size = 0
    with Sampler(workers) as sampler:
        started = time.perf_counter()
        connection.request("GET", EXPORT_PATH, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {response.read()[:2000]!r}")
        while (elapsed := time.perf_counter() - started) < seconds:
            if size > elapsed * rate:
                time.sleep(0.01)
                continue
            chunk = response.read1(64 * 1024)
            if not chunk:
                raise RuntimeError("the export ended before the slow client hung up")
            size += len(chunk)
        connection.close()  # before the end: the client goes away
        time.sleep(2)
    peaks = {pid: max(sampler.peak_kb[pid], status_kb(pid, "VmHWM")) for pid in workers}
    serving = max(workers, key=lambda pid: cpu_ticks(pid) - ticks[pid])
    row = db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
    ).fetchone()
    assert row is not None
    return SlowDownload(size / MIB, idle[serving], peaks[serving], int(row[0]))


def python_workers(server_pid: int) -> list[int]:
    """granian's worker processes: the Python processes below the server's own."""
    pids = []
    for pid in descendants(server_pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if command and "python" in Path(command[0].decode()).name:
            pids.append(pid)
    return pids


def measure(setup: dict[str, Any], env: dict[str, str], database_url: str, runs: int) -> None:
    if not port_free(PORT):
        raise RuntimeError(f"port {PORT} is taken")
    server = subprocess.Popen(GRANIAN, cwd=ROOT, env=env, start_new_session=True)
    try:
        wait_until_up(f"http://127.0.0.1:{PORT}/healthz")
        time.sleep(1)
        workers = python_workers(server.pid)
        if len(workers) != WORKERS:
            raise RuntimeError(f"expected {WORKERS} worker processes, found {workers}")
        fresh_kb = max(status_kb(pid, "VmRSS") for pid in workers)
        main_kb = status_kb(server.pid, "VmRSS")

        def token() -> str:
            return manage(env, "dev_token", "--restaurant", SLUG, "--role", "owner", "--hours", "1")

        with psycopg.connect(database_url, autocommit=True) as db:
            copies = {
                FORMATTED: (setup["statement"], setup["params"]),
                PLAIN: (PLAIN_COPY, {"restaurant_id": setup["restaurant_id"]}),
            }
            # Warm-up (every worker, the page cache, both connections) and the checks.
            reference = read_copy(db, *copies[FORMATTED], setup, check=True)
            read_copy(db, *copies[PLAIN], setup)
            for _ in range(WORKERS):
                warm = download(token().strip(), workers, check=True)
                if (warm.read.crc, warm.read.size) != (reference.crc, reference.size):
                    raise RuntimeError(
                        f"the HTTP body ({warm.read.size} bytes) differs from the COPY's "
                        f"({reference.size} bytes)"
                    )
            if reference.rows != warm.read.rows:
                raise RuntimeError(f"{reference.rows} rows by COPY, {warm.read.rows} by HTTP")
            samples: dict[str, list[Read]] = {FORMATTED: [], PLAIN: [], HTTP: []}
            downloads: list[Download] = []
            for run in range(runs):
                paths = [FORMATTED, PLAIN, HTTP]
                for path in paths[run % 3 :] + paths[: run % 3]:
                    if path == HTTP:
                        downloads.append(download(token().strip(), workers))
                        read = downloads[-1].read
                    else:
                        read = read_copy(db, *copies[path], setup)
                    samples[path].append(read)
                    print(
                        f"run {run + 1}, {path}: {read.rows / read.seconds:,.0f} rows/s "
                        f"({read.seconds:.2f} s, {read.size / MIB:.0f} MiB)",
                        file=sys.stderr,
                    )
                last = downloads[-1]
                print(
                    f"run {run + 1}, worker: idle {last.idle_kb / 1024:.1f} MiB, peak "
                    f"{last.peak_kb / 1024:.1f} MiB (sampled {last.sampled_kb / 1024:.1f}, "
                    f"VmHWM {(last.hwm_kb or 0) / 1024:.1f}), other worker peak "
                    f"{last.other_peak_kb / 1024:.1f} MiB",
                    file=sys.stderr,
                )
            slow = slow_download(token().strip(), workers, db, SLOW_SECONDS, SLOW_RATE)
        report(samples, downloads, reference, fresh_kb, main_kb, runs)
        print(
            f"slow client ({SLOW_RATE / MIB:.0f} MiB/s for {SLOW_SECONDS:.0f} s, then hanging up "
            f"after {slow.read_mib:.0f} MiB): worker {slow.idle_kb / 1024:.1f} MiB idle, peak "
            f"{slow.peak_kb / 1024:.1f} MiB ({(slow.peak_kb - slow.idle_kb) / 1024:+.1f}); "
            f"server transactions still open 2 s after: {slow.open_transactions}"
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def report(
    samples: dict[str, list[Read]],
    downloads: list[Download],
    reference: Read,
    fresh_kb: int,
    main_kb: int,
    runs: int,
) -> None:
    def median(values: list[float]) -> float:
        return statistics.median(values)

    rates = {path: median([r.rows / r.seconds for r in reads]) for path, reads in samples.items()}
    # The ratio of each run, then their median: both sides of a ratio saw the same machine.
    ratios = {
        path: median(
            [
                r.rows / r.seconds / (f.rows / f.seconds)
                for r, f in zip(reads, samples[FORMATTED], strict=True)
            ]
        )
        for path, reads in samples.items()
    }
    print(
        f"\n{reference.rows:,} orders, {reference.size / MIB:.0f} MiB of CSV; granian "
        f"{WORKERS} workers, 1 blocking thread each; median of {runs} runs\n"
    )
    print("| path | rows/s | vs formatted COPY | seconds | MiB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for path, reads in samples.items():
        print(
            f"| {path} | {rates[path]:,.0f} | {ratios[path]:.2f}x | "
            f"{median([r.seconds for r in reads]):.2f} | "
            f"{median([r.size / MIB for r in reads]):.0f} |"
        )
    idle = median([d.idle_kb / 1024 for d in downloads])
    peak = median([d.peak_kb / 1024 for d in downloads])
    growth = median([(d.peak_kb - d.idle_kb) / 1024 for d in downloads])
    highest = max(d.peak_kb / 1024 for d in downloads)
    parts = {
        key: median([d.idle_parts_kb[key] / 1024 for d in downloads])
        for key in downloads[0].idle_parts_kb
    }
    private = parts["Private_Clean"] + parts["Private_Dirty"]
    print("\n| serving worker (resident memory) | MiB |")
    print("| --- | ---: |")
    print(f"| after its first request (/healthz) | {fresh_kb / 1024:.1f} |")
    print(f"| idle, before a download | {idle:.1f} |")
    print(f"| peak during a download | {peak:.1f} |")
    print(f"| growth during a download | {growth:+.1f} |")
    print(f"| highest peak of any run | {highest:.1f} |")
    print(
        f"\nidle worker: {parts['RssAnon']:.1f} MiB anonymous, {parts['RssFile']:.1f} MiB "
        f"file-backed (code, shared), {parts['RssShmem']:.1f} MiB shared memory; PSS "
        f"{parts['Pss']:.1f} MiB, private {private:.1f} MiB"
    )
    print(
        f"serving worker's CPU per download: {median([d.cpu_seconds for d in downloads]):.2f} s; "
        f"other worker's peak: {median([d.other_peak_kb / 1024 for d in downloads]):.1f} MiB; "
        f"granian's main process: {main_kb / 1024:.1f} MiB"
    )
    rate_met = "met" if ratios[HTTP] >= TARGET_RATIO else "MISSED"
    print(
        f"HTTP rows/s: {ratios[HTTP]:.2f} of the formatted COPY (target {TARGET_RATIO}) {rate_met}"
    )
    for name, mib in (("peak", peak), ("idle", idle), ("growth", growth)):
        megabytes = mib * MIB / 10**6
        met = "met" if megabytes <= TARGET_PEAK_MB else "MISSED"
        print(
            f"worker {name}: {mib:.1f} MiB = {megabytes:.1f} MB (target {TARGET_PEAK_MB} MB) {met}"
        )


def breakdown(database_url: str, runs: int) -> None:
    """In a Django process: where the formatted COPY's time goes. The export's statement
    against variants of it, each changing one thing (the columns of one kind written as the
    bare column they format; no sort), and the plain COPY; RUNS rounds taking turns, median
    seconds and the ratio of rows/s against the export's in the same round."""
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    from exports.copy import copy_statement
    from exports.definitions import ORDERS
    from exports.registry import Column, ExportFilters, ExportType
    from tenants.models import Restaurant

    restaurant = Restaurant.objects.get(slug=SLUG)
    bare = {"payment_status": "p.status", "amount_refunded": "p.amount_refunded"}

    def unformatted(kind: str) -> ExportType:
        columns = tuple(
            Column(column.name, bare.get(column.name, f"o.{column.name}"))
            if kind in ("every", _kind(column.sql))
            else column
            for column in ORDERS.columns
        )
        return replace(ORDERS, columns=columns)

    counts = Counter(_kind(column.sql) for column in ORDERS.columns)
    variants = {
        "the export (formatted COPY)": ORDERS,
        **{
            f"{kind} cells unformatted ({counts[kind]} columns)": unformatted(kind)
            for kind in ("timestamp", "money", "text")
        },
        "every column unformatted": unformatted("every"),
        "no ORDER BY": replace(ORDERS, order_by="NULL::int"),
    }
    copies: dict[str, tuple[str, dict[str, Any] | None]] = {
        name: copy_statement(restaurant, export_type, ExportFilters())
        for name, export_type in variants.items()
    }
    copies[PLAIN] = (PLAIN_COPY, {"restaurant_id": restaurant.pk})
    setup = {"restaurant_id": restaurant.pk, "timezone": restaurant.timezone}
    samples: dict[str, list[Read]] = {name: [] for name in copies}
    with psycopg.connect(database_url, autocommit=True) as db:
        for name in copies:  # warm-up
            read_copy(db, *copies[name], setup)
        for run in range(runs):
            names = list(copies)
            for name in names[run % len(names) :] + names[: run % len(names)]:
                samples[name].append(read_copy(db, *copies[name], setup))
                print(f"run {run + 1}, {name}: {samples[name][-1].seconds:.2f} s", file=sys.stderr)
    export = samples["the export (formatted COPY)"]
    print(f"\nCOPY variants of the orders export, median of {runs} runs\n")
    print("| COPY | seconds | rows/s | vs the export |")
    print("| --- | ---: | ---: | ---: |")
    for name, reads in samples.items():
        ratio = statistics.median(
            [
                (r.rows / r.seconds) / (e.rows / e.seconds)
                for r, e in zip(reads, export, strict=True)
            ]
        )
        print(
            f"| {name} | {statistics.median([r.seconds for r in reads]):.2f} | "
            f"{statistics.median([r.rows / r.seconds for r in reads]):,.0f} | {ratio:.2f}x |"
        )


def _kind(sql: str) -> str:
    """The kind of cell an export column's SQL makes (see exports.cells)."""
    if sql.startswith("to_char("):
        return "timestamp"
    if "::bigint" in sql:
        return "money"
    if sql.startswith("CASE WHEN left("):
        return "text"
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument(
        "--breakdown", action="store_true", help="time COPY variants of the export instead"
    )
    parser.add_argument("--populate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--breakdown-now", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.populate:
        return populate(args.orders, args.customers)
    if args.breakdown_now:
        return breakdown(args.database_url, args.runs)

    env = base_env(args.database_url)
    ensure_database(args.database_url)
    manage(env, "migrate", "--noinput", "-v0")
    populated = subprocess.run(
        [sys.executable, __file__, "--populate", "--orders", str(args.orders),
         "--customers", str(args.customers), "--database-url", args.database_url],
        cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    setup = json.loads(populated.stdout)
    if setup["created"]:
        print(f"populated {args.orders:,} orders in {setup['seconds']:.0f} s", file=sys.stderr)
    if args.breakdown:
        subprocess.run(
            [sys.executable, __file__, "--breakdown-now", "--runs", str(args.runs),
             "--database-url", args.database_url],
            cwd=ROOT, env=env, check=True,
        )  # fmt: skip
        return
    measure(setup, env, args.database_url, args.runs)


if __name__ == "__main__":
    main()
