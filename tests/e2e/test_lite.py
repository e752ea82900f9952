"""LiteTopic with the official Python Lite consumers: lite topics created on first send,
subscriptions per client, each lite topic received in order, quotas and bad names."""

import threading
import time
from collections import defaultdict

import pytest
from rocketmq import ConsumeResult, LitePushConsumer, LiteSimpleConsumer, Message, MessageListener, Producer
from rocketmq.grpc_protocol import definition_pb2 as d

from clients import config
from raw import HEADERS, Raw

PARENT, GROUP = "chat", "agents"


def lite_message(lite, body):
    m = Message()
    m.topic, m.body, m.lite_topic = PARENT, body, lite
    return m


def send_all(b, messages):
    producer = Producer(config(b.endpoint), (PARENT,))
    producer.startup()
    try:
        for lite, body in messages:
            producer.send(lite_message(lite, body))
    finally:
        producer.shutdown()


def subscribe(consumer, lite):
    """subscribe_lite, once the client has the quota from its settings: the Python client
    applies the server's settings a moment after startup() returns and refuses every
    subscription until then ("exceed quota: 0")."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return consumer.subscribe_lite(lite)
        except Exception as e:
            if "quota: 0" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def receive_until(consumer, want, deadline_s=60):
    """Receives (acking) until `want` messages arrived: {lite topic: [bodies in order]}."""
    got, n = defaultdict(list), 0
    deadline = time.monotonic() + deadline_s
    while n < want:
        assert time.monotonic() < deadline, f"only {n} of {want}: {dict(got)}"
        for m in consumer.receive(32, 10):
            got[m.lite_topic].append(m.body)
            n += 1
            consumer.ack(m)
    return got


def test_a_lite_simple_consumer_receives_the_lite_topics_it_subscribed_in_order(broker):
    b = broker
    b.cli("topic", "create", PARENT, "--type", "lite")
    sent = [(f"sess-{s}", f"{s}:{i}".encode()) for i in range(20) for s in "abc"]
    send_all(b, sent)
    c = LiteSimpleConsumer(PARENT, config(b.endpoint), GROUP, await_duration=2)
    c.startup()
    try:
        subscribe(c, "sess-a")  # arrives split into characters (PROTOCOL-NOTES): joined again
        subscribe(c, "sess-b")
        got = receive_until(c, 40)
        for s in "ab":
            assert got[f"sess-{s}"] == [f"{s}:{i}".encode() for i in range(20)], "in order, each once"
        assert "sess-c" not in got, "not subscribed"
        assert c.receive(32, 10) == []

        # Unsubscribed: nothing more of sess-b; sess-a's new messages still arrive.
        c.unsubscribe_lite("sess-b")
        send_all(b, [("sess-b", b"b:late"), ("sess-a", b"a:late")])
        got = receive_until(c, 1)
        assert got == {"sess-a": [b"a:late"]}
        assert c.receive(32, 10) == []
    finally:
        c.shutdown()


class Collecting(MessageListener):
    def __init__(self):
        self.seen = defaultdict(list)
        self.lock = threading.Lock()

    def consume(self, message):
        with self.lock:
            self.seen[message.lite_topic].append(message.body)
        return ConsumeResult.SUCCESS

    def count(self):
        with self.lock:
            return sum(len(v) for v in self.seen.values())


def test_a_lite_push_consumer_is_woken_by_sends_to_its_lite_topics(broker):
    b = broker
    b.cli("topic", "create", PARENT, "--type", "lite")
    listener = Collecting()
    c = LitePushConsumer(config(b.endpoint), GROUP, PARENT, listener)
    c.startup()
    try:
        subscribe(c, "session-1")
        subscribe(c, "session-2")
        sent = [(f"session-{s}", f"{s}:{i}".encode()) for i in range(30) for s in "12"]
        send_all(b, sent + [("session-3", b"nobody listens")])
        deadline = time.monotonic() + 60
        while listener.count() < 60:
            assert time.monotonic() < deadline, dict(listener.seen)
            time.sleep(0.1)
        for s in "12":
            assert listener.seen[f"session-{s}"] == [f"{s}:{i}".encode() for i in range(30)]
        assert "session-3" not in listener.seen
    finally:
        c.shutdown()


def test_lite_subscription_errors_have_their_codes(broker):
    b = broker
    b.cli("topic", "create", PARENT, "--type", "lite")
    b.cli("topic", "create", "plain")
    raw = Raw(b.endpoint)
    try:
        assert raw.sync_lite(PARENT, GROUP, d.PARTIAL_ADD, ["bad name!"]).code == d.ILLEGAL_LITE_TOPIC
        assert raw.sync_lite(PARENT, GROUP, d.PARTIAL_ADD, ["x" * 65]).code == d.ILLEGAL_LITE_TOPIC
        assert raw.sync_lite("plain", GROUP, d.PARTIAL_ADD, ["s1"]).code == d.BAD_REQUEST
        no_client = [h for h in HEADERS if h[0] != "x-mq-client-id"]
        assert raw.sync_lite(PARENT, GROUP, d.PARTIAL_ADD, ["s1"], no_client).code == d.CLIENT_ID_REQUIRED
        # Idempotent: the same add twice, a remove of what is not there.
        for _ in range(2):
            assert raw.sync_lite(PARENT, GROUP, d.PARTIAL_ADD, ["s1", "s2"]).code == d.OK
        assert raw.sync_lite(PARENT, GROUP, d.PARTIAL_REMOVE, ["nope"]).code == d.OK
        assert raw.sync_lite(PARENT, GROUP, d.COMPLETE_ADD, []).code == d.OK, "Node's start-up sync"

        # Sends: a bad lite topic name, a lite topic on a plain topic, none on a LITE one.
        assert raw.send(PARENT, b"x", message_type=d.LITE, lite_topic="a b").status.code == d.ILLEGAL_LITE_TOPIC
        assert raw.send("plain", b"x", message_type=d.LITE, lite_topic="s1").status.code == \
            d.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE
        assert raw.send(PARENT, b"x", message_type=d.LITE).status.code == d.ILLEGAL_LITE_TOPIC
        assert raw.send(PARENT, b"x", message_type=d.NORMAL).status.code == d.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE
    finally:
        raw.close()


@pytest.fixture
def small_quotas(tmp_path, request):
    from conftest import _broker
    config = ("[query]\nlite_subscription_quota = 3\nlite_group_subscription_quota = 5\n"
              "[ingest]\nmax_lite_topics_per_parent = 2\nmax_lite_topics_per_tenant = 3\n")
    b = _broker(tmp_path, "sqlite+local", config=config)
    yield b
    if b.alive():
        assert b.stop() == 0


def test_quotas_on_subscriptions_and_lite_topics(small_quotas):
    b = small_quotas
    b.cli("topic", "create", PARENT, "--type", "lite")
    raw = Raw(b.endpoint)
    try:
        assert raw.sync_lite(PARENT, GROUP, d.PARTIAL_ADD, ["s1", "s2", "s3"]).code == d.OK
        status = raw.sync_lite(PARENT, GROUP, d.PARTIAL_ADD, ["s4"])
        assert status.code == d.LITE_SUBSCRIPTION_QUOTA_EXCEEDED, status
        assert raw.sync_lite(PARENT, GROUP, d.COMPLETE_ADD, ["s5", "s6", "s7", "s8"]).code == \
            d.LITE_SUBSCRIPTION_QUOTA_EXCEEDED
        # Another client of the group: 2 more fit the group's 5, a third does not (its own 3 would).
        other = [("x-mq-client-id", "raw-test@2@0@x")] + [h for h in HEADERS if h[0] != "x-mq-client-id"]
        assert raw.sync_lite(PARENT, GROUP, d.PARTIAL_ADD, ["t1", "t2"], headers=other).code == d.OK
        status = raw.sync_lite(PARENT, GROUP, d.PARTIAL_ADD, ["t3"], headers=other)
        assert status.code == d.LITE_SUBSCRIPTION_QUOTA_EXCEEDED and "consumer group" in status.message, status
        for lite in ["s1", "s2", "s1"]:
            assert raw.send(PARENT, b"x", message_type=d.LITE, lite_topic=lite).status.code == d.OK
        assert raw.send(PARENT, b"x", message_type=d.LITE, lite_topic="s3").status.code == d.LITE_TOPIC_QUOTA_EXCEEDED
        # Another parent of the tenant: 1 more fits the tenant's 3.
        b.cli("topic", "create", "replies2", "--type", "lite")
        assert raw.send("replies2", b"x", message_type=d.LITE, lite_topic="r1").status.code == d.OK
        status = raw.send("replies2", b"x", message_type=d.LITE, lite_topic="r2").status
        assert status.code == d.LITE_TOPIC_QUOTA_EXCEEDED and "tenant" in status.message, status
        # Room in the group for the official client below.
        for headers in (HEADERS, other):
            assert raw.sync_lite(PARENT, GROUP, d.COMPLETE_REMOVE, [], headers=headers).code == d.OK
    finally:
        raw.close()
    # The Python client is told the quota and refuses a fourth subscription itself.
    c = LiteSimpleConsumer(PARENT, config(b.endpoint), GROUP, await_duration=1)
    c.startup()
    try:
        for lite in ["s1", "s2", "s3"]:
            subscribe(c, lite)
        with pytest.raises(Exception, match="quota"):
            c.subscribe_lite("s4")
    finally:
        c.shutdown()


def test_the_documented_ai_session_example_runs(broker):
    """docs/lite-topics.md's runnable example, as written."""
    import subprocess
    import sys
    from pathlib import Path
    broker.cli("topic", "create", "replies", "--type", "lite")
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "ai_sessions.py"
    out = subprocess.run([sys.executable, str(example), broker.endpoint], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("Hello, how can I help?") == 3, out.stdout


@pytest.fixture(params=["sqlite+local", "postgres+s3"])
def expiry_broker(tmp_path, request):
    """Lite expiry every second on a clock the test moves."""
    from conftest import _broker
    config = '[compactor]\nretention_interval = "1s"\n[testing]\nclock_control = true\n'
    b = _broker(tmp_path, request.param, config=config)
    yield b
    if b.alive():
        assert b.stop() == 0


def expiry_log_lines(b):
    return sum(p.read_text(errors="replace").count("deleted lite topics idle") for p in b.log_dir.glob("strata-*.log"))


def test_idle_lite_topics_expire_but_not_while_a_subscribed_group_has_not_read_them(expiry_broker):
    b = expiry_broker
    b.cli("topic", "create", PARENT, "--type", "lite", "--lite-ttl", "30m")
    raw = Raw(b.endpoint)
    offset = lambda lite, body=b"x": raw.send(PARENT, body, message_type=d.LITE, lite_topic=lite).entries[0].offset
    done, pending = offset("done", b"read"), offset("pending", b"unread")
    c = LiteSimpleConsumer(PARENT, config(b.endpoint), GROUP, await_duration=1)
    c.startup()
    try:
        subscribe(c, "done")
        assert receive_until(c, 1) == {"done": [b"read"]}
        subscribe(c, "pending")
        b.cli("advance-clock", "31m")
        deadline = time.monotonic() + 30
        while expiry_log_lines(b) == 0:
            assert time.monotonic() < deadline, "no lite topic expired"
            time.sleep(0.2)
        # "done" was deleted (a send creates it again, with offsets past its first life's);
        # "pending" was kept for the group that has not read it.
        assert offset("done") > done + 1
        assert offset("pending") == pending + 1
        assert receive_until(c, 2) == {"pending": [b"unread", b"x"]}
    finally:
        raw.close()
        c.shutdown()


def test_offset_options_move_the_groups_progress_on_the_lite_topic(broker):
    b = broker
    b.cli("topic", "create", PARENT, "--type", "lite")
    raw = Raw(b.endpoint)
    try:
        base = None
        for i in range(5):
            r = raw.send(PARENT, f"m{i}".encode(), message_type=d.LITE, lite_topic="history")
            assert r.status.code == d.OK
            base = r.entries[0].offset if base is None else base

        def take(option):
            status = raw.sync_lite(PARENT, GROUP, d.PARTIAL_ADD, ["history"], offset_option=option)
            assert status.code == d.OK, status
            got = [r.message for r in raw.receive(PARENT, GROUP, poll_s=1) if r.HasField("message")]
            for m in got:
                raw.ack(PARENT, GROUP, m.system_properties.receipt_handle)
            return [m.body for m in got]

        assert take(d.OffsetOption(tail_n=2)) == [b"m3", b"m4"], "the last two"
        assert take(d.OffsetOption(policy=d.OffsetOption.MIN)) == [b"m0", b"m1", b"m2", b"m3", b"m4"]
        assert take(d.OffsetOption(offset=base + 4)) == [b"m4"]
        assert take(d.OffsetOption(policy=d.OffsetOption.LAST)) == [], "LAST keeps the progress"
        raw.send(PARENT, b"m5", message_type=d.LITE, lite_topic="history")
        assert take(d.OffsetOption(policy=d.OffsetOption.MAX)) == [], "MAX skips what is there"
    finally:
        raw.close()


def test_a_client_naming_an_expired_lite_topic_is_told_to_unsubscribe(expiry_broker):
    b = expiry_broker
    b.cli("topic", "create", PARENT, "--type", "lite", "--lite-ttl", "30m")
    raw = Raw(b.endpoint)
    try:
        settings = d.Settings(client_type=d.LITE_PUSH_CONSUMER, subscription=d.Subscription(
            group=d.Resource(name=GROUP), subscriptions=[d.SubscriptionEntry(topic=d.Resource(name=PARENT))]))
        commands = raw.telemetry(settings)
        deadline = time.monotonic() + 10
        while not commands:
            assert time.monotonic() < deadline, "no settings reply"
            time.sleep(0.05)
        assert raw.sync_lite(PARENT, GROUP, d.PARTIAL_ADD, ["old", "live"]).code == d.OK
        raw.send(PARENT, b"read", message_type=d.LITE, lite_topic="old")
        got = [r.message for r in raw.receive(PARENT, GROUP, poll_s=1) if r.HasField("message")]
        assert [m.body for m in got] == [b"read"]
        raw.ack(PARENT, GROUP, got[0].system_properties.receipt_handle)
        b.cli("advance-clock", "31m")
        deadline = time.monotonic() + 30
        while expiry_log_lines(b) == 0:
            assert time.monotonic() < deadline, "no lite topic expired"
            time.sleep(0.2)
        # The client's periodic complete set still names "old": it is told, not resubscribed.
        assert raw.sync_lite(PARENT, GROUP, d.COMPLETE_ADD, ["old", "live"]).code == d.OK
        deadline = time.monotonic() + 10
        while not any(c.HasField("notify_unsubscribe_lite_command") for c in commands):
            assert time.monotonic() < deadline, commands
            time.sleep(0.05)
        told = [c.notify_unsubscribe_lite_command.lite_topic for c in commands
                if c.HasField("notify_unsubscribe_lite_command")]
        assert told == ["old"]
        raw.send(PARENT, b"after", message_type=d.LITE, lite_topic="old")
        assert [r for r in raw.receive(PARENT, GROUP, poll_s=1) if r.HasField("message")] == [], "not resubscribed"
        # Subscribing again on purpose works.
        assert raw.sync_lite(PARENT, GROUP, d.PARTIAL_ADD, ["old"]).code == d.OK
        got = [r.message.body for r in raw.receive(PARENT, GROUP, poll_s=1) if r.HasField("message")]
        assert got == [b"after"]
    finally:
        raw.close()


def test_a_session_that_ends_leaves_no_subscriptions_behind(broker):
    b = broker
    b.cli("topic", "create", PARENT, "--type", "lite")
    first = LiteSimpleConsumer(PARENT, config(b.endpoint), GROUP, await_duration=1)
    first.startup()
    subscribe(first, "s1")
    first.shutdown()  # NotifyClientTermination: its subscriptions go with the session
    logs = lambda: "".join(p.read_text(errors="replace") for p in b.log_dir.glob("strata-*.log"))
    deadline = time.monotonic() + 10
    while "lite subscriptions of an ended session dropped" not in logs():
        assert time.monotonic() < deadline, "the ended session's subscriptions were not dropped"
        time.sleep(0.1)
    # A new client of the group gets only what it subscribes to; the group's progress stays.
    second = LiteSimpleConsumer(PARENT, config(b.endpoint), GROUP, await_duration=1)
    second.startup()
    try:
        subscribe(second, "s2")
        send_all(b, [("s1", b"one"), ("s2", b"two")])
        assert receive_until(second, 1) == {"s2": [b"two"]}
        assert second.receive(32, 10) == []
        subscribe(second, "s1")
        assert receive_until(second, 1) == {"s1": [b"one"]}
    finally:
        second.shutdown()
