"""Broadcasting for 5.x clients: every live client of a broadcast group receives every
message, each with progress of its own kept by the broker (official Python clients)."""

import json
import threading
import time

from rocketmq import ConsumeResult, FilterExpression, MessageListener, Producer, PushConsumer, SimpleConsumer

from clients import config, make_message

TOPIC, GROUP = "news", "everyone"


class Collecting(MessageListener):
    def __init__(self):
        self.bodies = []
        self.lock = threading.Lock()

    def consume(self, message):
        with self.lock:
            self.bodies.append(message.body)
        return ConsumeResult.SUCCESS

    def seen(self):
        with self.lock:
            return list(self.bodies)


def simple(b):
    c = SimpleConsumer(config(b.endpoint), GROUP, {TOPIC: FilterExpression("*")}, await_duration=1)
    c.startup()
    return c


def join(consumer):
    """A simple consumer's first receive: its progress starts at the queues' ends."""
    assert consumer.receive(32, 10) == []


def send(producer, bodies):
    for i, body in enumerate(bodies):
        producer.send(make_message(TOPIC, i, body))


def drain(consumer, want, invisible=30, ack=True):
    """Receives until every body of `want` arrived; returns {body: deliveries}."""
    got = {}
    deadline = time.monotonic() + 120
    while not want <= got.keys():
        assert time.monotonic() < deadline, f"{len(want - got.keys())} of {len(want)} never arrived"
        for m in consumer.receive(32, invisible):
            got.setdefault(m.body, []).append(m)
            if ack:
                consumer.ack(m)
    return got


def test_three_broadcast_clients_each_receive_all_and_a_late_one_starts_at_the_latest(broker):
    b = broker
    b.cli("topic", "create", TOPIC, "--queues", "4")
    [created] = json.loads(b.cli("group", "create", GROUP, "--broadcast", "--output", "json"))
    assert (created["model"], created["from"]) == ("broadcast", "latest"), created
    producer = Producer(config(b.endpoint), (TOPIC,))
    producer.startup()
    send(producer, [b"before anyone joined"])
    one, two = simple(b), simple(b)
    listener = Collecting()
    push = PushConsumer(config(b.endpoint), GROUP, listener, {TOPIC: FilterExpression("*")})
    late = None
    try:
        join(one)
        join(two)
        push.startup()
        # The push consumer joins with its first receive, in the background: warm-up messages
        # until it has one (simple consumers receive them too and pass over them).
        deadline = time.monotonic() + 30
        while not listener.seen():
            assert time.monotonic() < deadline, "the push consumer never received"
            send(producer, [b"warm-up"])
            time.sleep(0.2)

        bodies = {f"m{i}".encode() for i in range(1000)}
        send(producer, sorted(bodies))
        for c in (one, two):
            got = drain(c, bodies)
            assert b"before anyone joined" not in got, "a new client starts at the latest offset"
            assert bodies <= got.keys()
        deadline = time.monotonic() + 120
        while not bodies <= set(listener.seen()):
            assert time.monotonic() < deadline, f"push consumer: {len(bodies - set(listener.seen()))} missing"
            time.sleep(0.2)
        assert b"before anyone joined" not in listener.seen()

        # A client joining late starts at the latest offset: none of the 1,000.
        late = simple(b)
        join(late)
        tail = {b"late-1", b"late-2", b"late-3"}
        send(producer, sorted(tail))
        assert drain(late, tail).keys() == tail

        # Acks advance only their client's progress: one leaves late-1 unacknowledged and gets
        # it again (attempt 2); two acknowledged everything and sees nothing more.
        first = drain(one, tail, invisible=2, ack=False)
        for body, ms in first.items():
            if body != b"late-1":
                one.ack(ms[0])
        again = drain(one, {b"late-1"})
        assert again[b"late-1"][0].delivery_attempt == 2
        assert drain(two, tail).keys() == tail
        assert two.receive(32, 10) == [], "two's progress is its own"
    finally:
        for c in (one, two, late, push, producer):
            if c is not None:
                c.shutdown()
