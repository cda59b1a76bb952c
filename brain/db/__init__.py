"""Database access: where the server is, which role connects, migrations."""
