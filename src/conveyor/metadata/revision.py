"""The newest revision of the run records' schema, importable without SQLAlchemy.

The stdlib repository compares a database's ``alembic_version`` with it to skip importing
Alembic when nothing is due; a unit test keeps it equal to Alembic's head in
``sql/migrations/versions``.
"""

HEAD = "0005_runnumidx"
