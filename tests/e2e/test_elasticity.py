"""Nodes join and leave a running cluster under load with the official Python client: no
send, receive or ack fails, nothing acknowledged is lost (docs/deploy.md, graceful stop)."""

import signal
import subprocess
import threading
import time

from rocketmq import FilterExpression, Producer, SimpleConsumer
from rocketmq.grpc_protocol import definition_pb2 as d

from clients import config, make_message
from cluster import make_cluster
from conftest import STRATA_BIN
from raw import Raw
from test_cluster import wait_for

TOPIC = "el-orders"
GROUP = "el-group"
# Longer than the stock clients' route refresh (30 s), like the default (35 s): every client
# refreshes its route during the drain, so none sends anything to the node after it stops.
DRAIN = "32s"


def ready(cluster, name: str) -> int:
    """`strata node probe --ready` (the container health check): 0 ready, 5 not."""
    http = cluster.http(name).removeprefix("http://")
    return subprocess.run([STRATA_BIN, "node", "probe", "--ready", "--http", http], capture_output=True,
                          timeout=30).returncode


class Traffic:
    """One producer and one SimpleConsumer in threads; every failed call is recorded."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.sent, self.received, self.errors = set(), {}, []
        self.stop_sending = threading.Event()
        self.stop_receiving = threading.Event()
        self.threads = [threading.Thread(target=self.produce), threading.Thread(target=self.consume)]

    def produce(self):
        producer = Producer(config(self.endpoint), (TOPIC,))
        producer.startup()
        try:
            i = 0
            while not self.stop_sending.is_set():
                try:
                    self.sent.add(producer.send(make_message(TOPIC, i, f"m{i}".encode())).message_id)
                except Exception as e:  # noqa: BLE001 - every failure is the test's finding
                    self.errors.append(f"send: {e}")
                i += 1
                time.sleep(0.01)
        finally:
            producer.shutdown()

    def consume(self):
        consumer = SimpleConsumer(config(self.endpoint), GROUP, {TOPIC: FilterExpression("*")}, await_duration=5)
        consumer.startup()
        try:
            while not self.stop_receiving.is_set():
                try:
                    messages = consumer.receive(32, 20)
                except Exception as e:  # noqa: BLE001
                    self.errors.append(f"receive: {e}")
                    continue
                for m in messages:
                    try:
                        consumer.ack(m)
                    except Exception as e:  # noqa: BLE001
                        self.errors.append(f"ack: {e}")
                    self.received[m.message_id] = self.received.get(m.message_id, 0) + 1
        finally:
            consumer.shutdown()


def test_nodes_join_and_leave_under_load_with_no_client_error(tmp_path):
    cluster = make_cluster(tmp_path, ingest=0, query=0)
    cluster.start("ingest-1", "ingest", drain_period=DRAIN).start("query-1", "query", drain_period=DRAIN)
    access = cluster.endpoints  # the compactor: clients bootstrap there, routes send them on
    raw = Raw(access)
    try:
        cluster.cli("topic", "create", TOPIC, "--queues", "4")
        cluster.cli("group", "create", GROUP)
        traffic = Traffic(access)
        for t in traffic.threads:
            t.start()
        wait_for(lambda: len(traffic.received) >= 50, 60, "traffic flows through ingest-1 and query-1")

        # Joining: new nodes are in the routes as soon as they registered.
        cluster.start("ingest-2", "ingest").start("query-2", "query")
        assert raw.route(TOPIC, access) == ["ingest-1", "ingest-2", "query-1", "query-2"]

        assert ready(cluster, "query-1") == ready(cluster, "ingest-1") == 0
        # A client connected to query-1 is told to reconnect when it drains.
        telemetry = Raw(cluster.endpoint("query-1"))
        settings = d.Settings(client_type=d.SIMPLE_CONSUMER, subscription=d.Subscription(
            group=d.Resource(name=GROUP), subscriptions=[d.SubscriptionEntry(topic=d.Resource(name=TOPIC))]))
        commands = telemetry.telemetry(settings)
        wait_for(lambda: commands, 10, "query-1 answered the settings")

        # Leaving: SIGTERM both original nodes under load.
        for name in ("ingest-1", "query-1"):
            cluster.nodes[name][2].send_signal(signal.SIGTERM)
        wait_for(lambda: ready(cluster, "query-1") == ready(cluster, "ingest-1") == 5, 10,
                 "draining nodes are not ready")
        assert ready(cluster, "query-2") == 0
        states = {n["id"]: n["state"] for n in cluster.node_list()}
        assert states["ingest-1"] == states["query-1"] == "draining", states
        assert raw.route(TOPIC, access) == ["ingest-2", "query-2"], "draining nodes leave the routes at once"
        wait_for(lambda: any(c.WhichOneof("command") == "reconnect_endpoints_command" for c in commands), 10,
                 "query-1 sent reconnect_endpoints_command")
        sent_while_draining = len(traffic.sent)

        for name in ("ingest-1", "query-1"):
            assert cluster.nodes[name][2].wait(timeout=60) == 0, f"{name} exits cleanly after draining"
            cluster.nodes[name][2] = None
        states = {n["id"]: n["state"] for n in cluster.node_list()}
        assert states["ingest-1"] == states["query-1"] == "left", states
        telemetry.close()

        # The traffic goes on through the new nodes alone.
        more = len(traffic.sent) + 100
        wait_for(lambda: len(traffic.sent) >= more, 60, "sends go on through ingest-2")
        traffic.stop_sending.set()
        traffic.threads[0].join(timeout=30)
        wait_for(lambda: traffic.sent <= traffic.received.keys(), 60, "every acknowledged message is delivered")
        traffic.stop_receiving.set()
        traffic.threads[1].join(timeout=30)

        assert traffic.errors == [], traffic.errors[:5]
        assert len(traffic.sent) > sent_while_draining > 50
        duplicates = sum(n - 1 for n in traffic.received.values())
        print(f"sent {len(traffic.sent)}, received {len(traffic.received)}, duplicates {duplicates}")
    finally:
        raw.close()
        cluster.stop_all()
