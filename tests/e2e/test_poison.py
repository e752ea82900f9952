"""A poison object: one WAL object lost from the local store. Consumers keep receiving every
other message; the broken batch is quarantined after a few failed reads, listed by
`strata quarantine list`, and restored with `strata quarantine retry` (or dropped)."""

import json
import shutil
from pathlib import Path

from rocketmq.grpc_protocol import definition_pb2 as d

from conftest import Broker
from raw import Raw


def wal_objects(store: Path):
    return sorted(store.glob("wal/**/*.wal"), key=lambda p: p.stat().st_mtime_ns)


def receive_until_empty(raw, topic, group, max_failures=10):
    """Bodies received (acked) until a receive finds nothing; the failed receives counted."""
    bodies, failures = [], 0
    while True:
        replies = raw.receive(topic, group, poll_s=0)
        failed = [r.status for r in replies if r.HasField("status") and r.status.code not in (d.OK, d.MESSAGE_NOT_FOUND)]
        messages = [r.message for r in replies if r.HasField("message")]
        if failed and not messages:
            failures += 1
            assert failures <= max_failures, f"still failing after {failures} receives: {failed[0]}"
            continue
        if not messages:
            return bodies, failures
        for m in messages:
            bodies.append(m.body)
            raw.ack(topic, group, m.system_properties.receipt_handle)


def test_a_lost_object_is_quarantined_and_everything_else_flows(tmp_path):
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    broker = Broker(tmp_path / "data", log_dir).start()
    store = tmp_path / "data" / "store"
    broker.cli("topic", "create", "poison", "--queues", "1")
    raw = Raw(broker.endpoint)
    objects = {}
    for body in (b"before", b"lost", b"after"):
        known = set(wal_objects(store))
        assert raw.send("poison", body).status.code == d.OK
        objects[body] = [p for p in wal_objects(store) if p not in known]
    raw.close()
    assert len(objects[b"lost"]) == 1, objects
    assert broker.stop() == 0

    # The object goes missing (with the node's block cache, which still held it).
    lost = objects[b"lost"][0]
    saved = lost.read_bytes()
    lost.unlink()
    shutil.rmtree(tmp_path / "data" / "cache", ignore_errors=True)
    broker.start()
    raw = Raw(broker.endpoint)
    try:
        bodies, failures = receive_until_empty(raw, "poison", "g")
        assert sorted(bodies) == [b"after", b"before"], bodies
        assert failures <= 3, "quarantined after 3 incurable failures"
        listed = json.loads(broker.cli("quarantine", "list", "--output", "json"))
        assert len(listed) == 1 and listed[0]["topic"] == "poison" and lost.name in listed[0]["object"], listed
        offset = str(listed[0]["offset"])

        # Restored from a backup, then retried: the message comes back.
        lost.write_bytes(saved)
        out = broker.cli("quarantine", "retry", "--topic", "poison", "--queue", "0", "--offset", offset)
        assert "retried" in out, out
        assert json.loads(broker.cli("quarantine", "list", "--output", "json")) == []
        bodies, failures = receive_until_empty(raw, "poison", "g")
        assert (bodies, failures) == ([b"lost"], 0)
    finally:
        raw.close()
        assert broker.stop() == 0
