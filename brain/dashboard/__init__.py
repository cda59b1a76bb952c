"""The operator dashboard: server-rendered pages, HTMX partial refresh, read-only."""
