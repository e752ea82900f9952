//! Versioned schema migrations, applied in order at start-up and recorded in
//! `strata_schema`. Written in the SQL subset SQLite and PostgreSQL share, with integer and
//! text columns only (what sqlx's `Any` driver decodes on both). Persisted: append new
//! migrations, never edit applied ones.

pub const MIGRATIONS: &[&str] = &[
    // 1: topics, groups, queues, the batch index, pop state, secrets.
    r#"
    CREATE TABLE topics (
        tenant TEXT NOT NULL,
        name TEXT NOT NULL,
        message_type BIGINT NOT NULL,
        queue_count BIGINT NOT NULL,
        created_ms BIGINT NOT NULL,
        PRIMARY KEY (tenant, name)
    );
    CREATE TABLE consumer_groups (
        tenant TEXT NOT NULL,
        name TEXT NOT NULL,
        fifo BIGINT NOT NULL,
        max_attempts BIGINT NOT NULL,
        created_ms BIGINT NOT NULL,
        PRIMARY KEY (tenant, name)
    );
    CREATE TABLE queues (
        tenant TEXT NOT NULL,
        topic TEXT NOT NULL,
        queue_id BIGINT NOT NULL,
        next_offset BIGINT NOT NULL,
        min_offset BIGINT NOT NULL,
        PRIMARY KEY (tenant, topic, queue_id)
    );
    CREATE TABLE objects (
        path TEXT PRIMARY KEY,
        size BIGINT NOT NULL,
        writer TEXT NOT NULL,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE batches (
        tenant TEXT NOT NULL,
        topic TEXT NOT NULL,
        queue_id BIGINT NOT NULL,
        base_offset BIGINT NOT NULL,
        record_count BIGINT NOT NULL,
        object TEXT NOT NULL,
        block_offset BIGINT NOT NULL,
        block_length BIGINT NOT NULL,
        uncompressed_length BIGINT NOT NULL,
        crc32c BIGINT NOT NULL,
        compression BIGINT NOT NULL,
        min_ts BIGINT NOT NULL,
        max_ts BIGINT NOT NULL,
        PRIMARY KEY (tenant, topic, queue_id, base_offset)
    );
    CREATE INDEX batches_by_object ON batches (object);
    CREATE TABLE cursors (
        tenant TEXT NOT NULL,
        grp TEXT NOT NULL,
        topic TEXT NOT NULL,
        queue_id BIGINT NOT NULL,
        next_offset BIGINT NOT NULL,
        PRIMARY KEY (tenant, grp, topic, queue_id)
    );
    CREATE TABLE inflight (
        tenant TEXT NOT NULL,
        grp TEXT NOT NULL,
        topic TEXT NOT NULL,
        queue_id BIGINT NOT NULL,
        msg_offset BIGINT NOT NULL,
        attempt BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        invisible_until_ms BIGINT NOT NULL,
        PRIMARY KEY (tenant, grp, topic, queue_id, msg_offset)
    );
    CREATE INDEX inflight_by_deadline ON inflight (tenant, grp, topic, invisible_until_ms);
    CREATE TABLE secrets (
        name TEXT PRIMARY KEY,
        value_hex TEXT NOT NULL
    );
    "#,
    // 2: node registry (routes, fencing of dead ingest nodes).
    r#"
    CREATE TABLE nodes (
        id TEXT PRIMARY KEY,
        roles BIGINT NOT NULL,
        advertise TEXT NOT NULL,
        epoch BIGINT NOT NULL,
        heartbeat_ms BIGINT NOT NULL,
        alive BIGINT NOT NULL
    );
    "#,
];
