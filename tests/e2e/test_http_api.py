"""The HTTP/JSON API (docs/http-api.md): every message type sent over HTTP, long-polling
receive, ack and change-invisible, mixed with the official Python client on the same topics
and groups; the signature, the ACL, quotas and metering as on gRPC; the documented curl
example; and schemathesis against the served OpenAPI file."""

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from rocketmq import ClientConfiguration, Credentials, LiteSimpleConsumer, Message, Producer

from conftest import Broker
from http_api import Api, signature_headers
from test_lite import receive_until as lite_receive_until
from test_lite import subscribe
from test_tenancy import ROOT, Accounts

REPO = Path(__file__).resolve().parents[2]
CONFIG = """
[ingest]
transaction_check_after = "30s"
[query]
max_long_polling = "5s"
[console]
sample_interval = "1s"
"""


@pytest.fixture
def http_broker(tmp_path):
    """Auth on, the operator's keys known, a tenant `acme` with an admin user."""
    log_dir = Path(os.environ.get("STRATA_TEST_LOGS", tmp_path)) / tmp_path.name
    log_dir.mkdir(parents=True, exist_ok=True)
    (tmp_path / "strata.toml").write_text(CONFIG)
    env = {"STRATA_AUTH_ADMIN_ACCESS_KEY": ROOT[0], "STRATA_AUTH_ADMIN_SECRET_KEY": ROOT[1]}
    b = Broker(tmp_path / "data", log_dir, ["--auth", "--config", str(tmp_path / "strata.toml")], env).start()
    b.base = f"http://127.0.0.1:{b.http_port}"
    b.accounts = Accounts(b)
    b.accounts.run("tenant", "create", "acme")
    b.admin_keys = b.accounts.user("acme", "ops", admin=True)
    yield b
    if b.alive():
        assert b.stop() == 0


def receive(api: Api, group: str, topic: str, n=32, wait=0, **kw):
    return api.ok("POST", f"/api/v1/groups/{group}/receive",
                  {"topic": topic, "max_messages": n, "wait_seconds": wait, **kw})["messages"]


def receive_until(api: Api, group: str, topic: str, count: int, timeout=30):
    got = []
    deadline = time.time() + timeout
    while len(got) < count and time.time() < deadline:
        got += receive(api, group, topic, wait=2)
    return got


def ack(api: Api, group: str, topic: str, messages):
    entries = [{"message_id": m["message_id"], "receipt_handle": m["receipt_handle"]} for m in messages]
    return api.call("POST", f"/api/v1/groups/{group}/ack", {"topic": topic, "entries": entries})


