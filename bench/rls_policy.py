"""The tenant policy that trusts roles against the one that trusted a setting: pgbench, old vs new.

Row-level security on every tenant table used to let a row through when it was the current
restaurant's or when the transaction had set ``app.tenant_bypass``:

    restaurant_id = NULLIF(current_setting('app.restaurant_id', true), '')::bigint
    OR current_setting('app.tenant_bypass', true) = 'on'

and now lets it through when it is the current restaurant's or when the role is the platform's
(tenants/rls.py, nordkestrel/dbgrants.py):

    restaurant_id = NULLIF(current_setting('app.restaurant_id', true), '')::bigint
    OR nordkestrel_platform()

This script measures what that costs the application role, on the local PostgreSQL
(127.0.0.1:5432, user postgres, trust authentication), in a database of its own
(``bench_rls``) with roles of its own, all dropped at the end, on failure too:

- ``bench_rls_owner`` (NOSUPERUSER NOBYPASSRLS) owns the database, the tables and
  ``nordkestrel_platform()`` (written as dbgrants.platform_function_sql() writes it, trusting
  the owner and ``bench_rls_platform``); ``bench_rls_app`` (NOSUPERUSER NOBYPASSRLS, owns
  nothing) runs every measured statement; ``bench_rls_platform`` is only used to check that
  the new policy lets it across restaurants.
- Two identical order tables, ``orders_old`` and ``orders_new``: RESTAURANTS restaurants x ROWS
  orders each (restaurants interleaved in id order, as live orders arrive), a dozen columns like
  a real order's, a primary key and an index on ``(restaurant_id, created)``, ENABLE and FORCE
  ROW LEVEL SECURITY, one policy each (the old condition on ``orders_old``, the new one on
  ``orders_new``, as USING and WITH CHECK); SELECT, INSERT, UPDATE granted to the app role.
  Autovacuum is off on both; the owner vacuums and analyses both before every round, and a
  CHECKPOINT precedes every round, so both tables are in the same state when they take turns.
- Before measuring, the policies are checked as the app role (no restaurant set: no rows;
  restaurant set: its rows only, another's row neither updated nor inserted; the old bypass
  setting opens ``orders_old`` only; the platform role crosses ``orders_new`` only).

Each statement runs in pgbench (``-n -c 1 -M simple -r``: Django's psycopg backend binds on the
client, so every statement is planned anew, policy expansion included) from a script that does
what a request does, as the app role:

    \\set rid random(1, RESTAURANTS)
    BEGIN;
    SELECT set_config('app.restaurant_id', :rid::text, true);
    <the statement>
    COMMIT;

- ``(a) newest 50``: ``SELECT ... WHERE restaurant_id = :rid ORDER BY created DESC LIMIT 50``;
- ``(b) count``: ``SELECT count(*) ... WHERE restaurant_id = :rid``;
- ``(c) insert``: one order for ``:rid``;
- ``(d) update``: one of ``:rid``'s orders by primary key (status and ``updated``).

RUNS rounds; in each round every statement runs on both tables back to back, the table that
goes first alternating from round to round (old, new / new, old / ...). The reads and the
update run for SECONDS seconds (``-T``); the insert runs a fixed number of transactions
(``-t``, set from the warm-up's rate to last about SECONDS), so both tables grow by exactly the
same number of rows and ``(b)`` counts the same rows on both. A warm-up pass (2 s per table and
read/update statement, 500 inserts each) comes first and is not counted. Reported per statement:
the median over the rounds of the time ratio new/old, for the whole transaction (1/tps, from
pgbench's ``tps``) and for the statement alone (pgbench's ``-r`` per-command latency), the
median rates and latencies, and every run. Above 1.00 the new policy is slower. Then
``EXPLAIN (ANALYZE, BUFFERS)`` of ``(a)`` on both tables as the app role. Usage:

    .venv/bin/python bench/rls_policy.py [--runs 5] [--seconds 10]

Diagnostics: ``--only a,d`` runs those statements only; ``--pin`` runs (a) after
``SET LOCAL enable_bitmapscan = off`` (the same index scan on both tables: the planner's row
estimate for (a) sits near the point where it switches plans, and the two policies' estimates
differ); ``--planning N`` times the planning of each statement N times per table
(``EXPLAIN (SUMMARY)``); ``--runs 0`` skips pgbench. Every run also prints which plan (a) gets
for each restaurant on each table, and ``EXPLAIN (ANALYZE, BUFFERS)`` of (a) on both.

Results go to stdout as Markdown; bench/RESULTS.md records them.
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
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

HOST, PORT, SUPERUSER = "127.0.0.1", 5432, "postgres"
DATABASE = "bench_rls"
OWNER, APP, PLATFORM = "bench_rls_owner", "bench_rls_app", "bench_rls_platform"
TABLES = {"old": "orders_old", "new": "orders_new"}
RESTAURANT_SETTING = "app.restaurant_id"

OLD_CONDITION = (
    "(restaurant_id = NULLIF(current_setting('app.restaurant_id', true), '')::bigint "
    "OR current_setting('app.tenant_bypass', true) = 'on')"
)
# The new policy in either form: the function call (tenants/migrations/0007) or the roles'
# names written into the policy (0008, what the code writes now; --new function/inline).
NEW_CONDITIONS = {
    "function": (
        "(restaurant_id = NULLIF(current_setting('app.restaurant_id', true), '')::bigint "
        "OR nordkestrel_platform())"
    ),
    "inline": (
        "(restaurant_id = NULLIF(current_setting('app.restaurant_id', true), '')::bigint "
        f"OR CURRENT_USER = ANY ('{{{OWNER},{PLATFORM}}}'::name[]))"
    ),
}
NEW_CONDITION = NEW_CONDITIONS["inline"]
# As nordkestrel/dbgrants.platform_function_sql() writes it for these roles.
PLATFORM_FUNCTION_SQL = (
    "CREATE OR REPLACE FUNCTION nordkestrel_platform() RETURNS boolean "
    f"LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT current_user IN ('{OWNER}', '{PLATFORM}') $$"
)

TABLE_SQL = """
CREATE TABLE {table} (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    restaurant_id bigint NOT NULL,
    number integer NOT NULL,
    status varchar(16) NOT NULL,
    fulfilment varchar(16) NOT NULL,
    customer_name varchar(120) NOT NULL,
    customer_phone varchar(32) NOT NULL,
    note text NOT NULL,
    subtotal_cents bigint NOT NULL,
    total_cents bigint NOT NULL,
    currency char(3) NOT NULL,
    created timestamptz NOT NULL,
    updated timestamptz NOT NULL
) WITH (autovacuum_enabled = false)
"""
# Restaurants interleaved in id order (restaurant = (id - 1) % R + 1), one order a minute.
FILL_SQL = """
INSERT INTO {table} (id, restaurant_id, number, status, fulfilment, customer_name,
                     customer_phone, note, subtotal_cents, total_cents, currency, created, updated)
