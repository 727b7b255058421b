"""The notifications service (port 3007): templates, SMTP / outbox-file delivery, a persisted
retry queue and the send history, in its own SQLite database (aiosqlite)."""
