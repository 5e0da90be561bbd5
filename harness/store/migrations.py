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
    (2, """
    CREATE TABLE gate_decisions (
        id VARCHAR PRIMARY KEY, created_at TIMESTAMP, baseline VARCHAR, baseline_run_id VARCHAR,
        candidate VARCHAR, candidate_run_id VARCHAR, rules_hash VARCHAR, verdict VARCHAR, exit_code INTEGER,
        n_checks INTEGER, n_failed INTEGER, n_warned INTEGER, n_not_comparable INTEGER, checks_json VARCHAR);
    """),
    (3, """
    CREATE TABLE reviewers (
        name VARCHAR PRIMARY KEY, role VARCHAR NOT NULL, salt BLOB NOT NULL, password_hash BLOB NOT NULL,
        created_at TIMESTAMP, password_set_at TIMESTAMP, last_login_at TIMESTAMP);
    CREATE TABLE login_throttle (
        name VARCHAR PRIMARY KEY, failures INTEGER NOT NULL, last_failure_at TIMESTAMP, locked_until TIMESTAMP);
    CREATE TABLE review_queues (
        queue_id VARCHAR PRIMARY KEY, run_id VARCHAR, suite VARCHAR, mode VARCHAR, strategy VARCHAR,
        sample_n INTEGER, overlap INTEGER, blind BOOLEAN, rubric_json VARCHAR, candidates_json VARCHAR,
        seed BIGINT, created_by VARCHAR, created_at TIMESTAMP);
    CREATE TABLE review_queue_reviewers (queue_id VARCHAR, reviewer VARCHAR, PRIMARY KEY (queue_id, reviewer));
    CREATE TABLE review_items (
        queue_id VARCHAR, item_id VARCHAR, position INTEGER, example_id VARCHAR, input VARCHAR, reference VARCHAR,
        candidate_a VARCHAR, variant_a VARCHAR, output_a VARCHAR, candidate_b VARCHAR, variant_b VARCHAR,
        output_b VARCHAR, swapped BOOLEAN, priority DOUBLE, PRIMARY KEY (queue_id, item_id));
    CREATE TABLE review_grades (
        queue_id VARCHAR, item_id VARCHAR, reviewer VARCHAR, answers_json VARCHAR, overall VARCHAR,
        comment VARCHAR, elapsed_s DOUBLE, created_at TIMESTAMP, PRIMARY KEY (queue_id, item_id, reviewer));
    CREATE TABLE review_skips (
        queue_id VARCHAR, item_id VARCHAR, reviewer VARCHAR, created_at TIMESTAMP,
        PRIMARY KEY (queue_id, item_id, reviewer));
    """),
    (4, """
    CREATE TABLE review_claims (
        queue_id VARCHAR, reviewer VARCHAR, item_id VARCHAR NOT NULL, claimed_at TIMESTAMP NOT NULL,
        expires_at TIMESTAMP NOT NULL, PRIMARY KEY (queue_id, reviewer));
    ALTER TABLE review_items ADD COLUMN slot_turns BIGINT DEFAULT 0;
    """),
    (5, """
    CREATE TABLE review_sessions (
        token_hash VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL,
        expires_at TIMESTAMP NOT NULL);
    CREATE TABLE app_secrets (name VARCHAR PRIMARY KEY, value BLOB NOT NULL, created_at TIMESTAMP);
    ALTER TABLE reviewers ADD COLUMN must_change_password BOOLEAN DEFAULT false;
    """),
    (6, """
    CREATE TABLE store_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
    INSERT INTO store_meta VALUES ('application', 'harness');
    """),
    (7, """
    CREATE TABLE judge_calibrations (
        id VARCHAR PRIMARY KEY, created_at TIMESTAMP NOT NULL, judge_ref VARCHAR NOT NULL,
        judge_fingerprint VARCHAR NOT NULL, prompt_hash VARCHAR NOT NULL, rubric_hash VARCHAR NOT NULL,
        rubric VARCHAR NOT NULL, queue_id VARCHAR, n_items INTEGER, record_json VARCHAR NOT NULL);
    """),
    (8, """
    ALTER TABLE predictions ADD COLUMN raw_output VARCHAR;
    ALTER TABLE predictions ADD COLUMN extracted BOOLEAN;
    ALTER TABLE items ADD COLUMN n_extract_missed BIGINT;
    """),
    (9, """
    ALTER TABLE predictions ADD COLUMN reference_list VARCHAR[];
    """),
    (10, """
    ALTER TABLE items ADD COLUMN fingerprint VARCHAR;
    ALTER TABLE items ADD COLUMN reused_from VARCHAR;
    ALTER TABLE items ADD COLUMN n_truncated BIGINT;
    ALTER TABLE items ADD COLUMN n_near_ties BIGINT;
    ALTER TABLE adapters ADD COLUMN recipe_fingerprint VARCHAR;
    ALTER TABLE adapters ADD COLUMN reused_from VARCHAR;
    CREATE TABLE data_checks (
        run_id VARCHAR, suite VARCHAR, check_kind VARCHAR, severity VARCHAR, message VARCHAR, rows VARCHAR[],
        created_at TIMESTAMP);
    """),
]


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMP)")
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply every migration not yet recorded in the file, in number order, each in its own transaction.

    Numbers, not the maximum, decide: a file migrated to 3 while 2 was still being written gets 2 later.
    """
    version = current_version(con)
    applied = {row[0] for row in con.execute("SELECT version FROM schema_version").fetchall()}
    for number, sql in sorted(MIGRATIONS, key=lambda m: m[0]):
        if number in applied:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_version VALUES (?, now())", [number])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        version = max(version, number)
    return version
