"""Bad input gets the documented RocketMQ status code, and the broker keeps serving."""

import json
import socket

from rocketmq.grpc_protocol import definition_pb2 as d

from raw import Raw

MiB = 1 << 20


def codes(response):
    return [e.status.code for e in response.entries]


def test_send_errors_have_specific_codes(broker):
    raw = Raw(broker.endpoint)
    try:
        too_big = raw.send("bad-input", b"x" * (4 * MiB + 1))
        assert too_big.status.code == d.MESSAGE_BODY_TOO_LARGE
        assert "4194304" in too_big.status.message

        assert raw.send("", b"x").status.code == d.ILLEGAL_TOPIC
        assert raw.send("bad topic!", b"x").status.code == d.ILLEGAL_TOPIC
        assert raw.send("bad-input", b"").status.code == d.MESSAGE_BODY_EMPTY
        assert raw.send("bad-input", b"x", tag="a|b").status.code == d.ILLEGAL_MESSAGE_TAG
        assert raw.send("bad-input", b"x", props={"UNIQ_KEY": "1"}).status.code == d.ILLEGAL_MESSAGE_PROPERTY_KEY
        assert raw.send("bad-input", b"x", props={"big": "v" * 20000}).status.code == d.MESSAGE_PROPERTIES_TOO_LARGE
        mismatch = raw.send("bad-input", b"x", message_type=d.FIFO)
        assert mismatch.status.code == d.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE
        assert "NORMAL" in mismatch.status.message and "FIFO" in mismatch.status.message

        # Still serving: a good message goes through and can be received.
        ok = raw.send("bad-input", b"fine")
        assert ok.status.code == d.OK and codes(ok) == [d.OK]
        got = raw.receive("bad-input", "bad-input-group")
        assert got[0].status.code == d.OK
        assert [r.message.body for r in got if r.HasField("message")] == [b"fine"]
    finally:
        raw.close()
    assert broker.alive()


def test_receipt_and_receive_errors(broker):
    raw = Raw(broker.endpoint)
    try:
        assert raw.send("bad-receipt", b"m").status.code == d.OK
        forged = raw.ack("bad-receipt", "g", "not-a-handle")
        assert forged.status.code == d.INVALID_RECEIPT_HANDLE

        empty = raw.receive("bad-receipt", "g-empty", poll_s=0)
        assert empty[0].status.code == d.OK  # the one message is there
        nothing = raw.receive("bad-receipt", "g-empty", poll_s=0)
        assert nothing[0].status.code == d.MESSAGE_NOT_FOUND
        assert nothing[-1].HasField("delivery_timestamp")

        too_short = raw.receive("bad-receipt", "g-other", invisible_s=0)
        assert [r.status.code for r in too_short] == [d.ILLEGAL_INVISIBLE_TIME]
        # Standalone auto-creates the topic: an empty receive, not an error.
        fresh = raw.receive("no-such-topic-here", "g", poll_s=0)
        assert fresh[0].status.code == d.MESSAGE_NOT_FOUND
    finally:
        raw.close()


def test_unknown_topic_and_group_without_auto_create(strict_broker):
    raw = Raw(strict_broker.endpoint)
    try:
        assert raw.send("unknown-topic", b"x").status.code == d.TOPIC_NOT_FOUND
        strict_broker.cli("topic", "create", "known", "--type", "normal", "--queues", "2")
        assert raw.send("known", b"x").status.code == d.OK
        unknown_group = raw.receive("known", "unknown-group", poll_s=0)
        assert [r.status.code for r in unknown_group] == [d.CONSUMER_GROUP_NOT_FOUND]
        strict_broker.cli("group", "create", "known-group", "--max-attempts", "5")
        got = raw.receive("known", "known-group", poll_s=0)
        assert [r.message.body for r in got if r.HasField("message")] == [b"x"]
        topics = json.loads(strict_broker.cli("topic", "list", "--output", "json"))
        assert [(t["name"], t["type"], t["queues"]) for t in topics if t["name"] != "RMQ_SYS_TRACE_TOPIC"] == \
            [("known", "NORMAL", 2)]
        groups = json.loads(strict_broker.cli("group", "list", "--output", "json"))
        assert [(g["name"], g["order"], g["model"], g["from"], g["max_attempts"]) for g in groups] == \
            [("known-group", "concurrent", "clustering", "earliest", 5)]
    finally:
        raw.close()


def test_garbage_on_the_port_does_not_take_the_broker_down(broker):
    for junk in [b"GET / HTTP/1.1\r\n\r\n", b"\x00" * 64, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 100]:
        with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as sock:
            sock.sendall(junk)
            try:
                sock.recv(1024)
            except OSError:
                pass
    raw = Raw(broker.endpoint)
    try:
        assert raw.send("after-garbage", b"still here").status.code == d.OK
    finally:
        raw.close()
    assert broker.alive()


def test_overflowing_numbers_get_a_code_not_a_panic(broker):
    """Times far outside any calendar, in every field that carries one (the broker is a debug
    build in these tests: an arithmetic overflow would panic the request)."""
    from rocketmq.grpc_protocol import service_pb2 as s
    from raw import HEADERS

    broker.cli("topic", "create", "huge-delays", "--type", "delay", "--queues", "1")
    broker.cli("topic", "create", "huge-transactions", "--type", "transaction", "--queues", "1")
    huge = 1 << 62
    raw = Raw(broker.endpoint)
    try:
        def send(topic, message_type, set_time):
            msg = d.Message(topic=d.Resource(name=topic), body=b"x")
            msg.system_properties.message_id = "01HUGE"
            msg.system_properties.message_type = message_type
            set_time(msg.system_properties)
            return raw.stub.SendMessage(s.SendMessageRequest(messages=[msg]), metadata=HEADERS, timeout=10)

        far_future = send("huge-delays", d.DELAY, lambda sp: setattr(sp.delivery_timestamp, "seconds", huge))
        assert far_future.status.code == d.ILLEGAL_DELIVERY_TIME
        # Long past: due at once, as any delivery time already passed.
        far_past = send("huge-delays", d.DELAY, lambda sp: setattr(sp.delivery_timestamp, "seconds", -huge))
        assert far_past.status.code == d.OK
        recovery = send("huge-transactions", d.TRANSACTION,
                        lambda sp: setattr(sp.orphaned_transaction_recovery_duration, "seconds", huge))
        assert recovery.status.code == d.OK

        for seconds in (huge, -huge):
            q = s.QueryOffsetRequest(message_queue=d.MessageQueue(topic=d.Resource(name="huge-delays"), id=0),
                                     query_offset_policy=d.TIMESTAMP)
            q.timestamp.seconds = seconds
            assert raw.stub.QueryOffset(q, metadata=HEADERS, timeout=10).status.code == d.OK
    finally:
        raw.close()
    assert broker.alive()


def test_an_oversized_request_is_refused_and_the_connection_goes_on(broker):
    """A request beyond `grpc.max_message_bytes` (16 MiB) is refused (tonic answers gRPC
    OUT_OF_RANGE, "decoded message length too large"); the connection keeps working."""
    import grpc
    raw = Raw(broker.endpoint)
    try:
        try:
            raw.send("oversized", b"x" * (17 << 20))
            raise AssertionError("a 17 MiB request was accepted")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.OUT_OF_RANGE and "too large" in e.details(), e
        assert raw.send("oversized", b"fits").status.code == d.OK
    finally:
        raw.close()
    assert broker.alive()
