"""Helpers around the official Python client (rocketmq-python-client)."""

import hashlib
import random
import time

from rocketmq import ClientConfiguration, Credentials, FilterExpression, Message, Producer, SimpleConsumer


def config(endpoint: str, namespace: str = "") -> ClientConfiguration:
    return ClientConfiguration(endpoint, Credentials(), namespace)


def make_message(topic: str, i: int, body: bytes, tag=None, keys=(), props=None) -> Message:
    m = Message()
    m.topic = topic
    m.body = body
    if tag:
        m.tag = tag
    for k in keys:
        m.keys = k
    for k, v in (props or {}).items():
        m.add_property(k, v)
    m.add_property("idx", str(i))
    return m


def body_for(i: int) -> bytes:
    """Bodies from 1 byte to 1 MiB (the Python client refuses empty bodies)."""
    rng = random.Random(i)
    if i % 50 == 0:
        size = 1 << 20
    elif i % 10 == 0:
        size = rng.randint(64 << 10, 256 << 10)
    elif i % 7 == 0:
        size = 1
    else:
        size = rng.randint(2, 4096)
    return rng.randbytes(size)


def digest(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def receive_all(consumer: SimpleConsumer, expected: int, invisible=30, deadline_s=180, ack=True):
    """Receives until `expected` distinct messages arrived; returns them by message id.
    Fails on a message delivered twice."""
    got = {}
    deadline = time.monotonic() + deadline_s
    while len(got) < expected:
        assert time.monotonic() < deadline, f"only {len(got)} of {expected} messages received"
        for m in consumer.receive(32, invisible):
            assert m.message_id not in got, f"message {m.message_id} delivered twice"
            got[m.message_id] = m
            if ack:
                consumer.ack(m)
    return got
