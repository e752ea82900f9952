"""Operations: export / import of topics and groups, describe, progress and lag, resetting a
group to a time, resending dead letters, deleting topics and groups, and the CLI's JSON output
and exit codes."""

import datetime
import json
import subprocess
import time

import pytest

from rocketmq import FilterExpression, Producer, SimpleConsumer

from clients import config, make_message
from conftest import STRATA_BIN, _broker


def cli_json(b, *args):
    return json.loads(b.cli(*args, "--output", "json"))


def run(b, *args):
    """`strata <args>` against `b`, whatever its exit code."""
    return subprocess.run([STRATA_BIN, *args, "--endpoint", b.endpoint], capture_output=True, text=True, timeout=30)


def send(b, topic, bodies):
    producer = Producer(config(b.endpoint), (topic,))
    producer.startup()
    try:
        return [producer.send(make_message(topic, i, body)).message_id for i, body in enumerate(bodies)]
    finally:
        producer.shutdown()


def receive(b, group, topic, count, ack=True, invisible=30, deadline_s=60):
    """Receives `count` messages (acking them unless told not to); returns their bodies."""
    c = SimpleConsumer(config(b.endpoint), group, {topic: FilterExpression("*")}, await_duration=1)
    c.startup()
    got = []
    try:
        deadline = time.monotonic() + deadline_s
        while len(got) < count:
            assert time.monotonic() < deadline, f"only {len(got)} of {count} arrived: {got}"
            for m in c.receive(32, invisible):
                got.append(m.body)
                if ack:
                    c.ack(m)
    finally:
        c.shutdown()
    return got


def test_export_then_import_into_a_fresh_instance_exports_the_same_file(tmp_path):
    a = _broker(tmp_path / "a", "sqlite+local")
    b = _broker(tmp_path / "b", "sqlite+local")
    try:
        a.cli("topic", "create", "orders", "--type", "fifo", "--queues", "4", "--retention", "7days")
        a.cli("topic", "create", "later", "--type", "delay", "--queues", "2")
        a.cli("topic", "create", "chat", "--type", "lite", "--queues", "1", "--lite-ttl", "30m")
        a.cli("topic", "create", "eu-orders", "--tenant", "acme", "--queues", "3", "--retention", "1h")
        a.cli("tenant", "create", "acme")
        a.cli("group", "create", "billing", "--fifo", "--max-attempts", "5", "--retry-policy", "exponential:1s,5m,2",
              "--lane-fallback", "wait")
        a.cli("group", "create", "audit", "--broadcast")
        a.cli("group", "create", "eu-billing", "--tenant", "acme", "--retry-policy", "customized:1s,10s,1m")
        exported = tmp_path / "a.json"
        a.cli("export", "--output", str(exported))
        a.cli("export", "--output", str(tmp_path / "a.csv"), "--format", "csv")
        data = json.loads(exported.read_text())
        assert len(data["topics"]) == 4 and len(data["groups"]) == 3, data
        billing = next(g for g in data["groups"] if g["name"] == "billing")
        assert billing == {"namespace": "", "name": "billing", "fifo": True, "broadcast": False, "max_attempts": 5,
                           "start": "earliest", "retry_policy": "exponential:1s,5m,2", "lane_fallback": "wait"}

        plan = cli_json(b, "import", str(exported), "--dry-run")
        assert len(plan["steps"]) == 8 and plan["conflicts"] == [] and plan["dry_run"], plan
        assert cli_json(b, "topic", "list") == [], "a dry run changes nothing"
        b.cli("import", str(exported))
        b.cli("export", "--output", str(tmp_path / "b.json"))
        b.cli("export", "--output", str(tmp_path / "b.csv"), "--format", "csv")
        assert (tmp_path / "b.json").read_text() == exported.read_text()
        assert (tmp_path / "b.csv").read_text() == (tmp_path / "a.csv").read_text()
        again = cli_json(b, "import", str(exported))
        assert (again["steps"], again["unchanged"]) == ([], 8), "idempotent"

        # A changed file: the diff names each change; what cannot change is refused.
        data["topics"][0]["queues"] += 4
        data["groups"][0]["broadcast"] = not data["groups"][0]["broadcast"]
        changed = tmp_path / "changed.json"
        changed.write_text(json.dumps(data))
        out = run(b, "import", str(changed), "--dry-run")
        assert out.returncode == 7, out.stderr
        assert "~ topic" in out.stdout and "queues: " in out.stdout and "! group" in out.stdout, out.stdout
    finally:
        a.stop()
        b.stop()


