"""The one way agents call models: routes behind circuit breakers, a ledger row per attempt,
answers validated against the skill's schema, and a typed failure instead of a guess."""
