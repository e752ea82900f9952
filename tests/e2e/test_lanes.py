"""Grayscale lanes with the official Python client: consumers of lane L of group G name the
group `G%L`, messages join the lane with the user property `x-lane`. One group serves the
base version and a canary; the canary's traffic reaches only the canary, and the base takes
it over once the canary is gone for the group's lane fallback time (or never: `wait`)."""

import time

import pytest
from rocketmq import FilterExpression, Producer, SimpleConsumer

from clients import config, make_message
from test_operations import cli_json, run

TOPIC, GROUP = "orders", "billing"


def consumer(b, group):
    c = SimpleConsumer(config(b.endpoint), group, {TOPIC: FilterExpression("*")}, await_duration=2)
    c.startup()
    return c


def send(b, bodies_and_lanes):
    producer = Producer(config(b.endpoint), (TOPIC,))
    producer.startup()
    try:
        for i, (body, lane) in enumerate(bodies_and_lanes):
            props = {"x-lane": lane} if lane else {}
            producer.send(make_message(TOPIC, i, body.encode(), props=props))
    finally:
        producer.shutdown()


def drain(consumers, count, timeout=60):
    """Receives (and acks) from each consumer in turn until `count` messages came in all;
    returns the bodies each got, in order."""
    got = {name: [] for name in consumers}
    deadline = time.monotonic() + timeout
    while sum(map(len, got.values())) < count:
        assert time.monotonic() < deadline, f"only {got} of {count}"
        for name, c in consumers.items():
            for m in c.receive(16, 30):
                got[name].append(m.body.decode())
                c.ack(m)
    return got


def test_a_canary_gets_its_traffic_only_and_the_base_takes_over_when_it_is_gone(broker):
    b = broker
    b.cli("topic", "create", TOPIC, "--queues", "2")
    b.cli("group", "create", GROUP)
    canary = consumer(b, f"{GROUP}%canary")
    base = None
    try:
        # The canary's first receive starts the lane (at the group's position).
        assert canary.receive(16, 30) == []
        base = consumer(b, GROUP)
        traffic = [(f"m{i}", "canary" if i % 2 == 0 else None) for i in range(10)]
        traffic.append(("blue", "blue"))  # a lane nobody consumes goes to the base
        send(b, traffic)
        got = drain({"base": base, "canary": canary}, len(traffic))
        assert sorted(got["canary"]) == sorted(f"m{i}" for i in range(0, 10, 2)), got
        assert sorted(got["base"]) == sorted([*(f"m{i}" for i in range(1, 10, 2)), "blue"]), got

        progress = cli_json(b, "group", "progress", GROUP)
        assert [(lane["topic"], lane["lane"], lane["taken_over"]) for lane in progress["lanes"]] == [
            (TOPIC, "canary", False)
        ]
        assert progress["lag"] == 0

        # The canary stops. With `wait` its messages wait for it ...
        canary.shutdown()
        canary = None
        b.cli("group", "update", GROUP, "--lane-fallback", "wait")
        send(b, [("late-1", "canary"), ("late-2", "canary")])
        assert base.receive(16, 30) == [] and base.receive(16, 30) == [], "the base never takes them"
        # ... and with a fallback time the base takes them once the canary was gone that long.
        b.cli("group", "update", GROUP, "--lane-fallback", "2s")
        got = drain({"base": base}, 2)
        assert sorted(got["base"]) == ["late-1", "late-2"]
        assert cli_json(b, "group", "progress", GROUP)["lanes"][0]["taken_over"] is True

        # A canary back again gets its traffic again (and nothing twice).
        b.cli("group", "update", GROUP, "--lane-fallback", "wait")
        canary = consumer(b, f"{GROUP}%canary")
        send(b, [("back", "canary")])
        assert drain({"canary": canary}, 1)["canary"] == ["back"]
        assert base.receive(16, 30) == []
    finally:
        for c in (canary, base):
            if c:
                c.shutdown()


def test_lane_names_and_unsupported_uses_get_clear_codes(broker):
    b = broker
    b.cli("topic", "create", TOPIC)
    out = run(b, "group", "create", f"{GROUP}%canary")
    assert out.returncode != 0 and "separates a lane" in out.stderr, out.stderr
    b.cli("group", "create", "everyone", "--broadcast")
    c = consumer(b, "everyone%canary")
    try:
        with pytest.raises(Exception, match="lanes are for clustering consumption"):
            c.receive(16, 30)
    finally:
        c.shutdown()