SELECT g, (g - 1) % {r} + 1, (g - 1) / {r} + 1,
       (ARRAY['placed', 'accepted', 'ready', 'completed', 'cancelled'])[g % 5 + 1],
       CASE WHEN g % 3 = 0 THEN 'delivery' ELSE 'pickup' END,
       'Customer ' || (g * 7919 % 100000), '+358 40 ' || lpad((g * 31 % 1000000)::text, 7, '0'),
       CASE WHEN g % 4 = 0 THEN 'No onions, please. Ring twice.' ELSE '' END,
       1000 + g * 37 % 9000, 1000 + g * 37 % 9000 + 250, 'EUR',
       timestamptz '2026-01-01 00:00+00' + g * interval '1 minute',
       timestamptz '2026-01-01 00:00+00' + g * interval '1 minute'
FROM generate_series(1, {n}) AS g
"""

STATEMENTS = {
    "a": (
        "(a) newest 50",
        "SELECT id, number, status, fulfilment, customer_name, total_cents, created "
        "FROM {table} WHERE restaurant_id = :rid ORDER BY created DESC LIMIT 50;",
    ),
    "b": ("(b) count", "SELECT count(*) FROM {table} WHERE restaurant_id = :rid;"),
    "c": (
        "(c) insert",
        "INSERT INTO {table} (restaurant_id, number, status, fulfilment, customer_name, "
        "customer_phone, note, subtotal_cents, total_cents, currency, created, updated) "
        "VALUES (:rid, 1, 'placed', 'pickup', 'Bench Customer', '+358 40 1234567', '', "
        "1800, 2050, 'EUR', now(), now());",
    ),
    "d": (
        "(d) update",
        "UPDATE {table} SET status = 'ready', updated = now() "
        "WHERE id = :rid + {restaurants} * (:n - 1);",
    ),
}
WARMUP_SECONDS = 2
WARMUP_INSERTS = 500


@dataclass
class Run:
    statement: str
    round: int
    version: str
    position: int  # 1 = ran first in its pair
    tps: float
    statement_ms: float
    transactions: int


class BenchError(RuntimeError):
    pass


def scalar(row: tuple[Any, ...] | None) -> Any:
    if row is None:
        raise BenchError("no row")
    return row[0]


def connect(user: str, dbname: str) -> psycopg.Connection[Any]:
    return psycopg.connect(host=HOST, port=PORT, user=user, dbname=dbname, autocommit=True)


def pgbench_path() -> str:
    for candidate in ("/usr/lib/postgresql/15/bin/pgbench", shutil.which("pgbench")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise BenchError("pgbench not found")


def drop_everything(quiet: bool = False) -> None:
    """Drop the database and the roles (only this script's names)."""
    try:
        with connect(SUPERUSER, "postgres") as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE))
            )
            for role in (APP, PLATFORM, OWNER):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    except Exception as error:  # cleanup reports, never masks the first error
        if not quiet:
            print(f"cleanup failed: {error}", file=sys.stderr)
        else:
            raise


