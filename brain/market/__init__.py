"""Market data: validated bars from the replay feed, files, ingress or a broker."""
