"""Deterministic signals: indicators, the computed regime, the composite score. No I/O."""
