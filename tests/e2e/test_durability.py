"""Durability of the local-folder store (`strata standalone`): a WAL object is fsynced — the
staged file, then its directory after the rename into place — before SendMessage answers.
Power loss cannot be simulated here; the calls are observed with strace instead."""

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from conftest import STRATA_BIN, free_port, wait_listening
from raw import Raw

# `PID SECONDS.MICROS syscall(args) = result`, as `strace -f -ttt -y -o` writes them.
LINE = re.compile(r"^\d+\s+(?P<ts>\d+\.\d+)\s+(?P<call>\w+)\((?P<args>.*)\)\s+=\s+(?P<ret>-?\d+)")
TRACED = "trace=fsync,fdatasync,rename,renameat,renameat2,link,linkat"


def traced_calls(path):
    """(time, syscall, args) of each successful traced call."""
    calls = []
    for line in path.read_text().splitlines():
        m = LINE.match(line)
        if m and m["ret"] == "0":
            calls.append((float(m["ts"]), m["call"], m["args"]))
    return calls


def test_a_wal_object_is_fsynced_before_its_send_is_answered(tmp_path):
    strace = shutil.which("strace")
    assert strace, "strace is missing: infra/install-test-deps.sh installs it"
    port = free_port()
    trace = tmp_path / "strace.log"
    store = tmp_path / "data" / "store"
    with open(tmp_path / "strata.log", "wb") as log:
        proc = subprocess.Popen(
            [strace, "-f", "-qq", "-ttt", "-y", "-e", TRACED, "-o", str(trace),
             STRATA_BIN, "standalone", "--data-dir", str(tmp_path / "data"), "--grpc-listen", f"127.0.0.1:{port}",
             "--http-listen", "127.0.0.1:0", "--remoting-listen", "off"],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_listening(proc, port, log.name)
            raw = Raw(f"127.0.0.1:{port}")
            try:
                raw.send("durable", b"creates the topic")
                asked = time.time()
                reply = raw.send("durable", b"must survive power loss", message_id="01DURABLE")
                answered = time.time()
            finally:
                raw.close()
            assert reply.status.code == 20000, reply.status
        finally:
            # Stop the broker, not strace: strace exits with it.
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            for pid in children:
                os.kill(int(pid), signal.SIGTERM)
            proc.wait(timeout=30)

    window = [(ts, call, args) for ts, call, args in traced_calls(trace) if asked <= ts <= answered]
    wal = f"{store}/wal/"
    synced_files = [ts for ts, call, args in window
                    if call in ("fsync", "fdatasync") and wal in args and ".wal" in args]
    published = [ts for ts, call, args in window
                 if call in ("rename", "renameat", "renameat2", "link", "linkat") and wal in args]
    synced_dirs = [ts for ts, call, args in window
                   if call in ("fsync", "fdatasync") and wal in args and ".wal" not in args]
    assert synced_files, f"no fsync of a WAL object while the send was in flight: {window}"
    assert published, f"the WAL object was not renamed into place while the send was in flight: {window}"
    assert synced_dirs, f"no fsync of the WAL object's directory while the send was in flight: {window}"
    assert min(synced_files) <= min(published) <= max(synced_dirs) <= answered
