"""The server's own tables (projects, users, tokens, members, the run queue...).

They live in the same database as the run records, with their own Alembic chain
(version table ``conveyor_server_version``) so the two schemas move independently.
"""
