"""The official Node.js client (rocketmq-client-nodejs 1.0.8) against `strata standalone`."""

import subprocess
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def test_node_client_roundtrip(broker):
    out = subprocess.run(["node", "roundtrip.js", broker.endpoint, "e2e-node", "e2e-node-group", "150"],
                         cwd=NODE_DIR, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "OK 150 messages intact" in out.stdout


def test_node_client_message_types(semantics_broker):
    b = semantics_broker
    for topic, kind in [("node-fifo", "fifo"), ("node-delay", "delay"), ("node-tx", "transaction"),
                        ("node-retry", "normal")]:
        b.cli("topic", "create", topic, "--type", kind, "--queues", "2")
    b.cli("group", "create", "node-fifo-g", "--fifo")
    b.cli("group", "create", "node-retry-g", "--max-attempts", "2")
    out = subprocess.run(["node", "semantics.js", b.endpoint], cwd=NODE_DIR, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "OK fifo, delay, recall, transactions, dead letters" in out.stdout


def test_node_lite_push_consumer(tmp_path):
    # One backend: the client's shutdown waits out its last long poll (20 s), and the lite
    # machinery is covered on both by test_lite.py.
    from conftest import _broker
    b = _broker(tmp_path, "sqlite+local")
    try:
        b.cli("topic", "create", "node-chat", "--type", "lite")
        out = subprocess.run(["node", "lite.js", b.endpoint], cwd=NODE_DIR, capture_output=True, text=True,
                             timeout=300)
    finally:
        assert b.stop() == 0
    assert out.returncode == 0, out.stdout + out.stderr
    assert "OK lite 40 messages in order" in out.stdout
