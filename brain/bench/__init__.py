"""Benchmarks that print the figures the project promises, measured on the real server."""
