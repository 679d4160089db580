"""An API key against the Clerk session on one authenticated read: requests/s, latency, queries.

Issue (API keys): authenticating with a key adds at most one indexed query when cold and none
when warm, and at most 0.1 ms beyond that, as a ratio against the Clerk path on the same server
run. This script, on its own database and Redis database:

1. migrates, then (in a child process with the same settings) makes one restaurant
   (``bench-keys``) with an Owner, revokes the earlier runs' keys and creates a new one with
   ``orders: read`` through ``apikeys.services.key_create``; mints a development Clerk session
   token for the Owner (``staff.dev.mint_token``, verified exactly as Clerk's are);
2. counts the SQL queries and Redis round trips of one request through the whole stack
   (Django's test client, ``CaptureQueriesContext``) for the Clerk token, the key cold (this
   process's memory of it dropped) and the key warm (the same request again);
3. times the authentication step alone in that process: ``read`` + ``authenticate`` of each
   credential inside a request's tenant scope (one transaction), the cases taking turns,
   against the same scope with only the restaurant entered (the floor every path shares);
   then each step of both paths in a loop of its own;
4. serves the project with granian as in production (``--interface wsgi --workers 2
   --blocking-threads 1``), Redis as the cache, ``API_KEY_RATE_LIMIT`` so high that the
   key's limiter counts every request (as in production) and never refuses, and loads
   ``GET <path>`` with wrk: saturating (``-t2 -c<connections>``) for requests/s and one
   connection (``-t1 -c1``) for the latency of a request alone. The Clerk token and the key
   take turns, RUNS times (the first alternating by run); reported: the medians per case, and
   the ratio key/Clerk and the difference in milliseconds per request of each run (the two
   measured back to back), median of the runs. The key stays warm: each worker looks it up
   again once every ``API_KEY_CACHE_SECONDS`` (5 s).

Usage (the database URL's server needs the three roles, nordkestrel/dbroles.py; by default
the embedded PostgreSQL's ``nordkestrel_bench_keys``, created if missing):

    .venv/bin/python bench/api_keys.py [--runs 3] [--duration 8] [--connections 32]
        [--database-url postgres://nkapp@127.0.0.1:5432/nkbench]
        [--redis-url redis://127.0.0.1:6379/8] [--path '/api/v1/orders?page_size=1']

Results go to stdout as Markdown tables with the command that produced them; bench/RESULTS.md
records them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from servers import ensure_database, port_free, wait_until_up  # bench/servers.py, beside this

ROOT = Path(__file__).resolve().parent.parent
PORT = 8095  # servers.py 8099, menu_read.py 8097: all may run on one machine
WORKERS = 2
SLUG = "bench-keys"
KEY_NAME = "bench api_keys.py"
PATH = "/api/v1/orders?page_size=1"
DATABASE_URL = f"postgres://nordkestrel@/nordkestrel_bench_keys?host={ROOT}/.data/postgres"
UNLIMITED = "1000000000"  # requests per minute: the limiter counts, never refuses
CASES = ("Clerk session", "API key (warm)")


def base_env(database_url: str, redis_url: str) -> dict[str, str]:
    inherited = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    return {
        **inherited,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "API_KEY_RATE_LIMIT": UNLIMITED,
        "DJANGO_SETTINGS_MODULE": "nordkestrel.settings",
        "LOG_LEVEL": "WARNING",
        "DJANGO_DEBUG": "false",
    }


# --- In the child process: setup, queries, the authentication step alone -------------------


def setup() -> tuple[Any, str, str]:
    """(owner, Clerk token, API key secret) for the bench restaurant; a new key each run."""
    from django.utils import timezone

    from apikeys.models import ApiKey
    from apikeys.services import key_create
    from staff.auth import Actor
    from staff.dev import mint_token
    from staff.models import StaffMember
    from staff.roles import Role
    from tenants.context import tenant_context
    from tenants.models import Restaurant

    restaurant, _ = Restaurant.objects.get_or_create(
        slug=SLUG,
        defaults={"name": "Bench Keys", "clerk_organization_id": "org_bench_keys"},
    )
    Restaurant.objects.filter(pk=restaurant.pk).update(status=Restaurant.Status.ACTIVE)
    restaurant.refresh_from_db()
    with tenant_context(restaurant):
        owner, _ = StaffMember.objects.select_related("restaurant").get_or_create(
            clerk_user_id="user_bench_keys_owner",
            defaults={
                "email": "owner@bench-keys.example.com",
                "name": "Owner of Bench Keys",
                "role": Role.OWNER,
                "joined_at": timezone.now(),
            },
        )
        owner.restaurant = restaurant
        ApiKey.objects.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        issued = key_create(
            actor=Actor(member=owner), name=KEY_NAME, grants={"orders": "read"}, expires_in_days=1
        )
    token = mint_token(
        clerk_user_id=owner.clerk_user_id or "",
        organization_id=restaurant.clerk_organization_id or "",
        email=owner.email,
    )
    return owner, token, issued.secret


class RedisRoundTrips:
    """Counts Redis round trips (commands and pipelines) while entered."""

    def __enter__(self) -> RedisRoundTrips:
        import redis
        import redis.client

        self.count = 0
        self.commands: list[str] = []
        self._patched = [
            (redis.Redis, "execute_command", redis.Redis.execute_command),
            (redis.client.Pipeline, "execute", redis.client.Pipeline.execute),
        ]
        for owner, name, original in self._patched:
            setattr(owner, name, self._counting(original))
        return self

    def _counting(self, original: Any) -> Any:
        def counted(client: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            if args:
                self.commands.append(str(args[0]))
            else:  # a pipeline: its commands, one round trip
                names = [str(command[0][0]) for command in client.command_stack]
                self.commands.append("pipeline " + " ".join(names))
            return original(client, *args, **kwargs)

        return counted

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in self._patched:
            setattr(owner, name, original)


def count_queries(path: str, token: str, secret: str) -> dict[str, Any]:
    """Queries and Redis round trips of one request through the whole stack, per case."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from apikeys import credentials, tokens

    def one(authorization: str) -> dict[str, Any]:
        client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {authorization}")
        with CaptureQueriesContext(connection) as queries, RedisRoundTrips() as redis:
            response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}: {response.content!r}")
        return {
            "queries": len(queries),
            "redis": redis.count,
            "redis_commands": redis.commands,
            "sql": [" ".join(query["sql"].split())[:160] for query in queries],
        }

    one(token)  # the organization's restaurant is cached, as it is for every later request
    counts = {"Clerk session": one(token)}
    credentials.forget(tokens.digest(secret))
    counts["API key (cold)"] = one(secret)
    counts["API key (warm)"] = one(secret)
    return counts


