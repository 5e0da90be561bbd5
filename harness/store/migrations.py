"""The store's schema as an append-only list of numbered migrations. Never edit a shipped one."""

from __future__ import annotations

import duckdb

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
    CREATE TABLE runs (
        run_id VARCHAR PRIMARY KEY, name VARCHAR, experiment_path VARCHAR, config_json VARCHAR,
        config_hash VARCHAR, seed BIGINT, git_commit VARCHAR, git_dirty BOOLEAN, versions_json VARCHAR,
        command VARCHAR, status VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP);
    CREATE TABLE candidates (
        run_id VARCHAR, candidate VARCHAR, model_ref VARCHAR, kind VARCHAR, fingerprint VARCHAR,
        total_params BIGINT);
    CREATE TABLE adapters (
        run_id VARCHAR, candidate VARCHAR, suite VARCHAR, adapter_path VARCHAR, adapter_hash VARCHAR,
        trainable_params BIGINT, total_params BIGINT, steps BIGINT, train_tokens BIGINT,
        tokens_per_s DOUBLE, wall_s DOUBLE, peak_memory_mb DOUBLE, final_train_loss DOUBLE,
        final_val_loss DOUBLE);
    CREATE TABLE training_log (
        run_id VARCHAR, candidate VARCHAR, suite VARCHAR, step BIGINT, split VARCHAR, loss DOUBLE,
        elapsed_s DOUBLE);
    CREATE TABLE items (
        run_id VARCHAR, candidate VARCHAR, variant VARCHAR, suite VARCHAR, status VARCHAR, reason VARCHAR,
        dataset_fingerprint VARCHAR, n_examples BIGINT, n_failed BIGINT, wall_s DOUBLE, model_s DOUBLE,
        finished_at TIMESTAMP);
    CREATE TABLE predictions (
        run_id VARCHAR, candidate VARCHAR, variant VARCHAR, suite VARCHAR, example_id VARCHAR,
        input VARCHAR, reference VARCHAR, output VARCHAR, choice_index INTEGER, choice_scores DOUBLE[],
        latency_s DOUBLE, error VARCHAR);
    CREATE TABLE example_stats (
        run_id VARCHAR, candidate VARCHAR, variant VARCHAR, suite VARCHAR, example_id VARCHAR,
        metric VARCHAR, options_json VARCHAR, stat_names VARCHAR[], stats DOUBLE[]);
    CREATE TABLE scores (
        run_id VARCHAR, candidate VARCHAR, variant VARCHAR, suite VARCHAR, metric VARCHAR,
        options_json VARCHAR, score VARCHAR, value DOUBLE, low DOUBLE, high DOUBLE, n BIGINT,
        method VARCHAR, confidence DOUBLE, signature VARCHAR);
    CREATE TABLE datasets (
        fingerprint VARCHAR PRIMARY KEY, suite VARCHAR, path VARCHAR, n_train BIGINT,
        n_validation BIGINT, n_test BIGINT);
    CREATE TABLE tags (name VARCHAR PRIMARY KEY, run_id VARCHAR, created_at TIMESTAMP);
    """),
]


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMP)")
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply every migration newer than the file's version, each in its own transaction."""
    version = current_version(con)
    for number, sql in MIGRATIONS:
        if number <= version:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_version VALUES (?, now())", [number])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        version = number
    return version
