"""The records schema at ``HEAD``, to lay out a new local database without Alembic.

A snapshot of what the Alembic chain (``metadata/sql/migrations``, the one source of the
schema and of its migrations) creates on SQLite, in its order: a unit test keeps it equal
to Alembic's result, so a new revision refreshes it with ``HEAD``. Databases that are not
empty are never laid out from it; Alembic migrates them.
"""

from conveyor.metadata.revision import HEAD

__all__ = ["HEAD", "STATEMENTS"]

STATEMENTS = (
    (
        "CREATE TABLE alembic_version (\n"
        "\tversion_num VARCHAR(32) NOT NULL, \n"
        "\tCONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n"
        ")"
    ),
    (
        "CREATE TABLE runs (\n"
        "\tid VARCHAR(32) NOT NULL, \n"
        "\tpipeline VARCHAR(200) NOT NULL, \n"
        "\tstatus VARCHAR(16) NOT NULL, \n"
        '\t"commit" VARCHAR(64), \n'
        "\tdirty BOOLEAN NOT NULL, \n"
        "\tdiff_digest VARCHAR(64), \n"
        "\tparams JSON NOT NULL, \n"
        "\twho VARCHAR(200) NOT NULL, \n"
        "\thost VARCHAR(200) NOT NULL, \n"
        "\tpid INTEGER, \n"
        "\tcreated_at FLOAT NOT NULL, \n"
        "\tstarted_at FLOAT, \n"
        "\tended_at FLOAT, \n"
        "\texecutor VARCHAR(64) NOT NULL, \n"
        "\tspec_path TEXT NOT NULL, \n"
        '\t"trigger" VARCHAR(32) NOT NULL, \n'
        "\tworkdir TEXT NOT NULL, \n"
        "\terror TEXT, \n"
        "\tPRIMARY KEY (id)\n"
        ")"
    ),
    ("CREATE INDEX ix_runs_created_at ON runs (created_at)"),
    ("CREATE INDEX ix_runs_status ON runs (status)"),
    (
        "CREATE TABLE step_runs (\n"
        "\trun_id VARCHAR(32) NOT NULL, \n"
        "\tstep_id VARCHAR(400) NOT NULL, \n"
        "\tjob VARCHAR(400) NOT NULL, \n"
        "\tstatus VARCHAR(16) NOT NULL, \n"
        "\tfingerprint VARCHAR(64), \n"
        "\tcached BOOLEAN NOT NULL, \n"
        "\tcached_from VARCHAR(32), \n"
        "\texit_code INTEGER, \n"
        "\tattempt INTEGER NOT NULL, \n"
        "\tstarted_at FLOAT, \n"
        "\tended_at FLOAT, \n"
        "\tlog_path TEXT, \n"
        "\tcommand TEXT NOT NULL, \n"
        "\tparts JSON NOT NULL, \n"
        "\toutputs JSON NOT NULL, \n"
        "\terror TEXT, \n"
        "\tPRIMARY KEY (run_id, step_id), \n"
        "\tFOREIGN KEY(run_id) REFERENCES runs (id)\n"
        ")"
    ),
    ("CREATE INDEX ix_step_runs_step_id ON step_runs (step_id)"),
    (
        "CREATE TABLE step_outputs (\n"
        "\trun_id VARCHAR(32) NOT NULL, \n"
        "\tstep_id VARCHAR(400) NOT NULL, \n"
        "\tpath TEXT NOT NULL, \n"
        "\tdigest VARCHAR(64) NOT NULL, \n"
        "\tkind VARCHAR(8) NOT NULL, \n"
        "\tsize BIGINT NOT NULL, \n"
        "\tPRIMARY KEY (run_id, step_id, path)\n"
        ")"
    ),
    ("CREATE INDEX ix_step_outputs_digest ON step_outputs (digest)"),
    ("CREATE INDEX ix_step_outputs_path ON step_outputs (path)"),
    (
        "CREATE TABLE step_inputs (\n"
        "\trun_id VARCHAR(32) NOT NULL, \n"
        "\tstep_id VARCHAR(400) NOT NULL, \n"
        "\tpath TEXT NOT NULL, \n"
        "\tdigest VARCHAR(64) NOT NULL, \n"
        "\tPRIMARY KEY (run_id, step_id, path)\n"
        ")"
    ),
    ("CREATE INDEX ix_step_inputs_digest ON step_inputs (digest)"),
    (
        "CREATE TABLE cache_entries (\n"
        "\tfingerprint VARCHAR(64) NOT NULL, \n"
        "\tstep_id VARCHAR(400) NOT NULL, \n"
        "\trun_id VARCHAR(32) NOT NULL, \n"
        "\toutputs JSON NOT NULL, \n"
        "\tPRIMARY KEY (fingerprint)\n"
        ")"
    ),
    ("CREATE INDEX ix_cache_entries_step_id ON cache_entries (step_id)"),
    (
        "CREATE TABLE events (\n"
        "\tid INTEGER NOT NULL, \n"
        "\trun_id VARCHAR(32) NOT NULL, \n"
        "\tstep_id VARCHAR(400), \n"
        "\tkind VARCHAR(32) NOT NULL, \n"
        "\tat FLOAT NOT NULL, \n"
        "\tdata JSON NOT NULL, \n"
        "\tPRIMARY KEY (id)\n"
        ")"
    ),
    ("CREATE INDEX ix_events_run_id ON events (run_id)"),
)
