"""A StrataMQ cluster of separate processes for end-to-end tests: PostgreSQL coordinator and
S3-compatible store (started once by infra/test.sh, named by STRATA_TEST_* variables), and
ingest/query/compactor nodes started here on free loopback ports."""

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import REPO, STRATA_BIN, free_port, wait_listening

# Auth is on by default in cluster roles; the failover tests run without it and
# test_tenancy.py runs a cluster with it.
AUTH_OFF = """
[auth]
enabled = false
"""

NODE_CONFIG = """
[cluster]
heartbeat_interval = "500ms"
node_ttl = "3s"
drain_period = "0s"
[compactor]
gc_interval = "2s"
compact_after = "1s"
compaction_interval = "1s"
max_file_records = 200
lease_ttl = "5s"
"""


def services():
    """(postgres URL, postgres dir, S3 endpoint, bucket), or skip when not provided."""
    pg = os.environ.get("STRATA_TEST_POSTGRES_URL")
    s3 = os.environ.get("STRATA_TEST_S3_ENDPOINT")
    if not (pg and s3):
        if os.environ.get("STRATA_REQUIRE_SERVICES"):
            pytest.fail("STRATA_REQUIRE_SERVICES is set but the PostgreSQL / S3 variables are not")
        pytest.skip("no PostgreSQL / S3 server configured (run through infra/test.sh)")
    return pg, os.environ.get("STRATA_TEST_POSTGRES_DIR"), s3, os.environ.get("STRATA_TEST_S3_BUCKET", "strata")


def fresh_database(base_url: str) -> str:
    name = "strata_e2e_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", base_url, "-qc", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return base_url.rsplit("/", 1)[0] + "/" + name


class Cluster:
    def __init__(self, tmp: Path, log_dir: Path, coordinator: str, store: str, s3_endpoint: str, auth=AUTH_OFF):
        self.tmp = tmp
        self.log_dir = log_dir
        self.coordinator = coordinator
        self.s3_endpoint = s3_endpoint
        self.store = store
        self.env = {**os.environ, "AWS_ENDPOINT": s3_endpoint, "RUST_LOG": os.environ.get("RUST_LOG", "info")}
        self.base_config = auth + NODE_CONFIG
        self.config = tmp / "node.toml"
        self.config.write_text(self.base_config)
        self.nodes = {}  # name -> [role, port, proc, starts]

    def start(self, name: str, role: str, extra_config: str = "", drain_period: str = "0s"):
        """Starts (or restarts) node `name`; `extra_config` is appended to its settings file;
        `drain_period`: how long it serves after SIGTERM (docs/deploy.md)."""
        if name not in self.nodes:
            self.nodes[name] = [role, free_port(), None, 0, free_port()]
        node = self.nodes[name]
        node[3] += 1
        config = self.config
        if extra_config or drain_period != "0s":
            config = self.tmp / f"{name}.toml"
            config.write_text(self.base_config.replace('drain_period = "0s"', f'drain_period = "{drain_period}"')
                              + extra_config)
        log = open(self.log_dir / f"{name}-{node[3]}.log", "wb")
        node[2] = subprocess.Popen(
            [STRATA_BIN, role, "--node-id", name, "--coordinator", self.coordinator, "--store", self.store,
             "--grpc-listen", f"127.0.0.1:{node[1]}", "--advertise", f"127.0.0.1:{node[1]}",
             "--http-listen", f"127.0.0.1:{node[4]}",
             "--data-dir", str(self.tmp / name), "--config", str(config)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env)
        wait_listening(node[2], node[1], log.name)
        return self

    def endpoint(self, name: str) -> str:
        return f"127.0.0.1:{self.nodes[name][1]}"

    def http(self, name: str) -> str:
        """The node's /metrics, /healthz and /readyz."""
        return f"http://127.0.0.1:{self.nodes[name][4]}"

    @property
    def endpoints(self) -> str:
        """The clients' access point: the compactor (never killed here); its routes send them
        to the ingest and query nodes. One address, not a `a;b` list: for several addresses
        grpc-python sends an :authority the h2 crate refuses (docs/protocol.md)."""
        return self.endpoint("compactor-1")

    def kill(self, name: str, sig=signal.SIGKILL):
        proc = self.nodes[name][2]
        proc.send_signal(sig)
        proc.wait(timeout=30)
        self.nodes[name][2] = None

    def cli(self, *args) -> str:
        node = next(n for n, v in self.nodes.items() if v[2] is not None)
        out = subprocess.run([STRATA_BIN, *args, "--endpoint", f"http://{self.endpoint(node)}"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def node_states(self) -> dict:
        """name -> (epoch, alive) from `strata node list`."""
        return {n["id"]: (n["epoch"], n["state"] == "alive") for n in self.node_list()}

    def node_list(self) -> list:
        """`strata node list` (id, roles, address, epoch, state, heartbeat)."""
        return json.loads(self.cli("node", "list", "--output", "json"))

    def stop_all(self):
        for name, node in self.nodes.items():
            if node[2] is not None:
                node[2].send_signal(signal.SIGTERM)
        for name, node in self.nodes.items():
            if node[2] is not None:
                assert node[2].wait(timeout=30) == 0, f"{name} exits cleanly on SIGTERM"
                node[2] = None


    def sql(self, query: str) -> str:
        out = subprocess.run(["psql", self.coordinator, "-tAc", query], capture_output=True, text=True, check=True)
        return out.stdout.strip()


def make_cluster(tmp_path, ingest=2, query=2, compactor=1, auth=AUTH_OFF) -> Cluster:
    pg, _pg_dir, s3, bucket = services()
    log_dir = Path(os.environ.get("STRATA_TEST_LOGS", tmp_path)) / tmp_path.name
    log_dir.mkdir(parents=True, exist_ok=True)
    c = Cluster(tmp_path, log_dir, fresh_database(pg), f"s3://{bucket}/{tmp_path.name}-{uuid.uuid4().hex[:8]}", s3,
                auth)
    for i in range(compactor):
        c.start(f"compactor-{i + 1}", "compactor")
    for i in range(ingest):
        c.start(f"ingest-{i + 1}", "ingest")
    for i in range(query):
        c.start(f"query-{i + 1}", "query")
    return c
