"""The index: the only package that speaks SQL (SQLAlchemy 2, SQLite or PostgreSQL)."""
