"""Scenarios with the 4.x client (PyPI rocketmq 0.4.4, the C++ client library inside).

Runs in its own venv (.venv4: the 4.x and 5.x clients' packages are both named `rocketmq`);
the tests call it as a subprocess and read one JSON document from its stdout.

    v4client.py produce NAMESRV TOPIC COUNT [--mode sync|async|oneway|batch|orderly] [--tag T]
                [--delay-level L] [--keys-prefix K] [--orders N]
    v4client.py push NAMESRV GROUP TOPIC COUNT [--orderly] [--broadcast] [--expression E]
                [--fail-times N] [--timeout S] [--out FILE]
    v4client.py pull NAMESRV GROUP TOPIC
"""

import argparse
import json
import sys
import threading
import time

from rocketmq.client import (Message, MessageModel, Producer, PullConsumer, PushConsumer, RecvMessage,
                             _CConsumeStatus, _to_bytes, dll, ffi_check)


def message(topic, body, tag=None, keys=None, delay_level=None, props=None):
    m = Message(topic)
    m.set_body(body)
    if tag:
        m.set_tags(tag)
    if keys:
        m.set_keys(keys)
    if delay_level:
        m.set_delay_time_level(delay_level)
    for k, v in (props or {}).items():
        m.set_property(k, v)
    return m


def signed_in(client, a):
    if a.ak:
        client.set_session_credentials(a.ak, a.sk, "ALIYUN")


def produce(a):
    p = Producer(f"pg-{a.topic}")
    p.set_namesrv_addr(a.namesrv)
    signed_in(p, a)
    p.start()
    sent = []
    try:
        # --size pads bodies (the client zlib-compresses bodies of 4 KiB and more).
        bodies = [f"{a.mode}-{i}".ljust(a.size, ".") for i in range(a.count)]
        msgs = [message(a.topic, b, a.tag, f"{a.keys_prefix}{i}", a.delay_level, {"seq": str(i)})
                for i, b in enumerate(bodies)]
        if a.mode == "sync":
            for b, m in zip(bodies, msgs):
                at = time.time()
                r = p.send_sync(m)
                sent.append({"body": b, "status": int(r.status), "id": r.msg_id, "offset": r.offset, "at": at})
        elif a.mode == "async":
            done = threading.Semaphore(0)
            errors = []

            def ok(r):
                sent.append({"id": r.msg_id, "status": int(r.status)})
                done.release()

            def failed(e):
                errors.append(str(e))
                done.release()

            for m in msgs:
                p.send_async(m, ok, failed)
            for _ in msgs:
                assert done.acquire(timeout=30), "an async send was never answered"
            if errors:
                raise SystemExit(f"async sends failed: {errors}")
        elif a.mode == "oneway":
            for m in msgs:
                p.send_oneway(m)
            sent = [{"body": b} for b in bodies]
        elif a.mode == "batch":
            r = p.send_batch(msgs)
            sent.append({"status": int(r.status), "id": r.msg_id})
        elif a.mode == "orderly":
            # Messages of one order go to one queue (the hashing selector on the order number).
            for i, (b, m) in enumerate(zip(bodies, msgs)):
                order = i % a.orders
                m.set_property("order", str(order))
                r = p.send_orderly(m, order)
                sent.append({"body": b, "order": order, "status": int(r.status), "offset": r.offset})
    finally:
        p.shutdown()
    print(json.dumps(sent))


def text(v):
    return v.decode() if isinstance(v, bytes) else (v or "")


def received(m):
    return {
        "id": text(m.id),
        "topic": text(m.topic),
        "body": text(m.body),
        "tags": text(m.tags),
        "keys": text(m.keys),
        "queue": m.queue_id,
        "offset": m.queue_offset,
        "reconsume": m.reconsume_times,
        "seq": text(m.get_property("seq")),
        "order": text(m.get_property("order")),
        "at": time.time(),
    }


def push(a):
    model = MessageModel.BROADCASTING if a.broadcast else MessageModel.CLUSTERING
    c = PushConsumer(a.group, orderly=a.orderly, message_model=model)
    c.set_namesrv_addr(a.namesrv)
    signed_in(c, a)
    if a.instance:
        c.set_instance_name(a.instance)
    got, lock = [], threading.Lock()
    failures = {}

    def on_message(_consumer, handle):
        r = received(RecvMessage(handle))
        with lock:
            n = failures.get(r["body"], 0)
            got.append(r)
            if a.out:
                with open(a.out, "a") as f:
                    f.write(json.dumps(r) + "\n")
            if n < a.fail_times:
                failures[r["body"]] = n + 1
                r["failed"] = True
                return _CConsumeStatus.RECONSUME_LATER.value
        return _CConsumeStatus.CONSUME_SUCCESS.value

    # The wrapper's subscribe() re-raises a callback's exception, which ctypes turns into
    # status 0 (success): register a callback that returns the status itself.
    ffi_check(dll.Subscribe(c._handle, _to_bytes(a.topic), _to_bytes(a.expression)))
    c._register_callback(on_message)
    c.start()
    deadline = time.time() + a.timeout
    while time.time() < deadline:
        with lock:
            if sum(1 for r in got if not r.get("failed")) >= a.count:
                break
        time.sleep(0.1)
    # Let offset updates reach the broker (the client commits every 5 s and at shutdown).
    c.shutdown()
    print(json.dumps(got))


def pull(a):
    c = PullConsumer(a.group)
    c.set_namesrv_addr(a.namesrv)
    c.start()
    first = [received(m) for m in c.pull(a.topic)]
    again = [received(m) for m in c.pull(a.topic)]
    c.shutdown()
    print(json.dumps({"first": first, "again": again}))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("produce")
    p.add_argument("namesrv"), p.add_argument("topic"), p.add_argument("count", type=int)
    p.add_argument("--mode", default="sync")
    p.add_argument("--tag")
    p.add_argument("--keys-prefix", default="key-")
    p.add_argument("--delay-level", type=int)
    p.add_argument("--orders", type=int, default=4)
    p.add_argument("--size", type=int, default=0)
    c = sub.add_parser("push")
    c.add_argument("namesrv"), c.add_argument("group"), c.add_argument("topic"), c.add_argument("count", type=int)
    c.add_argument("--orderly", action="store_true")
    c.add_argument("--broadcast", action="store_true")
    c.add_argument("--expression", default="*")
    c.add_argument("--fail-times", type=int, default=0)
    c.add_argument("--timeout", type=float, default=60)
    c.add_argument("--instance")
    c.add_argument("--out", help="also append each message to this file as it arrives")
    q = sub.add_parser("pull")
    q.add_argument("namesrv"), q.add_argument("group"), q.add_argument("topic")
    for p in (p, c):
        p.add_argument("--ak", help="sign requests with this access key (and --sk)")
        p.add_argument("--sk")
    a = ap.parse_args()
    {"produce": produce, "push": push, "pull": pull}[a.cmd](a)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
