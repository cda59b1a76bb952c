"""The trading brain: durable bus, role agents, model router, journal, brokers."""