def test_every_message_type_over_http_with_the_python_client_on_the_same_topics(http_broker):
    b = http_broker
    api = Api(b.base, *b.admin_keys)  # acts in its own tenant, acme
    for name, kind in [("orders", "NORMAL"), ("steps", "FIFO"), ("later", "DELAY"), ("payments", "TRANSACTION")]:
        assert api.ok("POST", "/api/v1/topics", {"name": name, "message_type": kind, "queue_count": 2})["message_type"] == kind
    for group, fifo in [("billing", False), ("steppers", True), ("waiters", False), ("payers", False)]:
        api.ok("POST", "/api/v1/groups", {"name": group, "fifo": fifo})

    # Normal: single and batch, with keys, tag and properties; text and bytes.
    one = api.ok("POST", "/api/v1/topics/orders/messages",
                 {"messages": [{"body": "first", "tag": "new", "keys": ["o-1"], "properties": {"region": "eu"}}]})
    assert one["results"][0]["code"] == 20000 and one["results"][0]["offset"] >= 0
    batch = api.ok("POST", "/api/v1/topics/orders/messages",
                   {"messages": [{"body": f"b{i}", "tag": "bulk"} for i in range(3)] + [{"body_base64": "AP8="}]})
    assert [r["status"] for r in batch["results"]] == ["OK"] * 4
    got = receive_until(api, "billing", "orders", 5)
    by_body = {m.get("body", m.get("body_base64")): m for m in got}
    assert set(by_body) == {"first", "b0", "b1", "b2", "AP8="}, by_body.keys()
    first = by_body["first"]
    assert (first["tag"], first["keys"], first["properties"], first["delivery_attempt"]) == ("new", ["o-1"], {"region": "eu"}, 1)
    assert ack(api, "billing", "orders", got)[0] == 200

    # The official Python client reads what HTTP sent, and HTTP what the client sent: one store.
    producer = Producer(ClientConfiguration(b.endpoint, Credentials(*b.admin_keys), "acme"), ("orders",))
    producer.startup()
    try:
        waiting = {}
        poll = threading.Thread(target=lambda: waiting.update(m=receive(api, "billing", "orders", wait=5)))
        poll.start()
        time.sleep(0.5)  # the long poll is waiting when the message arrives (checked below)
        msg = Message()
        msg.topic, msg.body, msg.tag = "orders", b"from-python", "py"
        sent_at = time.time()
        receipt = producer.send(msg)
        poll.join(10)
        assert [m["message_id"] for m in waiting["m"]] == [receipt.message_id], waiting
        assert waiting["m"][0]["body"] == "from-python"
        assert time.time() - sent_at < 4, "the long poll answered when the message came, not at its end"
        assert ack(api, "billing", "orders", waiting["m"])[0] == 200
    finally:
        producer.shutdown()

    # FIFO: a message group's messages come in order, one at a time.
    api.ok("POST", "/api/v1/topics/steps/messages",
           {"messages": [{"body": f"s{i}", "message_group": "order-7"} for i in range(3)]})
    order = []
    for _ in range(3):
        m = receive_until(api, "steppers", "steps", 1)
        assert len(m) == 1, "one in flight per message group"
        order.append(m[0]["body"])
        assert m[0]["message_group"] == "order-7"
        ack(api, "steppers", "steps", m)
    assert order == ["s0", "s1", "s2"]

    # Delay: not before its time.
    due = int(time.time() * 1000) + 3000
    api.ok("POST", "/api/v1/topics/later/messages", {"messages": [{"body": "late", "delivery_time_ms": due}]})
    assert receive(api, "waiters", "later") == []
    late = receive_until(api, "waiters", "later", 1)
    assert late and late[0]["body"] == "late" and time.time() * 1000 >= due - 100

    # Transaction: held until committed; a rolled back one never comes.
    sent = api.ok("POST", "/api/v1/topics/payments/messages",
                  {"messages": [{"body": "pay", "transactional": True}, {"body": "void", "transactional": True}]})
    tx = sent["results"]
    assert all(r["transaction_id"] for r in tx) and "offset" not in tx[0]
    assert receive(api, "payers", "payments", wait=1) == []
    for r, action in zip(tx, ["commit", "rollback"]):
        api.ok("POST", "/api/v1/topics/payments/transactions",
               {"message_id": r["message_id"], "transaction_id": r["transaction_id"], "action": action})
    paid = receive_until(api, "payers", "payments", 1)
    assert [m["body"] for m in paid] == ["pay"]
    assert receive(api, "payers", "payments", wait=2) == [], "the rolled back message never comes"

    # Priority: a backlog is drained highest first.
    api.ok("POST", "/api/v1/topics", {"name": "urgent", "message_type": "PRIORITY", "queue_count": 4})
    api.ok("POST", "/api/v1/topics/urgent/messages",
           {"messages": [{"body": f"p{p}", "priority": p} for p in (0, 3, 1)]})
    api.ok("POST", "/api/v1/groups", {"name": "triage"})
    drained = [m["body"] for m in receive_until(api, "triage", "urgent", 3)]
    assert drained[0] == "p3" and sorted(drained) == ["p0", "p1", "p3"], drained

    # A grayscale lane: its consumers name the group G%L (URL-encoded in the path), messages
    # join it with the property x-lane.
    api.ok("POST", "/api/v1/groups", {"name": "shipping"})
    assert receive(api, "shipping%25canary", "orders") == [], "the lane's first receive starts it"
    api.ok("POST", "/api/v1/topics/orders/messages",
           {"messages": [{"body": "to-canary", "properties": {"x-lane": "canary"}}, {"body": "to-base"}]})
    assert [m["body"] for m in receive_until(api, "shipping%25canary", "orders", 1)] == ["to-canary"]
    base, deadline = [], time.time() + 30
    while "to-base" not in base and time.time() < deadline:  # after the topic's earlier messages
        base += [m.get("body") for m in receive(api, "shipping", "orders", wait=2)]
    assert "to-canary" not in base and "to-base" in base, base
    lanes = api.ok("GET", "/api/v1/groups/shipping")["lanes"]
    assert [(lane["topic"], lane["name"]) for lane in lanes] == [("orders", "canary")]

    # Lite: sent over HTTP to a lite topic, read by the official Python lite consumer.
    api.ok("POST", "/api/v1/topics", {"name": "chat", "message_type": "LITE"})
    api.ok("POST", "/api/v1/topics/chat/messages",
           {"messages": [{"body": f"turn {i}", "lite_topic": "session-9"} for i in range(3)]})
    cfg = ClientConfiguration(b.endpoint, Credentials(*b.admin_keys), "acme")
    lite = LiteSimpleConsumer("chat", cfg, "agents", await_duration=2)
    lite.startup()
    try:
        subscribe(lite, "session-9")
        assert lite_receive_until(lite, 3) == {"session-9": [b"turn 0", b"turn 1", b"turn 2"]}
    finally:
        lite.shutdown()


