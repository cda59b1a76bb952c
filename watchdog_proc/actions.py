"""What the watchdog does about a breach: raise the halt, cancel, flatten, journal, page."""
from __future__ import annotations

import json
import logging
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from brain.config import Settings
from brain.db.bus_publish import publish_sync
from brain.errors import one_line
from brain.journal import JournalEntry, record_entry_sync
from brain.sql import load_queries
from brain.topics import CycleOutcome
from watchdog_proc.checks import L3, L4, Breach

if TYPE_CHECKING:
    from watchdog_proc.ib_link import IBLink

Q = load_queries(Path(__file__).with_name("actions.sql"))
log = logging.getLogger("watchdog")

LEVEL_MEANING = {1: "alert only", 2: "no new entries", 3: "working orders cancelled, trading stopped",
                 4: "every position flattened, broker locked, operator paged"}


def flatten_paper(conn: psycopg.Connection[Any]) -> list[dict]:
    """Close every paper position at its latest close, lock the account. One transaction."""
    closed, proceeds = [], 0.0
    for symbol, qty, avg, last in conn.execute(Q["positions"]).fetchall():
        price = last if last is not None else avg
        side = "sell" if qty > 0 else "buy"
        coid = f"flatten-{symbol}-{int(time.time() * 1000)}"
        order = conn.execute(Q["close_order"], (coid, symbol, side, abs(qty), price)).fetchone()
        assert order is not None  # INSERT ... RETURNING: one row
        order_id = order[0]
        conn.execute(Q["close_fill"], (order_id, coid, f"paper:{coid}", symbol, side, abs(qty), price))
        conn.execute(Q["delete_position"], (symbol,))
        proceeds += qty * price
        closed.append({"symbol": symbol, "qty": qty, "price": price})
    conn.execute(Q["settle_account"], (proceeds, proceeds))
    return closed


def record_flatten(conn: psycopg.Connection[Any], closed: list[dict]) -> None:
    """The watchdog's IB flatten orders go on the book so the brain books their fills."""
    for c in closed:
        conn.execute(Q["ib_flatten_order"], (c["client_order_id"], c["symbol"], c["side"], abs(c["qty"])))


def lock_book(conn: psycopg.Connection[Any], book: str) -> None:
    conn.execute(Q["lock_book"], (book,))


def cancel_orders(conn: psycopg.Connection[Any], level: int) -> list:
    """Cancel on the book what a halt at this level stops (L3: entries; L4: everything but the
    watchdog's own closing orders), and end the cycle of each entry cancelled."""
    with conn.transaction():
        rows = conn.execute(Q["cancel_all" if level >= L4 else "cancel_working"]).fetchall()
        ended = conn.execute(Q["cancelled_entry_cycles"], ([r[0] for r in rows if r[1] == "open"],)).fetchall()
        for symbol, bar_time, corr in ended:
            outcome = CycleOutcome(symbol=symbol, bar_time=bar_time, outcome="halted", by="watchdog",
                                   detail=f"the entry was cancelled by an L{level} halt before it filled")
            publish_sync(conn, "cycle.outcome", outcome, from_agent="watchdog", correlation_id=corr)
    return rows


def act_l4(conn: psycopg.Connection[Any], settings: Settings, ib_link: IBLink | None) -> list[str]:
    cancelled = cancel_orders(conn, L4)
    actions = [f"cancelled {len(cancelled)} working orders on the book"]
    if settings.broker == "ib":
        lock_book(conn, settings.book)
        if ib_link is not None and ib_link.ensure():
            closed = ib_link.flatten()
            record_flatten(conn, closed)
            actions.append("cancelled every order at IB and sent market orders to close "
                           + (", ".join(f"{c['symbol']} {c['qty']:+g}" for c in closed) or "nothing (IB holds no positions)"))
        else:
            actions.append("could NOT reach IB to flatten ("
                           + (ib_link.state() if ib_link is not None else "no IB link") + "); retried every check")
        actions.append("locked the IB broker adapter")
        return actions
    closed = flatten_paper(conn)
    actions.append("flattened " + (", ".join(f"{c['symbol']} {c['qty']:+g} at {c['price']:.4f}" for c in closed)
                                   or "nothing (no open positions)"))
    actions.append("locked the paper broker")
    return actions


def act_l3(conn: psycopg.Connection[Any], settings: Settings, ib_link: IBLink | None) -> list[str]:
    cancelled = cancel_orders(conn, L3)
    actions = [f"cancelled {len(cancelled)} working entry orders on the book; stops stay in place"]
    if settings.broker == "ib":
        if ib_link is not None and ib_link.ensure():
            actions.append(f"cancelled {len(ib_link.cancel_entries())} working entry orders at IB")
        else:
            actions.append("could NOT reach IB to cancel entries; retried every check")
    return actions


