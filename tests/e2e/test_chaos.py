"""The chaos checker in the suite (see chaos.py): a FIFO workload under a schedule of faults,
on a cluster (PostgreSQL, S3 server, 2 ingest, 2 query, 2 compactor nodes) and on
standalone. Acknowledged-but-lost and FIFO order violations must be 0; duplicates and
recovery times are reported (docs/reliability.md).

The CI run holds each fault a few seconds, once. A longer run is a documented command:
`CHAOS_ROUNDS=10 infra/test.sh -k chaos` (each round repeats the whole schedule)."""

import os
import signal
import subprocess
import time
from pathlib import Path

from chaos import Chaos, save
from cluster import make_cluster, services
from conftest import REPO, Broker

ROUNDS = int(os.environ.get("CHAOS_ROUNDS", "1"))


def progress(chaos: Chaos, more: int, timeout_s: float, what: str):
    """Waits until `more` further sends were acknowledged: the system recovered."""
    target = chaos.acked_count() + more
    deadline = time.monotonic() + timeout_s
    while chaos.acked_count() < target:
        assert time.monotonic() < deadline, f"no recovery within {timeout_s} s after {what}"
        time.sleep(0.1)


def check(name: str, report: dict):
    save(name, report)
    assert report["acknowledged"] > 0
    assert report["lost"] == 0, f"acknowledged but never delivered: {report['lost_ids']}"
    assert report["order_violations"] == 0


def test_chaos_cluster(tmp_path):
    _pg, pg_dir, _s3, _bucket = services()
    s3_dir = os.environ.get("STRATA_TEST_S3_DIR")
    cluster = make_cluster(tmp_path, ingest=2, query=2, compactor=2)
    try:
        cluster.cli("topic", "create", "chaos", "--type", "fifo", "--queues", "4")
        cluster.cli("group", "create", "chaos-group", "--fifo")
        chaos = Chaos(cluster.endpoints, "chaos", "chaos-group").start()
        progress(chaos, 100, 60, "start")

        def kill_and_restart(name, role):
            return (lambda: cluster.kill(name), lambda: cluster.start(name, role))

        def pause(name):
            proc = cluster.nodes[name][2]
            return (lambda: proc.send_signal(signal.SIGSTOP), lambda: proc.send_signal(signal.SIGCONT))

        def stall_store():
            pid = int(Path(s3_dir, "weed.pid").read_text())
            return (lambda: os.kill(pid, signal.SIGSTOP), lambda: os.kill(pid, signal.SIGCONT))

        def restart_postgres():
            return (lambda: subprocess.run(["infra/postgres.sh", "stop", pg_dir], check=True, cwd=REPO),
                    lambda: subprocess.run(["infra/postgres.sh", "start", pg_dir], check=True, cwd=REPO,
                                           capture_output=True))

        # node_ttl is 3 s: a node paused for 5 s is declared dead and must be fenced when it
        # wakes up, not commit.
        schedule = [
            ("kill -9 ingest", *kill_and_restart("ingest-1", "ingest"), 2),
            ("kill -9 query", *kill_and_restart("query-1", "query"), 2),
            ("kill -9 compactor", *kill_and_restart("compactor-2", "compactor"), 2),
            ("SIGSTOP ingest past node_ttl", *pause("ingest-2"), 5),
            ("SIGSTOP query past node_ttl", *pause("query-2"), 5),
            ("PostgreSQL restart", *restart_postgres(), 2),
        ]
        if s3_dir:
            schedule.append(("object store stalled", *stall_store(), 3))
        for round_no in range(ROUNDS):
            for name, inject, heal, hold in schedule:
                epoch_before = cluster.node_states().get("ingest-2", (0, True))[0]
                chaos.fault(f"{name} #{round_no + 1}", inject, heal, hold)
                progress(chaos, 50, 90, name)
                if name.startswith("SIGSTOP ingest"):
                    epoch, alive = cluster.node_states()["ingest-2"]
                    assert alive and epoch > epoch_before, "the zombie was fenced and registered again"
        report = chaos.finish()
        report["workload"] = "FIFO topic, 4 queues, 2 producers x 4 message groups, 2 consumers"
        check("cluster", report)
    finally:
        cluster.stop_all()


def test_chaos_standalone(tmp_path):
    log_dir = Path(os.environ.get("STRATA_TEST_LOGS", tmp_path)) / tmp_path.name
    log_dir.mkdir(parents=True, exist_ok=True)
    broker = Broker(tmp_path / "data", log_dir).start()
    try:
        broker.cli("topic", "create", "chaos", "--type", "fifo", "--queues", "4")
        broker.cli("group", "create", "chaos-group", "--fifo")
        chaos = Chaos(broker.endpoint, "chaos", "chaos-group").start()
        progress(chaos, 100, 60, "start")
        for round_no in range(ROUNDS):
            for i in range(3):
                chaos.fault(f"kill -9 standalone #{round_no * 3 + i + 1}",
                            lambda: broker.stop(signal.SIGKILL), broker.start, 1)
                progress(chaos, 50, 90, "kill -9 standalone")
        report = chaos.finish()
        report["workload"] = "FIFO topic, 4 queues, 2 producers x 4 message groups, 2 consumers"
        check("standalone", report)
    finally:
        if broker.alive():
            broker.stop()
