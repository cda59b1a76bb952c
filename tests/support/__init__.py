"""What the tests share, each in a module with one job; tests import what they use.

paths: where the repository is. database: the test databases (the fixtures in
tests/conftest.py make them). waiting: polling until something holds. bus: test payloads
and a Bus on the test database; bus_worker: a consumer process started by the crash tests.
cycle: the real agents in-process on real bars. watchdog: a watchdog process and what it
reads. dates: dates and times in UTC.
"""
