"""The gate under every front (docs/tenancy.md, "The gate"): each probe that once reached
another tenant — through a field of a gRPC request, a session's client id, a 4.x heartbeat,
an unsigned HTTP header, an open listener — now gets its protocol's refusal and changes
nothing in the other tenant."""

import json
import subprocess
import time
import urllib.request

import grpc
import pytest
from rocketmq.grpc_protocol import definition_pb2 as d
from rocketmq.grpc_protocol import service_pb2 as s

from conftest import STRATA_BIN, free_port, wait_listening
from http_api import Api
from raw import HEADERS, Raw
from remoting_raw import RemotingConn
from test_tenancy import ROOT, Accounts, auth_broker, signed  # noqa: F401 (fixture)

FORBIDDEN = d.FORBIDDEN
HEART_BEAT, UNREGISTER_CLIENT, NO_PERMISSION, SUCCESS = 34, 35, 16, 0


def endpoints(endpoint: str):
    host, port = endpoint.rsplit(":", 1)
    return d.Endpoints(scheme=d.IPv4, addresses=[d.Address(host=host, port=int(port))])


def group_names(acc: Accounts, tenant: str):
    out = acc.run("group", "list", "--namespace", tenant, "--output", "json").stdout
    return sorted(g["name"] for g in json.loads(out))


@pytest.fixture
def two_tenants(auth_broker):
    """Tenants a and b; bob is b's admin (every action in b, none in a)."""
    acc = Accounts(auth_broker)
    acc.run("tenant", "create", "a")
    acc.run("tenant", "create", "b")
    acc.run("topic", "create", "orders", "--namespace", "a")
    acc.run("group", "create", "billing", "--namespace", "a", "--max-attempts", "7")
    acc.run("topic", "create", "orders", "--namespace", "b")
    bob = acc.user("b", "bob", admin=True)
    return auth_broker, acc, bob


def test_every_resource_a_grpc_request_names_is_in_the_callers_tenant(two_tenants):
    broker, acc, (ak, sk) = two_tenants
    raw = Raw(broker.endpoint)
    md = signed(ak, sk, "b")
    in_b = d.Resource(resource_namespace="b", name="orders")
    try:
        for group in ["billing", "created-by-b"]:
            r = raw.stub.QueryAssignment(s.QueryAssignmentRequest(
                topic=in_b, group=d.Resource(resource_namespace="a", name=group),
                endpoints=endpoints(broker.endpoint)), metadata=md, timeout=10)
            assert r.status.code == FORBIDDEN, r.status
            assert "tenant" in r.status.message
        msg = d.Message(topic=d.Resource(resource_namespace="a", name="orders"), body=b"x")
        msg.system_properties.message_id = "01" + "AB" * 15
        msg.system_properties.message_type = d.NORMAL
        assert raw.stub.SendMessage(s.SendMessageRequest(messages=[msg]), metadata=md,
                                    timeout=10).status.code == FORBIDDEN
        hb = raw.stub.Heartbeat(s.HeartbeatRequest(group=d.Resource(resource_namespace="a", name="billing"),
                                                   client_type=d.SIMPLE_CONSUMER), metadata=md, timeout=10)
        assert hb.status.code == FORBIDDEN
        # The header says a, the user is b's: refused however the resources are written.
        r = raw.stub.QueryRoute(s.QueryRouteRequest(topic=d.Resource(name="orders"),
                                                    endpoints=endpoints(broker.endpoint)),
                                metadata=signed(ak, sk, "a"), timeout=10)
        assert r.status.code == FORBIDDEN
        # A Telemetry settings' subscription group in a: refused, and a's group config untold.
        settings = d.Settings(client_type=d.SIMPLE_CONSUMER, access_point=endpoints(broker.endpoint),
                              subscription=d.Subscription(group=d.Resource(resource_namespace="a",
                                                                           name="billing")))
        commands = raw.telemetry(settings, headers=md)
        deadline = time.monotonic() + 10
        while not commands and time.monotonic() < deadline:
            time.sleep(0.05)
        assert commands and commands[0].status.code == FORBIDDEN, commands
        assert not commands[0].HasField("settings"), "no settings of a's group"
        # The same calls within b work.
        ok = raw.stub.QueryAssignment(s.QueryAssignmentRequest(
            topic=in_b, group=d.Resource(resource_namespace="b", name="mine"),
            endpoints=endpoints(broker.endpoint)), metadata=md, timeout=10)
        assert ok.status.code == d.OK, ok.status
    finally:
        raw.close()
    assert group_names(acc, "a") == ["billing"], "nothing was created in a"
    assert "mine" in group_names(acc, "b")


