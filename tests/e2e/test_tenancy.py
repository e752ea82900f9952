"""Tenants, AK/SK authentication and the ACL, with the official Python and Node clients, the
CLI and raw gRPC requests (docs/tenancy.md)."""

import json
import os
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from rocketmq import ClientConfiguration, Credentials, FilterExpression, Producer, SimpleConsumer
from rocketmq.grpc_protocol import definition_pb2 as d
from rocketmq.grpc_protocol import service_pb2 as s

from clients import make_message
from conftest import STRATA_BIN, Broker
from raw import HEADERS, Raw

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
ROOT = ("root-ak", "root-secret")


def signed(ak: str, sk: str, namespace: str = ""):
    """Request headers signed as the Java and Node clients sign them."""
    import hashlib
    import hmac
    date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    sig = hmac.new(sk.encode(), date.encode(), hashlib.sha1).hexdigest().upper()
    auth = f"MQv2-HMAC-SHA1 Credential={ak}, SignedHeaders=x-mq-date-time, Signature={sig}"
    return [*HEADERS, ("x-mq-date-time", date), ("authorization", auth), ("x-mq-namespace", namespace)]


def printed_keys(out: str):
    """(access key, secret key) as `strata user create` prints generated keys."""
    keys = dict(line.split(": ", 1) for line in out.splitlines() if line.startswith(("access key", "secret key")))
    return keys["access key"], keys["secret key"].split(" ")[0]


class Accounts:
    """The CLI against an auth-on broker, signed in as the operator or as someone else."""

    def __init__(self, broker: Broker):
        self.broker = broker

    def run(self, *args, creds=ROOT, check=True):
        env = {**os.environ, "STRATA_ACCESS_KEY": creds[0], "STRATA_SECRET_KEY": creds[1]}
        if creds == (None, None):
            env.pop("STRATA_ACCESS_KEY"), env.pop("STRATA_SECRET_KEY")
        out = subprocess.run([STRATA_BIN, *args, "--endpoint", self.broker.endpoint],
                             capture_output=True, text=True, timeout=30, env=env)
        if check:
            assert out.returncode == 0, out.stderr
        return out

    def user(self, tenant: str, name: str, grants=(), admin=False):
        """Creates a user with generated keys and its grants; returns (ak, sk)."""
        out = self.run("user", "create", name, "--tenant", tenant, *(["--admin"] if admin else [])).stdout
        ak, sk = printed_keys(out)
        for resource, actions in grants:
            self.run("acl", "grant", "--tenant", tenant, "--user", name, "--resource", resource,
                     "--actions", actions)
        return ak, sk


@pytest.fixture
def auth_broker(tmp_path):
    log_dir = Path(os.environ.get("STRATA_TEST_LOGS", tmp_path)) / tmp_path.name
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {"STRATA_AUTH_ADMIN_ACCESS_KEY": ROOT[0], "STRATA_AUTH_ADMIN_SECRET_KEY": ROOT[1]}
    b = Broker(tmp_path / "data", log_dir, ["--auth"], env).start()
    yield b
    if b.alive():
        assert b.stop() == 0


def producer(endpoint, namespace, ak="", sk="", topic=None):
    p = Producer(ClientConfiguration(endpoint, Credentials(ak, sk), namespace), (topic,) if topic else ())
    p.startup()
    return p


def status_of(stream_or_response):
    """The status code of a unary response or of the first status in a stream."""
    if hasattr(stream_or_response, "status"):
        return stream_or_response.status.code
    for r in stream_or_response:
        if r.HasField("status"):
            return r.status.code
    raise AssertionError("no status in the answer")


