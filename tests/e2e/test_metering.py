"""Reserved + burst quotas and metering per tenant (docs/tenancy.md), with auth off: the
namespace names the tenant."""

import json
import os
import re
import urllib.request
import threading
import time
from pathlib import Path

import pytest
from rocketmq import ClientConfiguration, Credentials, FilterExpression, SimpleConsumer
from rocketmq.grpc_protocol import definition_pb2 as d
from rocketmq.grpc_protocol import service_pb2 as s

from conftest import Broker
from raw import HEADERS, Raw


# Stored bytes measured often enough for a test to see GB-hours.
CONFIG = """
[metering]
storage_interval = "200ms"
"""


@pytest.fixture
def plain_broker(tmp_path):
    log_dir = Path(os.environ.get("STRATA_TEST_LOGS", tmp_path)) / tmp_path.name
    log_dir.mkdir(parents=True, exist_ok=True)
    (tmp_path / "strata.toml").write_text(CONFIG)
    b = Broker(tmp_path / "data", log_dir, ["--config", str(tmp_path / "strata.toml")]).start()
    yield b
    if b.alive():
        assert b.stop() == 0


def send(raw: Raw, tenant: str, topic: str, body: bytes, i: int, status=False):
    msg = d.Message(topic=d.Resource(name=topic, resource_namespace=tenant), body=body)
    msg.system_properties.message_id = f"01METER{i:08d}"
    msg.system_properties.message_type = d.NORMAL
    headers = [*HEADERS, ("x-mq-namespace", tenant)]
    answer = raw.stub.SendMessage(s.SendMessageRequest(messages=[msg]), metadata=headers, timeout=10).status
    return answer if status else answer.code


def usage(broker: Broker, tenant: str) -> dict:
    """metric -> value summed over the hours of the report."""
    rows = json.loads(broker.cli("metering", "show", "--tenant", tenant, "--output", "json"))
    out = {}
    for r in rows:
        assert r["tenant"] == tenant
        out[r["metric"]] = out.get(r["metric"], 0) + r["value"]
    return out


def scrape(broker: Broker, path="/metrics"):
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.http_port}{path}", timeout=10) as r:
        return r.status, r.read().decode()


def series(text: str, name: str, **labels) -> float:
    """The value of one Prometheus series (labels in any order), or fails."""
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    raise AssertionError(f"no series {name} {labels} in /metrics")


def test_metering_equals_the_workload(plain_broker):
    b = plain_broker
    raw = Raw(b.endpoint)
    bodies = [b"x", b"y" * 4096, b"z" * 4097, b"w" * (16 << 10)]  # 1 + 1 + 2 + 4 units
    try:
        for i, body in enumerate(bodies):
            assert send(raw, "acme", "orders", body, i) == d.OK
    finally:
        raw.close()
    c = SimpleConsumer(ClientConfiguration(b.endpoint, Credentials(), "acme"), "g", {"orders": FilterExpression()})
    c.startup()
    try:
        got = []
        deadline = time.monotonic() + 30
        while len(got) < len(bodies) and time.monotonic() < deadline:
            for m in c.receive(16, 30):
                got.append(m.body)
                c.ack(m)
        assert sorted(got) == sorted(bodies)
    finally:
        c.shutdown()

    u = usage(b, "acme")
    size = sum(len(x) for x in bodies)
    assert u["messages_in"] == 4 and u["bytes_in"] == size
    assert u["messages_out"] == 4 and u["bytes_out"] == size
    assert u["units_burst"] == 16 and u.get("units_reserved", 0) == 0, "no quota: everything is burst"
    assert u["api.SendMessage"] == 4
    assert u["api.AckMessage"] == 4
    assert u["api.ReceiveMessage"] >= 1
    assert 0 < u["store_puts"] <= 4, "each WAL PUT split by bytes; one tenant gets whole PUTs"
    assert u["store_puts"] == int(u["store_puts"])
    assert "acme" not in json.dumps(usage(b, "other")), "other tenants see nothing of it"
    # Stored GB-hours accrue while the messages are kept (sampled every 200 ms here).
    deadline = time.monotonic() + 30
    while usage(b, "acme").get("storage_gb_hours", 0) == 0:
        assert time.monotonic() < deadline, "no stored GB-hours metered"
        time.sleep(0.2)
    stored = usage(b, "acme")["storage_gb_hours"]
    assert 0 < stored < size / 1e9 * 30 / 3600 * 2, "at most the bodies' bytes over the time waited"

    # The same run as Prometheus series.
    assert scrape(b, "/healthz") == (200, "ok\n")
    assert scrape(b, "/readyz") == (200, "ready\n")
    _, text = scrape(b)
    assert series(text, "strata_front_requests_total", tenant="acme", rpc="SendMessage") == 4
    assert series(text, "strata_ingest_messages_total", tenant="acme") == 4
    assert series(text, "strata_ingest_bytes_total", tenant="acme") == size
    assert series(text, "strata_query_messages_total", tenant="acme") == 4
    assert series(text, "strata_ingest_flush_seconds_count") >= 1
    assert series(text, "strata_ingest_commit_seconds_bucket", le="+Inf") >= 1
    assert series(text, "strata_node_store_requests_total", op="put") >= 1
    assert 0 <= series(text, "strata_query_cache_hit_ratio") <= 1
    assert series(text, "strata_query_long_polls") >= 0