def setup(restaurants: int, rows: int) -> None:
    with connect(SUPERUSER, "postgres") as conn:
        for role in (OWNER, APP, PLATFORM):
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
                ).format(sql.Identifier(role))
            )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(DATABASE), sql.Identifier(OWNER)
            )
        )
    with connect(OWNER, DATABASE) as conn:
        conn.execute(PLATFORM_FUNCTION_SQL)
        for version, table in TABLES.items():
            ident = sql.Identifier(table)
            conn.execute(sql.SQL(TABLE_SQL).format(table=ident))
            conn.execute(
                sql.SQL(FILL_SQL).format(
                    table=ident, r=sql.Literal(restaurants), n=sql.Literal(restaurants * rows)
                )
            )
            conn.execute(
                sql.SQL("SELECT setval(pg_get_serial_sequence({}, 'id'), max(id)) FROM {}").format(
                    sql.Literal(table), ident
                )
            )
            conn.execute(
                sql.SQL("CREATE INDEX {} ON {} (restaurant_id, created)").format(
                    sql.Identifier(f"{table}_restaurant_created"), ident
                )
            )
            condition = sql.SQL(OLD_CONDITION if version == "old" else NEW_CONDITION)
            conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(ident))
            conn.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(ident))
            conn.execute(
                sql.SQL("CREATE POLICY tenant_isolation ON {} USING {} WITH CHECK {}").format(
                    ident, condition, condition
                )
            )
            for role in (APP, PLATFORM):
                conn.execute(
                    sql.SQL("GRANT SELECT, INSERT, UPDATE ON {} TO {}").format(
                        ident, sql.Identifier(role)
                    )
                )
        for role in (APP, PLATFORM):
            conn.execute(
                sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(
                    sql.Identifier(role)
                )
            )
            conn.execute(
                sql.SQL("GRANT EXECUTE ON FUNCTION nordkestrel_platform() TO {}").format(
                    sql.Identifier(role)
                )
            )
    vacuum()


def vacuum() -> None:
    with connect(OWNER, DATABASE) as conn:
        for table in TABLES.values():
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
    with connect(SUPERUSER, "postgres") as conn:
        conn.execute("CHECKPOINT")


