"""An OpenChaos-style checker: producers record every acknowledged message, consumers every
delivery; faults are injected on a schedule; the checker reports acknowledged-but-lost
(must be 0), duplicates (at least once: allowed, counted), FIFO order violations per message
group (must be 0) and the time each fault took to recover from.

Messages go to a FIFO topic: each producer thread owns message groups and sends their
sequence numbers in order, retrying a failed send of the same number until it is
acknowledged (so a later number never overtakes an earlier one that may have been stored).
Consumers of a FIFO consumer group receive, record and acknowledge."""

import json
import os
import threading
import time
from dataclasses import dataclass, field

from rocketmq import FilterExpression, Message, Producer, SimpleConsumer

from clients import config


@dataclass
class Fault:
    name: str
    started: float
    ended: float = 0.0


@dataclass
class Record:
    """What the clients saw, with monotonic timestamps."""
    acked: dict = field(default_factory=dict)        # message id -> (group, seq)
    acked_at: list = field(default_factory=list)     # times of acknowledged sends
    deliveries: list = field(default_factory=list)   # (time, message id, group, seq)
    send_errors: int = 0
    receive_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Chaos:
    def __init__(self, endpoint: str, topic: str, group: str, producers=2, groups_per_producer=4,
                 consumers=2, pause=0.005):
        self.endpoint, self.topic, self.group = endpoint, topic, group
        self.record = Record()
        self.faults: list[Fault] = []
        self.stop_sending = threading.Event()
        self.stop_receiving = threading.Event()
        self.pause = pause
        self.producers = [threading.Thread(target=self._produce, args=(p, groups_per_producer), daemon=True)
                          for p in range(producers)]
        self.consumers = [threading.Thread(target=self._consume, daemon=True) for _ in range(consumers)]

    def start(self):
        for t in self.producers + self.consumers:
            t.start()
        return self

    def _produce(self, p: int, groups: int):
        producer = Producer(config(self.endpoint), (self.topic,))
        producer.startup()
        seq = {f"p{p}-g{g}": 0 for g in range(groups)}
        try:
            while not self.stop_sending.is_set():
                for g in seq:
                    m = Message()
                    m.topic, m.message_group = self.topic, g
                    m.body = f"{g}:{seq[g]}".encode()
                    try:
                        receipt = producer.send(m)
                    except Exception:  # not acknowledged: the same number again
                        with self.record.lock:
                            self.record.send_errors += 1
                        time.sleep(0.05)
                        continue
                    with self.record.lock:
                        self.record.acked[receipt.message_id] = (g, seq[g])
                        self.record.acked_at.append(time.monotonic())
                    seq[g] += 1
                time.sleep(self.pause)
        finally:
            producer.shutdown()

    def _consume(self):
        c = SimpleConsumer(config(self.endpoint), self.group, {self.topic: FilterExpression("*")}, await_duration=2)
        c.startup()
        try:
            while not self.stop_receiving.is_set():
                try:
                    messages = c.receive(16, 10)
                except Exception:
                    with self.record.lock:
                        self.record.receive_errors += 1
                    time.sleep(0.05)
                    continue
                for m in messages:
                    g, s = m.body.decode().split(":")
                    with self.record.lock:
                        self.record.deliveries.append((time.monotonic(), m.message_id, g, int(s)))
                    try:
                        c.ack(m)
                    except Exception:  # comes back after its invisible time: a duplicate
                        pass
        finally:
            c.shutdown()

    def fault(self, name: str, inject, heal, hold_s: float):
        """Injects a fault, holds it, heals it; recorded for recovery times."""
        f = Fault(name, time.monotonic())
        inject()
        time.sleep(hold_s)
        heal()
        f.ended = time.monotonic()
        self.faults.append(f)

    def acked_count(self):
        with self.record.lock:
            return len(self.record.acked)

    def finish(self, drain_s=120):
        """Stops sending, waits until every acknowledged message was delivered (or `drain_s`),
        stops consumers, and returns the report."""
        self.stop_sending.set()
        for t in self.producers:
            t.join(timeout=60)
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            with self.record.lock:
                delivered = {d[1] for d in self.record.deliveries}
                if set(self.record.acked) <= delivered:
                    break
            time.sleep(0.2)
        self.stop_receiving.set()
        for t in self.consumers:
            t.join(timeout=60)
        return self.report()

    def report(self) -> dict:
        r = self.record
        with r.lock:
            deliveries = sorted(r.deliveries)
            delivered = {}
            for _, mid, _, _ in deliveries:
                delivered[mid] = delivered.get(mid, 0) + 1
            lost = sorted(set(r.acked) - delivered.keys())
            # Order: within a message group, a number delivered for the first time must be
            # above every number delivered before it (redeliveries are duplicates, not
            # violations).
            violations, highest, seen = 0, {}, set()
            for _, mid, g, s in deliveries:
                if (g, s) in seen:
                    continue
                seen.add((g, s))
                if s < highest.get(g, -1):
                    violations += 1
                highest[g] = max(highest.get(g, -1), s)
            recoveries = {}
            for f in self.faults:
                after = [t for t in r.acked_at if t >= f.ended]
                got = [t for t, *_ in deliveries if t >= f.ended]
                recoveries[f.name] = {
                    "held_s": round(f.ended - f.started, 1),
                    "send_recovered_s": round(after[0] - f.ended, 2) if after else None,
                    "receive_recovered_s": round(got[0] - f.ended, 2) if got else None,
                }
            return {
                "acknowledged": len(r.acked),
                "delivered": len(delivered),
                "lost": len(lost),
                "lost_ids": lost[:20],
                "duplicates": sum(n - 1 for n in delivered.values()) + len(set(delivered) - set(r.acked)),
                "order_violations": violations,
                "send_errors": r.send_errors,
                "receive_errors": r.receive_errors,
                "faults": recoveries,
            }


def save(name: str, report: dict):
    """Writes the report beside the test logs and prints it."""
    folder = os.environ.get("STRATA_TEST_LOGS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"chaos-{name}.json"), "w") as f:
            json.dump(report, f, indent=2)
    print(f"chaos {name}: {json.dumps(report, indent=2)}")
