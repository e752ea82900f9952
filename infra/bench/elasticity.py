"""Elasticity benchmark (docs/deploy.md): a local cluster under a rising load from the official
Python client; one ingest and one query node join, then the first two leave (SIGTERM, the
graceful drain). Prints a timeline, writes it as CSV and as an SVG plot, and checks that no
send, receive or ack failed and that every acknowledged message was delivered.

    .venv/bin/python infra/bench/elasticity.py [OUT_DIR] [--bin target/release/strata]

Not a CI step (about 4 minutes). Needs what infra/test.sh installs (.venv, PostgreSQL,
SeaweedFS). Timeline (seconds): 0 ingest-1 + query-1 and a first producer; a producer more
every RAMP_EVERY up to PRODUCERS; JOIN_AT ingest-2 + query-2 join; LEAVE_AT ingest-1 +
query-1 get SIGTERM (they drain for DRAIN, then stop); STOP_AT the producers stop; then the
consumers receive what is left.
"""

import argparse
import csv
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOPIC, GROUP = "elastic", "elastic-group"
PRODUCERS, RAMP_EVERY, RATE = 4, 15, 150  # producers, seconds between them, messages/s each
CONSUMERS = 2
JOIN_AT, LEAVE_AT, STOP_AT = 60, 110, 190
DRAIN = "35s"
NODE_CONFIG = """
[auth]
enabled = false
[cluster]
heartbeat_interval = "1s"
node_ttl = "5s"
drain_period = "{drain}"
"""
COUNTERS = ("sent", "send_errors", "received", "receive_errors", "ack_errors")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc, what: str):
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"{what} exited; see its log")
            time.sleep(0.1)
    sys.exit(f"{what} did not start listening")


class Cluster:
    def __init__(self, binary: str, out: Path, work: Path):
        self.bin, self.out, self.work = binary, out, work
        self.env = {**os.environ, "AWS_ACCESS_KEY_ID": "strata", "AWS_SECRET_ACCESS_KEY": "strata-secret",
                    "AWS_REGION": "us-east-1", "RUST_LOG": "info"}
        pg_port, s3_port = free_port(), free_port()
        self.pg = subprocess.run([REPO / "infra/postgres.sh", "start", work / "pg", str(pg_port)], check=True,
                                 capture_output=True, text=True).stdout.strip()
        self.s3 = subprocess.run([REPO / "infra/s3-server.sh", "start", work / "s3", "strata", str(s3_port)],
                                 check=True, capture_output=True, text=True).stdout.strip()
        self.env["AWS_ENDPOINT"] = self.s3
        self.nodes = {}  # name -> (process, grpc port, http port)

    def start(self, name: str, role: str):
        grpc, http = free_port(), free_port()
        config = self.work / f"{name}.toml"
        config.write_text(NODE_CONFIG.format(drain=DRAIN))
        log = open(self.out / f"{name}.log", "wb")
        proc = subprocess.Popen(
            [self.bin, role, "--node-id", name, "--coordinator", self.pg, "--store", "s3://strata/elastic",
             "--grpc-listen", f"127.0.0.1:{grpc}", "--advertise", f"127.0.0.1:{grpc}",
             "--http-listen", f"127.0.0.1:{http}", "--data-dir", self.work / name, "--config", config],
            stdout=log, stderr=subprocess.STDOUT, env=self.env)
        wait_port(grpc, proc, name)
        self.nodes[name] = (proc, grpc, http)

    def endpoint(self, name: str) -> str:
        return f"127.0.0.1:{self.nodes[name][1]}"

    def cli(self, *args):
        subprocess.run([self.bin, *args, "--endpoint", f"http://{self.endpoint('compactor-1')}"], check=True,
                       capture_output=True, env=self.env)

    def messages(self, name: str) -> int:
        """Messages the node took in (ingest) or delivered (query), from its /metrics."""
        proc, _, http = self.nodes[name]
        if proc.poll() is not None:
            return 0
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=2).read().decode()
        except OSError:
            return 0
        metric = "strata_ingest_messages_total" if name.startswith("ingest") else "strata_query_messages_total"
        return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(metric)))

    def stop_all(self):
        for proc, _, _ in self.nodes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc, _, _ in self.nodes.values():
            proc.wait(timeout=120)
        subprocess.run([REPO / "infra/s3-server.sh", "stop", self.work / "s3"], capture_output=True)
        subprocess.run([REPO / "infra/postgres.sh", "stop", self.work / "pg"], capture_output=True)


def producer(endpoint, counters, stop, ids_file):
    from rocketmq import ClientConfiguration, Credentials, Message, Producer
    p = Producer(ClientConfiguration(endpoint, Credentials()), (TOPIC,))
    p.startup()
    with open(ids_file, "w") as ids:
        next_at = time.monotonic()
        while not stop.is_set():
            m = Message()
            m.topic, m.body = TOPIC, b"x" * 1024
            try:
                ids.write(p.send(m).message_id + "\n")
                with counters.get_lock():
                    counters[0] += 1
            except Exception as e:  # noqa: BLE001 - counted, the benchmark's finding
                with counters.get_lock():
                    counters[1] += 1
                print(f"send failed: {e}", file=sys.stderr)
            next_at += 1 / RATE
            time.sleep(max(0.0, next_at - time.monotonic()))
    p.shutdown()


