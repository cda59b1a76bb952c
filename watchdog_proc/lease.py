"""One acting watchdog per database; any other stands by.

Two watchdogs acting at once (a second one started by hand, by systemd beside compose) would
each raise the same halt and, with IB, connect with the same client id, which IB answers by
dropping the older connection. So each pass starts by renewing a lease, the `watchdog:lease`
row of app_state (which brain_app cannot write). A watchdog that finds another's lease
renewed within lease_s() stands by: it checks nothing, acts on nothing and writes no
heartbeat. It takes over once the lease has gone that long unrenewed (its holder died or
hangs), or at once when its holder stops cleanly and gives the lease up.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from typing import TYPE_CHECKING, Any

import psycopg

from brain.sql import queries_beside

if TYPE_CHECKING:
    from brain.config import Settings

log = logging.getLogger("watchdog")
Q = queries_beside(__file__, "lease.sql")

KEY = "watchdog:lease"


def lease_s(settings: Settings) -> float:
    """How long a lease holds unrenewed (BRAIN_WATCHDOG_LEASE_S, 30 s): longer than one slow
    step of a pass (a page that fails takes three attempts of up to 5 s; a broker can take
    its time), so that the watch is not handed over while its holder still acts; it is also
    renewed before every page. Never under three checks."""
    return max(settings.watchdog_lease_s, 3 * settings.watchdog_interval_s)


def identity() -> dict:
    return {"instance": uuid.uuid4().hex, "pid": os.getpid(), "host": socket.gethostname()}


def hold(conn: psycopg.Connection[Any], me: dict, ttl_s: float, holding: bool) -> bool:
    """Take or renew the lease; False while another watchdog holds it.

    When app_state stays locked past the connection's lock_timeout (no watchdog holds a lock
    that long; brain_app can lock the table it writes), the lease cannot be written: the
    watchdog that was holding it (`holding`) keeps the watch, and one standing by takes it
    only once the lease it can still read has run out."""
    try:
        return conn.execute(Q["hold"], {"key": KEY, "me": json.dumps(me), "ttl": ttl_s}).fetchone() is not None
    except psycopg.errors.LockNotAvailable:
        if holding:
            log.error("app_state is locked by another session; keeping the watch without renewing its lease")
            return True
    try:
        held = holder(conn)
    except psycopg.errors.LockNotAvailable:
        return False  # nothing can be known; the watchdog holding the watch, if alive, keeps it
    if held is None or held[1] >= ttl_s:
        log.error("app_state is locked by another session, and no watchdog has renewed the watch for %.0fs; "
                  "taking it without the lease", held[1] if held else float("inf"))
        return True
    return False


def holder(conn: psycopg.Connection[Any]) -> tuple[dict, float] | None:
    """The lease's holder and how many seconds ago it renewed it."""
    row = conn.execute(Q["holder"], {"key": KEY}).fetchone()
    return (row[0], row[1]) if row else None


def give_up(conn: psycopg.Connection[Any], me: dict) -> None:
    conn.execute(Q["give_up"], {"key": KEY, "instance": me["instance"]})
