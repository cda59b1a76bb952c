"""The dashboard in a real headless Chromium: every page loads without console errors, the
decision filters work, and a screenshot of each page is written to test-artifacts/."""
from __future__ import annotations

import asyncio
import re
import shutil
import socket
from pathlib import Path

import pytest

from tests.support.cycle import outcome_of, publish_bar, start_brain, states
from tests.support.paths import REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO / "test-artifacts"
PAGES = ["/", "/decisions", "/positions", "/bus", "/costs", "/skills", "/halts"]
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def chromium(profile: Path, *args: str) -> tuple[str, str]:
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return out.decode(), err.decode()


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if "CONSOLE" in line and re.search(r"error|uncaught|failed", line, re.IGNORECASE)]


async def test_every_page_in_a_real_browser(db, tmp_path):
    port = free_port()
    brain = await start_brain(db, tmp_path, ingress_port=port, ingress_host="127.0.0.1")
    try:
        rows = [(b, s) for b, s in states("AAPL", "2013-01-02", "2013-01-18") if s is not None]
        for bar, state in rows[:8]:
            await outcome_of(db, await publish_bar(brain, bar, state))
        for i, (bar, _state) in enumerate(rows[:8]):  # the marks the paper broker makes on each bar
            db.sql("INSERT INTO equity_history (account, ts, equity, cash) VALUES ('paper', %s, %s, 100000)",
                   (bar.ts, 100_000 + 150 * i - 40 * (i % 3)), role="app")
        db.sql("INSERT INTO halts (level, invariant, reason, evidence, raised_by) VALUES "
               "(2, 'daily_loss', 'today''s loss reached the block', '{\"day_pnl\": -0.051}', 'watchdog')",
               role="watchdog")
        ARTIFACTS.mkdir(exist_ok=True)
        base = f"http://127.0.0.1:{port}"
        for page in PAGES:
            name = "overview" if page == "/" else page.strip("/")
            shot = ARTIFACTS / f"dashboard-{name}.png"
            shot.unlink(missing_ok=True)
            _, err = await chromium(tmp_path / f"profile-{name}", "--window-size=1280,900",
                                    f"--screenshot={shot}", base + page)
            assert shot.exists() and shot.stat().st_size > 5000, f"no screenshot of {page}: {err[-500:]}"
            assert console_errors(err) == [], f"{page}: {console_errors(err)}"
            dom, err = await chromium(tmp_path / f"profile-dom-{name}", "--dump-dom", base + page)
            assert "<nav>" in dom and "Trading brain" in dom
        overview, _ = await chromium(tmp_path / "p1", "--dump-dom", base + "/")
        assert "NO NEW ENTRIES" in overview and "daily_loss" in overview and "<polyline" in overview
        skips, _ = await chromium(tmp_path / "p2", "--dump-dom", base + "/decisions?outcome=skip")
        outcomes = re.findall(r'<td class="outcome">(\w+)</td>', skips)
        assert outcomes and set(outcomes) == {"skip"}
        none, _ = await chromium(tmp_path / "p3", "--dump-dom", base + "/decisions?symbol=ZZZZ")
        assert "no entries match" in none
        entry_id = db.sql("SELECT max(id) FROM agent_journal")[0][0]
        entry, _ = await chromium(tmp_path / "p4", "--dump-dom", f"{base}/decisions/{entry_id}")
        assert "<h2>What happened</h2>" in entry and "<table>" in entry
    finally:
        await brain.close()