def test_change_invisible_and_ack_with_receipt_handles(http_broker):
    b = http_broker
    api = Api(b.base, *b.admin_keys)
    api.ok("POST", "/api/v1/topics", {"name": "jobs"})
    api.ok("POST", "/api/v1/groups", {"name": "workers"})
    api.ok("POST", "/api/v1/topics/jobs/messages", {"messages": [{"body": "job"}]})
    [m] = receive_until(api, "workers", "jobs", 1)
    changed = api.ok("POST", "/api/v1/groups/workers/invisible",
                     {"topic": "jobs", "message_id": m["message_id"], "receipt_handle": m["receipt_handle"],
                      "invisible_seconds": 1})
    assert changed["receipt_handle"] != m["receipt_handle"]
    status, answer = ack(api, "workers", "jobs", [m])
    assert (status, answer["code"]) == (400, 40013), "the old handle no longer acks"
    again = receive_until(api, "workers", "jobs", 1)
    assert [x["message_id"] for x in again] == [m["message_id"]] and again[0]["delivery_attempt"] == 2
    assert ack(api, "workers", "jobs", again)[0] == 200
    status, answer = api.call("POST", "/api/v1/groups/workers/ack",
                              {"topic": "jobs", "entries": [{"message_id": "x", "receipt_handle": "forged"}]})
    assert (status, answer["status"]) == (400, "INVALID_RECEIPT_HANDLE")