def test_sessions_are_per_tenant_and_client_id(two_tenants):
    broker, acc, (ak, sk) = two_tenants
    alice = acc.user("a", "alice", [("group:billing", "sub"), ("topic:orders", "sub")])
    def as_shared_id(md):
        return [(k, "shared-id@1@0@x" if k == "x-mq-client-id" else v) for k, v in md]
    a_md, b_md = as_shared_id(signed(*alice, "a")), as_shared_id(signed(ak, sk, "b"))
    settings = lambda ns, group: d.Settings(  # noqa: E731
        client_type=d.SIMPLE_CONSUMER, access_point=endpoints(broker.endpoint),
        subscription=d.Subscription(group=d.Resource(resource_namespace=ns, name=group)))
    root = Api(f"http://127.0.0.1:{broker.http_port}", *ROOT, namespace="a")

    def a_consumers():
        return root.ok("GET", "/api/v1/groups/billing")["consumers"]

    a_raw, b_raw = Raw(broker.endpoint), Raw(broker.endpoint)
    try:
        a_commands = a_raw.telemetry(settings("a", "billing"), headers=a_md)
        deadline = time.monotonic() + 10
        while not a_consumers() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert a_consumers() == ["shared-id@1@0@x"], a_commands
        # b opens its own session with that client id: a's is not taken over.
        b_commands = b_raw.telemetry(settings("b", "its-own"), headers=b_md)
        deadline = time.monotonic() + 10
        while not b_commands and time.monotonic() < deadline:
            time.sleep(0.05)
        assert b_commands and b_commands[0].status.code == d.OK
        assert a_consumers() == ["shared-id@1@0@x"], "b's settings did not replace a's session"
        # b ends "its" client: a's session stays.
        r = b_raw.stub.NotifyClientTermination(s.NotifyClientTerminationRequest(), metadata=b_md, timeout=10)
        assert r.status.code == d.OK
        assert a_consumers() == ["shared-id@1@0@x"], "b's termination did not end a's session"
        r = b_raw.stub.NotifyClientTermination(
            s.NotifyClientTerminationRequest(group=d.Resource(resource_namespace="a", name="billing")),
            metadata=b_md, timeout=10)
        assert r.status.code == FORBIDDEN
        assert a_consumers() == ["shared-id@1@0@x"]
    finally:
        a_raw.close()
        b_raw.close()


def remoting_signature(sk: str, fields: dict, body: bytes = b"") -> str:
    import base64
    import hashlib
    import hmac
    content = "".join(v for k, v in sorted(fields.items()) if k != "Signature").encode() + body
    return base64.b64encode(hmac.new(sk.encode(), content, hashlib.sha1).digest()).decode()


def signed_call(conn: RemotingConn, code: int, ak: str, sk: str, fields=None, body: bytes = b""):
    fields = {**(fields or {}), "AccessKey": ak}
    fields["Signature"] = remoting_signature(sk, fields, body)
    return conn.call(code, fields, body)


def test_4x_heartbeats_and_unregisters_stay_in_the_callers_tenant(two_tenants):
    broker, acc, (ak, sk) = two_tenants
    conn = RemotingConn(broker.name_server)
    try:
        # b's user joins a's producer group: refused (it would get a's transaction checks).
        body = json.dumps({"clientID": "intruder@1", "producerDataSet": [{"groupName": "a%tx-producers"}],
                           "consumerDataSet": []}).encode()
        r = signed_call(conn, HEART_BEAT, ak, sk, body=body)
        assert r.code == NO_PERMISSION, r.remark
        body = json.dumps({"clientID": "intruder@1", "producerDataSet": [], "consumerDataSet": [{
            "groupName": "b%mine", "consumeType": "CONSUME_PASSIVELY", "messageModel": "CLUSTERING",
            "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET",
            "subscriptionDataSet": [{"topic": "a%orders", "subString": "*"}]}]}).encode()
        r = signed_call(conn, HEART_BEAT, ak, sk, body=body)
        assert r.code == NO_PERMISSION, "a subscription to a's topic inside b's group"
        r = signed_call(conn, UNREGISTER_CLIENT, ak, sk, {"clientID": "someone@1", "consumerGroup": "a%billing"})
        assert r.code == NO_PERMISSION
        # Within b, all of it works.
        body = json.dumps({"clientID": "bob@1", "producerDataSet": [{"groupName": "b%tx-producers"}],
                           "consumerDataSet": []}).encode()
        assert signed_call(conn, HEART_BEAT, ak, sk, body=body).code == SUCCESS
        r = signed_call(conn, UNREGISTER_CLIENT, ak, sk, {"clientID": "bob@1", "producerGroup": "b%tx-producers"})
        assert r.code == SUCCESS
    finally:
        conn.close()
    assert group_names(acc, "a") == ["billing"]


