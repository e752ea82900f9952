"""The official Python client over TLS, in its own process (grpc reads its trusted roots from
GRPC_DEFAULT_SSL_ROOTS_FILE_PATH once). Usage: tls_client.py ENDPOINT TOPIC GROUP AK SK
Sends one message with TLS on, receives and acks it; prints "OK <message id>"."""

import sys
import time

from rocketmq import ClientConfiguration, Credentials, FilterExpression, Message, Producer, SimpleConsumer

endpoint, topic, group, ak, sk = sys.argv[1:6]
config = ClientConfiguration(endpoint, Credentials(ak, sk), "")
producer = Producer(config, (topic,), tls_enable=True)
producer.startup()
try:
    m = Message()
    m.topic = topic
    m.body = b"over tls"
    sent = producer.send(m).message_id
finally:
    producer.shutdown()
consumer = SimpleConsumer(config, group, {topic: FilterExpression()}, tls_enable=True)
consumer.startup()
try:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = consumer.receive(16, 30)
        if got:
            assert got[0].body == b"over tls", got[0].body
            consumer.ack(got[0])
            print("OK", got[0].message_id, flush=True)
            assert got[0].message_id == sent
            break
    else:
        sys.exit("nothing received over TLS")
finally:
    consumer.shutdown()
