"""PostgreSQL for teams (MODELYARD_DATABASE_URL): connecting with clear errors, and locked migrations.

Also `sqlite_wait`, for SQLite statements run on the event loop.

Imported only when the URL names PostgreSQL: psycopg loads inside these functions, never on the
SQLite path.
"""