def check_policies(restaurants: int, rows: int) -> None:
    """The policies do what they should for the app role, before anything is timed."""

    def expect(label: str, got: Any, wanted: Any) -> None:
        if got != wanted:
            raise BenchError(f"policy check failed: {label}: got {got!r}, expected {wanted!r}")

    with connect(SUPERUSER, DATABASE) as conn:
        unsafe = conn.execute(
            """SELECT r.rolsuper, r.rolbypassrls,
                      EXISTS (SELECT 1 FROM pg_class c WHERE c.relowner = r.oid),
                      EXISTS (SELECT 1 FROM pg_proc p WHERE p.proowner = r.oid),
                      EXISTS (SELECT 1 FROM pg_database d WHERE d.datdba = r.oid)
               FROM pg_roles r WHERE r.rolname = %s""",
            [APP],
        ).fetchone()
        expect(
            "app role is a plain role owning nothing", unsafe, (False, False, False, False, False)
        )

    total = restaurants * rows
    with psycopg.connect(host=HOST, port=PORT, user=APP, dbname=DATABASE) as conn:
        for version, table in TABLES.items():
            t = sql.Identifier(table)
            with conn.transaction(force_rollback=True):
                expect(
                    f"{table}: no restaurant set",
                    scalar(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(t)).fetchone()),
                    0,
                )
            with conn.transaction(force_rollback=True):
                conn.execute("SELECT set_config(%s, '7', true)", [RESTAURANT_SETTING])
                expect(
                    f"{table}: restaurant 7 sees its rows",
                    scalar(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(t)).fetchone()),
                    rows,
                )
                newest = conn.execute(
                    sql.SQL(STATEMENTS["a"][1].format(table="{}").replace(":rid", "7")).format(t)
                ).fetchall()
                expect(f"{table}: (a) returns 50 rows", len(newest), 50)
                expect(
                    f"{table}: own row updated",
                    conn.execute(
                        sql.SQL("UPDATE {} SET status = 'ready' WHERE id = 7").format(t)
                    ).rowcount,
                    1,
                )
                expect(
                    f"{table}: another restaurant's row not updated",
                    conn.execute(
                        sql.SQL("UPDATE {} SET status = 'ready' WHERE id = 8").format(t)
                    ).rowcount,
                    0,
                )
            with conn.transaction(force_rollback=True):
                conn.execute("SELECT set_config(%s, '7', true)", [RESTAURANT_SETTING])
                try:
                    with conn.transaction():
                        conn.execute(
                            sql.SQL(
                                STATEMENTS["c"][1].format(table="{}").replace(":rid", "8")
                            ).format(t)
                        )
                    refused = False
                except psycopg.errors.InsufficientPrivilege:
                    refused = True
                expect(f"{table}: insert for another restaurant refused", refused, True)
            with conn.transaction(force_rollback=True):
                conn.execute("SELECT set_config('app.tenant_bypass', 'on', true)")
                seen = scalar(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(t)).fetchone())
                expect(
                    f"{table}: app role with app.tenant_bypass=on",
                    seen,
                    total if version == "old" else 0,
                )
    with psycopg.connect(host=HOST, port=PORT, user=PLATFORM, dbname=DATABASE) as conn:
        for version, table in TABLES.items():
            seen = scalar(
                conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                ).fetchone()
            )
            expect(f"{table}: platform role, nothing set", seen, total if version == "new" else 0)
        conn.rollback()


def write_scripts(
    directory: Path, restaurants: int, rows: int, pin: bool = False
) -> dict[tuple[str, str], Path]:
    scripts = {}
    for key, (_label, statement) in STATEMENTS.items():
        for version, table in TABLES.items():
            body = [f"\\set rid random(1, {restaurants})"]
            if key == "d":
                body.append(f"\\set n random(1, {rows})")
            body += [
                "BEGIN;",
                f"SELECT set_config('{RESTAURANT_SETTING}', :rid::text, true);",
                *(["SET LOCAL enable_bitmapscan = off;"] if pin and key == "a" else []),
                statement.format(table=table, restaurants=restaurants),
                "COMMIT;",
            ]
            path = directory / f"{key}_{version}.sql"
            path.write_text("\n".join(body) + "\n")
            scripts[key, version] = path
    return scripts


