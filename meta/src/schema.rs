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
    // 3: zero-copy references, held records, FIFO consumption.
    //  - a batch may reference a sub-range of a block's records (a fired timer, a committed
    //    half message, a dead-lettered message point at the record where it already lies);
    //  - `held`: records stored but not yet in a queue: delay timers and half messages;
    //  - in-flight rows of FIFO groups carry their message group; `waiting` rows are messages
    //    passed by the cursor while their message group was busy.
    r#"
    ALTER TABLE batches ADD COLUMN first_record BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE batches ADD COLUMN block_records BIGINT NOT NULL DEFAULT 0;
    CREATE TABLE held (
        id TEXT PRIMARY KEY,
        kind BIGINT NOT NULL,
        tenant TEXT NOT NULL,
        topic TEXT NOT NULL,
        queue_id BIGINT NOT NULL,
        object TEXT NOT NULL,
        block_offset BIGINT NOT NULL,
        block_length BIGINT NOT NULL,
        uncompressed_length BIGINT NOT NULL,
        crc32c BIGINT NOT NULL,
        compression BIGINT NOT NULL,
        block_records BIGINT NOT NULL,
        record_index BIGINT NOT NULL,
        message_id TEXT NOT NULL,
        due_ms BIGINT NOT NULL,
        checks BIGINT NOT NULL,
        created_ms BIGINT NOT NULL
    );
    CREATE INDEX held_by_due ON held (kind, due_ms);
    CREATE INDEX held_by_object ON held (object);
    ALTER TABLE inflight ADD COLUMN msg_group TEXT;
    ALTER TABLE inflight ADD COLUMN waiting BIGINT NOT NULL DEFAULT 0;
    CREATE INDEX inflight_by_group ON inflight (tenant, grp, topic, queue_id, msg_group);
    "#,
    // 4: compaction, retention, GC and stream consumption.
    //  - a batch's block is a WAL block (format 0) or a Parquet row group (format 1);
    //  - topics have a retention (consumers) and objects an archive horizon (GC);
    //  - objects remember since when nothing references them (deleted after a grace period);
    //  - leases split compaction jobs among compactors;
    //  - stream consumers (PullMessage) commit offsets per group and queue.
    r#"
    ALTER TABLE batches ADD COLUMN format BIGINT NOT NULL DEFAULT 0;
    CREATE INDEX batches_by_age ON batches (format, max_ts);
    ALTER TABLE topics ADD COLUMN retention_ms BIGINT NOT NULL DEFAULT 259200000;
    ALTER TABLE objects ADD COLUMN unreferenced_ms BIGINT;
    ALTER TABLE objects ADD COLUMN keep_until_ms BIGINT NOT NULL DEFAULT 0;
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_ms BIGINT NOT NULL
    );
    CREATE TABLE stream_offsets (
        tenant TEXT NOT NULL,
        grp TEXT NOT NULL,
        topic TEXT NOT NULL,
        queue_id BIGINT NOT NULL,
        committed BIGINT NOT NULL,
        PRIMARY KEY (tenant, grp, topic, queue_id)
    );
    "#,
    // 5: a one-row table the floor measurement writes to (`strata bench --floor`).
    r#"
    CREATE TABLE probe (
        id BIGINT PRIMARY KEY,
        n BIGINT NOT NULL
    );
    "#,
    // 6: pop checkpoints — an `inflight` row holds the pending offsets of one claim of a queue
    //    (`msg_offset` the lowest, `last_offset` the highest, `rest` the others as runs relative
    //    to the lowest, NULL for one offset), not one message; see sql/checkpoint.rs. Receipts
    //    find their row by `last_offset` (few rows lie ahead of a recent delivery, however
    //    many old ones wait behind it).
    r#"
    ALTER TABLE inflight ADD COLUMN last_offset BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE inflight ADD COLUMN rest TEXT;
    UPDATE inflight SET last_offset = msg_offset;
    CREATE INDEX inflight_by_last ON inflight (tenant, grp, topic, queue_id, last_offset);
    "#,
    // 7: quarantined batches — taken out of their queue because no reader could read them
    //    (object missing or corrupt), with the batch's own columns, until an operator retries
    //    (appends them again) or drops them.
    r#"
    CREATE TABLE quarantine (
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
        first_record BIGINT NOT NULL,
        block_records BIGINT NOT NULL,
        format BIGINT NOT NULL,
        reason TEXT NOT NULL,
        quarantined_ms BIGINT NOT NULL,
        PRIMARY KEY (tenant, topic, queue_id, base_offset)
    );
    CREATE INDEX quarantine_by_object ON quarantine (object);
    "#,
    // 8: accounts — tenants and their quotas, users (secret keys sealed by the auth layer),
    //    and ACL grants per user and resource pattern.
    r#"
    CREATE TABLE tenants (
        name TEXT PRIMARY KEY,
        reserved_tps BIGINT NOT NULL,
        burst_tps BIGINT NOT NULL,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE users (
        access_key TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        name TEXT NOT NULL,
        sealed_secret TEXT NOT NULL,
        admin BIGINT NOT NULL,
        created_ms BIGINT NOT NULL,
        UNIQUE (tenant, name)
    );
    CREATE TABLE grants (
        tenant TEXT NOT NULL,
        user_name TEXT NOT NULL,
        resource TEXT NOT NULL,
        actions BIGINT NOT NULL,
        PRIMARY KEY (tenant, user_name, resource)
    );
    "#,
    // 9: broadcast consumer groups and where new progress starts (0 earliest, 1 latest);
    //    each broadcast client's progress (cursors and in-flight rows under its progress key)
    //    with when a node last saw the client, so the compactor expires a gone client's rows.
    r#"
    ALTER TABLE consumer_groups ADD COLUMN broadcast BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE consumer_groups ADD COLUMN start_latest BIGINT NOT NULL DEFAULT 0;
    CREATE TABLE broadcast_progress (
        tenant TEXT NOT NULL,
        progress TEXT NOT NULL,
        last_seen_ms BIGINT NOT NULL,
        PRIMARY KEY (tenant, progress)
    );
    CREATE INDEX broadcast_progress_by_age ON broadcast_progress (last_seen_ms);
    "#,
    // 10: lite topics — a LITE parent counts its lite topics (each stored as a one-queue topic
    //     `parent+lite`, see lite.rs, created at `created_ms`) and expires those idle for its
    //     `lite_ttl_ms` (0: never); clients' lite subscriptions, per group and parent, and
    //     those expiry dropped (the client is told when it sends them again).
    r#"
    ALTER TABLE topics ADD COLUMN lite_count BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE topics ADD COLUMN lite_ttl_ms BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE queues ADD COLUMN created_ms BIGINT NOT NULL DEFAULT 0;
    CREATE TABLE lite_subscriptions (
        tenant TEXT NOT NULL,
        grp TEXT NOT NULL,
        parent TEXT NOT NULL,
        client_id TEXT NOT NULL,
        lite TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        PRIMARY KEY (tenant, grp, parent, client_id, lite)
    );
    CREATE INDEX lite_subscriptions_by_client ON lite_subscriptions (client_id);
    CREATE INDEX lite_subscriptions_by_topic ON lite_subscriptions (tenant, parent, lite);
    CREATE TABLE lite_dropped (
        tenant TEXT NOT NULL,
        grp TEXT NOT NULL,
        parent TEXT NOT NULL,
        client_id TEXT NOT NULL,
        lite TEXT NOT NULL,
        dropped_ms BIGINT NOT NULL,
        PRIMARY KEY (tenant, grp, parent, client_id, lite)
    );
    "#,
    // 11: where a node serves 4.x clients (Remoting), for the routes other nodes answer ('' when
    //     it does not).
    r#"
    ALTER TABLE nodes ADD COLUMN remoting TEXT NOT NULL DEFAULT '';
    "#,
    // 12: operations — a group's retry policy (its text form, '' the default); where each
    //     dead-lettered message came from (dead-letter topic and offset → its topic, queue and
    //     offset), so an operator can deliver it to its group again.
    r#"
    ALTER TABLE consumer_groups ADD COLUMN retry_policy TEXT NOT NULL DEFAULT '';
    CREATE TABLE dead_letters (
        tenant TEXT NOT NULL,
        topic TEXT NOT NULL,
        msg_offset BIGINT NOT NULL,
        origin_topic TEXT NOT NULL,
        origin_queue BIGINT NOT NULL,
        origin_offset BIGINT NOT NULL,
        PRIMARY KEY (tenant, topic, msg_offset)
    );
    "#,
    // 13: the message index of recent messages (`ingest.index_window`): id → where it is
    //     (lookups, and retried sends answered with the original instead of stored again);
    //     key → messages with it. Written with each flush commit, expired by age.
    r#"
    CREATE TABLE message_ids (
        tenant TEXT NOT NULL,
        message_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        queue_id BIGINT NOT NULL,
        msg_offset BIGINT NOT NULL,
        store_ms BIGINT NOT NULL,
        PRIMARY KEY (tenant, message_id)
    );
    CREATE INDEX message_ids_by_age ON message_ids (store_ms);
    CREATE TABLE message_keys (
        tenant TEXT NOT NULL,
        topic TEXT NOT NULL,
        msg_key TEXT NOT NULL,
        queue_id BIGINT NOT NULL,
        msg_offset BIGINT NOT NULL,
        message_id TEXT NOT NULL,
        store_ms BIGINT NOT NULL,
        PRIMARY KEY (tenant, topic, msg_key, queue_id, msg_offset)
    );
    CREATE INDEX message_keys_by_age ON message_keys (store_ms);
    "#,
    // 14: whether the broker records a topic's messages' lifecycle in the tenant's trace topic
    //     (1, the default) or not.
    r#"
    ALTER TABLE topics ADD COLUMN trace BIGINT NOT NULL DEFAULT 1;
    "#,
    // 15: graceful departure — 1 while a node drains (still serving, left out of routes), 2
    //     once it has left (deregistered: alive = 0, its epoch fenced).
    r#"
    ALTER TABLE nodes ADD COLUMN departure BIGINT NOT NULL DEFAULT 0;
    "#,
    // 16: grayscale lanes — the lanes of each group its consumers used, per topic (a lane's
    //     progress is keyed `group%lane` in cursors and in-flight rows), and per group how
    //     long a lane may go unheard before the group's consumers take its messages (−1: never).
    r#"
    CREATE TABLE lanes (
        tenant TEXT NOT NULL,
        grp TEXT NOT NULL,
        topic TEXT NOT NULL,
        lane TEXT NOT NULL,
        last_seen_ms BIGINT NOT NULL,
        PRIMARY KEY (tenant, grp, topic, lane)
    );
    ALTER TABLE consumer_groups ADD COLUMN lane_fallback_ms BIGINT NOT NULL DEFAULT 30000;
    "#,
];
