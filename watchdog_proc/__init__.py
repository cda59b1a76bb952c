"""The watchdog: a separate process, outside the agent graph, that checks invariants every
second and halts trading when one breaks. It imports brain's database, journal, risk limits
and heartbeat helpers only, never the agents or the router, and connects as brain_watchdog."""