TPS_RE = re.compile(r"^tps = ([\d.]+) \(without initial connection time\)", re.M)
PROCESSED_RE = re.compile(r"number of transactions actually processed: (\d+)")
FAILED_RE = re.compile(r"number of failed transactions: (\d+)")
LATENCY_RE = re.compile(r"^\s+([\d.]+)\s+(?:\d+\s+)?(.*)$")


def pgbench(
    binary: str, script: Path, *, seconds: int = 0, transactions: int = 0, protocol: str = "simple"
) -> tuple[float, float, int]:
    """One pgbench run as the app role: (tps, the measured statement's mean latency in ms,
    transactions)."""
    command = [
        binary,
        "-h",
        HOST,
        "-p",
        str(PORT),
        "-U",
        APP,
        "-n",
        "-c",
        "1",
        "-j",
        "1",
        "-M",
        protocol,
        "-r",
        "-f",
        str(script),
    ]
    command += ["-T", str(seconds)] if seconds else ["-t", str(transactions)]
    command.append(DATABASE)
    budget = (seconds or 60) + 120
    result = subprocess.run(command, capture_output=True, text=True, timeout=budget)
    if result.returncode != 0:
        raise BenchError(f"pgbench failed ({result.returncode}): {result.stderr}{result.stdout}")
    out = result.stdout
    tps = TPS_RE.search(out)
    processed = PROCESSED_RE.search(out)
    failed = FAILED_RE.search(out)
    if not tps or not processed:
        raise BenchError(f"cannot read pgbench output:\n{out}")
    if failed and int(failed.group(1)):
        raise BenchError(f"pgbench reported failed transactions:\n{out}")
    statement_ms = None
    in_latencies = False
    for line in out.splitlines():
        if line.startswith("statement latencies"):
            in_latencies = True
            continue
        match = LATENCY_RE.match(line) if in_latencies else None
        if match and re.match(r"(SELECT (id|count)|INSERT|UPDATE)", match.group(2)):
            statement_ms = float(match.group(1))
    if statement_ms is None:
        raise BenchError(f"no per-statement latency in pgbench output:\n{out}")
    return float(tps.group(1)), statement_ms, int(processed.group(1))


SCAN_RE = re.compile(
    r"(Index Scan Backward|Index Only Scan Backward|Index Scan|Bitmap Heap Scan|"
    r"Seq Scan) .*?rows=(\d+)"
)


def census(restaurants: int) -> dict[str, dict[str, Any]]:
    """Which plan the planner picks for (a) for every restaurant, on each table: the scan node
    and its row estimate (``EXPLAIN``, not executed), against the rows there are."""
    statement = STATEMENTS["a"][1]
    result: dict[str, dict[str, Any]] = {}
    with psycopg.connect(host=HOST, port=PORT, user=APP, dbname=DATABASE) as conn:
        for version, table in TABLES.items():
            plans: dict[str, int] = {}
            estimates, actual = [], []
            for rid in range(1, restaurants + 1):
                with conn.transaction(force_rollback=True):
                    conn.execute("SELECT set_config(%s, %s, true)", [RESTAURANT_SETTING, str(rid)])
                    text = "\n".join(
                        row[0]
                        for row in conn.execute(
                            "EXPLAIN "
                            + statement.format(table=table).replace(":rid", str(rid)).rstrip(";")
                        ).fetchall()
                    )
                    match = SCAN_RE.search(text)
                    name = match.group(1) if match else "?"
                    plans[name] = plans.get(name, 0) + 1
                    estimates.append(int(match.group(2)) if match else 0)
                    actual.append(
                        scalar(
                            conn.execute(
                                sql.SQL("SELECT count(*) FROM {} WHERE restaurant_id = %s").format(
                                    sql.Identifier(table)
                                ),
                                [rid],
                            ).fetchone()
                        )
                    )
            result[version] = {
                "plans": plans,
                "estimate": statistics.median(estimates),
                "min": min(estimates),
                "max": max(estimates),
                "actual": statistics.median(actual),
            }
    return result


