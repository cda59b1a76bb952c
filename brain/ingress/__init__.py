"""HTTP ingress inside the brain: a broker-side bridge posts bars, heartbeats, fills and
context notes; operators read health, readiness, metrics and the dashboard. Nothing here can
resume from a halt."""