def consumer(endpoint, counters, stop, ids_file):
    from rocketmq import ClientConfiguration, Credentials, FilterExpression, SimpleConsumer
    c = SimpleConsumer(ClientConfiguration(endpoint, Credentials()), GROUP, {TOPIC: FilterExpression("*")},
                       await_duration=5)
    c.startup()
    with open(ids_file, "w") as ids:
        while not stop.is_set():
            try:
                messages = c.receive(32, 30)
            except Exception as e:  # noqa: BLE001
                with counters.get_lock():
                    counters[3] += 1
                print(f"receive failed: {e}", file=sys.stderr)
                continue
            for m in messages:
                try:
                    c.ack(m)
                except Exception as e:  # noqa: BLE001
                    with counters.get_lock():
                        counters[4] += 1
                    print(f"ack failed: {e}", file=sys.stderr)
                ids.write(m.message_id + "\n")
            with counters.get_lock():
                counters[2] += len(messages)
    c.shutdown()


def smooth(rows, key, window=5):
    """`key` averaged over the last `window` seconds (receives come in batches of 32)."""
    values = [r[key] for r in rows]
    return [sum(values[max(0, i - window + 1):i + 1]) / len(values[max(0, i - window + 1):i + 1])
            for i in range(len(values))]


def svg(rows, events, path: Path):
    """Messages/s per node over time, 5-second averages (ingest solid, query dashed), events as
    vertical lines."""
    series = [k for k in rows[0] if k.startswith(("ingest-", "query-"))] + ["clients_sent"]
    smoothed = {k: smooth(rows, k) for k in series}
    colors = {"ingest-1": "#1f77b4", "ingest-2": "#ff7f0e", "query-1": "#1f77b4", "query-2": "#ff7f0e",
              "clients_sent": "#2ca02c"}
    w, h, left, top, right, bottom = 820, 420, 60, 30, 150, 50
    tmax = rows[-1]["t"] or 1
    ymax = max(max(v) for v in smoothed.values()) * 1.25 or 1
    x = lambda t: left + (w - left - right) * t / tmax  # noqa: E731
    y = lambda v: h - bottom - (h - top - bottom) * v / ymax  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
           f'font-size="12"><rect width="{w}" height="{h}" fill="white"/>',
           f'<line x1="{left}" y1="{y(0)}" x2="{w - right}" y2="{y(0)}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{y(0)}" stroke="black"/>',
           f'<text x="{(left + w - right) / 2}" y="{h - 12}" text-anchor="middle">seconds</text>',
           f'<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" text-anchor="middle">messages/s</text>']
    step = 10 ** max(0, len(str(int(ymax))) - 1)
    for v in range(0, int(ymax) + 1, step if ymax / step >= 3 else max(1, step // 2)):
        out.append(f'<line x1="{left}" y1="{y(v)}" x2="{w - right}" y2="{y(v)}" stroke="#eee"/>'
                   f'<text x="{left - 6}" y="{y(v) + 4}" text-anchor="end">{v}</text>')
    for t in range(0, int(tmax) + 1, 30):
        out.append(f'<text x="{x(t)}" y="{y(0) + 16}" text-anchor="middle">{t}</text>')
    for i, (t, label) in enumerate(events):
        out.append(f'<line x1="{x(t)}" y1="{top}" x2="{x(t)}" y2="{y(0)}" stroke="#999" stroke-dasharray="3,3"/>'
                   f'<text x="{x(t) + 3}" y="{top + 10 + 12 * (i % 3)}" font-size="10" fill="#555">{label}</text>')
    for i, k in enumerate(series):
        points = " ".join(f"{x(r['t']):.1f},{y(v):.1f}" for r, v in zip(rows, smoothed[k]))
        dash = ' stroke-dasharray="6,3"' if k.startswith("query") else ""
        width = 2.5 if k == "clients_sent" else 1.5
        out.append(f'<polyline points="{points}" fill="none" stroke="{colors.get(k, "#000")}" '
                   f'stroke-width="{width}"{dash}/>')
        ly = top + 20 + 18 * i
        out.append(f'<line x1="{w - right + 10}" y1="{ly}" x2="{w - right + 35}" y2="{ly}" '
                   f'stroke="{colors.get(k, "#000")}" stroke-width="{width}"{dash}/>'
                   f'<text x="{w - right + 40}" y="{ly + 4}">{k.replace("clients_sent", "clients (sent)")}</text>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default="bench-results/elasticity")
    ap.add_argument("--bin", default=str(REPO / "target/release/strata"))
    ap.add_argument("--quick", action="store_true", help="a 1-minute version (checks the script, not the broker)")
    ap.add_argument("--replot", action="store_true", help="only draw OUT_DIR's timeline again")
    args = ap.parse_args()
    if args.replot:
        out = Path(args.out)
        rows = [{k: int(v) for k, v in r.items()} for r in csv.DictReader(open(out / "timeline.csv"))]
        events = [(int(t), label) for t, label in csv.reader(open(out / "events.csv"))]
        svg(rows, events, out / "elasticity.svg")
        return
    if args.quick:
        global PRODUCERS, RAMP_EVERY, JOIN_AT, LEAVE_AT, STOP_AT, DRAIN
        PRODUCERS, RAMP_EVERY, JOIN_AT, LEAVE_AT, STOP_AT, DRAIN = 2, 5, 10, 20, 40, "5s"
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="strata-elastic."))
    work.chmod(0o755)  # PostgreSQL runs as its own user when we are root
    cluster = Cluster(args.bin, out, work)
    ctx = mp.get_context("spawn")
    counters = ctx.Array("q", len(COUNTERS))
    stop_sending, stop_receiving = ctx.Event(), ctx.Event()
    workers, events, rows = [], [(0, "ingest-1, query-1")], []
    try:
        cluster.start("compactor-1", "compactor")
        cluster.start("ingest-1", "ingest")
        cluster.start("query-1", "query")
        cluster.cli("topic", "create", TOPIC, "--queues", "8")
        cluster.cli("group", "create", GROUP)
        access = cluster.endpoint("compactor-1")
        for i in range(CONSUMERS):
            w = ctx.Process(target=consumer, args=(access, counters, stop_receiving, out / f"received-{i}.txt"))
            w.start()
            workers.append(w)
        producers = []
        start = time.monotonic()
        last = {n: 0 for n in ("ingest-1", "ingest-2", "query-1", "query-2")}
        last_sent = last_received = 0
        joined = left = exited = False
        while True:
            t = round(time.monotonic() - start)
            if len(producers) < PRODUCERS and t >= RAMP_EVERY * len(producers) and t < STOP_AT:
                p = ctx.Process(target=producer, args=(access, counters, stop_sending, out / f"sent-{len(producers)}.txt"))
                p.start()
                producers.append(p)
                if producers[1:]:
                    events.append((t, f"{len(producers)} producers"))
            if not joined and t >= JOIN_AT:
                cluster.start("ingest-2", "ingest")
                cluster.start("query-2", "query")
                events.append((t, "+ingest-2, +query-2"))
                joined = True
            if not left and t >= LEAVE_AT:
                for name in ("ingest-1", "query-1"):
                    cluster.nodes[name][0].send_signal(signal.SIGTERM)
                events.append((t, "SIGTERM ingest-1, query-1"))
                left = True
            if left and not exited and all(cluster.nodes[n][0].poll() is not None for n in ("ingest-1", "query-1")):
                events.append((t, "ingest-1, query-1 exit"))
                exited = True
            if t >= STOP_AT and not stop_sending.is_set():
                stop_sending.set()
                events.append((t, "producers stop"))
            row = {"t": t}
            for name in last:
                now = cluster.messages(name) if name in cluster.nodes else 0
                row[name] = max(0, now - last[name]) if now else 0
                last[name] = now or last[name]
            with counters.get_lock():
                c = dict(zip(COUNTERS, counters[:]))
            row["clients_sent"], last_sent = c["sent"] - last_sent, c["sent"]
            row["clients_received"], last_received = c["received"] - last_received, c["received"]
            for k in ("send_errors", "receive_errors", "ack_errors"):
                row[k] = c[k]
            rows.append(row)
            print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
            if stop_sending.is_set() and all(not p.is_alive() for p in producers):
                # Every acknowledged send was counted once; deliveries (duplicates too) likewise.
                if c["received"] >= c["sent"] or t > STOP_AT + 120:
                    break
            time.sleep(max(0.0, start + t + 1 - time.monotonic()))
        print("stopping the consumers", file=sys.stderr, flush=True)
        stop_receiving.set()
        for w in workers:
            w.join(timeout=60)
    finally:
        print("stopping the cluster", file=sys.stderr, flush=True)
        stop_sending.set()
        stop_receiving.set()
        cluster.stop_all()
    sent = set().union(*(set(open(out / f"sent-{i}.txt").read().split()) for i in range(PRODUCERS)))
    received_list = [line for i in range(CONSUMERS) for line in open(out / f"received-{i}.txt").read().split()]
    received = set(received_list)
    with open(out / "timeline.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    with open(out / "events.csv", "w", newline="") as f:
        csv.writer(f).writerows(events)
    svg(rows, events, out / "elasticity.svg")
    errors = {k: rows[-1][k] for k in ("send_errors", "receive_errors", "ack_errors")}
    lost = sent - received
    print(f"\nsent {len(sent)} acknowledged, received {len(received)} distinct "
          f"({len(received_list) - len(received)} duplicates), lost {len(lost)}, errors {errors}")
    print(f"timeline: {out / 'timeline.csv'}, plot: {out / 'elasticity.svg'}")
    sys.exit(1 if lost or any(errors.values()) else 0)


if __name__ == "__main__":
    main()
