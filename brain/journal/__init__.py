"""The journal: one plain-English markdown file per event, and the same facts in agent_journal.

Imports nothing from agents, router or bus: the watchdog writes halt entries with it."""
from brain.journal.entry import JournalEntry, record_entry, record_entry_sync, render_markdown, write_entry_file

__all__ = ["JournalEntry", "record_entry", "record_entry_sync", "render_markdown", "write_entry_file"]
