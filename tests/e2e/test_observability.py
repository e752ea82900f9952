"""Logs and spans: JSON log lines, spans exported over OTLP/HTTP (docs/tenancy.md, Observability).
The Prometheus endpoints are checked in test_metering.py and test_tenancy.py."""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from rocketmq.grpc_protocol import definition_pb2 as d
from rocketmq.grpc_protocol import service_pb2 as s

from conftest import Broker
from raw import HEADERS, Raw


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector that keeps what it is sent."""
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Collector.received.append((self.path, self.headers.get("Content-Type"), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_spans_go_to_an_otlp_collector_and_logs_can_be_json(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log_dir = Path(os.environ.get("STRATA_TEST_LOGS", tmp_path)) / tmp_path.name
    log_dir.mkdir(parents=True, exist_ok=True)
    endpoint = f"http://127.0.0.1:{server.server_port}"
    b = Broker(tmp_path / "data", log_dir, ["--log-format", "json", "--otlp-endpoint", endpoint]).start()
    try:
        raw = Raw(b.endpoint)
        try:
            msg = d.Message(topic=d.Resource(name="traced"), body=b"x")
            msg.system_properties.message_id = "01TRACED"
            msg.system_properties.message_type = d.NORMAL
            assert raw.stub.SendMessage(s.SendMessageRequest(messages=[msg]), metadata=HEADERS,
                                        timeout=10).status.code == d.OK
        finally:
            raw.close()
    finally:
        assert b.stop() == 0  # the batched spans are sent at shutdown
        server.shutdown()
    traces = [(ctype, body) for path, ctype, body in Collector.received if path == "/v1/traces"]
    assert traces, f"no OTLP export; got {[p for p, _, _ in Collector.received]}"
    assert all(ctype == "application/x-protobuf" for ctype, _ in traces)
    exported = b"".join(body for _, body in traces)
    assert b"strata" in exported, "the service name"
    assert b"wal_put" in exported, "the flush's span"

    lines = [line for p in log_dir.glob("strata-*.log") for line in p.read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        record = json.loads(line)
        assert {"timestamp", "level", "fields"} <= record.keys(), record