def test_the_http_signature_covers_the_namespace(two_tenants):
    broker, acc, _ = two_tenants
    base = f"http://127.0.0.1:{broker.http_port}"
    root = Api(base, *ROOT, namespace="a")
    status, _ = root.call("GET", "/api/v1/groups/billing")
    assert status == 200
    # The same signed request with the namespace header changed: a replay in another tenant.
    from http_api import signature_headers
    headers = {**signature_headers("GET", "/api/v1/groups/billing", b"", *ROOT, namespace="a"),
               "x-mq-namespace": "b"}
    status, answer = Api(base).call("GET", "/api/v1/groups/billing", headers=headers)
    assert status == 401 and answer["status"] == "UNAUTHORIZED", answer
    # An unknown access key is told exactly what a wrong secret is.
    unknown = Api(base, "no-such-key", "x", namespace="a").call("GET", "/api/v1/topics")
    wrong = Api(base, ROOT[0], "wrong", namespace="a").call("GET", "/api/v1/topics")
    assert unknown[0] == wrong[0] == 401 and unknown[1]["message"] == wrong[1]["message"]


def test_an_open_listener_refuses_other_sites(broker):
    """Auth off: no cross-site simple requests, no foreign Host (DNS rebinding), no framing."""
    base = f"http://127.0.0.1:{broker.http_port}"
    api = Api(base)
    target = "/api/v1/topics/orders/messages"
    body = json.dumps({"messages": [{"body": "from another site"}]}).encode()
    for content_type in ["text/plain", "application/x-www-form-urlencoded"]:
        status, answer = api.raw("POST", target, body, headers={"content-type": content_type})
        assert status == 403 and "application/json" in answer["message"], answer
    status, answer = api.raw("GET", "/api/v1/topics", headers={"host": f"evil.example:{broker.http_port}"})
    assert status == 403 and "Host" in answer["message"], answer
    status, _ = api.raw("POST", target, body)
    assert status == 200, "JSON from this machine is served"
    with urllib.request.urlopen(base + "/console", timeout=10) as r:
        assert r.headers["content-security-policy"] == "frame-ancestors 'none'"
        assert r.headers["x-frame-options"] == "DENY"


