"""Message types and consumption semantics with the official Python client: FIFO, delay,
transactions, retries and the dead-letter queue."""

import signal
import threading
import time
from collections import defaultdict

import pytest

from rocketmq import (ConsumeResult, FilterExpression, Message, MessageListener, Producer, PushConsumer,
                      SimpleConsumer, TransactionChecker, TransactionResolution)

from clients import config, make_message


def receive_until(consumer, count, invisible=10, deadline_s=60, ack=True):
    got = []
    deadline = time.monotonic() + deadline_s
    while len(got) < count:
        assert time.monotonic() < deadline, f"only {len(got)} of {count} messages arrived"
        for m in consumer.receive(32, invisible):
            got.append(m)
            if ack:
                consumer.ack(m)
    return got


def nothing_arrives(consumer, seconds=3):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        messages = consumer.receive(32, 10)
        assert messages == [], f"unexpected: {[m.body for m in messages]}"


def fifo_message(topic, group, i):
    m = Message()
    m.topic = topic
    m.body = f"{group}:{i}".encode()
    m.message_group = group
    return m


def test_fifo_order_per_message_group_across_50_groups_with_a_retry(semantics_broker):
    b = semantics_broker
    b.cli("topic", "create", "fifo-orders", "--type", "fifo", "--queues", "4")
    b.cli("group", "create", "fifo-readers", "--fifo", "--max-attempts", "5")
    producer = Producer(config(b.endpoint), ("fifo-orders",))
    producer.startup()
    try:
        for i in range(6):
            for g in range(50):
                producer.send(fifo_message("fifo-orders", f"g{g}", i))
    finally:
        producer.shutdown()

    acked = set()
    order = defaultdict(list)
    violations = []
    mixed_batches = []
    retried = {"done": False}
    lock = threading.Lock()
    stop = threading.Event()

    def consume():
        c = SimpleConsumer(config(b.endpoint), "fifo-readers", {"fifo-orders": FilterExpression("*")}, await_duration=2)
        c.startup()
        try:
            while not stop.is_set():
                batch = c.receive(32, 3)
                groups = {m.message_group for m in batch}
                with lock:
                    if len(groups) > 1:
                        mixed_batches.append(len(groups))
                    if len(groups) < len(batch):
                        violations.append(f"two messages of one group in one batch: {[m.body for m in batch]}")
                for m in batch:
                    group, i = m.body.decode().split(":")
                    i = int(i)
                    with lock:
                        if i > 0 and (group, i - 1) not in acked:
                            violations.append(f"{group}:{i} delivered before {group}:{i - 1} was acknowledged")
                        # g7:3 fails its first delivery: it must come back before g7:4.
                        if (group, i) == ("g7", 3) and not retried["done"]:
                            retried["done"] = True
                            assert m.delivery_attempt == 1
                            continue
                        order[group].append((i, m.delivery_attempt))
                        # Recorded before the ack is sent: once the broker has it, another
                        # consumer may receive the group's next message at once.
                        acked.add((group, i))
                        if len(acked) == 300:
                            stop.set()
                    c.ack(m)
        finally:
            c.shutdown()

    threads = [threading.Thread(target=consume) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not violations, violations[:5]
    assert len(acked) == 300
    for g in range(50):
        assert [i for i, _ in order[f"g{g}"]] == list(range(6)), f"g{g}: {order[f'g{g}']}"
    assert dict(order["g7"])[3] == 2, "the retried message came back in place, as attempt 2"
    assert mixed_batches, "different message groups are delivered concurrently"


class Failing(MessageListener):
    """Fails every message whose body starts with `poison`; records what it saw."""

    def __init__(self):
        self.seen = []
        self.lock = threading.Lock()

    def consume(self, message):
        with self.lock:
            self.seen.append((message.body, message.delivery_attempt))
        return ConsumeResult.FAILURE if message.body.startswith(b"poison") else ConsumeResult.SUCCESS


def test_fifo_push_consumer_retries_in_place_then_forwards_to_the_dead_letter_queue(semantics_broker):
    b = semantics_broker
    b.cli("topic", "create", "fifo-push", "--type", "fifo", "--queues", "2")
    b.cli("group", "create", "fifo-push-group", "--fifo", "--max-attempts", "2")
    producer = Producer(config(b.endpoint), ("fifo-push",))
    producer.startup()
    try:
        for body in [b"first", b"poison", b"after"]:
            m = Message()
            m.topic, m.body, m.message_group = "fifo-push", body, "the-group"
            producer.send(m)
    finally:
        producer.shutdown()
    listener = Failing()
    consumer = PushConsumer(config(b.endpoint), "fifo-push-group", listener, {"fifo-push": FilterExpression("*")})
    consumer.startup()
    try:
        deadline = time.monotonic() + 60
        while b"after" not in [body for body, _ in listener.seen]:
            assert time.monotonic() < deadline, listener.seen
            time.sleep(0.2)
    finally:
        consumer.shutdown()
    bodies = [body for body, _ in listener.seen]
    # In order; the poison message retried in place (the group waits), then dead-lettered.
    assert bodies == [b"first", b"poison", b"poison", b"after"], listener.seen
    dlq = SimpleConsumer(config(b.endpoint), "dlq-reader", {"%DLQ%fifo-push-group": FilterExpression("*")},
                         await_duration=2)
    dlq.startup()
    try:
        assert [m.body for m in receive_until(dlq, 1)] == [b"poison"]
    finally:
        dlq.shutdown()


def test_retries_then_dead_letter_queue_with_the_exact_attempt_count(semantics_broker):
    b = semantics_broker
    b.cli("topic", "create", "retry-topic", "--queues", "2")
    b.cli("group", "create", "retry-group", "--max-attempts", "3")
    producer = Producer(config(b.endpoint), ("retry-topic",))
    producer.startup()
    try:
        sent = producer.send(make_message("retry-topic", 0, b"never acked")).message_id
        kept = producer.send(make_message("retry-topic", 1, b"acked")).message_id
    finally:
        producer.shutdown()
    c = SimpleConsumer(config(b.endpoint), "retry-group", {"retry-topic": FilterExpression("*")}, await_duration=2)
    c.startup()
    attempts = []
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and len(attempts) < 4:
            for m in c.receive(32, 1):
                if m.message_id == kept:
                    c.ack(m)
                else:
                    attempts.append(m.delivery_attempt)
            if len(attempts) == 3:
                nothing_arrives(c, 4)
                break
    finally:
        c.shutdown()
    assert attempts == [1, 2, 3], "delivered exactly max_attempts times, then no more"
    dlq = SimpleConsumer(config(b.endpoint), "dlq-reader", {"%DLQ%retry-group": FilterExpression("*")},
                         await_duration=2)
    dlq.startup()
    try:
        got = receive_until(dlq, 1)
        assert [(m.message_id, m.body) for m in got] == [(sent, b"never acked")]
    finally:
        dlq.shutdown()


def delayed(topic, body, at):
    m = Message()
    m.topic, m.body, m.delivery_timestamp = topic, body, int(at)
    return m


def test_delays_of_one_and_five_seconds(semantics_broker):
    b = semantics_broker
    b.cli("topic", "create", "delays", "--type", "delay", "--queues", "2")
    producer = Producer(config(b.endpoint), ("delays",))
    producer.startup()
    start = time.time()
    due = {b"1s": int(start) + 1, b"5s": int(start) + 5, b"2s, in ms": int(start) + 2}
    try:
        for body, at in due.items():
            # The Python client documents milliseconds (and sends them as seconds): both work.
            producer.send(delayed("delays", body, at * 1000 if b"ms" in body else at))
    finally:
        producer.shutdown()
    c = SimpleConsumer(config(b.endpoint), "delay-readers", {"delays": FilterExpression("*")}, await_duration=3)
    c.startup()
    arrived = {}
    try:
        deadline = time.monotonic() + 30
        while len(arrived) < len(due):
            assert time.monotonic() < deadline, arrived
            for m in c.receive(32, 10):
                arrived[m.body] = time.time()
                c.ack(m)
    finally:
        c.shutdown()
    # A cluster node keeps PostgreSQL's time and never runs ahead of it (docs/architecture.md
    # "Time"), so a timer never fires before this machine's clock, which PostgreSQL shares here.
    for body, at in due.items():
        assert arrived[body] >= at, f"{body} arrived {at - arrived[body]:.3f} s early"
        assert arrived[body] < at + 5, f"{body} arrived {arrived[body] - at:.2f} s late"


def test_month_and_year_long_delays_and_recall_with_the_test_clock(semantics_broker):
    b = semantics_broker
    b.cli("topic", "create", "long-delays", "--type", "delay", "--queues", "2")
    day = 24 * 3600
    now = time.time()
    producer = Producer(config(b.endpoint), ("long-delays",))
    producer.startup()
    try:
        producer.send(delayed("long-delays", b"30 days", now + 30 * day))
        producer.send(delayed("long-delays", b"365 days", now + 365 * day))
        recalled = producer.send(delayed("long-delays", b"recalled", now + 3600))
        assert recalled.recall_handle
        assert producer.recall_message("long-delays", recalled.recall_handle) == recalled.message_id
        try:
            producer.recall_message("long-delays", recalled.recall_handle)
            raise AssertionError("a second recall must fail")
        except AssertionError:
            raise
        except Exception:
            pass
        try:
            producer.send(delayed("long-delays", b"too far", now + 401 * day))
            raise AssertionError("a delay beyond the maximum must be refused")
        except AssertionError:
            raise
        except Exception as e:
            assert "ILLEGAL_DELIVERY_TIME" in str(e) or "40012" in str(e) or "delay" in str(e), e
    finally:
        producer.shutdown()
    c = SimpleConsumer(config(b.endpoint), "long-readers", {"long-delays": FilterExpression("*")}, await_duration=1)
    c.startup()
    try:
        nothing_arrives(c, 2)
        b.cli("advance-clock", "31days")
        assert [m.body for m in receive_until(c, 1)] == [b"30 days"]
        nothing_arrives(c, 2)
        b.cli("advance-clock", "335days")
        assert [m.body for m in receive_until(c, 1)] == [b"365 days"]
        nothing_arrives(c, 2)  # the recalled one never comes
    finally:
        c.shutdown()


class Checker(TransactionChecker):
    """Answers orphan checks from a table of message body -> resolution (None: no answer)."""

    def __init__(self, answers):
        self.answers = answers
        self.checked = []

    def check(self, message):
        self.checked.append(message.body)
        return self.answers.get(message.body, TransactionResolution.TRANSACTION_RESOLUTION_UNSPECIFIED)


def test_transactions_commit_rollback_and_orphan_checks(semantics_broker):
    b = semantics_broker
    b.cli("topic", "create", "tx-topic", "--type", "transaction", "--queues", "2")
    checker = Checker({b"orphan-commit": TransactionResolution.COMMIT,
                       b"orphan-rollback": TransactionResolution.ROLLBACK})
    producer = Producer(config(b.endpoint), ("tx-topic",), checker)
    producer.startup()
    c = SimpleConsumer(config(b.endpoint), "tx-readers", {"tx-topic": FilterExpression("*")}, await_duration=1)
    c.startup()
    try:
        def half(body):
            t = producer.begin_transaction()
            producer.send(make_message("tx-topic", 0, body), t)
            return t

        half(b"committed").commit()
        half(b"rolled back").rollback()
        # Left open: the broker asks the producer (checker) after 1 s.
        for body in [b"orphan-commit", b"orphan-rollback", b"orphan-unanswered"]:
            half(body)
        got = sorted(m.body for m in receive_until(c, 2, deadline_s=30))
        assert got == [b"committed", b"orphan-commit"]
        # The unanswered one is rolled back after 2 checks; nothing else ever arrives.
        nothing_arrives(c, 6)
        assert checker.checked.count(b"orphan-unanswered") >= 2, checker.checked
        assert b"committed" not in checker.checked, "resolved transactions are not checked"
    finally:
        c.shutdown()
        producer.shutdown()


def test_topic_types_are_enforced_and_changed_by_an_admin(semantics_broker):
    from raw import Raw
    from rocketmq.grpc_protocol import definition_pb2 as d

    b = semantics_broker
    b.cli("topic", "create", "typed", "--type", "fifo", "--queues", "1")
    raw = Raw(b.endpoint)
    try:
        normal = raw.send("typed", b"x", message_type=d.NORMAL)
        assert normal.status.code == d.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE
        assert "FIFO" in normal.status.message and "NORMAL" in normal.status.message
        no_group = raw.send("typed", b"x", message_type=d.FIFO)
        assert no_group.status.code == d.ILLEGAL_MESSAGE_GROUP
        b.cli("topic", "update", "typed", "--type", "normal")
        deadline = time.monotonic() + 10  # topic metadata is cached for up to 5 s
        while raw.send("typed", b"x", message_type=d.NORMAL).status.code != d.OK:
            assert time.monotonic() < deadline, "the type change took effect"
            time.sleep(0.5)
    finally:
        raw.close()


def test_sql92_filter_on_properties(semantics_broker):
    from rocketmq.grpc_protocol import FilterType

    b = semantics_broker
    producer = Producer(config(b.endpoint), ("sql-topic",))
    producer.startup()
    try:
        for i in range(20):
            region = ["eu", "us", "ap"][i % 3]
            producer.send(make_message("sql-topic", i, f"m{i}".encode(), tag=f"T{i % 2}",
                                       props={"amount": str(i * 10), "region": region}))
    finally:
        producer.shutdown()
    expression = "amount >= 50 AND region IN ('eu', 'us') AND TAGS = 'T0'"
    c = SimpleConsumer(config(b.endpoint), "sql-readers",
                       {"sql-topic": FilterExpression(expression, FilterType.SQL)}, await_duration=2)
    c.startup()
    try:
        expected = {f"m{i}".encode() for i in range(20)
                    if i * 10 >= 50 and ["eu", "us", "ap"][i % 3] in ("eu", "us") and i % 2 == 0}
        got = {m.body for m in receive_until(c, len(expected))}
        assert got == expected
        nothing_arrives(c, 2)
    finally:
        c.shutdown()


def test_timers_and_half_messages_survive_a_restart(semantics_broker):
    b = semantics_broker
    b.cli("topic", "create", "restart-delay", "--type", "delay", "--queues", "1")
    b.cli("topic", "create", "restart-tx", "--type", "transaction", "--queues", "1")
    producer = Producer(config(b.endpoint), ("restart-delay",))
    producer.startup()
    try:
        due = int(time.time()) + 4
        producer.send(delayed("restart-delay", b"after restart", due))
    finally:
        producer.shutdown()
    checker = Checker({b"pending": TransactionResolution.COMMIT})
    tx_producer = Producer(config(b.endpoint), ("restart-tx",), checker)
    tx_producer.startup()
    try:
        t = tx_producer.begin_transaction()
        tx_producer.send(make_message("restart-tx", 0, b"pending"), t)
    finally:
        tx_producer.shutdown()
    b.stop(signal.SIGKILL)
    b.start()
    # The timer fires after the restart; the half message is checked with a new producer.
    tx_producer = Producer(config(b.endpoint), ("restart-tx",), checker)
    tx_producer.startup()
    c = SimpleConsumer(config(b.endpoint), "restart-readers",
                       {"restart-delay": FilterExpression("*"), "restart-tx": FilterExpression("*")}, await_duration=1)
    c.startup()
    try:
        got = sorted(m.body for m in receive_until(c, 2, deadline_s=30))
        assert got == [b"after restart", b"pending"]
    finally:
        c.shutdown()
        tx_producer.shutdown()


def test_a_priority_backlog_is_drained_highest_first(semantics_broker):
    """Apache RocketMQ 5.4's semantics: a higher number is a higher priority, 0 the lowest;
    priority p uses queue min(p, queues - 1), and consumers pop the highest queue first."""
    b = semantics_broker
    b.cli("topic", "create", "prio", "--type", "priority", "--queues", "4")
    b.cli("group", "create", "prio-g")
    producer = Producer(config(b.endpoint), ("prio",))
    producer.startup()
    priorities = [0, 3, 1, 2, 5, 0, 1, 3, 2, 4] * 3
    try:
        for i, p in enumerate(priorities):
            m = make_message("prio", i, str(p).encode())
            m.priority = p
            producer.send(m)
        with pytest.raises(Exception):  # a NORMAL message on a PRIORITY topic: type conflict
            producer.send(make_message("prio", 99, b"no priority"))
    finally:
        producer.shutdown()
    consumer = SimpleConsumer(config(b.endpoint), "prio-g", {"prio": FilterExpression()})
    consumer.startup()
    try:
        order = []
        deadline = time.monotonic() + 60
        while len(order) < len(priorities):
            assert time.monotonic() < deadline, f"only {len(order)} arrived"
            for m in consumer.receive(1, 30):
                order.append(int(m.body))
                assert m.priority == int(m.body), "the priority travels with the message"
                consumer.ack(m)
        levels = [min(p, 3) for p in order]
        assert levels == sorted(levels, reverse=True), f"not highest first: {order}"
        assert sorted(order) == sorted(priorities)
    finally:
        consumer.shutdown()
