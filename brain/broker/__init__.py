"""Brokers: the paper broker (default) and Interactive Brokers, behind one interface."""
