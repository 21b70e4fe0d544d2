"""Persistence: SQLModel tables, the async engine, catalog queries and migrations."""