@pytest.fixture
def ops(tmp_path):
    b = _broker(tmp_path, "sqlite+local", ["--no-auto-create"])
    yield b
    assert b.stop() == 0


def test_describe_progress_and_reset_to_a_time_redelivers_exactly_what_came_after(ops):
    b = ops
    b.cli("topic", "create", "events", "--queues", "2")
    b.cli("group", "create", "readers")
    send(b, "events", [f"before-{i}".encode() for i in range(6)])
    # Every message sent from here on is stored after `cut` (same clock, next millisecond).
    cut_ms = int(time.time() * 1000) + 1
    while int(time.time() * 1000) <= cut_ms:
        pass
    send(b, "events", [f"after-{i}".encode() for i in range(4)])

    described = cli_json(b, "topic", "describe", "events")
    assert sum(q["messages"] for q in described["queue_stats"]) == 10, described
    assert all(q["bytes"] > 0 for q in described["queue_stats"] if q["messages"]), described
    assert len(receive(b, "readers", "events", 10)) == 10
    progress = cli_json(b, "group", "progress", "readers")
    assert progress["lag"] == 0 and {q["queue"] for q in progress["queues"]} == {0, 1}, progress

    at = datetime.datetime.fromtimestamp(cut_ms / 1000, datetime.timezone.utc).isoformat(timespec="milliseconds")
    reset = cli_json(b, "group", "reset", "readers", "--topic", "events", "--to-time", at.replace("+00:00", "Z"))
    assert len(reset) == 2, reset
    assert cli_json(b, "group", "progress", "readers")["lag"] == 4
    again = receive(b, "readers", "events", 4)
    assert sorted(again) == [f"after-{i}".encode() for i in range(4)]

    # To an offset: everything again.
    b.cli("group", "reset", "readers", "--to-offset", "0")
    assert len(receive(b, "readers", "events", 10)) == 10


def test_resend_from_the_dead_letter_queue_reaches_that_group_only(ops):
    b = ops
    b.cli("topic", "create", "jobs", "--queues", "1")
    b.cli("group", "create", "workers", "--max-attempts", "1")
    b.cli("group", "create", "watchers")
    send(b, "jobs", [b"poison", b"fine"])
    assert sorted(receive(b, "watchers", "jobs", 2)) == [b"fine", b"poison"]

    # The only attempt fails (never acked): once invisible, the message moves to the DLQ.
    c = SimpleConsumer(config(b.endpoint), "workers", {"jobs": FilterExpression("*")}, await_duration=1)
    c.startup()
    try:
        for m in receive_each(c, 2, invisible=1):
            if m.body == b"fine":
                c.ack(m)
        deadline = time.monotonic() + 30
        while dead_letters(b, "workers") < 1:
            assert time.monotonic() < deadline, "the failed message reached the dead-letter queue"
            assert c.receive(32, 1) == []
    finally:
        c.shutdown()

    poison = next(m["message_id"] for m in cli_json(b, "message", "find", "--topic", "%DLQ%workers")["messages"])
    deadline = time.monotonic() + 30
    while "dead_lettered" not in [e["event"] for e in traced(b, poison)]:
        assert time.monotonic() < deadline, traced(b, poison)
        time.sleep(0.2)

    resent = cli_json(b, "group", "resend-dlq", "workers")
    assert (resent["resent"], resent["skipped"]) == (1, 0), resent
    assert receive(b, "workers", "jobs", 1) == [b"poison"]
    assert cli_json(b, "group", "progress", "workers")["lag"] == 0
    assert cli_json(b, "group", "progress", "watchers")["lag"] == 0, "other groups receive nothing again"
    again = cli_json(b, "group", "resend-dlq", "workers", "--from-offset", str(resent["next_offset"]))
    assert again["resent"] == 0, "only what is past --from-offset"


def traced(b, message_id):
    out = run(b, "message", "trace", message_id, "--output", "json")
    return json.loads(out.stdout) if out.returncode == 0 else []


def receive_each(consumer, count, invisible):
    got = []
    deadline = time.monotonic() + 30
    while len(got) < count:
        assert time.monotonic() < deadline, f"only {len(got)} of {count} arrived"
        got.extend(consumer.receive(32, invisible))
    return got


