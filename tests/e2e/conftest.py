"""Fixtures for end-to-end tests: a `strata standalone` process on a free loopback port."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STRATA_BIN = os.environ.get("STRATA_BIN", str(REPO / "target" / "debug" / "strata"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(proc, port: int, log_name: str, timeout=60):
    """Waits until `proc` accepts connections on `port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}; see {log_name}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port} within {timeout} s; see {log_name}")


class Broker:
    """A standalone broker on a data dir that survives restarts."""

    def __init__(self, data_dir: Path, log_dir: Path, extra_args=(), env=None):
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.extra_args = list(extra_args)
        self.env = env or {}
        self.port = free_port()
        self.http_port = free_port()
        self.remoting_port = free_port()
        self.proc = None
        self.starts = 0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def name_server(self) -> str:
        """The 4.x Remoting address (name server and broker)."""
        return f"127.0.0.1:{self.remoting_port}"

    def start(self):
        assert Path(STRATA_BIN).exists(), f"build the broker first: {STRATA_BIN} is missing"
        self.starts += 1
        log = open(self.log_dir / f"strata-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(
            [STRATA_BIN, "standalone", "--data-dir", str(self.data_dir),
             "--grpc-listen", self.endpoint, "--http-listen", f"127.0.0.1:{self.http_port}",
             "--remoting-listen", self.name_server, *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info"), **self.env},
        )
        wait_listening(self.proc, self.port, log.name)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=30) -> int:
        """Stops the broker with `sig`; returns its exit code."""
        if self.proc is None:
            return 0
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self.proc = None
        return code

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cli(self, *args) -> str:
        """Runs `strata <args> --endpoint host:port` (as RocketMQ SDKs take it; the cluster's
        CLI calls use the URL form); returns stdout."""
        out = subprocess.run([STRATA_BIN, *args, "--endpoint", self.endpoint],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout


def _broker(tmp_path, backend, extra_args=(), config=None):
    log_dir = Path(os.environ.get("STRATA_TEST_LOGS", tmp_path)) / tmp_path.name
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {}
    if config:
        (tmp_path / "strata.toml").write_text(config)
        extra_args = [*extra_args, "--config", str(tmp_path / "strata.toml")]
    if backend == "postgres+s3":
        from cluster import fresh_database, services
        pg, _, s3, bucket = services()
        extra_args = [*extra_args, "--coordinator", fresh_database(pg), "--store", f"s3://{bucket}/{tmp_path.name}"]
        env["AWS_ENDPOINT"] = s3
    return Broker(tmp_path / "data", log_dir, extra_args, env).start()


# Standalone runs on its embedded defaults (SQLite, local folder) and on the cluster's
# backends (PostgreSQL, the S3 server): the same tests must pass on both.
BACKENDS = ["sqlite+local", "postgres+s3"]


@pytest.fixture(params=BACKENDS)
def broker(tmp_path, request):
    b = _broker(tmp_path, request.param)
    yield b
    if b.alive():
        assert b.stop() == 0, "the broker exits cleanly on SIGTERM"


# Short transaction check timings, a year of delay allowed, and a clock tests may move.
SEMANTICS_CONFIG = """
[ingest]
max_delay = "400days"
transaction_check_after = "1s"
transaction_check_interval = "1s"
[compactor]
transaction_max_checks = 2
[testing]
clock_control = true
"""


@pytest.fixture(params=BACKENDS)
def semantics_broker(tmp_path, request):
    """A broker for message-type tests (see SEMANTICS_CONFIG)."""
    b = _broker(tmp_path, request.param, config=SEMANTICS_CONFIG)
    yield b
    if b.alive():
        assert b.stop() == 0


@pytest.fixture(params=BACKENDS)
def strict_broker(tmp_path, request):
    """A broker that refuses unknown topics and groups (as cluster roles do)."""
    b = _broker(tmp_path, request.param, ["--no-auto-create"])
    yield b
    if b.alive():
        assert b.stop() == 0
