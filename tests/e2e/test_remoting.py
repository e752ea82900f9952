"""The 4.x Remoting protocol with a real 4.x client (PyPI rocketmq 0.4.4, the C++ client library
inside, in .venv4) and frame-level checks of what that client cannot send; cross-protocol with
the official 5.x Python client."""

import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from rocketmq import ClientConfiguration, Credentials, FilterExpression, Producer, SimpleConsumer

from clients import config, make_message, receive_all
from cluster import Cluster, fresh_database, services
from conftest import REPO, _broker, free_port
from remoting_raw import RemotingConn, decode_messages, frame, properties
from test_metering import scrape, series
from test_tenancy import Accounts, auth_broker  # noqa: F401 (a fixture)

V4_PYTHON = REPO / ".venv4" / "bin" / "python"
V4_CLIENT = Path(__file__).with_name("v4client.py")

# Request and response codes (the protocol's numbers).
SEND_MESSAGE, PULL_MESSAGE, QUERY_MESSAGE, VIEW_MESSAGE_BY_ID = 10, 11, 12, 33
HEART_BEAT, CONSUMER_SEND_MSG_BACK, END_TRANSACTION = 34, 36, 37
CHECK_TRANSACTION_STATE = 39
QUERY_CONSUMER_OFFSET, UPDATE_CONSUMER_OFFSET, SEARCH_OFFSET_BY_TIMESTAMP = 14, 15, 29
GET_MAX_OFFSET, GET_MIN_OFFSET, GET_EARLIEST_MSG_STORETIME = 30, 31, 32
GET_KV_CONFIG, GET_ROUTEINFO_BY_TOPIC, GET_BROKER_CLUSTER_INFO = 101, 105, 106
SUCCESS, REQUEST_CODE_NOT_SUPPORTED, TRANSACTION_FAILED, MESSAGE_ILLEGAL, TOPIC_NOT_EXIST = 0, 3, 4, 13, 17
NO_PERMISSION, PULL_NOT_FOUND, PULL_OFFSET_MOVED, QUERY_NOT_FOUND = 16, 19, 21, 22


def v4(*args, timeout=120, fails=False):
    """Runs a v4client.py scenario; returns its JSON (or, with `fails`, its error output)."""
    assert V4_PYTHON.exists(), "the 4.x client is missing: run infra/install-test-deps.sh"
    out = subprocess.run([str(V4_PYTHON), str(V4_CLIENT), *map(str, args)], capture_output=True, text=True,
                         timeout=timeout)
    if fails:
        assert out.returncode != 0, out.stdout
        return out.stderr
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def counted(broker, name, **labels) -> float:
    """A counter's value on the broker's /metrics (0 before it first counts)."""
    _, text = scrape(broker)
    try:
        return series(text, name, **labels)
    except AssertionError:
        return 0


def pulls_seen(broker) -> float:
    return counted(broker, "strata_remoting_requests_total", code=str(PULL_MESSAGE))


def test_every_send_mode_arrives_once_with_its_fields(broker):
    broker.cli("topic", "create", "v4-modes", "--queues", "4")
    ns = broker.name_server
    for mode in ["sync", "async", "oneway", "batch"]:
        sent = v4("produce", ns, "v4-modes", 10, "--mode", mode, "--tag", f"T-{mode}", "--keys-prefix", f"{mode}-")
        if mode in ("sync", "async"):
            assert len(sent) == 10 and all(s["status"] == 0 for s in sent), sent
    got = v4("push", ns, "v4-modes-g", "v4-modes", 40)
    bodies = sorted(m["body"] for m in got)
    assert bodies == sorted(f"{mode}-{i}" for mode in ["sync", "async", "oneway", "batch"] for i in range(10))
    for m in got:
        mode, i = m["body"].split("-")
        assert (m["tags"], m["keys"], m["seq"], m["topic"]) == (f"T-{mode}", f"{mode}-{i}", i, "v4-modes"), m
        assert len(m["id"]) == 32, "the message id is the client's unique key"
    # The group's offsets were committed: a restarted consumer gets nothing again.
    again = v4("push", ns, "v4-modes-g", "v4-modes", 1, "--timeout", 5)
    assert again == [], again


