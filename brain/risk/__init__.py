"""Hard risk limits and sizing: constants and pure functions, no I/O, no configuration."""
