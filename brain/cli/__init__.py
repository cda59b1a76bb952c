"""Command-line entry points: `brain` (the service) and `brainctl` (the operator)."""
