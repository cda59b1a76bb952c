"""Backtests: the same agents and bus over history, in a scratch database."""