def dead_letters(b, group):
    """Messages in the group's dead-letter topic (0 before it exists)."""
    out = run(b, "topic", "describe", f"%DLQ%{group}", "--output", "json")
    if out.returncode == 3:
        return 0
    assert out.returncode == 0, out.stderr
    return sum(q["messages"] for q in json.loads(out.stdout)["queue_stats"])


def test_deleted_topics_and_groups_are_gone_and_exit_codes_say_why(ops):
    b = ops
    b.cli("topic", "create", "temp", "--queues", "1")
    b.cli("group", "create", "temp-readers")
    send(b, "temp", [b"x"])
    assert run(b, "topic", "delete", "temp").returncode == 2, "needs --yes"
    b.cli("topic", "delete", "temp", "--yes")
    assert [t["name"] for t in cli_json(b, "topic", "list")] in ([], ["RMQ_SYS_TRACE_TOPIC"])
    assert run(b, "topic", "delete", "temp", "--yes").returncode == 3, "not found"
    assert run(b, "topic", "describe", "temp").returncode == 3
    b.cli("topic", "create", "temp", "--queues", "1")
    described = cli_json(b, "topic", "describe", "temp")
    assert described["queue_stats"][0]["messages"] == 0, "created again, it starts empty"

    b.cli("group", "delete", "temp-readers", "--yes")
    assert cli_json(b, "group", "list") == []
    assert run(b, "group", "progress", "temp-readers").returncode == 3
    assert run(b, "topic", "create", "temp").returncode == 6, "exists"
    assert run(b, "topic", "update", "temp", "--queues", "0").returncode == 7, "invalid"
    changed = cli_json(b, "topic", "update", "temp", "--queues", "3", "--retention", "2h")
    assert (changed[0]["queues"], changed[0]["retention"]) == (3, "2h"), changed
    assert subprocess.run([STRATA_BIN, "topic", "list", "--endpoint", "127.0.0.1:1"],
                          capture_output=True, timeout=30).returncode == 5, "unreachable"


def test_query_by_id_and_key_shows_state_per_group_and_a_retried_send_is_stored_once(ops):
    b = ops
    b.cli("topic", "create", "orders", "--queues", "2")
    b.cli("group", "create", "billing")
    b.cli("group", "create", "shipping")
    producer = Producer(config(b.endpoint), ("orders",))
    producer.startup()
    try:
        keyed = [producer.send(make_message("orders", i, f"order {i}".encode(), tag="eu", keys=("order-7",),
                                            props={"region": "eu"})).message_id for i in range(2)]
        other = producer.send(make_message("orders", 2, b"order 8", keys=("order-8",))).message_id
    finally:
        producer.shutdown()
    assert len(receive(b, "billing", "orders", 3)) == 3
    assert len(receive(b, "shipping", "orders", 3, ack=False)) == 3

    got = cli_json(b, "message", "get", keyed[0])
    assert (got["message_id"], got["topic"], got["tag"], got["keys"]) == (keyed[0], "orders", "eu", ["order-7"]), got
    assert got["properties"]["region"] == "eu" and got["body"] == "order 0" and got["store_time"], got
    states = {d["group"]: d["state"] for d in got["deliveries"]}
    assert states["billing"] == "acked", states
    assert states["shipping"] == "in flight (attempt 1)", states

    found = cli_json(b, "message", "find", "--topic", "orders", "--key", "order-7")
    assert sorted(m["message_id"] for m in found["messages"]) == sorted(keyed), found
    everything = cli_json(b, "message", "find", "--topic", "orders", "--from", "10m")
    assert {m["message_id"] for m in everything["messages"]} == {*keyed, other}
    assert run(b, "message", "get", "01" + "0" * 32).returncode == 3, "not found"

    # A producer whose reply was lost sends the same message (same id) again: stored once,
    # answered with the original receipt.
    from raw import Raw
    raw = Raw(b.endpoint)
    try:
        first = raw.send("orders", b"exactly once", message_id="01" + "AB" * 16)
        again = raw.send("orders", b"exactly once", message_id="01" + "AB" * 16)
    finally:
        raw.close()
    assert first.entries[0].offset == again.entries[0].offset
    assert first.entries[0].message_id == again.entries[0].message_id
    described = cli_json(b, "topic", "describe", "orders")
    assert sum(q["messages"] for q in described["queue_stats"]) == 4, "3 + the retried one once"


