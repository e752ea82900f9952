"""A cluster of separate processes (PostgreSQL coordinator, S3 server, 2 ingest, 2 query,
1 compactor) with the official Python client, including killed nodes and a database restart."""

import signal
import subprocess
import threading
import time

from rocketmq import FilterExpression, Producer, SimpleConsumer

from clients import config, make_message
from cluster import make_cluster, services
from conftest import REPO

TOPICS = ["cl-orders", "cl-payments", "cl-audit"]


class Load:
    """Producers sending in background threads; records what was acknowledged."""

    def __init__(self, endpoints, topics, producers, per_producer, pause=0.0):
        self.acked = {}  # message id -> body
        self.failed = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(endpoints, topics, p, per_producer, pause))
                        for p in range(producers)]

    def _run(self, endpoints, topics, p, n, pause):
        producer = Producer(config(endpoints), tuple(topics))
        producer.startup()
        try:
            for i in range(n):
                body = f"p{p}-m{i}".encode()
                try:
                    receipt = producer.send(make_message(topics[i % len(topics)], i, body, tag=f"T{i % 3}"))
                    with self.lock:
                        self.acked[receipt.message_id] = body
                except Exception:  # a send that failed was not acknowledged: the app may drop it
                    with self.lock:
                        self.failed += 1
                if pause:
                    time.sleep(pause)
        finally:
            producer.shutdown()

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def join(self):
        for t in self.threads:
            t.join(timeout=600)
        return self

    def count(self):
        with self.lock:
            return len(self.acked)

    def final_acked(self):
        """The acknowledged ids once every producer finished, else None."""
        if any(t.is_alive() for t in self.threads):
            return None
        with self.lock:
            return set(self.acked)