def test_signature_acl_quota_and_metering_as_on_grpc(http_broker):
    b = http_broker
    acc = b.accounts
    admin = Api(b.base, *b.admin_keys)
    admin.ok("POST", "/api/v1/topics", {"name": "feed"})
    admin.ok("POST", "/api/v1/groups", {"name": "readers"})
    target = "/api/v1/topics/feed/messages"
    body = b'{"messages":[{"body":"x"}]}'

    # The signature binds method, target, date, namespace and body.
    anonymous = Api(b.base, namespace="acme")
    assert anonymous.raw("POST", target, body)[1]["code"] == 40100
    ak, sk = b.admin_keys
    good = signature_headers("POST", target, body, ak, sk, namespace="acme")
    for what, headers, sent in [
        ("another body", good, b'{"messages":[{"body":"y"}]}'),
        ("wrong secret", signature_headers("POST", target, body, ak, "guess", namespace="acme"), body),
        ("an old date", signature_headers("POST", target, body, ak, sk, "20200101T000000Z", namespace="acme"), body),
        ("another target", signature_headers("POST", "/api/v1/topics/other/messages", body, ak, sk,
                                             namespace="acme"), body),
        ("another namespace", signature_headers("POST", target, body, ak, sk, namespace="other"), body),
    ]:
        status, answer = anonymous.raw("POST", target, sent, headers=headers)
        assert (status, answer["status"]) == (401, "UNAUTHORIZED"), what
    assert anonymous.raw("POST", target, body, headers=good)[0] == 200

    # The ACL: a publisher may send, not receive nor administer; another tenant sees nothing.
    pub = Api(b.base, *acc.user("acme", "writer", grants=[("topic:feed", "pub")]))
    assert pub.call("POST", target, {"messages": [{"body": "w"}]})[0] == 200
    status, answer = pub.call("POST", "/api/v1/groups/readers/receive", {"topic": "feed"})
    assert (status, answer["code"]) == (403, 40300), answer
    assert pub.call("GET", "/api/v1/groups/readers")[0] == 403
    assert pub.call("GET", "/api/v1/nodes")[0] == 403, "nodes are the operator's"
    acc.run("tenant", "create", "other")
    outsider = Api(b.base, *acc.user("other", "boss", admin=True))
    assert outsider.call("GET", "/api/v1/topics")[1] == []
    status, answer = outsider.call("GET", "/api/v1/topics", headers={"x-mq-namespace": "acme"})
    assert (status, answer["code"]) == (403, 40300)

    # Bad input gets a RocketMQ code, and the broker goes on.
    too_big = {"messages": [{"body": "x" * (4 * 1024 * 1024 + 1)}]}
    assert admin.call("POST", target, too_big)[1]["status"] == "MESSAGE_BODY_TOO_LARGE"
    assert admin.call("POST", target, {"messages": [{"body": "x", "tag": "a|b"}]})[1]["status"] == "ILLEGAL_MESSAGE_TAG"
    assert admin.call("POST", target, {"messages": []})[1]["code"] == 40000
    assert admin.raw("POST", target, b"{not json")[1]["code"] == 40000
    assert admin.call("GET", "/api/v1/topics/missing")[0] == 404
    assert admin.call("GET", "/api/v1/topics/feed")[0] == 200

    # Quotas: a tenant at its ceiling gets TOO_MANY_REQUESTS over HTTP as over gRPC.
    acc.run("tenant", "update", "acme", "--reserved-tps", "2", "--burst-tps", "4")
    codes = [admin.call("POST", target, {"messages": [{"body": "q"}]})[1].get("code", 20000) for _ in range(12)]
    assert 42900 in codes, codes

    # Metering counts HTTP calls as the gRPC calls they are.
    usage = {(r["metric"]): r["value"] for r in admin.ok("GET", "/api/v1/metering")}
    assert usage["api.SendMessage"] >= 5 and usage["messages_in"] >= 3, usage
    assert usage.get("throttled", 0) >= 1
    csv_status, csv = admin.call("GET", "/api/v1/metering?format=csv")
    assert csv_status == 200 and csv.splitlines()[0] == "namespace,hour,metric,value"


def test_the_documented_curl_example(http_broker):
    b = http_broker
    ak, sk = b.admin_keys
    Api(b.base, ak, sk).ok("POST", "/api/v1/topics", {"name": "hello"})
    env = {**os.environ, "STRATA_HTTP": b.base, "STRATA_ACCESS_KEY": ak, "STRATA_SECRET_KEY": sk}
    out = subprocess.run(["bash", "docs/examples/http-send.sh", "hello", "hi from curl"], cwd=REPO,
                         capture_output=True, text=True, timeout=30, env=env)
    assert out.returncode == 0, out.stderr
    assert '"status":"OK"' in out.stdout, out.stdout


def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(tmp_path):
    """Property-based requests from the served OpenAPI file (auth off: the generated requests
    cannot sign themselves; the signature is tested above)."""
    log_dir = Path(os.environ.get("STRATA_TEST_LOGS", tmp_path)) / tmp_path.name
    log_dir.mkdir(parents=True, exist_ok=True)
    (tmp_path / "strata.toml").write_text('[query]\nmax_long_polling = "1s"\n')
    b = Broker(tmp_path / "data", log_dir, ["--config", str(tmp_path / "strata.toml")]).start()
    try:
        out = subprocess.run(
            [str(REPO / ".venv-schemathesis/bin/schemathesis"), "run", f"http://127.0.0.1:{b.http_port}/openapi.json",
             "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                         "response_schema_conformance",
             "--max-time", "30", "--workers", "2", "--request-timeout", "10",
             "--generation-deterministic"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path)
        (log_dir / "schemathesis.txt").write_text(out.stdout + out.stderr)
        assert out.returncode == 0, out.stdout[-4000:]
        assert b.alive()
    finally:
        if b.alive():
            assert b.stop() == 0
