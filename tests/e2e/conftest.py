"""End-to-end tests: the product as its users run it, in processes of its own (`brain up`,
`brain run`, `brain backtest`, `brainctl`, the watchdog, a headless browser) against a real
PostgreSQL, checked from the database, the files and the output. The slowest of the suite.

They need no fixtures beyond tests/conftest.py's; their helpers are in tests/support/.
"""
