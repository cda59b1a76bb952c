"""`python -m watchdog_proc`: check every invariant every second; halt on a breach."""
from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg

from brain.logs import quiet_ib_connection_logs
from brain.config import settings as load
from brain.db.urls import psycopg_conninfo, role_url
from brain.errors import BrainError, one_line
from brain.heartbeat import beat_sync
from watchdog_proc import lease
from watchdog_proc.actions import enforce, page, raise_halt
from watchdog_proc.checks import L3, L4, Breach, Q as CHECKS, run_checks

if TYPE_CHECKING:
    from brain.config import Settings
    from watchdog_proc.ib_link import IBLink

log = logging.getLogger("watchdog")


def active_invariants(conn: psycopg.Connection[Any]) -> set[str] | None:
    try:
        return {inv for _id, _lvl, inv in conn.execute(CHECKS["active_halts"]).fetchall()}
    except psycopg.Error:
        return None


def check_once(conn: psycopg.Connection[Any], s: Settings, ib_link: IBLink | None = None,
               keep_watch: Callable[[], object] = lambda: None) -> list[int]:
    """One pass: check, raise what is new, keep the halts in force, and only then beat (a
    watchdog whose checks fail goes stale, and the brain stops entering trades); then page,
    whose retries must not make a watchdog that has checked look dead. keep_watch renews the
    watch's lease before each page (a failing one takes up to about 18 s).
    Returns the ids of halts raised."""
    info: dict[str, object] = {"pid": os.getpid()}
    if ib_link is not None:
        ib_link.ensure()
        info["ib"] = ib_link.state()
    raised = _check_and_halt(conn, s, ib_link)
    try:
        enforce(conn, s, ib_link)
        beat_sync(conn, "watchdog", info)
    finally:
        # A halt raised is paged even when the rest of the pass fails: the next pass finds it
        # active, and would never raise, nor page, it again.
        for halt_id, breach in raised:
            if breach.level >= 3:
                keep_watch()
                page(conn, s, halt_id, breach)
    return [halt_id for halt_id, _ in raised]


def _check_and_halt(conn: psycopg.Connection[Any], s: Settings, ib_link: IBLink | None) -> list[tuple[int, Breach]]:
    active = active_invariants(conn)
    if active is None:
        # A halt table it cannot read is treated as halted: try to raise one so nothing trades
        # blind (the executor refuses entries when it cannot read halts either). Nothing was
        # checked, so the pass fails and no heartbeat is written.
        log.error("the halts table cannot be read: treating the system as halted")
        try:
            raise_halt(conn, s, Breach("halts_unreadable", L4, "the halts table cannot be read"), ib_link=ib_link)
        except psycopg.Error as exc:
            log.error("could not record the halt either: %s", str(exc).splitlines()[0])
        raise RuntimeError("the halts table cannot be read; nothing was checked")
    try:
        breaches = run_checks(conn, s)
    except psycopg.errors.LockNotAvailable as exc:
        # Something holds what the checks read locked past the lock timeout (brain_app may lock
        # the tables it can update). Unchecked is treated as unsafe, like unreadable halts:
        # entries stop, and the pass fails, so no heartbeat is written either.
        breach = Breach("checks_blocked", L3, f"the watchdog's checks were blocked by a lock: {one_line(exc)}")
        if breach.invariant not in active:
            page(conn, s, raise_halt(conn, s, breach, ib_link=ib_link), breach)
        raise
    raised = []
    for breach in breaches:
        if breach.invariant in active:
            continue  # one halt per invariant until the operator resumes it
        raised.append((raise_halt(conn, s, breach, ib_link=ib_link), breach))
        active.add(breach.invariant)
    return raised


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s watchdog %(levelname)s %(message)s")
    quiet_ib_connection_logs()
    try:
        s = load()
        url = role_url(s, "watchdog", embedded="recorded")
    except BrainError as exc:
        print(f"watchdog: {exc}", file=sys.stderr)
        return 1
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("watching every %.1fs", s.watchdog_interval_s)
    ib_link = None
    if s.broker == "ib":
        from watchdog_proc.ib_link import IBLink

        ib_link = IBLink(s.ib_host, s.ib_port, s.ib_watchdog_client_id, s.ib_account)
    me, lease_s = lease.identity(), lease.lease_s(s)
    standing_by_for = None  # the instance whose lease keeps this watchdog standing by
    holding = False  # whether the last pass held the watch
    conn = None
    while not stop:
        started = time.monotonic()
        try:
            if conn is None or conn.closed:
                conn = psycopg.connect(psycopg_conninfo(url), autocommit=True, connect_timeout=5)
                conn.execute(CHECKS["session_lock_timeout"])
            holding = lease.hold(conn, me, lease_s, holding)
            if holding:
                if standing_by_for is not None:
                    log.warning("taking over the watch (the other watchdog's lease ran out or was given up)")
                    standing_by_for = None
                check_once(conn, s, ib_link,
                           # mypy does not carry the narrowing of conn into the lambda
                           keep_watch=lambda: lease.hold(conn, me, lease_s, True))  # type: ignore[arg-type]
            else:
                if standing_by_for is None and ib_link is not None:
                    ib_link.disconnect()  # the acting watchdog connects with the same client id
                standing_by_for = _stand_by(conn, standing_by_for, lease_s)
        except psycopg.errors.LockNotAvailable as exc:  # the connection is fine: retried as it is
            log.error("a check pass waited too long for a lock held by another session; retrying: %s", one_line(exc))
        except psycopg.OperationalError as exc:
            log.error("database unreachable: %s", one_line(exc))
            conn = None
        except Exception:
            # Not a reason to exit: a restarted watchdog would beat before failing again. The
            # pass is retried; until one completes no heartbeat is written.
            log.exception("a check pass failed; retrying")
            if conn is not None:
                conn.close()
            conn = None
        time.sleep(max(0.0, s.watchdog_interval_s - (time.monotonic() - started)))
    if conn is not None:
        try:
            lease.give_up(conn, me)  # a watchdog standing by takes over at once
        except psycopg.Error:
            pass
        conn.close()
    return 0


def _stand_by(conn: psycopg.Connection[Any], standing_by_for: str | None, lease_s: float) -> str | None:
    """Another watchdog holds the watch: say so once per holder. Returns its instance."""
    other, age = lease.holder(conn) or ({}, 0.0)
    if other.get("instance") != standing_by_for:
        log.warning("standing by: the watchdog pid %s on %s holds the watch (renewed %.1fs ago); this one takes "
                    "over if %.0fs pass without a renewal", other.get("pid"), other.get("host"), age, lease_s)
    return other.get("instance")


if __name__ == "__main__":
    raise SystemExit(main())