def test_compressed_bodies_and_batches_are_stored_inflated(broker):
    """The client zlib-compresses bodies of 4 KiB and more (a batch as a whole)."""
    broker.cli("topic", "create", "v4-big", "--queues", "2")
    for mode in ["sync", "batch"]:
        v4("produce", broker.name_server, "v4-big", 4, "--mode", mode, "--size", 20_000)
    got = v4("push", broker.name_server, "v4-big-g", "v4-big", 8)
    assert sorted(m["body"] for m in got) == sorted(f"{mode}-{i}".ljust(20_000, ".") for mode in ["sync", "batch"]
                                                    for i in range(4))
    c = SimpleConsumer(config(broker.endpoint), "v4-big-g5", {"v4-big": FilterExpression("*")}, await_duration=3)
    c.startup()
    try:
        assert all(len(m.body) == 20_000 for m in receive_all(c, 8, deadline_s=30).values()), "5.x reads them plain"
    finally:
        c.shutdown()


def test_pull_consumer_reads_every_queue_by_offset(broker):
    broker.cli("topic", "create", "v4-pull", "--queues", "3")
    v4("produce", broker.name_server, "v4-pull", 12)
    got = v4("pull", broker.name_server, "v4-pull-g", "v4-pull")
    assert sorted(m["body"] for m in got["first"]) == sorted(f"sync-{i}" for i in range(12))
    by_queue = {}
    for m in got["first"]:
        by_queue.setdefault(m["queue"], []).append(m["offset"])
    assert sorted(by_queue) == [0, 1, 2]
    for offsets in by_queue.values():
        assert offsets == list(range(len(offsets))), "queue offsets are ours: dense from 0"
    assert got["again"] == [], "pulling on from the next offsets finds nothing new"


def test_orderly_send_and_orderly_consumption_keep_each_orders_sequence(broker):
    broker.cli("topic", "create", "v4-orders", "--queues", "4")
    sent = v4("produce", broker.name_server, "v4-orders", 40, "--mode", "orderly", "--orders", 4)
    queue_of = {}
    for s in sent:
        assert s["status"] == 0
    got = v4("push", broker.name_server, "v4-orders-g", "v4-orders", 40, "--orderly")
    assert len(got) == 40
    seqs = {}
    for m in got:
        queue_of.setdefault(m["order"], set()).add(m["queue"])
        seqs.setdefault(m["order"], []).append(int(m["seq"]))
    for order, s in seqs.items():
        assert s == sorted(s), f"order {order} consumed out of sequence: {s}"
        assert len(queue_of[order]) == 1, "an order stays in the queue the producer chose"


