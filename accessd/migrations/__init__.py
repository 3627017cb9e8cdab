"""Alembic migrations of the accessd schema; run them with ``accessd.db.upgrade``."""