def test_without_authentication_only_loopback_unless_told(tmp_path):
    port = free_port()
    args = [STRATA_BIN, "standalone", "--data-dir", str(tmp_path / "data"), "--no-auth",
            "--grpc-listen", f"0.0.0.0:{port}", "--http-listen", f"127.0.0.1:{free_port()}",
            "--remoting-listen", f"127.0.0.1:{free_port()}"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "grpc_listen 0.0.0.0" in out.stderr and "--insecure-listen-anywhere" in out.stderr, out.stderr
    log = open(tmp_path / "insecure.log", "wb")
    proc = subprocess.Popen([*args, "--insecure-listen-anywhere"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_listening(proc, port, log.name)
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


# The authorization matrix: every front answers the same principal × resource × operation with
# the same decision (True: let in, whatever the role then answers; False: refused).
MATRIX = [
    ("writer", "send", "orders-eu", None, True),
    ("writer", "send", "payments", None, False),
    ("writer", "receive", "orders-eu", "billing", False),
    ("reader", "send", "orders-eu", None, False),
    ("reader", "receive", "orders-eu", "billing-1", True),
    ("reader", "receive", "orders-eu", "shipping", False),
    ("reader", "receive", "orders-us", "billing", False),
    ("boss", "send", "anything", None, True),
    ("boss", "receive", "anything", "any-group", True),
    ("outsider", "send", "orders-eu", None, False),
    ("outsider", "receive", "orders-eu", "billing-1", False),
    ("anonymous", "send", "orders-eu", None, False),
    ("anonymous", "receive", "orders-eu", "billing-1", False),
]

SEND_MESSAGE, PULL_MESSAGE = 10, 11


def grpc_decision(broker, creds, op, topic, group):
    raw = Raw(broker.endpoint)
    md = signed(*creds, "acme") if creds else [*HEADERS, ("x-mq-namespace", "acme")]
    try:
        if op == "send":
            msg = d.Message(topic=d.Resource(name=topic, resource_namespace="acme"), body=b"x")
            msg.system_properties.message_id = "01" + "CD" * 15
            msg.system_properties.message_type = d.NORMAL
            code = raw.stub.SendMessage(s.SendMessageRequest(messages=[msg]), metadata=md, timeout=10).status.code
        else:
            req = s.ReceiveMessageRequest(group=d.Resource(name=group, resource_namespace="acme"),
                                          message_queue=d.MessageQueue(topic=d.Resource(name=topic), id=-1),
                                          batch_size=1)
            req.invisible_duration.seconds = 30
            req.long_polling_timeout.seconds = 0
            code = next(r.status.code for r in raw.stub.ReceiveMessage(req, metadata=md, timeout=20)
                        if r.HasField("status"))
    finally:
        raw.close()
    return code not in (d.UNAUTHORIZED, d.FORBIDDEN)


def remoting_decision(broker, creds, op, topic, group):
    conn = RemotingConn(broker.name_server)
    try:
        if op == "send":
            fields = {"producerGroup": "acme%p", "topic": f"acme%{topic}", "queueId": "0", "sysFlag": "0",
                      "bornTimestamp": "0", "flag": "0", "properties": "UNIQ_KEY\x0101MATRIX\x02"}
            code, body = SEND_MESSAGE, b"x"
        else:
            fields = {"consumerGroup": f"acme%{group}", "topic": f"acme%{topic}", "queueId": "0",
                      "queueOffset": "0", "maxMsgNums": "1", "sysFlag": "0", "commitOffset": "0",
                      "suspendTimeoutMillis": "0", "subVersion": "0"}
            code, body = PULL_MESSAGE, b""
        reply = signed_call(conn, code, *creds, fields, body) if creds else conn.call(code, fields, body)
    finally:
        conn.close()
    return reply.code != NO_PERMISSION


def http_decision(broker, creds, op, topic, group):
    api = Api(f"http://127.0.0.1:{broker.http_port}", *(creds or (None, None)), namespace="acme")
    if op == "send":
        status, _ = api.call("POST", f"/api/v1/topics/{topic}/messages", {"messages": [{"body": "x"}]})
    else:
        status, _ = api.call("POST", f"/api/v1/groups/{group}/receive", {"topic": topic})
    return status not in (401, 403)


def test_every_front_answers_the_same_authorization_matrix(auth_broker):
    acc = Accounts(auth_broker)
    acc.run("tenant", "create", "acme")
    acc.run("tenant", "create", "other")
    principals = {
        "writer": acc.user("acme", "writer", [("topic:orders-*", "pub")]),
        "reader": acc.user("acme", "reader", [("topic:orders-eu", "sub"), ("group:billing*", "sub")]),
        "boss": acc.user("acme", "boss", admin=True),
        "outsider": acc.user("other", "intruder", admin=True),
        "anonymous": None,
    }
    fronts = {"gRPC": grpc_decision, "Remoting": remoting_decision, "HTTP": http_decision}
    wrong = []
    for who, op, topic, group, allowed in MATRIX:
        for front, decide in fronts.items():
            if decide(auth_broker, principals[who], op, topic, group) != allowed:
                wrong.append((front, who, op, topic, group, "allowed" if not allowed else "refused"))
    assert not wrong, f"decisions that differ from the matrix: {wrong}"


def test_an_address_guessing_keys_is_held_back(two_tenants):
    broker, acc, (ak, sk) = two_tenants
    raw = Raw(broker.endpoint)
    route = s.QueryRouteRequest(topic=d.Resource(name="orders"), endpoints=endpoints(broker.endpoint))
    try:
        assert raw.stub.QueryRoute(route, metadata=signed(ak, sk, "b"), timeout=10).status.code == d.OK
        for i in range(100):
            r = raw.stub.QueryRoute(route, metadata=signed(ak, f"guess-{i}", "b"), timeout=10)
            assert r.status.code == d.UNAUTHORIZED
        held = raw.stub.QueryRoute(route, metadata=signed(ak, sk, "b"), timeout=10).status
        assert held.code == d.UNAUTHORIZED and "too many failed" in held.message, held
    finally:
        raw.close()
    # The same address on the HTTP listener: held back too, before its signature is checked.
    status, answer = Api(f"http://127.0.0.1:{broker.http_port}", ak, sk, namespace="b").call("GET", "/api/v1/topics")
    assert status == 401 and "too many failed" in answer["message"], answer
