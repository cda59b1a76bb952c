"""What the watchdog does about a breach: raise the halt, cancel, flatten, journal, page."""
from __future__ import annotations

import json
import logging
import time
import urllib.request
from pathlib import Path

from brain.config import Settings
from brain.journal import JournalEntry, record_entry_sync
from brain.sql import load_queries
from watchdog_proc.checks import L3, L4, Breach

Q = load_queries(Path(__file__).with_name("actions.sql"))
log = logging.getLogger("watchdog")

LEVEL_MEANING = {1: "alert only", 2: "no new entries", 3: "working orders cancelled, trading stopped",
                 4: "every position flattened, broker locked, operator paged"}


def flatten_paper(conn) -> list[dict]:
    """Close every paper position at its latest close, lock the account. One transaction."""
    closed, proceeds = [], 0.0
    for symbol, qty, avg, last in conn.execute(Q["positions"]).fetchall():
        price = last if last is not None else avg
        side = "sell" if qty > 0 else "buy"
        coid = f"flatten-{symbol}-{int(time.time() * 1000)}"
        order_id = conn.execute(Q["close_order"], (coid, symbol, side, abs(qty), price)).fetchone()[0]
        conn.execute(Q["close_fill"], (order_id, coid, f"paper:{coid}", symbol, side, abs(qty), price))
        conn.execute(Q["delete_position"], (symbol,))
        proceeds += qty * price
        closed.append({"symbol": symbol, "qty": qty, "price": price})
    conn.execute(Q["settle_account"], (proceeds, proceeds))
    return closed


def raise_halt(conn, settings: Settings, breach: Breach, raised_by: str = "watchdog") -> int:
    """Halt, act on its level, and journal it, all in one transaction with the halt row."""
    actions: list[str] = []
    with conn.transaction():
        halt_id = conn.execute(Q["raise_halt"], (breach.level, breach.invariant, breach.reason,
                                                 json.dumps(breach.evidence), raised_by)).fetchone()[0]
        if breach.level >= L4:
            cancelled = conn.execute(Q["cancel_all"]).fetchall()
            closed = flatten_paper(conn)
            actions.append(f"cancelled {len(cancelled)} working orders")
            actions.append("flattened " + (", ".join(f"{c['symbol']} {c['qty']:+g} at {c['price']:.4f}" for c in closed)
                                           or "nothing (no open positions)"))
            actions.append("locked the paper broker")
        elif breach.level >= L3:
            cancelled = conn.execute(Q["cancel_working"]).fetchall()
            actions.append(f"cancelled {len(cancelled)} working entry orders; stops stay in place")
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
        record_entry_sync(conn, settings.context_dir, entry)
    log.error("HALT %d L%d %s: %s", halt_id, breach.level, breach.invariant, breach.reason)
    return halt_id


def page(conn, settings: Settings, halt_id: int, breach: Breach, attempts: int = 3) -> None:
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


def enforce(conn) -> list[str]:
    """Keep every active halt in force, whoever raised it: L3 and up keep entry orders
    cancelled; L4 keeps the book flat and the broker locked."""
    level = conn.execute("SELECT coalesce(max(level), 0) FROM halts WHERE resumed_at IS NULL").fetchone()[0]
    done: list[str] = []
    if level >= L4:
        with conn.transaction():
            cancelled = conn.execute(Q["cancel_all"]).fetchall()
            unlocked = conn.execute("SELECT 1 FROM accounts WHERE account = 'paper' AND NOT locked").fetchone()
            closed = flatten_paper(conn) if (unlocked or conn.execute(
                "SELECT 1 FROM positions WHERE account = 'paper' LIMIT 1").fetchone()) else []
        if cancelled or closed:
            done.append(f"L4 in force: cancelled {len(cancelled)} orders, flattened {len(closed)} positions")
    elif level >= L3:
        cancelled = conn.execute(Q["cancel_working"]).fetchall()
        if cancelled:
            done.append(f"L3 in force: cancelled {len(cancelled)} entry orders")
    for line in done:
        log.warning(line)
    return done
