"""`strata bench` against a running broker: every message sent is received, the broker's
counters (store requests, coordinator transactions, RSS) and the floor are reported, and
acks are group-committed (fewer coordinator writes than messages even with one ack RPC per
message). Counts only: performance figures are for docs/benchmarks.md, never asserted here."""

import json
import subprocess

from conftest import STRATA_BIN


def bench(broker, *args):
    out = subprocess.run([STRATA_BIN, "bench", "--endpoint", broker.endpoint, "--output", "json", *args],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_produce_and_consume_moves_every_message_and_reports_costs(broker):
    r = bench(broker, "--duration", "2s", "--producers", "2", "--consumers", "2", "--size", "512",
              "--floor", "--floor-samples", "5")
    [p] = r["phases"]
    assert p["sent"] > 0 and p["send_errors"] == 0
    assert p["received"] == p["sent"] and p["missing"] == 0 and p["ack_errors"] == p["receive_errors"] == 0
    assert p["send_latency_ms"]["count"] == p["sent"]
    assert p["store_requests"]["put"] > 0
    assert p["coordinator_transactions"] > 0 and p["broker_rss_bytes"] > 0
    floor = r["floor"]
    assert floor["put_ms"]["count"] == floor["get_ms"]["count"] == floor["commit_ms"]["count"] == 5
    assert [v["phase"] for v in r["versus_floor"]] == ["produce + consume"]


def test_a_drained_backlog_costs_fewer_writes_than_messages(broker):
    r = bench(broker, "--drain", "--duration", "2s", "--producers", "4", "--batch", "8",
              "--consumers", "4", "--ack-batch", "1")
    produce, drain = r["phases"]
    assert produce["sent"] > 0 and produce["received"] == 0
    assert drain["received"] == produce["sent"] and drain["missing"] == 0 and drain["duplicates"] == 0
    assert drain["ack_errors"] == 0
    # One ack RPC per message, yet acks arriving together share a transaction, and a receive
    # claims up to 32 messages in one: far fewer than one write per message.
    assert drain["coordinator_writes"] < drain["received"] / 2, drain