def start_consumer(broker, group, topic, count, *args, pulls):
    """Starts a push consumer and waits until the broker has seen `pulls` more pulls (it has its
    queues and their offsets)."""
    before = pulls_seen(broker)
    c = subprocess.Popen([str(V4_PYTHON), str(V4_CLIENT), "push", broker.name_server, group, topic, str(count),
                          "--timeout", "60", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while pulls_seen(broker) - before < pulls:
        assert time.monotonic() < deadline, "the consumer never pulled"
        assert c.poll() is None, c.communicate()
        time.sleep(0.1)
    return c


def test_two_clustering_consumers_split_the_queues_and_share_the_work(broker, tmp_path):
    broker.cli("topic", "create", "v4-share", "--queues", "4")
    out = [tmp_path / "c0.jsonl", tmp_path / "c1.jsonl"]
    # The second one to join makes the broker tell the first to rebalance: 2 queues each.
    consumers = [start_consumer(broker, "v4-share-g", "v4-share", 100, "--instance", "c0", "--out", str(out[0]),
                                pulls=4)]
    consumers.append(start_consumer(broker, "v4-share-g", "v4-share", 100, "--instance", "c1", "--out", str(out[1]),
                                    pulls=2))
    try:
        v4("produce", broker.name_server, "v4-share", 40)
        deadline = time.monotonic() + 60
        while True:
            got = [[json.loads(line) for line in f.read_text().splitlines()] if f.exists() else [] for f in out]
            if sum(map(len, got)) >= 40:
                break
            assert time.monotonic() < deadline, f"{sum(map(len, got))} of 40 received"
            time.sleep(0.2)
    finally:
        for c in consumers:
            c.kill()
            c.communicate()
    bodies = [m["body"] for g in got for m in g]
    assert sorted(bodies) == sorted(f"sync-{i}" for i in range(40)), "each message once across the group"
    queues = [{m["queue"] for m in g} for g in got]
    assert queues[0] and queues[1] and not queues[0] & queues[1], f"each consumer has queues of its own: {queues}"


def test_broadcasting_consumers_each_receive_everything(broker):
    broker.cli("topic", "create", "v4-bcast", "--queues", "2")
    ns = broker.name_server
    # Both start at the latest offset: wait until each polls both queues.
    consumers = [start_consumer(broker, "v4-bcast-g", "v4-bcast", 8, "--broadcast", "--instance", f"b{i}", pulls=2)
                 for i in range(2)]
    v4("produce", ns, "v4-bcast", 8)
    for c in consumers:
        out, err = c.communicate(timeout=90)
        assert c.returncode == 0, err
        got = json.loads(out)
        assert sorted(m["body"] for m in got) == sorted(f"sync-{i}" for i in range(8)), got


def test_delay_levels_and_start_delivery_time(semantics_broker):
    b = semantics_broker
    b.cli("topic", "create", "v4-delay", "--type", "delay", "--queues", "2")
    sent = v4("produce", b.name_server, "v4-delay", 2, "--delay-level", 2)  # level 2: 5 s
    got = v4("push", b.name_server, "v4-delay-g", "v4-delay", 2)
    assert len(got) == 2
    for s, m in zip(sorted(sent, key=lambda s: s["body"]), sorted(got, key=lambda m: m["body"])):
        assert m["at"] >= s["at"] + 5, f"{m['body']} arrived {s['at'] + 5 - m['at']:.2f} s early"
    # A delay message on a NORMAL topic is refused, as on gRPC.
    b.cli("topic", "create", "v4-normal", "--queues", "1")
    conn = RemotingConn(b.name_server)
    try:
        reply = conn.call(SEND_MESSAGE, {"producerGroup": "p", "topic": "v4-normal", "queueId": "0", "sysFlag": "0",
                                         "bornTimestamp": "0", "flag": "0",
                                         "properties": properties({"DELAY": "3", "UNIQ_KEY": "A1"})}, b"x")
        assert reply.code == MESSAGE_ILLEGAL and "DELAY" in reply.remark.upper(), (reply.code, reply.remark)
        at = int(time.time() * 1000) + 1500
        reply = conn.call(SEND_MESSAGE, {"producerGroup": "p", "topic": "v4-delay", "queueId": "0", "sysFlag": "0",
                                         "bornTimestamp": "0", "flag": "0",
                                         "properties": properties({"__STARTDELIVERTIME": str(at)})}, b"at")
        assert reply.code == SUCCESS, reply.remark
    finally:
        conn.close()
    got = v4("push", b.name_server, "v4-delay-g", "v4-delay", 1)
    assert [m["body"] for m in got] == ["at"] and got[0]["at"] * 1000 >= at


def test_failed_messages_are_retried_then_dead_lettered(broker):
    broker.cli("topic", "create", "v4-retry", "--queues", "1")
    v4("produce", broker.name_server, "v4-retry", 1)
    got = v4("push", broker.name_server, "v4-retry-g", "v4-retry", 1, "--fail-times", 1)
    assert [(m["reconsume"], bool(m.get("failed"))) for m in got] == [(0, True), (1, False)], got
    assert got[1]["at"] - got[0]["at"] >= 10, "the first retry waits delay level 3 (10 s)"
    assert got[1]["topic"] == "v4-retry" and got[1]["id"] == got[0]["id"]
    # Out of attempts: the message goes to the group's DLQ, which 5.x clients read too.
    conn = RemotingConn(broker.name_server)
    try:
        reply = conn.call(PULL_MESSAGE, {"consumerGroup": "v4-dlq-g", "topic": "v4-retry", "queueId": "0",
                                         "queueOffset": "0", "maxMsgNums": "1", "sysFlag": "0", "commitOffset": "0",
                                         "suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0"})
        assert reply.code == SUCCESS, reply.remark
        [(_, _, clo, _, body, _, props)] = decode_messages(reply.body)
        reply = conn.call(CONSUMER_SEND_MSG_BACK, {"group": "v4-dlq-g", "offset": str(clo), "delayLevel": "0",
                                                   "originMsgId": props["UNIQ_KEY"], "originTopic": "v4-retry",
                                                   "maxReconsumeTimes": "0", "unitMode": "false"})
        assert reply.code == SUCCESS, reply.remark
        forged = conn.call(CONSUMER_SEND_MSG_BACK, {"group": "v4-dlq-g", "offset": str(clo + 99), "delayLevel": "0",
                                                    "originTopic": "v4-retry", "maxReconsumeTimes": "0"})
        assert forged.code != SUCCESS and "offset" in forged.remark
    finally:
        conn.close()
    dlq = SimpleConsumer(config(broker.endpoint), "dlq-reader", {"%DLQ%v4-dlq-g": FilterExpression("*")},
                         await_duration=3)
    dlq.startup()
    try:
        [m] = receive_all(dlq, 1, deadline_s=30).values()
        assert m.body == body and m.message_id == props["UNIQ_KEY"]
    finally:
        dlq.shutdown()


def test_transactions_end_by_id_and_orphans_are_checked(semantics_broker):
    """The 0.4.4 wrapper has no transaction producer: its frames, sent by hand."""
    b = semantics_broker
    b.cli("topic", "create", "v4-tx", "--type", "transaction", "--queues", "1")
    producer, sender = RemotingConn(b.name_server), RemotingConn(b.name_server)
    try:
        hb = {"clientID": "raw-producer", "producerDataSet": [{"groupName": "pg-tx"}], "consumerDataSet": []}
        assert producer.call(HEART_BEAT, body=json.dumps(hb).encode()).code == SUCCESS

        def half(body):
            props = properties({"TRAN_MSG": "true", "PGROUP": "pg-tx", "UNIQ_KEY": f"TX-{body.decode()}"})
            r = sender.call(SEND_MESSAGE, {"producerGroup": "pg-tx", "topic": "v4-tx", "queueId": "0",
                                           "sysFlag": "4", "bornTimestamp": "0", "flag": "0", "properties": props},
                            body)
            assert r.code == SUCCESS and r.fields["transactionId"], r.remark
            return r.fields["transactionId"]

        def end(transaction_id, resolution, oneway=True):
            fields = {"producerGroup": "pg-tx", "transactionId": transaction_id, "commitOrRollback": str(resolution),
                      "tranStateTableOffset": "0", "commitLogOffset": "0", "fromTransactionCheck": "false",
                      "msgId": ""}
            if oneway:
                sender.send_raw(frame(END_TRANSACTION, fields, flag=2))
            else:
                return sender.call(END_TRANSACTION, fields)

        committed, rolled_back, orphan = half(b"commit-me"), half(b"roll-back"), half(b"orphan")
        end(committed, 8)
        end(rolled_back, 12)
        assert end("forged", 8, oneway=False).code == TRANSACTION_FAILED
        assert end(orphan, 99, oneway=False).code == MESSAGE_ILLEGAL
        assert end(orphan, 0, oneway=False).code == SUCCESS, "unknown: the half message waits for its check"
        # The orphan's check comes to the producer group's connection.
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline, "no CHECK_TRANSACTION_STATE for the orphan"
            check = producer.read_reply()
            if check.code == CHECK_TRANSACTION_STATE and check.fields["transactionId"] == orphan:
                break
        [(_, _, _, _, body, topic, props)] = decode_messages(check.body)
        assert (body, topic, props["UNIQ_KEY"], check.fields["msgId"]) == (b"orphan", "v4-tx", "TX-orphan", "TX-orphan")
        end(orphan, 8)
    finally:
        producer.close()
        sender.close()
    c = SimpleConsumer(config(b.endpoint), "v4-tx-g", {"v4-tx": FilterExpression("*")}, await_duration=3)
    c.startup()
    try:
        got = receive_all(c, 2, deadline_s=30)
    finally:
        c.shutdown()
    assert sorted(m.body for m in got.values()) == [b"commit-me", b"orphan"]


def test_messages_cross_protocols_both_ways(broker):
    broker.cli("topic", "create", "x-proto", "--queues", "2")
    sent4 = v4("produce", broker.name_server, "x-proto", 3, "--tag", "from4")
    c = SimpleConsumer(config(broker.endpoint), "x-proto-g5", {"x-proto": FilterExpression("from4")},
                       await_duration=3)
    c.startup()
    try:
        got5 = receive_all(c, 3, deadline_s=30)
    finally:
        c.shutdown()
    assert sorted(got5) == sorted(s["id"] for s in sent4), "4.x unique keys are the 5.x message ids"
    for m in got5.values():
        assert m.tag == "from4" and m.body.decode().startswith("sync-") and m.keys
    p = Producer(config(broker.endpoint), ("x-proto",))
    p.startup()
    try:
        ids5 = [p.send(make_message("x-proto", i, f"five-{i}".encode(), tag="from5", keys=[f"k5-{i}"])).message_id
                for i in range(3)]
    finally:
        p.shutdown()
    got4 = v4("push", broker.name_server, "x-proto-g4", "x-proto", 3, "--expression", "from5")
    assert sorted(m["id"] for m in got4) == sorted(ids5)
    for m in got4:
        assert m["tags"] == "from5" and m["body"].startswith("five-") and m["keys"].startswith("k5-")


def test_messages_are_found_by_offset_id_key_and_unique_key(broker):
    broker.cli("topic", "create", "v4-find", "--queues", "2")
    conn = RemotingConn(broker.name_server)
    try:
        props = properties({"KEYS": "order-7 customer-3", "UNIQ_KEY": "AC1F00010000000000000000000000AA"})
        sent = conn.call(SEND_MESSAGE, {"producerGroup": "p", "topic": "v4-find", "queueId": "1", "sysFlag": "0",
                                        "bornTimestamp": "0", "flag": "0", "properties": props}, b"find me")
        assert sent.code == SUCCESS and len(sent.fields["msgId"]) == 32
        viewed = conn.call(VIEW_MESSAGE_BY_ID, {"offset": str(int(sent.fields["msgId"][16:], 16))})
        assert viewed.code == SUCCESS, viewed.remark
        [(queue, offset, _, _, body, topic, _)] = decode_messages(viewed.body)
        assert (queue, offset, body, topic) == (1, int(sent.fields["queueOffset"]), b"find me", "v4-find")
        assert conn.call(VIEW_MESSAGE_BY_ID, {"offset": "12345"}).code != SUCCESS

        def find(key, unique=False):
            fields = {"topic": "v4-find", "key": key, "maxNum": "8", "beginTimestamp": "0",
                      "endTimestamp": str(2**62)}
            if unique:
                fields["_UNIQUE_KEY_QUERY"] = "true"
            return conn.call(QUERY_MESSAGE, fields)

        for key, unique in [("customer-3", False), ("AC1F00010000000000000000000000AA", True)]:
            found = find(key, unique)
            assert found.code == SUCCESS and [m[4] for m in decode_messages(found.body)] == [b"find me"], key
        assert find("order-8").code == QUERY_NOT_FOUND
        # A 5.x message's id is its unique key for 4.x lookups.
        p = Producer(config(broker.endpoint), ("v4-find",))
        p.startup()
        try:
            id5 = p.send(make_message("v4-find", 0, b"from five")).message_id
        finally:
            p.shutdown()
        assert [m[4] for m in decode_messages(find(id5, unique=True).body)] == [b"from five"]
    finally:
        conn.close()


def test_offsets_filters_and_long_polling_frame_by_frame(broker):
    broker.cli("topic", "create", "v4-offsets", "--queues", "1")
    conn, producer = RemotingConn(broker.name_server), RemotingConn(broker.name_server)

    def send(body, tag, props=None):
        r = producer.call(SEND_MESSAGE, {"producerGroup": "p", "topic": "v4-offsets", "queueId": "0",
                                         "sysFlag": "0", "bornTimestamp": "0", "flag": "0",
                                         "properties": properties({"TAGS": tag, **(props or {})})}, body)
        assert r.code == SUCCESS, r.remark
        return r

    def pull(offset, sys_flag=0, **extra):
        fields = {"consumerGroup": "v4-offsets-g", "topic": "v4-offsets", "queueId": "0",
                  "queueOffset": str(offset), "maxMsgNums": "32", "sysFlag": str(sys_flag), "commitOffset": "0",
                  "suspendTimeoutMillis": "0", "subVersion": "0", **extra}
        return conn.call(PULL_MESSAGE, fields)

    q = {"topic": "v4-offsets", "queueId": "0"}
    try:
        before = int(time.time() * 1000)
        for i in range(4):
            send(f"m{i}".encode(), "even" if i % 2 == 0 else "odd", {"n": str(i)})
        assert conn.call(GET_MIN_OFFSET, q).fields["offset"] == "0"
        assert conn.call(GET_MAX_OFFSET, q).fields["offset"] == "4"
        assert conn.call(SEARCH_OFFSET_BY_TIMESTAMP, {**q, "timestamp": str(before)}).fields["offset"] == "0"
        assert conn.call(SEARCH_OFFSET_BY_TIMESTAMP, {**q, "timestamp": str(2**62)}).fields["offset"] == "4"
        earliest = int(conn.call(GET_EARLIEST_MSG_STORETIME, q).fields["timestamp"])
        assert before - 1000 <= earliest <= int(time.time() * 1000)
        # Filters: tags, and SQL92 over user properties.
        tagged = pull(0, 4, subscription="odd")
        assert [m[4] for m in decode_messages(tagged.body)] == [b"m1", b"m3"]
        assert tagged.fields["nextBeginOffset"] == "4" and tagged.fields["maxOffset"] == "4"
        sql = pull(0, 4, subscription="n >= 2", expressionType="SQL92")
        assert [m[4] for m in decode_messages(sql.body)] == [b"m2", b"m3"]
        assert pull(0, 4, subscription="n >>> 2", expressionType="SQL92").code != SUCCESS
        assert pull(0, 4, subscription="none").code == 20, "only non-matching messages: retry at once"
        assert pull(4).code == PULL_NOT_FOUND
        # Offsets: a new group on an untrimmed queue starts at 0; commits are read back.
        g = {**q, "consumerGroup": "v4-offsets-g"}
        assert conn.call(QUERY_CONSUMER_OFFSET, g).fields["offset"] == "0"
        assert conn.call(UPDATE_CONSUMER_OFFSET, {**g, "commitOffset": "3"}).code == SUCCESS
        assert conn.call(QUERY_CONSUMER_OFFSET, g).fields["offset"] == "3"
        assert pull(4, 1, commitOffset="4").code == PULL_NOT_FOUND, "sysFlag 1 commits first"
        assert conn.call(QUERY_CONSUMER_OFFSET, g).fields["offset"] == "4"
        # Long polling: a suspended pull at the end answers when a message arrives.
        opaque = 777
        conn.send_raw(frame(PULL_MESSAGE, {"consumerGroup": "v4-offsets-g", "topic": "v4-offsets", "queueId": "0",
                                           "queueOffset": "4", "maxMsgNums": "32", "sysFlag": "2",
                                           "suspendTimeoutMillis": "15000"}, opaque=opaque))
        send(b"late", "even")
        woken = conn.read_reply()
        assert woken.opaque == opaque and woken.code == SUCCESS
        assert [m[4] for m in decode_messages(woken.body)] == [b"late"]
    finally:
        conn.close()
        producer.close()


def test_name_server_answers_and_bad_frames_close_only_their_connection(broker):
    ns = broker.name_server
    conn = RemotingConn(ns)
    try:
        cluster = conn.call(GET_BROKER_CLUSTER_INFO).json()
        [(name, data)] = cluster["brokerAddrTable"].items()
        assert data["brokerAddrs"]["0"] == ns and cluster["clusterAddrTable"]["DefaultCluster"] == [name]
        assert conn.call(GET_KV_CONFIG, {"namespace": "ORDER_TOPIC_CONFIG", "key": "t"}).code == QUERY_NOT_FOUND
        route = conn.call(GET_ROUTEINFO_BY_TOPIC, {"topic": "v4-route"})
        assert route.code == SUCCESS and route.json()["queueDatas"][0]["perm"] == 6
        for bad in ["no spaces allowed", "%RETRY%", "%DLQ%"]:
            bad_name = conn.call(GET_ROUTEINFO_BY_TOPIC, {"topic": bad})
            assert bad_name.code != SUCCESS and bad_name.remark, bad
        unknown = conn.call(9999)
        assert unknown.code == REQUEST_CODE_NOT_SUPPORTED and "9999" in unknown.remark
        overflow = conn.call(PULL_MESSAGE, {"consumerGroup": "g", "topic": "v4-route", "queueId": "99999999999",
                                            "queueOffset": "0"})
        assert overflow.code != SUCCESS and "queueId" in overflow.remark
        moved = conn.call(PULL_MESSAGE, {"consumerGroup": "g", "topic": "v4-route", "queueId": "0",
                                         "queueOffset": "500", "maxMsgNums": "1", "sysFlag": "0"})
        assert moved.code == PULL_OFFSET_MOVED and moved.fields["nextBeginOffset"] == "0"
    finally:
        conn.close()
    bad_frames = [
        struct.pack(">I", 0xFFFFFFF0),  # a length beyond the frame limit
        struct.pack(">II", 12, 200) + b"{}" * 4,  # header longer than the frame
        struct.pack(">II", 4 + 9, 9) + b"not json!",
        struct.pack(">II", 4 + 2, 0x05000002) + b"{}",  # unknown serialize type
    ]
    for data in bad_frames:
        c = RemotingConn(ns, timeout=10)
        try:
            c.send_raw(data)
            assert c.closed_by_broker(), data
        finally:
            c.close()
    # A frame cut short leaves the connection waiting; its peer closing it is just a close.
    with socket.create_connection(("127.0.0.1", broker.remoting_port)) as s:
        s.sendall(frame(GET_BROKER_CLUSTER_INFO)[:7])
    sent = v4("produce", ns, "v4-after-bad-frames", 1)
    assert sent[0]["status"] == 0, "the broker serves on after bad frames"
    assert broker.alive()


def test_acl_signatures_of_the_4x_client(auth_broker):
    """With auth on, 4.x requests carry AccessKey and a signature over their fields and body; a
    name without a namespace belongs to the signed-in user's tenant."""
    b = auth_broker
    acc = Accounts(b)
    acc.run("tenant", "create", "acme")
    ak, sk = acc.user("acme", "alice", [("topic:orders", "PUB,SUB"), ("group:billing", "SUB")])
    ns = b.name_server
    v4("produce", ns, "orders", 3, "--ak", ak, "--sk", sk)
    got = v4("push", ns, "billing", "orders", 3, "--ak", ak, "--sk", sk)
    assert sorted(m["body"] for m in got) == [f"sync-{i}" for i in range(3)] and got[0]["topic"] == "orders"
    # The same messages are tenant acme's for 5.x clients too.
    c = SimpleConsumer(ClientConfiguration(b.endpoint, Credentials(ak, sk), "acme"), "billing",
                       {"orders": FilterExpression("*")}, await_duration=3)
    c.startup()
    try:
        assert len(receive_all(c, 3, deadline_s=30)) == 3
    finally:
        c.shutdown()
    refused_before = counted(b, "strata_front_auth_failures_total", reason="unauthenticated")
    for args in [("orders", "--ak", ak, "--sk", "wrong"), ("secret", "--ak", ak, "--sk", sk), ("orders",)]:
        v4("produce", ns, *args[:1], 1, *args[1:], fails=True)
    conn = RemotingConn(ns)
    try:
        fields = {"topic": "orders", "AccessKey": ak, "OnsChannel": "ALIYUN"}
        fields["Signature"] = "forged"
        assert conn.call(GET_ROUTEINFO_BY_TOPIC, fields).code == NO_PERMISSION
        fields["Signature"] = remoting_signature(sk, fields)
        assert conn.call(GET_ROUTEINFO_BY_TOPIC, fields).code == SUCCESS
        denied = conn.call(GET_ROUTEINFO_BY_TOPIC, {**fields, "topic": "secret",
                                                    "Signature": remoting_signature(sk, {**fields, "topic": "secret"})})
        assert denied.code == NO_PERMISSION and "secret" in denied.remark
    finally:
        conn.close()
    assert counted(b, "strata_front_auth_failures_total", reason="unauthenticated") > refused_before


def remoting_signature(sk: str, fields: dict, body: bytes = b"") -> str:
    """The 4.x ACL signature: Base64(HMAC-SHA1(SK, field values in key order + body))."""
    import base64
    import hashlib
    import hmac
    content = "".join(v for k, v in sorted(fields.items()) if k != "Signature").encode() + body
    return base64.b64encode(hmac.new(sk.encode(), content, hashlib.sha1).digest()).decode()


def test_cluster_routes_write_to_ingest_nodes_and_read_from_one_query_node(tmp_path):
    pg, _, s3, bucket = services()
    log_dir = Path(os.environ.get("STRATA_TEST_LOGS", tmp_path)) / tmp_path.name
    log_dir.mkdir(parents=True, exist_ok=True)
    c = Cluster(tmp_path, log_dir, fresh_database(pg), f"s3://{bucket}/{tmp_path.name}-{time.time_ns()}", s3)
    ports = {}
    try:
        for name, role in [("compactor-1", "compactor"), ("ingest-1", "ingest"), ("ingest-2", "ingest"),
                           ("query-1", "query"), ("query-2", "query")]:
            ports[name] = free_port()
            c.start(name, role, f'[remoting]\nlisten = "127.0.0.1:{ports[name]}"\n')
        c.cli("topic", "create", "v4-cluster", "--queues", "4")
        c.cli("group", "create", "v4-cluster-g")
        # Any node answers as name server; the compactor's routes send clients elsewhere.
        ns = f"127.0.0.1:{ports['compactor-1']}"
        conn = RemotingConn(ns)
        try:
            route = conn.call(GET_ROUTEINFO_BY_TOPIC, {"topic": "v4-cluster"}).json()
        finally:
            conn.close()
        perms = {q["brokerName"]: q["perm"] for q in route["queueDatas"]}
        addresses = {b["brokerName"]: b["brokerAddrs"]["0"] for b in route["brokerDatas"]}
        readers = [n for n, p in perms.items() if p & 4]
        assert perms["ingest-1"] == perms["ingest-2"] == 2, perms
        assert len(readers) == 1 and readers[0].startswith("query-") and "compactor-1" not in perms, perms
        assert all(addresses[n] == f"127.0.0.1:{ports[n]}" for n in perms)
        v4("produce", ns, "v4-cluster", 20)
        got = v4("push", ns, "v4-cluster-g", "v4-cluster", 20)
        assert sorted(m["body"] for m in got) == sorted(f"sync-{i}" for i in range(20))
    finally:
        c.stop_all()


def test_name_server_on_a_port_of_its_own(tmp_path):
    port = free_port()
    b = _broker(tmp_path, "sqlite+local", config=f'[remoting]\nname_server_listen = "127.0.0.1:{port}"\n')
    try:
        ns = f"127.0.0.1:{port}"
        conn = RemotingConn(ns)
        try:
            route = conn.call(GET_ROUTEINFO_BY_TOPIC, {"topic": "v4-two-ports"}).json()
        finally:
            conn.close()
        assert [d["brokerAddrs"]["0"] for d in route["brokerDatas"]] == [b.name_server], "routes name the broker port"
        v4("produce", ns, "v4-two-ports", 2)
        assert len(v4("push", ns, "v4-two-ports-g", "v4-two-ports", 2)) == 2
    finally:
        assert b.stop() == 0