def consume(endpoints, group, topics, expected, consumers=1, deadline_s=240, invisible=20):
    """Receives with `consumers` SimpleConsumers until every expected id arrived (at least
    once); acks everything. `expected`: a set of ids, or a callable giving it (None while it
    is not known yet). Returns {id: highest delivery attempt seen}."""
    want = expected if callable(expected) else (lambda: expected)
    seen = {}
    lock = threading.Lock()
    stop = threading.Event()
    deadline = time.monotonic() + deadline_s

    def run():
        c = SimpleConsumer(config(endpoints), group, {t: FilterExpression("*") for t in topics}, await_duration=3)
        c.startup()
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    messages = c.receive(32, invisible)
                except Exception:  # a node may be down: the next receive goes to another queue
                    continue
                for m in messages:
                    try:
                        c.ack(m)
                    except Exception:
                        pass
                    with lock:
                        seen[m.message_id] = max(seen.get(m.message_id, 0), m.delivery_attempt)
                ids = want()
                if ids is not None and ids <= seen.keys():
                    stop.set()
        finally:
            c.shutdown()

    threads = [threading.Thread(target=run) for _ in range(consumers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    missing = (want() or set()) - seen.keys()
    assert not missing, f"{len(missing)} acknowledged messages never delivered"
    return seen


def wait_for(condition, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until: {what}"
        time.sleep(0.1)


def setup_topics(cluster, topics, group):
    for t in topics:
        cluster.cli("topic", "create", t, "--queues", "4")
    cluster.cli("group", "create", group)


def test_two_thousand_messages_four_producers_two_consumers(tmp_path):
    cluster = make_cluster(tmp_path)
    try:
        setup_topics(cluster, TOPICS, "cl-group")
        load = Load(cluster.endpoints, TOPICS, producers=4, per_producer=500).start()
        # The two consumers run while the producers send.
        seen = consume(cluster.endpoints, "cl-group", TOPICS, load.final_acked, consumers=2)
        load.join()
        assert load.failed == 0, f"{load.failed} sends failed on a healthy cluster"
        assert len(load.acked) == 2_000
        assert set(load.acked) <= seen.keys()
        states = cluster.node_states()
        assert all(alive for _, alive in states.values()), states
    finally:
        cluster.stop_all()


def test_killed_ingest_node_producers_fail_over_and_it_is_fenced(tmp_path):
    cluster = make_cluster(tmp_path)
    try:
        setup_topics(cluster, ["cl-failover"], "cl-failover-group")
        before = cluster.node_states()["ingest-1"][0]
        load = Load(cluster.endpoints, ["cl-failover"], producers=2, per_producer=600, pause=0.002).start()
        wait_for(lambda: load.count() >= 300, 60, "300 messages acknowledged")
        cluster.kill("ingest-1")  # kill -9 in the middle of the load
        load.join()
        assert load.count() > 900, f"producers failed over to ingest-2: {load.count()} acked, {load.failed} failed"
        consume(cluster.endpoints, "cl-failover-group", ["cl-failover"], set(load.acked))
        # The dead node was declared dead; when it comes back it has a new epoch.
        wait_for(lambda: not cluster.node_states()["ingest-1"][1], 20, "ingest-1 is declared dead")
        assert cluster.node_states()["ingest-1"] == (before, False), "declared dead, its epoch fenced"
        cluster.start("ingest-1", "ingest")
        # Listening comes before registering (the port must be known to advertise it).
        wait_for(lambda: cluster.node_states()["ingest-1"][1], 20, "ingest-1 registered again")
        epoch, alive = cluster.node_states()["ingest-1"]
        assert alive and epoch > before
    finally:
        cluster.stop_all()


def test_killed_query_node_unacked_messages_come_back_through_the_other(tmp_path):
    cluster = make_cluster(tmp_path)
    try:
        setup_topics(cluster, ["cl-query-kill"], "cl-query-group")
        load = Load(cluster.endpoints, ["cl-query-kill"], producers=1, per_producer=60).start().join()
        assert load.failed == 0
        # Receive everything once without acking, through whichever query node answers.
        c = SimpleConsumer(config(cluster.endpoints), "cl-query-group",
                           {"cl-query-kill": FilterExpression("*")}, await_duration=2)
        c.startup()
        taken = {}
        try:
            deadline = time.monotonic() + 60
            while len(taken) < 60 and time.monotonic() < deadline:
                for m in c.receive(32, 4):
                    taken[m.message_id] = m
        finally:
            c.shutdown()
        assert len(taken) == 60
        cluster.kill("query-1")
        # After the invisible time they come back, served by query-2, with the next attempt.
        seen = consume(cluster.endpoints, "cl-query-group", ["cl-query-kill"], set(load.acked))
        assert all(seen[i] >= 2 for i in load.acked), "redeliveries carry the next attempt"
    finally:
        cluster.stop_all()


def test_postgres_restart_under_load(tmp_path):
    _pg, pg_dir, _s3, _bucket = services()
    cluster = make_cluster(tmp_path, ingest=2, query=1)
    try:
        setup_topics(cluster, ["cl-pg-restart"], "cl-pg-group")
        load = Load(cluster.endpoints, ["cl-pg-restart"], producers=2, per_producer=800, pause=0.003).start()
        wait_for(lambda: load.count() >= 200, 60, "200 messages acknowledged")
        subprocess.run(["infra/postgres.sh", "stop", pg_dir], check=True, cwd=REPO)
        try:
            wait_for(lambda: load.failed > 0, 60, "sends fail while the coordinator is down")
            acked_while_down = load.count()
        finally:
            subprocess.run(["infra/postgres.sh", "start", pg_dir], check=True, cwd=REPO, capture_output=True)
        wait_for(lambda: load.count() > acked_while_down + 100, 60, "ingest recovers once it is back")
        load.join()
        consume(cluster.endpoints, "cl-pg-group", ["cl-pg-restart"], set(load.acked))
    finally:
        cluster.stop_all()



def test_compaction_under_load_with_a_compactor_killed_mid_job(tmp_path):
    """Two compactors compact while producers send and consumers receive; one is killed -9
    again and again. No message is lost, duplicated or reordered within a queue."""
    from raw import Raw

    cluster = make_cluster(tmp_path, ingest=2, query=1, compactor=2)
    try:
        setup_topics(cluster, ["cl-compact"], "cl-compact-group")
        cluster.cli("group", "create", "puller")
        load = Load(cluster.endpoints, ["cl-compact"], producers=2, per_producer=1500, pause=0.004).start()
        consumed = {}
        consumer = threading.Thread(target=lambda: consumed.update(
            consume(cluster.endpoints, "cl-compact-group", ["cl-compact"], load.final_acked)))
        consumer.start()
        kills = 0
        while any(t.is_alive() for t in load.threads):
            time.sleep(1.5)
            cluster.kill("compactor-2")
            kills += 1
            cluster.start("compactor-2", "compactor")
        load.join()
        consumer.join()
        assert load.failed == 0
        assert set(load.acked) <= consumed.keys(), "every acknowledged message was received"
        wait_for(lambda: int(cluster.sql("SELECT count(*) FROM batches WHERE format = 1")) > 0, 30,
                 "some data was compacted into Parquet")
        parquet = int(cluster.sql("SELECT count(*) FROM batches WHERE format = 1"))
        raw = Raw(cluster.endpoint("query-1"))
        try:
            replayed = {}
            for q in range(4):
                rows = raw.replay("cl-compact", q)
                offsets = [o for o, _, _ in rows]
                assert offsets == list(range(len(rows))), f"queue {q}: dense and in order"
                for _, mid, body in rows:
                    assert mid not in replayed, f"{mid} twice"
                    replayed[mid] = body
        finally:
            raw.close()
        assert replayed.keys() == load.acked.keys(), "the replay holds exactly what was acknowledged"
        assert all(replayed[m] == b for m, b in load.acked.items())
        print(f"compactor-2 killed {kills} times; {parquet} Parquet row groups in the index")
    finally:
        cluster.stop_all()


def test_a_node_whose_clock_runs_30s_fast_keeps_invisible_times(tmp_path):
    """Deadlines cross nodes: a message received through one query node must stay invisible
    on another whose machine clock runs 30 s fast (every node keeps the coordinator's time)."""
    from raw import Raw
    cluster = make_cluster(tmp_path, ingest=1, query=1)
    cluster.start("query-fast", "query", extra_config='[testing]\nclock_skew = "30s"\n')
    try:
        setup_topics(cluster, ["cl-skew"], "cl-skew-group")
        producer = Raw(cluster.endpoint("ingest-1"))
        assert producer.send("cl-skew", b"once").status.code == 20000
        producer.close()
        a, b = Raw(cluster.endpoint("query-1")), Raw(cluster.endpoint("query-fast"))
        try:
            got = [r.message for r in a.receive("cl-skew", "cl-skew-group", invisible_s=20, poll_s=5)
                   if r.HasField("message")]
            assert [m.body for m in got] == [b"once"]
            # 20 s of invisibility left; a node 30 s fast would see the deadline passed.
            again = [r.message for r in b.receive("cl-skew", "cl-skew-group", invisible_s=20, poll_s=2)
                     if r.HasField("message")]
            assert again == [], "redelivered early by the fast node"
        finally:
            a.close()
            b.close()
        states = cluster.node_states()
        assert states["query-fast"][1] and states["query-1"][1], states
    finally:
        cluster.stop_all()


def test_a_client_that_ignores_queue_permissions_is_served_by_any_node(tmp_path):
    """The official Rust 5.x client picks queues regardless of their permission, so it sends
    through query nodes and receives through ingest nodes: those requests are passed on to a
    node with the role instead of refused with FORBIDDEN."""
    from raw import Raw
    cluster = make_cluster(tmp_path, ingest=1, query=1)
    try:
        setup_topics(cluster, ["cl-any-node"], "cl-any-group")
        cluster.cli("group", "create", "puller")
        wrong_for_sends, wrong_for_receives = Raw(cluster.endpoint("query-1")), Raw(cluster.endpoint("ingest-1"))
        try:
            for i in range(20):
                reply = wrong_for_sends.send("cl-any-node", f"m{i}".encode())
                assert reply.status.code == 20000, reply.status
            got = []
            while len(got) < 20:
                replies = wrong_for_receives.receive("cl-any-node", "cl-any-group", invisible_s=30, poll_s=2)
                statuses = [r.status for r in replies if r.HasField("status")]
                assert all(s.code in (20000, 40401) for s in statuses), statuses
                messages = [r.message for r in replies if r.HasField("message")]
                assert messages or got, "nothing received through the ingest node"
                for m in messages:
                    ack = wrong_for_receives.ack("cl-any-node", "cl-any-group", m.system_properties.receipt_handle)
                    assert ack.status.code == 20000, ack.status
                got.extend(messages)
            assert sorted(m.body for m in got) == sorted(f"m{i}".encode() for i in range(20))
            # PullMessage too (it raises on a non-OK status).
            pulled = sum(len(wrong_for_receives.pull("cl-any-node", q, 0)[0]) for q in range(4))
            assert pulled == 20
        finally:
            wrong_for_sends.close()
            wrong_for_receives.close()

        # A client known to be a producer (or a consumer) is routed to its kind of node only.
        from rocketmq.grpc_protocol import definition_pb2 as d, service_pb2 as s
        access = Raw(cluster.endpoints)
        try:
            for client_type, node in [(d.PRODUCER, "ingest-1"), (d.SIMPLE_CONSUMER, "query-1")]:
                headers = [("x-mq-client-id", f"route-test-{client_type}"), ("x-mq-protocol", "v2")]
                access.stub.Heartbeat(s.HeartbeatRequest(client_type=client_type), metadata=headers, timeout=10)
                route = access.stub.QueryRoute(s.QueryRouteRequest(topic=d.Resource(name="cl-any-node")),
                                               metadata=headers, timeout=10)
                assert route.status.code == 20000, route.status
                assert {q.broker.name for q in route.message_queues} == {node}, (client_type, route.message_queues)
        finally:
            access.close()
    finally:
        cluster.stop_all()
