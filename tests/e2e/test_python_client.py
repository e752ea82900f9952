"""The official Python client (rocketmq-python-client 5.1.2) against `strata standalone`."""

import signal

from rocketmq import FilterExpression, Producer, SimpleConsumer

from clients import body_for, config, digest, make_message, receive_all

TAGS = ["TagA", "TagB", "TagC", None]


def produce(endpoint, topic, n, start=0):
    """Sends n messages; returns {message_id: (index, digest, tag, keys, props)}."""
    producer = Producer(config(endpoint), (topic,))
    producer.startup()
    sent = {}
    try:
        for i in range(start, start + n):
            body = body_for(i)
            tag = TAGS[i % len(TAGS)]
            keys = [f"key-{i}"] + ([f"alt-{i}"] if i % 3 == 0 else [])
            props = {"kind": f"k{i % 5}", "unicode": "ключ-値"} if i % 2 == 0 else {}
            receipt = producer.send(make_message(topic, i, body, tag=tag, keys=keys, props=props))
            sent[receipt.message_id] = (i, digest(body), tag, set(keys), {**props, "idx": str(i)})
    finally:
        producer.shutdown()
    return sent


def check_intact(sent, got):
    assert set(got) == set(sent), f"missing {len(set(sent) - set(got))}, unexpected {len(set(got) - set(sent))}"
    for mid, m in got.items():
        i, body_digest, tag, keys, props = sent[mid]
        assert digest(m.body) == body_digest, f"body of message {i} differs"
        assert m.tag == tag, f"tag of message {i}"
        assert set(m.keys) == keys, f"keys of message {i}"
        assert m.properties == props, f"properties of message {i}"
        assert m.topic


def test_thousand_messages_arrive_intact_once(broker):
    sent = produce(broker.endpoint, "e2e-thousand", 1000)
    assert len(sent) == 1000
    consumer = SimpleConsumer(config(broker.endpoint), "e2e-thousand-group",
                              {"e2e-thousand": FilterExpression("*")}, await_duration=5)
    consumer.startup()
    try:
        # A short invisible time: a lost ack would bring its message back within the next
        # long poll (5 s), which waits past every deadline of this run.
        got = receive_all(consumer, 1000, invisible=3)
        check_intact(sent, got)
        assert all(m.delivery_attempt == 1 for m in got.values())
        assert consumer.receive(32, 3) == [], "everything was acked: nothing comes back"
    finally:
        consumer.shutdown()


def test_unacked_messages_come_back_after_the_invisible_duration(broker):
    sent = produce(broker.endpoint, "e2e-redeliver", 20)
    consumer = SimpleConsumer(config(broker.endpoint), "e2e-redeliver-group",
                              {"e2e-redeliver": FilterExpression("*")}, await_duration=5)
    consumer.startup()
    try:
        first = receive_all(consumer, 20, invisible=3, ack=False)
        ids = sorted(first)
        acked, kept = ids[:12], ids[12:]
        for mid in acked:
            consumer.ack(first[mid])
        again = receive_all(consumer, len(kept), invisible=30, deadline_s=60, ack=False)
        assert sorted(again) == kept, "exactly the unacked messages come back"
        assert all(m.delivery_attempt == 2 for m in again.values())
        for m in again.values():
            consumer.ack(m)
        check_intact({k: sent[k] for k in kept}, again)
    finally:
        consumer.shutdown()


def test_tag_filter(broker):
    sent = produce(broker.endpoint, "e2e-tags", 40)
    consumer = SimpleConsumer(config(broker.endpoint), "e2e-tags-group",
                              {"e2e-tags": FilterExpression("TagA||TagC")}, await_duration=3)
    consumer.startup()
    try:
        expected = {mid for mid, v in sent.items() if v[2] in ("TagA", "TagC")}
        got = receive_all(consumer, len(expected))
        assert set(got) == expected
        assert consumer.receive(32, 5) == []
    finally:
        consumer.shutdown()


def test_acknowledged_messages_survive_restart_and_kill(broker):
    sent = produce(broker.endpoint, "e2e-restart", 60)
    assert broker.stop(signal.SIGTERM) == 0
    broker.start()
    more = produce(broker.endpoint, "e2e-restart", 40, start=60)
    # kill -9 right after the sends were acknowledged: they are committed, not buffered.
    broker.stop(signal.SIGKILL)
    broker.start()
    sent.update(more)
    consumer = SimpleConsumer(config(broker.endpoint), "e2e-restart-group",
                              {"e2e-restart": FilterExpression("*")}, await_duration=3)
    consumer.startup()
    try:
        check_intact(sent, receive_all(consumer, 100))
    finally:
        consumer.shutdown()


def test_namespaces_are_separate_tenants(broker):
    producer = Producer(config(broker.endpoint, "tenant-a"), ("shared",))
    producer.startup()
    try:
        producer.send(make_message("shared", 0, b"for tenant a"))
    finally:
        producer.shutdown()
    other = SimpleConsumer(config(broker.endpoint, "tenant-b"), "g",
                           {"shared": FilterExpression("*")}, await_duration=2)
    other.startup()
    try:
        assert other.receive(32, 5) == [], "tenant b sees nothing of tenant a"
    finally:
        other.shutdown()
    own = SimpleConsumer(config(broker.endpoint, "tenant-a"), "g",
                         {"shared": FilterExpression("*")}, await_duration=2)
    own.startup()
    try:
        got = receive_all(own, 1)
        assert [m.body for m in got.values()] == [b"for tenant a"]
    finally:
        own.shutdown()