def test_trace_shows_a_message_sent_delivered_twice_and_acked_in_order(ops):
    b = ops
    b.cli("topic", "create", "traced", "--queues", "1")
    b.cli("topic", "create", "untraced", "--queues", "1", "--no-trace")
    b.cli("group", "create", "tracers")
    started_ms = int(time.time() * 1000)
    [quiet] = send(b, "untraced", [b"not traced"])
    [mid] = send(b, "traced", [b"traced"])
    c = SimpleConsumer(config(b.endpoint), "tracers", {"traced": FilterExpression("*")}, await_duration=1)
    c.startup()
    try:
        first = receive_each(c, 1, invisible=1)  # not acked: it comes back
        again = receive_each(c, 1, invisible=30)
        assert first[0].message_id == again[0].message_id == mid
        c.ack(again[0])
    finally:
        c.shutdown()

    kinds = ["sent", "stored", "delivered", "retried", "acked"]
    deadline = time.monotonic() + 30
    while True:
        out = run(b, "message", "trace", mid, "--output", "json")
        events = json.loads(out.stdout) if out.returncode == 0 else []
        if [e["event"] for e in events] == kinds:
            break
        assert time.monotonic() < deadline, f"trace so far: {events} {out.stderr}"
        time.sleep(0.2)
    times = [e["time_ms"] for e in events]
    assert times == sorted(times) and started_ms - 1000 <= times[0] and times[-1] <= time.time() * 1000 + 1000
    sent, stored, delivered, retried, acked = events
    assert sent["client"] and 0 <= sent["latency_ms"] < 30_000, sent
    assert stored["queue"] == 0 and stored["offset"] == 0 and stored["object"].startswith("wal/"), stored
    assert (delivered["group"], delivered["attempt"], retried["attempt"]) == ("tracers", 1, 2)
    assert retried["time_ms"] - delivered["time_ms"] >= 900, "redelivered after the 1 s invisible time"
    assert acked["group"] == "tracers"
    assert "retried" in b.cli("message", "trace", mid), "a timeline table"
    assert run(b, "message", "trace", quiet).returncode == 3, "tracing is off for that topic"