def test_python_client_with_right_wrong_and_missing_credentials(auth_broker):
    acc = Accounts(auth_broker)
    acc.run("tenant", "create", "acme")
    ak, sk = acc.user("acme", "alice", [("topic:orders", "pub,sub"), ("group:billing", "sub")])

    p = producer(auth_broker.endpoint, "acme", ak, sk, "orders")
    try:
        receipt = p.send(make_message("orders", 1, b"hello"))
        assert receipt.message_id
    finally:
        p.shutdown()
    c = SimpleConsumer(ClientConfiguration(auth_broker.endpoint, Credentials(ak, sk), "acme"), "billing",
                       {"orders": FilterExpression()})
    c.startup()
    try:
        got = []
        deadline = time.monotonic() + 30
        while not got and time.monotonic() < deadline:
            got = c.receive(16, 30)
        assert [m.body for m in got] == [b"hello"]
        c.ack(got[0])
    finally:
        c.shutdown()

    for creds in [(ak, "wrong-secret"), ("", ""), ("unknown-ak", sk)]:
        p = Producer(ClientConfiguration(auth_broker.endpoint, Credentials(*creds), "acme"), ())
        p.startup()
        try:
            with pytest.raises(Exception):
                p.send(make_message("orders", 2, b"refused"))
        finally:
            p.shutdown()

    # Raw requests carry the code the clients hide: 40100 without or with bad credentials.
    raw = Raw(auth_broker.endpoint)
    try:
        topic = d.Resource(name="orders", resource_namespace="acme")
        route = s.QueryRouteRequest(topic=topic, endpoints=d.Endpoints(
            scheme=d.IPv4, addresses=[d.Address(host="127.0.0.1", port=auth_broker.port)]))
        assert raw.stub.QueryRoute(route, metadata=HEADERS, timeout=10).status.code == d.UNAUTHORIZED
        bad = signed(ak, "nope", "acme")
        assert raw.stub.QueryRoute(route, metadata=bad, timeout=10).status.code == d.UNAUTHORIZED
        good = signed(ak, sk, "acme")
        assert raw.stub.QueryRoute(route, metadata=good, timeout=10).status.code == d.OK
        # A Telemetry stream with bad credentials is answered with the code, then ends.
        answers = list(raw.stub.Telemetry(iter([]), metadata=bad, timeout=10))
        assert [a.status.code for a in answers] == [d.UNAUTHORIZED]
    finally:
        raw.close()
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{auth_broker.http_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    failures = [line for line in text.splitlines()
                if line.startswith('strata_front_auth_failures_total{reason="unauthenticated"}')]
    assert failures and float(failures[0].split()[-1]) >= 5, failures
    assert auth_broker.alive()


def test_node_client_with_right_wrong_and_missing_credentials(auth_broker):
    acc = Accounts(auth_broker)
    acc.run("tenant", "create", "acme")
    ak, sk = acc.user("acme", "nodeuser", [("topic:node-*", "pub")])

    def send(ak, sk):
        out = subprocess.run(["node", "auth.js", auth_broker.endpoint, "acme", "node-orders", ak, sk],
                             cwd=NODE_DIR, capture_output=True, text=True, timeout=120)
        return out.stdout.strip() + out.stderr[-2000:]

    assert send(ak, sk).startswith("SENT "), send(ak, sk)
    for bad in [(ak, "wrong"), ("-", "-")]:
        out = send(*bad)
        assert out.startswith("ERROR 40100"), out


def test_same_topic_in_two_tenants_never_crosses(auth_broker):
    acc = Accounts(auth_broker)
    users = {}
    for tenant in ["acme", "globex"]:
        acc.run("tenant", "create", tenant)
        users[tenant] = acc.user(tenant, "app", [("topic:orders", "pub,sub"), ("group:g", "sub")])
    for tenant, (ak, sk) in users.items():
        p = producer(auth_broker.endpoint, tenant, ak, sk, "orders")
        try:
            for i in range(5):
                p.send(make_message("orders", i, f"{tenant}-{i}".encode()))
        finally:
            p.shutdown()
    for tenant, (ak, sk) in users.items():
        c = SimpleConsumer(ClientConfiguration(auth_broker.endpoint, Credentials(ak, sk), tenant), "g",
                           {"orders": FilterExpression()})
        c.startup()
        try:
            bodies = set()
            deadline = time.monotonic() + 30
            while len(bodies) < 5 and time.monotonic() < deadline:
                for m in c.receive(16, 30):
                    bodies.add(m.body.decode())
                    c.ack(m)
            assert bodies == {f"{tenant}-{i}" for i in range(5)}
            assert not c.receive(16, 30), "nothing of the other tenant"
        finally:
            c.shutdown()

    # A user of one tenant cannot act in the other, even naming it.
    raw = Raw(auth_broker.endpoint)
    try:
        ak, sk = users["acme"]
        route = s.QueryRouteRequest(topic=d.Resource(name="orders", resource_namespace="globex"))
        assert raw.stub.QueryRoute(route, metadata=signed(ak, sk, "globex"), timeout=10).status.code == d.FORBIDDEN
    finally:
        raw.close()
    listed = acc.run("topic", "list", "--tenant", "acme", creds=users["globex"], check=False)
    assert listed.returncode != 0 and "belongs to tenant" in listed.stderr, listed.stderr


def test_foreign_and_forged_receipt_handles_are_refused(auth_broker):
    acc = Accounts(auth_broker)
    users = {}
    for tenant in ["acme", "globex"]:
        acc.run("tenant", "create", tenant)
        users[tenant] = acc.user(tenant, "app", [("topic:orders", "pub,sub"), ("group:g", "sub")])
    raw = Raw(auth_broker.endpoint)
    try:
        acme = signed(*users["acme"], "acme")
        msg = d.Message(topic=d.Resource(name="orders", resource_namespace="acme"), body=b"x")
        msg.system_properties.message_id = "01TENANCY"
        msg.system_properties.message_type = d.NORMAL
        sent = raw.stub.SendMessage(s.SendMessageRequest(messages=[msg]), metadata=acme, timeout=10)
        assert sent.status.code == d.OK
        req = s.ReceiveMessageRequest(group=d.Resource(name="g", resource_namespace="acme"),
                                      message_queue=d.MessageQueue(topic=d.Resource(name="orders"), id=-1),
                                      batch_size=1)
        req.invisible_duration.seconds = 30
        req.long_polling_timeout.seconds = 5
        handle = next(r.message.system_properties.receipt_handle
                      for r in raw.stub.ReceiveMessage(req, metadata=acme, timeout=20) if r.HasField("message"))

        def ack(namespace, creds, h):
            a = s.AckMessageRequest(group=d.Resource(name="g", resource_namespace=namespace),
                                    topic=d.Resource(name="orders", resource_namespace=namespace),
                                    entries=[s.AckMessageEntry(message_id="x", receipt_handle=h)])
            return raw.stub.AckMessage(a, metadata=signed(*creds, namespace), timeout=10).status.code

        assert ack("globex", users["globex"], handle) == d.INVALID_RECEIPT_HANDLE, "another tenant's handle"
        forged = handle[:-4] + ("AAAA" if not handle.endswith("AAAA") else "BBBB")
        assert ack("acme", users["acme"], forged) == d.INVALID_RECEIPT_HANDLE
        assert ack("acme", users["acme"], handle) == d.OK
    finally:
        raw.close()


def test_acl_matrix(auth_broker):
    acc = Accounts(auth_broker)
    acc.run("tenant", "create", "acme")
    writer = acc.user("acme", "writer", [("topic:orders-*", "pub")])
    reader = acc.user("acme", "reader", [("topic:orders-eu", "sub"), ("group:billing*", "sub")])
    boss = acc.user("acme", "boss", admin=True)
    raw = Raw(auth_broker.endpoint)
    try:
        def send(creds, topic):
            msg = d.Message(topic=d.Resource(name=topic, resource_namespace="acme"), body=b"x")
            msg.system_properties.message_id = "01ACL"
            msg.system_properties.message_type = d.NORMAL
            return raw.stub.SendMessage(s.SendMessageRequest(messages=[msg]), metadata=signed(*creds, "acme"),
                                        timeout=10).status.code

        def receive(creds, topic, group):
            req = s.ReceiveMessageRequest(group=d.Resource(name=group, resource_namespace="acme"),
                                          message_queue=d.MessageQueue(topic=d.Resource(name=topic), id=-1),
                                          batch_size=1)
            req.invisible_duration.seconds = 30
            req.long_polling_timeout.seconds = 1
            return status_of(raw.stub.ReceiveMessage(req, metadata=signed(*creds, "acme"), timeout=20))

        assert send(writer, "orders-eu") == d.OK, "prefix grant"
        assert send(writer, "orders-us") == d.OK
        assert send(writer, "payments") == d.FORBIDDEN, "outside the prefix"
        assert receive(writer, "orders-eu", "billing") == d.FORBIDDEN, "pub without sub"
        assert send(reader, "orders-eu") == d.FORBIDDEN, "sub without pub"
        assert receive(reader, "orders-eu", "billing-1") == d.OK
        assert receive(reader, "orders-eu", "shipping") == d.FORBIDDEN, "group not granted"
        assert receive(reader, "orders-us", "billing") == d.FORBIDDEN, "topic not granted"
        assert send(boss, "anything") == d.OK, "a tenant admin may do anything in its tenant"
    finally:
        raw.close()

    # Admin RPCs: the operator and tenant admins only.
    denied = acc.run("topic", "create", "new-topic", "--tenant", "acme", creds=writer, check=False)
    assert denied.returncode != 0 and "may not admin" in denied.stderr, denied.stderr
    acc.run("topic", "create", "new-topic", "--tenant", "acme", creds=boss)
    assert "new-topic" in acc.run("topic", "list", "--tenant", "acme", creds=boss).stdout
    assert acc.run("tenant", "list", creds=boss, check=False).returncode != 0, "tenants: the operator only"
    assert acc.run("user", "list", "--tenant", "acme", creds=reader, check=False).returncode != 0
    assert acc.run("tenant", "list", creds=(None, None), check=False).returncode != 0, "no credentials"
    assert acc.run("tenant", "list", creds=("root-ak", "bad"), check=False).returncode != 0
    # Revoking takes effect at once on this node.
    acc.run("acl", "revoke", "--tenant", "acme", "--user", "writer", "--resource", "topic:orders-*",
            "--actions", "pub")
    raw = Raw(auth_broker.endpoint)
    try:
        msg = d.Message(topic=d.Resource(name="orders-eu", resource_namespace="acme"), body=b"x")
        msg.system_properties.message_id = "01ACL2"
        req = s.SendMessageRequest(messages=[msg])
        assert raw.stub.SendMessage(req, metadata=signed(*writer, "acme"), timeout=10).status.code == d.FORBIDDEN
    finally:
        raw.close()
    grants = json.loads(acc.run("acl", "list", "--tenant", "acme", "--output", "json").stdout)
    assert {"namespace": "acme", "user": "reader", "resource": "topic:orders-eu", "actions": "sub"} in grants, grants


def test_secrets_are_sealed_at_rest_and_never_logged(auth_broker):
    acc = Accounts(auth_broker)
    acc.run("tenant", "create", "acme")
    acc.run("user", "create", "carol", "--tenant", "acme", "--access-key", "carol-ak",
            "--secret-key", "carol-very-secret-key")
    auth_broker.stop()
    db = b"".join(p.read_bytes() for p in (auth_broker.data_dir / "meta").iterdir())
    assert b"carol-ak" in db and b"carol-very-secret-key" not in db
    logs = b"".join(p.read_bytes() for p in auth_broker.log_dir.glob("strata-*.log"))
    assert b"carol-very-secret-key" not in logs and b"root-secret" not in logs
    key = (auth_broker.data_dir / "auth" / "at-rest.key")
    assert oct(key.stat().st_mode & 0o777) == "0o600"


def make_certificates(d: Path):
    """A test CA and a server certificate for 127.0.0.1 signed by it."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "2", "-subj", "/CN=strata-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                               "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return d / "server.pem", d / "server.key", d / "ca.pem"


def test_tls_with_the_python_client_and_auth(tmp_path):
    cert, key, ca = make_certificates(tmp_path)
    log_dir = Path(os.environ.get("STRATA_TEST_LOGS", tmp_path)) / tmp_path.name
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {"STRATA_AUTH_ADMIN_ACCESS_KEY": ROOT[0], "STRATA_AUTH_ADMIN_SECRET_KEY": ROOT[1]}
    b = Broker(tmp_path / "data", log_dir, ["--auth", "--tls-cert", str(cert), "--tls-key", str(key)], env).start()
    try:
        cli_env = {**os.environ, "STRATA_ACCESS_KEY": ROOT[0], "STRATA_SECRET_KEY": ROOT[1], "STRATA_CA_CERT": str(ca)}

        def cli(*args):
            out = subprocess.run([STRATA_BIN, *args, "--endpoint", f"https://127.0.0.1:{b.port}"],
                                 capture_output=True, text=True, timeout=30, env=cli_env)
            assert out.returncode == 0, out.stderr
            return out.stdout

        out = cli("user", "create", "tls")
        ak, sk = printed_keys(out)
        cli("acl", "grant", "--user", "tls", "--resource", "topic:secure", "--actions", "pub,sub")
        cli("acl", "grant", "--user", "tls", "--resource", "group:secure-g", "--actions", "sub")
        run = subprocess.run([os.sys.executable, str(Path(__file__).parent / "tls_client.py"), b.endpoint, "secure",
                              "secure-g", ak, sk], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(ca)})
        assert run.returncode == 0 and run.stdout.startswith("OK "), run.stdout + run.stderr[-3000:]

        # A plaintext client cannot talk to the TLS port; the broker goes on.
        plain = Raw(b.endpoint)
        try:
            with pytest.raises(grpc.RpcError):
                plain.stub.QueryRoute(s.QueryRouteRequest(topic=d.Resource(name="secure")), metadata=HEADERS,
                                      timeout=5)
        finally:
            plain.close()
        assert b.alive()
    finally:
        if b.alive():
            assert b.stop() == 0


CLUSTER_AUTH = f"""
[auth]
admin_access_key = "{ROOT[0]}"
admin_secret_key = "{ROOT[1]}"
at_rest_key = "{'5a' * 32}"
"""


def test_cluster_runs_with_auth_on_by_default_and_forwards_credentials(tmp_path):
    from cluster import make_cluster
    cluster = make_cluster(tmp_path, ingest=1, query=1, compactor=1, auth=CLUSTER_AUTH)
    try:
        env = {**os.environ, "STRATA_ACCESS_KEY": ROOT[0], "STRATA_SECRET_KEY": ROOT[1]}

        def cli(node, *args):
            out = subprocess.run([STRATA_BIN, *args, "--endpoint", f"http://{cluster.endpoint(node)}"],
                                 capture_output=True, text=True, timeout=30, env=env)
            assert out.returncode == 0, out.stderr
            return out.stdout

        cli("ingest-1", "tenant", "create", "acme")
        out = cli("ingest-1", "user", "create", "app", "--tenant", "acme")
        ak, sk = printed_keys(out)
        # Grants made on another node: every node reads the same accounts.
        cli("query-1", "topic", "create", "orders", "--tenant", "acme", "--queues", "2")
        cli("query-1", "group", "create", "g", "--tenant", "acme")
        cli("query-1", "acl", "grant", "--tenant", "acme", "--user", "app", "--resource", "topic:orders",
            "--actions", "pub,sub")
        cli("query-1", "acl", "grant", "--tenant", "acme", "--user", "app", "--resource", "group:g",
            "--actions", "sub")
        anonymous = subprocess.run([STRATA_BIN, "tenant", "list", "--endpoint", f"http://{cluster.endpoint('ingest-1')}"],
                                   capture_output=True, text=True, timeout=30,
                                   env={k: v for k, v in os.environ.items() if not k.startswith("STRATA_")})
        assert anonymous.returncode != 0, "auth is on by default in cluster roles"

        # Clients start at the compactor; its routes send them to the ingest and query nodes.
        p = producer(cluster.endpoints, "acme", ak, sk, "orders")
        try:
            for i in range(20):
                p.send(make_message("orders", i, f"m{i}".encode()))
        finally:
            p.shutdown()
        c = SimpleConsumer(ClientConfiguration(cluster.endpoints, Credentials(ak, sk), "acme"), "g",
                           {"orders": FilterExpression()})
        c.startup()
        try:
            got = set()
            deadline = time.monotonic() + 60
            while len(got) < 20 and time.monotonic() < deadline:
                for m in c.receive(16, 30):
                    got.add(m.body)
                    c.ack(m)
            assert got == {f"m{i}".encode() for i in range(20)}
        finally:
            c.shutdown()
        # A send to the query node is passed on to the ingest node with its credentials: signed
        # right it is stored, signed wrong the ingest node refuses it.
        raw = Raw(cluster.endpoint("query-1"))
        try:
            msg = d.Message(topic=d.Resource(name="orders", resource_namespace="acme"), body=b"x")
            msg.system_properties.message_id = "01CLUSTERAUTH"
            msg.system_properties.message_type = d.NORMAL
            req = s.SendMessageRequest(messages=[msg])
            assert raw.stub.SendMessage(req, metadata=signed(ak, sk, "acme"), timeout=10).status.code == d.OK
            assert raw.stub.SendMessage(req, metadata=signed(ak, "bad", "acme"), timeout=10).status.code \
                == d.UNAUTHORIZED
        finally:
            raw.close()
    finally:
        cluster.stop_all()


def test_cluster_with_tls_passes_requests_on_over_tls(tmp_path):
    """Clients reach a TLS cluster through any node, and a node lacking a role passes the
    request on over TLS, trusting the nodes' shared certificate."""
    from cluster import make_cluster
    cert, key, ca = make_certificates(tmp_path)
    tls = f'[tls]\ncert_file = "{cert}"\nkey_file = "{key}"\nca_file = "{ca}"\n'
    cluster = make_cluster(tmp_path, ingest=1, query=1, compactor=1, auth=CLUSTER_AUTH + tls)
    try:
        env = {**os.environ, "STRATA_ACCESS_KEY": ROOT[0], "STRATA_SECRET_KEY": ROOT[1], "STRATA_CA_CERT": str(ca)}

        def cli(*args):
            out = subprocess.run([STRATA_BIN, *args, "--endpoint", f"https://{cluster.endpoint('query-1')}"],
                                 capture_output=True, text=True, timeout=30, env=env)
            assert out.returncode == 0, out.stderr
            return out.stdout

        out = cli("user", "create", "app")
        ak, sk = printed_keys(out)
        cli("topic", "create", "secure", "--queues", "2")
        cli("group", "create", "secure-g")
        cli("acl", "grant", "--user", "app", "--resource", "topic:secure", "--actions", "pub,sub")
        cli("acl", "grant", "--user", "app", "--resource", "group:secure-g", "--actions", "sub")
        run = subprocess.run([os.sys.executable, str(Path(__file__).parent / "tls_client.py"), cluster.endpoints,
                              "secure", "secure-g", ak, sk], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(ca)})
        assert run.returncode == 0 and run.stdout.startswith("OK "), run.stdout + run.stderr[-3000:]

        # A send to the query node (no ingest role) is passed on to the ingest node over TLS.
        channel = grpc.secure_channel(cluster.endpoint("query-1"),
                                      grpc.ssl_channel_credentials(root_certificates=ca.read_bytes()))
        try:
            from rocketmq.grpc_protocol import service_pb2_grpc
            stub = service_pb2_grpc.MessagingServiceStub(channel)
            msg = d.Message(topic=d.Resource(name="secure"), body=b"forwarded")
            msg.system_properties.message_id = "01FORWARDEDTLS"
            msg.system_properties.message_type = d.NORMAL
            sent = stub.SendMessage(s.SendMessageRequest(messages=[msg]), metadata=signed(ak, sk), timeout=10)
            assert sent.status.code == d.OK, sent.status
        finally:
            channel.close()
    finally:
        cluster.stop_all()
