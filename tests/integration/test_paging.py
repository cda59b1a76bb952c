"""Paging the operator: a generic JSON webhook and the Telegram format, retried with backoff;
a page that fails is recorded and shown in status."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg

from brain.cli.ctl_status import gather
from watchdog_proc.actions import page
from watchdog_proc.checks import Breach


class Hook:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.bodies: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                hook.bodies.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
                status = 500 if len(hook.bodies) <= hook.failures else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


BREACH = Breach("max_drawdown", 4, "drawdown 16% reached the 15% cap", {"drawdown": 0.16})


def halt(db) -> int:
    return db.sql("INSERT INTO halts (level, invariant, reason, raised_by) VALUES (4, 'max_drawdown', 'x', "
                  "'watchdog') RETURNING id", role="watchdog")[0][0]


def test_generic_webhook_retries_then_succeeds(db, conn, brain_home):
    hook = Hook(failures=1)
    try:
        halt_id = halt(db)
        page(conn, db.settings(brain_home, page_webhook_url=hook.url), halt_id, BREACH)
    finally:
        hook.close()
    assert len(hook.bodies) == 2 and hook.bodies[-1]["halt_id"] == halt_id and hook.bodies[-1]["level"] == 4
    assert "brainctl resume" in hook.bodies[-1]["text"]
    assert db.sql("SELECT status, attempts FROM operator_pages") == [("sent", 2)]


def test_a_failed_page_is_recorded_and_shows_in_status(db, conn, brain_home):
    hook = Hook(failures=99)
    try:
        page(conn, db.settings(brain_home, page_webhook_url=hook.url), halt(db), BREACH, attempts=2)
    finally:
        hook.close()
    assert len(hook.bodies) == 2
    assert db.sql("SELECT status, attempts FROM operator_pages") == [("failed", 2)]
    with psycopg.connect(db.url("operator"), autocommit=True) as op:
        assert gather(op)["failed_pages"] == 1


def test_telegram_body(db, conn, brain_home, monkeypatch):
    sent = []

    class Response:
        status = 200

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    def fake_urlopen(req, timeout):
        sent.append((req.full_url, json.loads(req.data)))
        return Response()

    # Only the transport is replaced here: the body built for a Telegram URL is what is checked.
    monkeypatch.setattr("urllib.request.urlopen", fake_urlopen)
    page(conn, db.settings(brain_home, page_webhook_url="https://api.telegram.org/bot1:x/sendMessage",
                           page_telegram_chat_id="42"), halt(db), BREACH)
    [(url, body)] = sent
    assert body["chat_id"] == "42" and body["text"].startswith("HALT L4 (max_drawdown)")
