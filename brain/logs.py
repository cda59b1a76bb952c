"""One log format for every process."""
from __future__ import annotations

import logging


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=getattr(logging, level, logging.INFO),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Connection churn during a database restart is reported by the bus in one line.
    logging.getLogger("asyncpg.pool").setLevel(logging.ERROR)
    quiet_ib_connection_logs()


def quiet_ib_connection_logs() -> None:
    # ib_async logs a refused or dropped gateway connection in several lines; the adapter and
    # the watchdog report it themselves, in one.
    logging.getLogger("ib_async.client").setLevel(logging.CRITICAL)
