"""The role agents. Each is a bus consumer; none calls another."""
