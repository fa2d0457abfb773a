"""Storage: SQLAlchemy 2 async models, SQLite by default, PostgreSQL by URL."""
