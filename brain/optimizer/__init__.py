"""The Self-Optimizer: a nightly postmortem of the journal and the ledger for the operator.
It recommends; it never edits a skill, a parameter or a limit (it has no code path to)."""
