"""Markdown skills: each agent's prompt, operator-edited and hot-reloaded."""
