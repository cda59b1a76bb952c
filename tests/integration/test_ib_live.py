"""Against a real IB Gateway or TWS (paper): skipped unless one answers at BRAIN_IB_HOST /
BRAIN_IB_PORT (default 127.0.0.1:4002). Read-only: it places nothing."""
from __future__ import annotations

import os
import socket

import pytest

HOST = os.environ.get("BRAIN_IB_HOST", "127.0.0.1")
PORT = int(os.environ.get("BRAIN_IB_PORT", "4002"))


def _gateway_answers() -> bool:
    try:
        with socket.create_connection((HOST, PORT), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _gateway_answers(), reason=f"no IB gateway answers at {HOST}:{PORT}")
async def test_a_real_gateway_reports_the_account_and_knows_aapl():
    from ib_async import IB

    from brain.broker.ib import stock

    ib = IB()
    await ib.connectAsync(HOST, PORT, clientId=97, timeout=10, readonly=True)
    try:
        tags = {v.tag for v in ib.accountValues()}
        assert "NetLiquidation" in tags
        [aapl] = await ib.qualifyContractsAsync(stock("AAPL"))
        assert aapl is not None and aapl.conId == 265598
    finally:
        ib.disconnect()
