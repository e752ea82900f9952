"""The AI-session pattern on LiteTopic: one lite topic per conversation under the LITE parent
`replies`. An agent streams its replies to the conversation's lite topic; the worker that owns
the conversation subscribes to it and receives the replies in order.

    strata standalone &                                  # or any StrataMQ endpoint
    strata topic create replies --type lite
    python docs/examples/ai_sessions.py 127.0.0.1:8081
"""

import sys
import time
import uuid

from rocketmq import ClientConfiguration, Credentials, LiteSimpleConsumer, Message, Producer

endpoint = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8081"
config = ClientConfiguration(endpoint, Credentials(), "")
conversations = [str(uuid.uuid4()) for _ in range(3)]

# The worker owning the conversations subscribes to their lite topics.
worker = LiteSimpleConsumer("replies", config, "chat-workers", await_duration=5)
worker.startup()
for conversation in conversations:
    while True:  # the client learns its subscription quota a moment after startup()
        try:
            worker.subscribe_lite(conversation)
            break
        except Exception as e:
            if "quota: 0" not in str(e):
                raise
            time.sleep(0.05)

# Agents stream replies, token by token, to each conversation's lite topic.
agent = Producer(config, ("replies",))
agent.startup()
for conversation in conversations:
    for i, token in enumerate(["Hello", ",", " how", " can", " I", " help", "?"]):
        m = Message()
        m.topic, m.lite_topic, m.body = "replies", conversation, token.encode()
        agent.send(m)
agent.shutdown()

# The worker gets each conversation's replies in order.
replies = {c: "" for c in conversations}
while any(len(r) < len("Hello, how can I help?") for r in replies.values()):
    for m in worker.receive(32, 30):
        replies[m.lite_topic] += m.body.decode()
        worker.ack(m)
for conversation, text in replies.items():
    print(conversation, text)
    assert text == "Hello, how can I help?"
worker.shutdown()