def test_reserved_burst_and_rejection_are_metered_exactly(plain_broker):
    b = plain_broker
    b.cli("tenant", "create", "metered", "--reserved-tps", "5", "--burst-tps", "10")
    raw = Raw(b.endpoint)
    ok, refused, i = 0, 0, 0
    try:
        while refused < 3:
            answer = send(raw, "metered", "t", b"m", i, status=True)
            i += 1
            if answer.code == d.OK:
                ok += 1
            else:
                assert answer.code == d.TOO_MANY_REQUESTS, answer
                assert "retry in" in answer.message, answer.message
                refused += 1
    finally:
        raw.close()
    assert 10 <= ok <= 13, "a one-second ceiling of 10, plus what refilled meanwhile"
    u = usage(b, "metered")
    assert u["messages_in"] == ok
    assert u["throttled"] == refused
    assert u["units_reserved"] + u["units_burst"] == ok
    assert 5 <= u["units_reserved"] <= 7, u
    assert u["api.SendMessage"] == ok + refused
    _, text = scrape(b)
    assert series(text, "strata_front_throttled_total", tenant="metered") == refused


def test_a_noisy_tenant_does_not_starve_another(plain_broker):
    b = plain_broker
    b.cli("tenant", "create", "noisy", "--burst-tps", "20")
    b.cli("tenant", "create", "calm", "--reserved-tps", "50", "--burst-tps", "100")
    stop = threading.Event()
    noisy_codes = []

    def hammer(n):
        raw = Raw(b.endpoint)
        try:
            j = 0
            while not stop.is_set():
                noisy_codes.append(send(raw, "noisy", "t", b"n" * 100, n * 1_000_000 + j))
                j += 1
        finally:
            raw.close()

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    raw = Raw(b.endpoint)
    calm_codes = []
    try:
        for i in range(30):
            calm_codes.append(send(raw, "calm", "t", b"c" * 100, i))
            time.sleep(0.05)  # pacing the well-behaved tenant at ~20/s, not synchronisation
    finally:
        stop.set()
        for t in threads:
            t.join()
        raw.close()
    assert calm_codes == [d.OK] * 30, "the calm tenant is never throttled"
    assert d.TOO_MANY_REQUESTS in noisy_codes and d.OK in noisy_codes
    assert set(noisy_codes) <= {d.OK, d.TOO_MANY_REQUESTS}
    u = usage(b, "calm")
    assert u["units_reserved"] == 30 and u.get("units_burst", 0) == 0, "within its reserved rate"