def report_census(result: dict[str, dict[str, Any]], restaurants: int) -> None:
    print(
        f"Plan chosen for (a) for each of the {restaurants} restaurants (`EXPLAIN`, after the "
        "runs; the scan node, its row estimate against the restaurant's rows):"
    )
    print()
    print("| table | plans | estimated rows (median, min-max) | rows there are (median) |")
    print("| --- | --- | ---: | ---: |")
    for version, r in result.items():
        plans = ", ".join(f"{name} {n}" for name, n in sorted(r["plans"].items()))
        print(
            f"| {TABLES[version]} | {plans} | {r['estimate']:,.0f} ({r['min']:,}-{r['max']:,}) "
            f"| {r['actual']:,.0f} |"
        )
    print()


def explain(restaurant: int) -> dict[str, str]:
    plans = {}
    statement = STATEMENTS["a"][1]
    with psycopg.connect(host=HOST, port=PORT, user=APP, dbname=DATABASE) as conn:
        for version, table in TABLES.items():
            with conn.transaction(force_rollback=True):
                conn.execute(
                    "SELECT set_config(%s, %s, true)", [RESTAURANT_SETTING, str(restaurant)]
                )
                query = "EXPLAIN (ANALYZE, BUFFERS) " + statement.format(table=table).replace(
                    ":rid", str(restaurant)
                ).rstrip(";")
                plans[version] = "\n".join(row[0] for row in conn.execute(query).fetchall())
    return plans


PLANNING_RE = re.compile(r"Planning Time: ([\d.]+) ms")


def planning(count: int, restaurants: int, rows: int) -> dict[str, dict[str, list[float]]]:
    """The server's planning time of each statement (``EXPLAIN (SUMMARY)``, nothing executed),
    COUNT times per table as the app role with a restaurant set, the tables taking turns; and
    of the insert with ``RETURNING id``, as Django's ORM writes it."""
    statements = {key: text for key, (_label, text) in STATEMENTS.items()}
    statements["c+"] = statements["c"].rstrip(";") + " RETURNING id;"
    times: dict[str, dict[str, list[float]]] = {k: {"old": [], "new": []} for k in statements}
    with psycopg.connect(
        host=HOST, port=PORT, user=APP, dbname=DATABASE, prepare_threshold=None
    ) as conn:
        for i in range(count):
            order = ["old", "new"] if i % 2 == 0 else ["new", "old"]
            for key, text in statements.items():
                query = text.format(table="{table}", restaurants=restaurants)
                query = query.replace(":rid", "7").replace(":n", str(1 + i % rows)).rstrip(";")
                for version in order:
                    with conn.transaction(force_rollback=True):
                        conn.execute("SELECT set_config(%s, '7', true)", [RESTAURANT_SETTING])
                        out = "\n".join(
                            row[0]
                            for row in conn.execute(
                                "EXPLAIN (SUMMARY) " + query.format(table=TABLES[version])
                            ).fetchall()
                        )
                    match = PLANNING_RE.search(out)
                    if not match:
                        raise BenchError(f"no planning time in:\n{out}")
                    times[key][version].append(float(match.group(1)))
    return times