def test_mirror_copies_1000_messages_between_running_instances_with_properties_intact(tmp_path):
    source = _broker(tmp_path / "source", "sqlite+local")
    target = _broker(tmp_path / "target", "sqlite+local", ["--no-auto-create"])
    try:
        source.cli("topic", "create", "orders", "--type", "fifo", "--queues", "4")
        source.cli("export", "--output", str(tmp_path / "meta.json"))
        target.cli("import", str(tmp_path / "meta.json"))
        producer = Producer(config(source.endpoint), ("orders",))
        producer.startup()
        sent = {}
        try:
            for i in range(1000):
                m = make_message("orders", i, f"order {i}".encode(), tag=f"t{i % 3}", keys=(f"k{i}",),
                                 props={"n": str(i)})
                m.message_group = f"g{i % 7}"
                sent[producer.send(m).message_id] = i
        finally:
            producer.shutdown()

        out = subprocess.run([STRATA_BIN, "mirror", "--from", source.endpoint, "--topics", "orders",
                              "--endpoint", target.endpoint, "--idle-exit", "3s", "--output", "json"],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["mirrored"] == 1000, out.stdout

        target.cli("group", "create", "check", "--fifo")
        c = SimpleConsumer(config(target.endpoint), "check", {"orders": FilterExpression("*")}, await_duration=1)
        c.startup()
        got, order = {}, {}
        try:
            deadline = time.monotonic() + 120
            while len(got) < 1000:
                assert time.monotonic() < deadline, f"only {len(got)} of 1000 arrived at the target"
                for m in c.receive(32, 30):
                    got[m.message_id] = m
                    order.setdefault(m.message_group, []).append(int(m.properties["n"]))
                    c.ack(m)
        finally:
            c.shutdown()
        assert set(got) == set(sent), "every message, once, under its own id"
        for mid, m in got.items():
            i = sent[mid]
            assert (m.body, m.tag, set(m.keys), m.message_group) == (f"order {i}".encode(), f"t{i % 3}", {f"k{i}"},
                                                                    f"g{i % 7}")
        assert all(ns == sorted(ns) for ns in order.values()), "order per message group kept"
    finally:
        source.stop()
        target.stop()


def _fields(buf: bytes) -> dict:
    """Top-level fields of a protobuf message: number -> value (varint) or bytes (length-delimited)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            out[number], i = _varint(buf, i)
        elif wire == 2:
            size, i = _varint(buf, i)
            out[number], i = buf[i:i + size], i + size
        else:
            raise ValueError(f"wire type {wire}")
    return out


def _varint(buf: bytes, i: int):
    value = shift = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def test_the_rocketmq_v2_admin_service_where_it_fits(ops):
    import grpc
    from rocketmq.grpc_protocol import admin_pb2

    b = ops
    b.cli("topic", "create", "described", "--type", "fifo", "--queues", "2")
    b.cli("topic", "create", "plain", "--queues", "1")
    channel = grpc.insecure_channel(b.endpoint)
    try:
        # ChangeLogLevel, with the messages the official Python client ships (its generated
        # stub imports them under a name that does not resolve).
        change = channel.unary_unary("/apache.rocketmq.v2.Admin/ChangeLogLevel",
                                     request_serializer=admin_pb2.ChangeLogLevelRequest.SerializeToString,
                                     response_deserializer=admin_pb2.ChangeLogLevelResponse.FromString)
        reply = change(admin_pb2.ChangeLogLevelRequest(level=admin_pb2.ChangeLogLevelRequest.DEBUG), timeout=10)
        assert reply.remark == "log level is debug"
        send(b, "plain", [b"logged"])
        change(admin_pb2.ChangeLogLevelRequest(level=admin_pb2.ChangeLogLevelRequest.INFO), timeout=10)
        log = (b.log_dir / f"strata-{b.starts}.log").read_text()
        assert "DEBUG" in log.split("log level changed by an operator")[1], "debug lines after the change"

        # DescribeTopicStatus (not in those stubs: encoded by hand). Request: topic (2) =
        # Resource { name (2) }; reply: status (1) { code (1) }, topic_message_type (2).
        def describe(name: str) -> dict:
            resource = b"\x12" + bytes([len(name)]) + name.encode()
            call = channel.unary_unary("/apache.rocketmq.v2.Admin/DescribeTopicStatus")
            return _fields(call(b"\x12" + bytes([len(resource)]) + resource, timeout=10))

        found = describe("described")
        assert _fields(found[1])[1] == 20000 and found[2] == 2, found  # OK, FIFO
        assert _fields(describe("missing")[1])[1] == 40402, "TOPIC_NOT_FOUND"
        unserved = _fields(channel.unary_unary("/apache.rocketmq.v2.Admin/QueryTimeSpan")(b"", timeout=10))
        status = _fields(unserved[1])
        assert status[1] == 50100 and b"strata topic describe" in status[2], status
    finally:
        channel.close()


def test_trace_of_producer_side_events_timers_and_transactions(ops):
    from rocketmq import Message, TransactionChecker, TransactionResolution

    class Never(TransactionChecker):
        def check(self, message):
            return TransactionResolution.UNKNOWN

    b = ops
    b.cli("topic", "create", "later", "--type", "delay", "--queues", "1")
    b.cli("topic", "create", "tx", "--type", "transaction", "--queues", "1")
    producer = Producer(config(b.endpoint), ("later", "tx"), Never())
    producer.startup()
    try:
        m = Message()
        m.topic, m.body, m.delivery_timestamp = "later", b"in a second", int(time.time() * 1000) + 1000
        delayed = producer.send(m).message_id
        t = producer.begin_transaction()
        committed = producer.send(make_message("tx", 0, b"commit me"), t).message_id
        t.commit()
        t = producer.begin_transaction()
        rolled = producer.send(make_message("tx", 1, b"roll me back"), t).message_id
        t.rollback()
    finally:
        producer.shutdown()

    def wait_for(message_id, events):
        deadline = time.monotonic() + 30
        while [e["event"] for e in traced(b, message_id)] != events:
            assert time.monotonic() < deadline, traced(b, message_id)
            time.sleep(0.2)

    wait_for(delayed, ["sent", "stored", "timer_fired"])
    wait_for(committed, ["sent", "stored", "committed"])
    wait_for(rolled, ["sent", "stored", "rolled_back"])