def time_authentication(token: str, secret: str, calls: int, rounds: int) -> dict[str, float]:
    """Microseconds per call of each credential's ``read`` + ``authenticate``, in a request's
    tenant scope; the cases take turns, ``rounds`` times ``calls`` calls, median per case."""
    from django.test import RequestFactory

    from apikeys import credentials, tokens
    from apikeys.credentials import ApiKeyCredential
    from staff.access import FrontDoor
    from staff.credentials import ClerkSessionCredential
    from tenants.context import tenant_scope
    from tenants.models import Restaurant
    from tenants.selectors import restaurant_id_for_organization

    factory = RequestFactory(HTTP_HOST="127.0.0.1")
    clerk_request = factory.get(PATH, HTTP_AUTHORIZATION=f"Bearer {token}")
    key_request = factory.get(PATH, HTTP_AUTHORIZATION=f"Bearer {secret}")
    restaurant = Restaurant(pk=restaurant_id_for_organization("org_bench_keys"))
    digest = tokens.digest(secret)

    def floor() -> None:
        with tenant_scope() as scope:
            scope.enter(restaurant)

    def admit(credential_class: type, request: Any) -> Any:
        with tenant_scope() as scope:
            credential = credential_class()
            presented = credential.read(request, FrontDoor.API)
            return credential.authenticate(presented, scope)

    def cold() -> None:
        credentials.forget(digest)
        admit(ApiKeyCredential, key_request)

    cases = {
        "tenant scope only (floor)": floor,
        "Clerk session": lambda: admit(ClerkSessionCredential, clerk_request),
        "API key (warm)": lambda: admit(ApiKeyCredential, key_request),
        "API key (cold)": cold,
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for case in cases.values():  # warm up: connections, caches, the key in memory
        for _ in range(50):
            case()
    admit(ApiKeyCredential, key_request)
    for _ in range(rounds):
        for name, case in cases.items():
            started = time.perf_counter()
            for _ in range(calls):
                case()
            samples[name].append((time.perf_counter() - started) / calls * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def time_parts(token: str, secret: str, calls: int, rounds: int) -> dict[str, float]:
    """Microseconds per call of the steps each credential takes, each in a loop of its own
    (in the restaurant's tenant context where the step needs one)."""
    from django.db import connection

    from apikeys import credentials, tokens, usage
    from apikeys.models import ApiKey
    from staff.clerk import verify_session_token
    from staff.models import StaffMember
    from tenants.context import tenant_context
    from tenants.models import Restaurant
    from tenants.selectors import restaurant_id_for_organization

    restaurant = Restaurant.objects.get(slug=SLUG)
    session = verify_session_token(token)
    digest = tokens.digest(secret)

    def lookup() -> None:
        with connection.cursor() as cursor:
            cursor.execute(credentials.LOOKUP, [digest])
            cursor.fetchone()

    with tenant_context(restaurant):
        member = StaffMember.objects.select_related("restaurant").get(clerk_user_id=session.user_id)
        key_id = ApiKey.objects.get(secret_hash=digest).pk
        steps = {
            "Clerk: verify the token (RS256, claims)": lambda: verify_session_token(token),
            "Clerk: organization → restaurant (cache get)": lambda: restaurant_id_for_organization(
                session.org_id or ""
            ),
            "Clerk: roster row by clerk_user_id (query)": lambda: (
                StaffMember.objects.select_related("restaurant")
                .filter(clerk_user_id=session.user_id)
                .first()
            ),
            "key: offline check + SHA-256": lambda: (
                tokens.well_formed(secret) and tokens.digest(secret)
            ),
            "key: copy the remembered member and restaurant": lambda: (
                credentials._clone(member),
                credentials._clone(restaurant),
            ),
            "key: count the use (Redis pipeline)": lambda: usage.count_use(
                key_id, restaurant.pk, int(UNLIMITED), "127.0.0.1"
            ),
            "key, cold: nordkestrel_api_key(digest) (query)": lookup,
            "key, cold: creator's roster row by id (query)": lambda: (
                StaffMember.objects.select_related("restaurant").filter(pk=member.pk).first()
            ),
        }
        samples: dict[str, list[float]] = {name: [] for name in steps}
        for step in steps.values():
            for _ in range(50):
                step()
        for _ in range(rounds):
            for name, step in steps.items():
                started = time.perf_counter()
                for _ in range(calls):
                    step()
                samples[name].append((time.perf_counter() - started) / calls * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def child(path: str, calls: int, rounds: int) -> None:
    import django

    django.setup()
    _, token, secret = setup()
    result = {
        "token": token,
        "secret": secret,
        "counts": count_queries(path, token, secret),
        "micro": time_authentication(token, secret, calls, rounds),
        "parts": time_parts(token, secret, calls, rounds),
    }
    print(json.dumps(result))


# --- In the parent: the server run -----------------------------------------------------------


def parse_wrk(output: str) -> tuple[float, float]:
    """(requests/s, mean latency ms)."""
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"failed responses:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    match = re.search(r"Latency\s+([\d.]+)(us|ms|s)\b", output)
    assert match is not None, output
    value, unit = float(match.group(1)), match.group(2)
    mean_ms = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    return rps, mean_ms


def check(url: str, authorization: str) -> None:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {authorization}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")


def serve_and_load(
    env: dict[str, str], path: str, credentials: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    """Per case: {"load": (req/s, mean ms), "alone": (req/s, mean ms)}, medians of the runs;
    "pairwise": per load, the medians of each run's ratio key/Clerk and differences."""
    granian = [
        sys.executable, "-m", "granian", "--interface", "wsgi", "nordkestrel.wsgi:application",
        "--host", "127.0.0.1", "--port", str(PORT), "--workers", str(WORKERS),
        "--blocking-threads", "1", "--log-level", "warning",
    ]  # fmt: skip
    if not port_free(PORT):
        raise RuntimeError(f"port {PORT} is taken")
    server = subprocess.Popen(granian, cwd=ROOT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{PORT}{path}"
    loads = {
        "load": ["-t2", f"-c{args.connections}"],
        "alone": ["-t1", "-c1"],
    }
    try:
        wait_until_up(f"http://127.0.0.1:{PORT}/healthz")
        for secret in credentials.values():
            check(url, secret)
            subprocess.run(
                ["wrk", "-t2", "-c8", "-d2s", "-H", f"Authorization: Bearer {secret}", url],
                capture_output=True, check=True,
            )  # fmt: skip
        samples: dict[str, dict[str, list[tuple[float, float]]]] = {
            name: {load: [] for load in loads} for name in credentials
        }
        for run in range(args.runs):
            for load, options in loads.items():
                # Each run starts with the other case, so drift hits both alike.
                order = list(credentials.items())[:: 1 if run % 2 == 0 else -1]
                for name, secret in order:
                    out = subprocess.run(
                        ["wrk", *options, f"-d{args.duration}s", "-H",
                         f"Authorization: Bearer {secret}", url],
                        capture_output=True, text=True, check=True,
                    ).stdout  # fmt: skip
                    samples[name][load].append(parse_wrk(out))
        medians: dict[str, Any] = {
            name: {
                load: (
                    statistics.median(s[0] for s in values),
                    statistics.median(s[1] for s in values),
                )
                for load, values in per_load.items()
            }
            for name, per_load in samples.items()
        }
        # Pairwise, run by run (the two cases measured back to back), then the median.
        clerk, key = (samples[name] for name in CASES)
        medians["pairwise"] = {
            load: {
                "ratio": statistics.median(
                    k[0] / c[0] for c, k in zip(clerk[load], key[load], strict=True)
                ),
                # ms of server time per request: at saturation every worker is busy, so
                # workers / (req/s); alone, one request at a time, so 1 / (req/s).
                "ms": statistics.median(
                    (WORKERS if load == "load" else 1) * 1000 * (1 / k[0] - 1 / c[0])
                    for c, k in zip(clerk[load], key[load], strict=True)
                ),
                "mean_ms": statistics.median(
                    k[1] - c[1] for c, k in zip(clerk[load], key[load], strict=True)
                ),
            }
            for load in loads
        }
        return medians
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def report(
    command: str, args: argparse.Namespace, inner: dict[str, Any], served: dict[str, Any]
) -> None:
    print(f"\nCommand: `{command}`")
    print(f"Path: `GET {args.path}`; granian, {WORKERS} workers, 1 blocking thread each; "
          f"median of {args.runs} runs of {args.duration}s per cell\n")  # fmt: skip

    print("Per request through the whole stack (Django test client, one process):\n")
    print("| case | SQL queries | Redis round trips |")
    print("| --- | ---: | ---: |")
    counts = inner["counts"]
    for name, count in counts.items():
        print(f"| {name} | {count['queries']} | {count['redis']} |")
    for name, count in counts.items():
        print(f"\n{name}:")
        for sql in count["sql"]:
            print(f"  {sql}")
        print(f"  Redis: {', '.join(count['redis_commands'])}")

    clerk = served[CASES[0]]
    print(f"\nServed, wrk `-t2 -c{args.connections}` (load) and `-t1 -c1` (alone):\n")
    print("| credential | req/s (load) | vs Clerk | mean ms (load) | req/s (alone) | vs Clerk "
          "| mean ms (alone) |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in CASES:
        (rps, mean), (rps1, mean1) = served[name]["load"], served[name]["alone"]
        ratio = rps / clerk["load"][0]
        ratio1 = rps1 / clerk["alone"][0]
        print(f"| {name} | {rps:,.0f} | {ratio:.3f}x | {mean:.2f} | {rps1:,.0f} | "
              f"{ratio1:.3f}x | {mean1:.3f} |")  # fmt: skip
    print("\nkey against Clerk, run by run (back to back), median of the runs:\n")
    print("| load | req/s key/Clerk | ms per request key - Clerk | mean latency key - Clerk ms |")
    print("| --- | ---: | ---: | ---: |")
    for load, label in (("load", f"-t2 -c{args.connections}"), ("alone", "-t1 -c1")):
        pair = served["pairwise"][load]
        print(f"| {label} | {pair['ratio']:.3f}x | {pair['ms']:+.3f} | {pair['mean_ms']:+.3f} |")
    print(f"\n(ms per request: {WORKERS} workers / req/s under load, 1 / req/s alone.)")

    micro = inner["micro"]
    floor = micro["tenant scope only (floor)"]
    print(f"\nThe authentication step alone, in one process ({args.calls} calls x "
          f"{args.rounds} rounds, median; read + authenticate in a tenant scope):\n")  # fmt: skip
    print("| case | µs per call | beyond the floor µs | vs Clerk µs |")
    print("| --- | ---: | ---: | ---: |")
    for name, value in micro.items():
        print(f"| {name} | {value:.1f} | {value - floor:+.1f} | "
              f"{value - micro['Clerk session']:+.1f} |")  # fmt: skip
    print("\nTheir steps, each timed alone (same process, same rounds):\n")
    print("| step | µs per call |")
    print("| --- | ---: |")
    for name, value in inner["parts"].items():
        print(f"| {name} | {value:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/8")
    parser.add_argument("--path", default=PATH)
    parser.add_argument("--calls", type=int, default=500, help="calls per timed round")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per case")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.path, args.calls, args.rounds)
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    command = shlex.join([Path(sys.executable).name, "bench/api_keys.py", *sys.argv[1:]])

    env = base_env(args.database_url, args.redis_url)
    ensure_database(args.database_url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    env_child = {**env, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bench")])}
    inner = json.loads(
        subprocess.run(
            [sys.executable, __file__, "--child", "--path", args.path, "--calls",
             str(args.calls), "--rounds", str(args.rounds)],
            cwd=ROOT, env=env_child, check=True, capture_output=True, text=True,
        ).stdout.splitlines()[-1]
    )  # fmt: skip
    credentials = dict(zip(CASES, (inner["token"], inner["secret"]), strict=True))
    served = serve_and_load(env, args.path, credentials, args)
    report(command, args, inner, served)


if __name__ == "__main__":
    main()