def report_planning(times: dict[str, dict[str, list[float]]]) -> None:
    labels = {key: label for key, (label, _s) in STATEMENTS.items()}
    labels["c+"] = "(c) insert ... RETURNING id"
    count = len(next(iter(times.values()))["old"])
    print(
        f"Planning time (`EXPLAIN (SUMMARY)`, {count} times per table, tables taking turns; "
        "median of the pairwise ratios):"
    )
    print()
    print("| statement | old planning ms | new planning ms | new - old ms | new/old |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for key, per in times.items():
        old, new = statistics.median(per["old"]), statistics.median(per["new"])
        ratio = statistics.median(n / o for o, n in zip(per["old"], per["new"], strict=True))
        print(f"| {labels[key]} | {old:.3f} | {new:.3f} | {new - old:+.3f} | {ratio:.3f} |")
    print()


def plan_shape(plan: str) -> list[str]:
    """The plan's nodes without numbers, table or index names."""
    shape = []
    for line in plan.splitlines():
        node = re.sub(r"\(cost=.*$|\(actual.*$", "", line).rstrip()
        if "->" in node or (
            node and not node.startswith(" ") and "Planning" not in node and "Execution" not in node
        ):
            shape.append(re.sub(r"orders_(old|new)", "orders_*", node.strip()))
    return shape


def fmt(x: float, digits: int = 3) -> str:
    return f"{x:,.{digits}f}"


def report(
    runs: list[Run],
    args: argparse.Namespace,
    command: str,
    loads: tuple[str, str],
    plans: dict[str, str],
    elapsed: float,
    planning_times: dict[str, dict[str, list[float]]],
    plan_census: dict[str, dict[str, Any]],
) -> None:
    print(f"Command: `{command}`")
    inserts = f", insert `-t {args.insert_count}`" if args.insert_count else ""
    print(
        f"pgbench: `-n -c 1 -j 1 -M {args.protocol} -r`, reads and update `-T {args.seconds}`"
        f"{inserts}; {args.restaurants} restaurants x {args.rows:,} "
        f"rows per table; {args.runs} rounds, {elapsed / 60:.1f} min; load average "
        f"{loads[0]} before, {loads[1]} after."
    )
    print()
    if args.pin:
        print(
            "(a) ran with `SET LOCAL enable_bitmapscan = off` before it: the index scan "
            "backward on (restaurant_id, created) on both tables."
        )
        print()
    if planning_times:
        report_planning(planning_times)
    report_census(plan_census, args.restaurants)
    if not runs:
        print_plans(plans)
        return
    print(
        "Medians over the rounds (time ratio new/old per round, then the median; above 1.00 "
        "the new policy is slower):"
    )
    print()
    print(
        "| statement | old tps | new tps | transaction time new/old | old statement ms "
        "| new statement ms | statement time new/old |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    keys = [key for key in STATEMENTS if any(r.statement == key for r in runs)]
    for key in keys:
        label = STATEMENTS[key][0]
        old = {r.round: r for r in runs if r.statement == key and r.version == "old"}
        new = {r.round: r for r in runs if r.statement == key and r.version == "new"}
        txn_ratio = statistics.median(old[i].tps / new[i].tps for i in old)
        stmt_ratio = statistics.median(new[i].statement_ms / old[i].statement_ms for i in old)
        print(
            f"| {label} | {fmt(statistics.median(r.tps for r in old.values()), 0)} "
            f"| {fmt(statistics.median(r.tps for r in new.values()), 0)} | {txn_ratio:.3f} "
            f"| {fmt(statistics.median(r.statement_ms for r in old.values()))} "
            f"| {fmt(statistics.median(r.statement_ms for r in new.values()))} | {stmt_ratio:.3f} |"
        )
    print()
    print("Every run (first = the table that ran first in the round's pair):")
    print()
    print(
        "| statement | round | first | old tps | new tps | txn new/old | old stmt ms "
        "| new stmt ms | stmt new/old |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for key in keys:
        label = STATEMENTS[key][0]
        for i in sorted({r.round for r in runs}):
            o = next(r for r in runs if (r.statement, r.round, r.version) == (key, i, "old"))
            n = next(r for r in runs if (r.statement, r.round, r.version) == (key, i, "new"))
            print(
                f"| {label} | {i} | {'old' if o.position == 1 else 'new'} | {fmt(o.tps, 0)} "
                f"| {fmt(n.tps, 0)} | {o.tps / n.tps:.3f} | {fmt(o.statement_ms)} "
                f"| {fmt(n.statement_ms)} | {n.statement_ms / o.statement_ms:.3f} |"
            )
    print()
    print_plans(plans)


def print_plans(plans: dict[str, str]) -> None:
    for version, plan in plans.items():
        print(f"EXPLAIN (ANALYZE, BUFFERS) of (a) on {TABLES[version]}, as {APP}:")
        print()
        print("```")
        print(plan)
        print("```")
        print()
    same = plan_shape(plans["old"]) == plan_shape(plans["new"])
    print(
        f"Same plan shape (nodes, table/index names and figures aside): {'yes' if same else 'NO'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--new",
        choices=sorted(NEW_CONDITIONS),
        default="inline",
        help="the new policy's form: the roles' names in the policy, or the function call",
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--restaurants", type=int, default=50)
    parser.add_argument("--rows", type=int, default=4000, help="orders per restaurant")
    parser.add_argument(
        "--protocol",
        choices=("simple", "prepared"),
        default="simple",
        help="pgbench -M: simple plans every statement (as Django does)",
    )
    parser.add_argument(
        "--planning",
        type=int,
        default=0,
        metavar="N",
        help="also time the planning of each statement N times per table",
    )
    parser.add_argument("--only", default="a,b,c,d", help="the statements to run, e.g. a,d")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="run (a) with enable_bitmapscan off (the same plan on both tables)",
    )
    parser.add_argument(
        "--insert-count",
        type=int,
        default=0,
        help="transactions per insert run (default: from the warm-up's rate)",
    )
    args = parser.parse_args()
    global NEW_CONDITION
    NEW_CONDITION = NEW_CONDITIONS[args.new]
    command = ".venv/bin/python bench/rls_policy.py " + " ".join(sys.argv[1:])
    command = command.rstrip()

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    binary = pgbench_path()
    started = time.monotonic()
    load_before = Path("/proc/loadavg").read_text().split()[0]
    drop_everything(quiet=True)  # leftovers of an interrupted run
    try:
        print(f"setting up {DATABASE}...", file=sys.stderr)
        setup(args.restaurants, args.rows)
        check_policies(args.restaurants, args.rows)
        print("policies checked", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="bench_rls_") as tmp:
            scripts = write_scripts(Path(tmp), args.restaurants, args.rows, args.pin)
            selected = [key for key in STATEMENTS if key in args.only.split(",")]
            insert_rates = []
            for key in selected if args.runs else ():
                for version in TABLES:
                    if key == "c":
                        tps, _ms, _n = pgbench(
                            binary,
                            scripts[key, version],
                            transactions=WARMUP_INSERTS,
                            protocol=args.protocol,
                        )
                        insert_rates.append(tps)
                    else:
                        pgbench(
                            binary,
                            scripts[key, version],
                            seconds=WARMUP_SECONDS,
                            protocol=args.protocol,
                        )
            if not args.insert_count and insert_rates:
                args.insert_count = max(
                    500, int(statistics.mean(insert_rates) * args.seconds / 100) * 100
                )
            print(f"warm-up done; insert runs: -t {args.insert_count}", file=sys.stderr)
            runs: list[Run] = []
            for i in range(1, args.runs + 1):
                vacuum()
                order = ["old", "new"] if i % 2 else ["new", "old"]
                for key in selected:
                    for position, version in enumerate(order, start=1):
                        if key == "c":
                            tps, ms, n = pgbench(
                                binary,
                                scripts[key, version],
                                transactions=args.insert_count,
                                protocol=args.protocol,
                            )
                        else:
                            tps, ms, n = pgbench(
                                binary,
                                scripts[key, version],
                                seconds=args.seconds,
                                protocol=args.protocol,
                            )
                        runs.append(Run(key, i, version, position, tps, ms, n))
                        print(
                            f"round {i} {STATEMENTS[key][0]} {version}: {tps:,.0f} tps, "
                            f"statement {ms:.3f} ms",
                            file=sys.stderr,
                        )
        planning_times = (
            planning(args.planning, args.restaurants, args.rows) if args.planning else {}
        )
        plan_census = census(args.restaurants)
        plans = explain(restaurant=7)
        load_after = Path("/proc/loadavg").read_text().split()[0]
        report(
            runs,
            args,
            command,
            (load_before, load_after),
            plans,
            time.monotonic() - started,
            planning_times,
            plan_census,
        )
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        drop_everything()
        print(f"dropped {DATABASE} and the roles", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
