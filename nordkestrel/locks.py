"""Locks: the one order every transaction takes them in, and the advisory locks by name.

The lock order
==============
A transaction takes locks only in this order. Holding a lock of one level, it may take
more of the same level or of a later level, never one of an earlier level: two
transactions then never wait on each other in a circle (PostgreSQL's "deadlock detected").

1. **Session locks** that span transactions, taken by platform jobs before any transaction
   of theirs, never inside a request: :data:`PERIODIC_RUN` (one ``run_periodic`` at a
   time), then :data:`RESTAURANT_PURGE` (one purge per restaurant) or
   :data:`EVENT_DELIVERY` (one delivery run per domain event).
2. **Job locks** of one restaurant, the first thing its transaction takes:
   :data:`MENU_IMPORT`, :data:`STRIPE_CONNECT`, :data:`MENU_PUBLISH` (in this order where a
   transaction takes several).
3. **The restaurant row**, ``Restaurant.objects.locked(pk)``: ``FOR NO KEY UPDATE``.
4. **Other rows**, each table's rows in primary-key order, in the order the flows take them: a
   stored webhook event; staff members; a webhook endpoint, then its deliveries; menu rows,
   then the live menu's state; a Stripe account; a payment (with :data:`STRIPE_ROW_WAIT`, on
   which a Stripe event that found no row meets that row's writer), then its refunds, payouts
   or disputes; an order; its customer; its promotion and redemption; the checkout's slot
   (:data:`ORDER_SLOT`), then the restaurant's order-number row; an export; a purge's deletion
   record.
5. **The audit chain** (:data:`AUDIT_CHAIN`), last of all: ``audit.services.record`` takes
   it just before its transaction ends (and holds it to the end), so nothing is locked
   after an audit event is written.
6. **At COMMIT** PostgreSQL checks the deferred foreign keys of the rows the transaction
   wrote: ``FOR KEY SHARE`` on every row they point at (the restaurant row for every
   tenant row). That comes after the audit chain, whatever the code does.

Because of 6, a row that other transactions' new rows point at (the restaurant, a staff
member, an order, a payment, ...) is locked ``FOR NO KEY UPDATE``
(``select_for_update(no_key=True)``), which ``FOR KEY SHARE`` does not wait for, whenever
the transaction changes no column of the row's keys (its primary key, and any column with a
plain unique index: partial and expression indexes do not count); a plain ``UPDATE`` of such
columns takes the same mode by itself. ``FOR UPDATE`` is left for a row the transaction
deletes or whose key it changes, where no other writer's COMMIT can be waiting for it: an
expired export (no row points at it) and the purge's last step, which clears the
restaurant's organization once the restaurant refuses every write.

Advisory locks
==============
``pg_advisory_*lock(int, int)``: the first number names the lock's purpose (the ASCII of
four letters), the second is the object it is about, usually the restaurant's id (or
PostgreSQL's ``hashtext`` of a text key). Take them
with :func:`lock_for_transaction` (held to the end of the transaction) or
:func:`try_session_lock` / :func:`session_lock` (held by the connection until released).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from nordkestrel.dbrouting import current_alias

# The second number of an advisory lock is a PostgreSQL ``int``.
KEY_RANGE = 2**31
# The level of the locks a session holds across transactions; every later level's locks are
# held by one transaction.
SESSION_LEVEL = 1


@dataclass(frozen=True)
class LockClass:
    """One kind of advisory lock: its name and the number PostgreSQL knows it by."""

    name: str
    number: int
    level: int  # its level in the lock order above

    def __str__(self) -> str:
        return self.name


# 1. Session locks.
PERIODIC_RUN = LockClass("periodic run", 0x5045_5244, level=SESSION_LEVEL)  # "PERD"
RESTAURANT_PURGE = LockClass("restaurant purge", 0x5052_4745, level=SESSION_LEVEL)  # "PRGE"
EVENT_DELIVERY = LockClass("event delivery", 0x4556_4E54, level=SESSION_LEVEL)  # "EVNT"
# 2. Job locks of one restaurant.
MENU_IMPORT = LockClass("menu import", 0x4D49_4D50, level=2)  # "MIMP"
STRIPE_CONNECT = LockClass("Stripe connect", 0x434F_4E4E, level=2)  # "CONN"
MENU_PUBLISH = LockClass("menu publish", 0x4D45_4E55, level=2)  # "MENU"
# 4. Among the rows a checkout locks: after its customer and promotion, before its number.
ORDER_SLOT = LockClass("order slot", 0x534C_4F54, level=4)  # "SLOT"
STRIPE_ROW_WAIT = LockClass("Stripe row wait", 0x5741_4954, level=4)  # "WAIT"
# 5. The audit chain.
AUDIT_CHAIN = LockClass("audit chain", 0x4155_4454, level=5)  # "AUDT"

ALL = (
    PERIODIC_RUN,
    RESTAURANT_PURGE,
    EVENT_DELIVERY,
    MENU_IMPORT,
    STRIPE_CONNECT,
    MENU_PUBLISH,
    ORDER_SLOT,
    STRIPE_ROW_WAIT,
    AUDIT_CHAIN,
)


def _key(key: int) -> int:
    return key % KEY_RANGE


def lock_for_transaction(lock: LockClass, key: int | str, *, using: str | None = None) -> None:
    """Wait for ``lock`` on ``key`` (a number, or a text PostgreSQL hashes); it is released
    when the current transaction ends. It is taken on the connection the block's queries use
    (nordkestrel/dbrouting.py) unless ``using`` names one."""
    if lock.level == SESSION_LEVEL:
        raise ValueError(f"The {lock} lock is held by a session, not a transaction.")
    connection = connections[using or current_alias.get()]
    if not connection.in_atomic_block:
        raise RuntimeError(f"The {lock} lock is held by a transaction: open one first.")
    with connection.cursor() as cursor:
        if isinstance(key, str):
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [lock.number, key])
        else:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [lock.number, _key(key)])


def try_session_lock(lock: LockClass, key: int, *, connection: BaseDatabaseWrapper) -> bool:
    """Take ``lock`` on ``key`` for the connection's session if nobody holds it, at once.

    It outlives transactions: :func:`session_unlock` or closing the connection releases it.
    """
    if lock.level != SESSION_LEVEL:
        raise ValueError(f"The {lock} lock is held by a transaction, not a session.")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [lock.number, _key(key)])
        row = cursor.fetchone()
    return bool(row and row[0])


def session_unlock(lock: LockClass, key: int, *, connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [lock.number, _key(key)])


@contextmanager
def session_lock(lock: LockClass, key: int, *, using: str = DEFAULT_DB_ALIAS) -> Iterator[bool]:
    """Yield whether this session took ``lock`` on ``key`` (False: another holds it); a lock
    taken is released on the way out."""
    connection = connections[using]
    acquired = try_session_lock(lock, key, connection=connection)
    try:
        yield acquired
    finally:
        if acquired:
            session_unlock(lock, key, connection=connection)