def raise_halt(conn: psycopg.Connection[Any], settings: Settings, breach: Breach, raised_by: str = "watchdog",
               ib_link: IBLink | None = None) -> int:
    """Halt first, then act on its level, then journal it.

    The halt commits on its own before anything is done about it (then, at L4, the broker
    lock): the brain and the orders trigger see it at once, and nothing that fails while
    acting (the broker, a lock the brain holds, a full disk) can take it back. What acting
    leaves undone, enforce() redoes every pass."""
    raised = conn.execute(Q["raise_halt"], (breach.level, breach.invariant, breach.reason,
                                            json.dumps(breach.evidence), raised_by)).fetchone()
    assert raised is not None  # INSERT ... RETURNING: one row
    halt_id = raised[0]
    log.error("HALT %d L%d %s: %s", halt_id, breach.level, breach.invariant, breach.reason)
    actions: list[str] = []
    if breach.level >= L4:
        # Apart from the halt: the brain may hold the account row locked past the lock
        # timeout, and the halt must not wait for it, nor roll back with it.
        try:
            lock_book(conn, settings.book)
        except psycopg.Error as exc:
            log.error("halt %d: locking the broker failed (%s); every check retries", halt_id, one_line(exc))
            actions.append(f"locking the broker failed ({one_line(exc)}); every check retries")
    try:
        with conn.transaction():
            if breach.level >= L4:
                actions += act_l4(conn, settings, ib_link)
            elif breach.level >= L3:
                actions += act_l3(conn, settings, ib_link)
    except Exception as exc:
        log.exception("halt %d: acting on it failed; every check retries", halt_id)
        actions.append(f"acting on it failed ({one_line(exc)}); every check retries")
    entry = JournalEntry(
        kind="halt", outcome="halt", title=f"HALT L{breach.level}: {breach.invariant}",
        sections=[("What broke", breach.reason),
                  ("What it means", f"Level {breach.level}: {LEVEL_MEANING[breach.level]}. Nothing in the brain "
                                    "can lift this halt; it stays until an operator runs `brainctl resume "
                                    f"{halt_id} --reason ...` after reading this entry."),
                  ("Evidence", "```json\n" + json.dumps(breach.evidence, indent=2, default=str) + "\n```"),
                  ("What the watchdog did", "\n".join(f"- {a}" for a in actions) or "- raised the halt")],
        facts={"halt_id": halt_id, "level": breach.level, "invariant": breach.invariant,
               "evidence": breach.evidence, "actions": actions})
    try:
        with conn.transaction():
            record_entry_sync(conn, settings.context_dir, entry)
    except Exception:
        log.exception("halt %d is in force, but its journal entry could not be written", halt_id)
    return halt_id


def page(conn: psycopg.Connection[Any], settings: Settings, halt_id: int, breach: Breach, attempts: int = 3) -> None:
    """Tell the operator. Retries with backoff; a page that fails is itself recorded."""
    url = settings.page_webhook_url
    if not url:
        return
    text = f"HALT L{breach.level} ({breach.invariant}): {breach.reason}. Resume only with brainctl resume {halt_id}."
    body = ({"chat_id": settings.page_telegram_chat_id, "text": text} if "api.telegram.org" in url else
            {"halt_id": halt_id, "level": breach.level, "invariant": breach.invariant, "text": text,
             "evidence": breach.evidence})
    error = None
    for attempt in range(1, attempts + 1):
        try:
            req = urllib.request.Request(url, data=json.dumps(body, default=str).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
            with urllib.request.urlopen(req, timeout=5) as resp:
                if 200 <= resp.status < 300:
                    conn.execute(Q["record_page"], (halt_id, url, "sent", attempt, None))
                    return
                error = f"HTTP {resp.status}"
        except Exception as exc:  # the network is allowed to fail; the record says how
            error = str(exc)[:300]
        time.sleep(min(0.5 * 2 ** (attempt - 1), 4.0))
    conn.execute(Q["record_page"], (halt_id, url, "failed", attempts, error))
    log.error("paging the operator failed after %d attempts: %s", attempts, error)


def enforce(conn: psycopg.Connection[Any], settings: Settings | None = None, ib_link: IBLink | None = None) -> list[str]:
    """Keep every active halt in force, whoever raised it: L3 and up keep entry orders
    cancelled; L4 keeps the book flat and the broker locked."""
    highest = conn.execute(Q["highest_active_level"]).fetchone()
    assert highest is not None  # an aggregate: always one row
    level = highest[0]
    done: list[str] = []
    if settings is not None and settings.broker == "ib":
        done = _enforce_ib(conn, settings, level, ib_link)
    elif level >= L4:
        with conn.transaction():
            cancelled = cancel_orders(conn, L4)
            unlocked = conn.execute(Q["paper_unlocked"]).fetchone()
            closed = flatten_paper(conn) if (unlocked or conn.execute(Q["paper_has_positions"]).fetchone()) else []
        if cancelled or closed:
            done.append(f"L4 in force: cancelled {len(cancelled)} orders, flattened {len(closed)} positions")
    elif level >= L3:
        cancelled = cancel_orders(conn, L3)
        if cancelled:
            done.append(f"L3 in force: cancelled {len(cancelled)} entry orders")
    for line in done:
        log.warning(line)
    return done


def _enforce_ib(conn: psycopg.Connection[Any], settings: Settings, level: int, ib_link: IBLink | None) -> list[str]:
    if level < L3:
        return []
    done = []
    cancelled = cancel_orders(conn, level)
    if cancelled:
        done.append(f"L{level} in force: cancelled {len(cancelled)} orders on the book")
    if level >= L4:
        lock_book(conn, settings.book)
    if ib_link is None or not ib_link.ensure():
        return done
    at_ib = ib_link.cancel_all_but_flatten() if level >= L4 else ib_link.cancel_entries()
    if at_ib:
        done.append(f"L{level} in force: cancelled {len(at_ib)} orders at IB")
    if level >= L4:
        left = ib_link.unflattened()
        if left:
            closed = [ib_link.close(p.contract, p.position) for p in left]
            record_flatten(conn, closed)
            done.append("L4 in force: sent market orders to close " + ", ".join(c["symbol"] for c in closed))
    return done
