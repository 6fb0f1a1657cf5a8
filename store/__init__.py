"""The store: subjects, records, materialised obligations, the decision log and API keys,
in SQLAlchemy 2.0 over SQLite (a file, no set-up) or PostgreSQL. SQL lives here only."""
