//! Versioned schema migrations, applied in order at start-up and recorded in
//! `strata_schema`. Written in the SQL subset SQLite and PostgreSQL share. Persisted: append
//! new migrations, never edit applied ones.

pub const MIGRATIONS: &[&str] = &[
    // 1: topics, groups, queues, the batch index, pop state, secrets.
    r#"
    CREATE TABLE topics (
        tenant TEXT NOT NULL,
        name TEXT NOT NULL,
        message_type INTEGER NOT NULL,
        queue_count INTEGER NOT NULL,
        created_ms BIGINT NOT NULL,
        PRIMARY KEY (tenant, name)
    );
    CREATE TABLE consumer_groups (
        tenant TEXT NOT NULL,
        name TEXT NOT NULL,
        fifo BOOLEAN NOT NULL,
        max_attempts INTEGER NOT NULL,
        created_ms BIGINT NOT NULL,
        PRIMARY KEY (tenant, name)
    );
    CREATE TABLE queues (
        tenant TEXT NOT NULL,
        topic TEXT NOT NULL,
        queue_id INTEGER NOT NULL,
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
        queue_id INTEGER NOT NULL,
        base_offset BIGINT NOT NULL,
        record_count INTEGER NOT NULL,
        object TEXT NOT NULL,
        block_offset BIGINT NOT NULL,
        block_length BIGINT NOT NULL,
        uncompressed_length BIGINT NOT NULL,
        crc32c BIGINT NOT NULL,
        compression INTEGER NOT NULL,
        min_ts BIGINT NOT NULL,
        max_ts BIGINT NOT NULL,
        PRIMARY KEY (tenant, topic, queue_id, base_offset)
    );
    CREATE INDEX batches_by_object ON batches (object);
    CREATE TABLE cursors (
        tenant TEXT NOT NULL,
        grp TEXT NOT NULL,
        topic TEXT NOT NULL,
        queue_id INTEGER NOT NULL,
        next_offset BIGINT NOT NULL,
        PRIMARY KEY (tenant, grp, topic, queue_id)
    );
    CREATE TABLE inflight (
        tenant TEXT NOT NULL,
        grp TEXT NOT NULL,
        topic TEXT NOT NULL,
        queue_id INTEGER NOT NULL,
        msg_offset BIGINT NOT NULL,
        attempt INTEGER NOT NULL,
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
];
