"""Raw gRPC access to a broker through the Python client's generated stubs, for requests an
official client would refuse to send itself."""

import queue
import threading
import uuid

import grpc
from rocketmq.grpc_protocol import definition_pb2 as d
from rocketmq.grpc_protocol import service_pb2 as s
from rocketmq.grpc_protocol import service_pb2_grpc

HEADERS = [("x-mq-client-id", "raw-test@1@0@x"), ("x-mq-language", "PYTHON"), ("x-mq-protocol", "v2")]


class Raw:
    def __init__(self, endpoint: str):
        self.channel = grpc.insecure_channel(endpoint, options=[
            ("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)])
        self.stub = service_pb2_grpc.MessagingServiceStub(self.channel)

    def close(self):
        getattr(self, "_close_telemetry", lambda: None)()
        self.channel.close()

    def send(self, topic: str, body: bytes, message_id=None, tag=None, message_type=d.NORMAL, **kw):
        """One message; its id is new unless given (the same id again is a retried send)."""
        msg = d.Message(topic=d.Resource(name=topic), body=body)
        msg.system_properties.message_id = message_id or "01" + uuid.uuid4().hex.upper()
        msg.system_properties.message_type = message_type
        if tag is not None:
            msg.system_properties.tag = tag
        if "lite_topic" in kw:
            msg.system_properties.lite_topic = kw["lite_topic"]
        for k, v in kw.get("props", {}).items():
            msg.user_properties[k] = v
        return self.stub.SendMessage(s.SendMessageRequest(messages=[msg]), metadata=HEADERS, timeout=10)

    def receive(self, topic: str, group: str, invisible_s=30, poll_s=1):
        req = s.ReceiveMessageRequest(
            group=d.Resource(name=group),
            message_queue=d.MessageQueue(topic=d.Resource(name=topic), id=-1),
            batch_size=16,
        )
        req.invisible_duration.seconds = invisible_s
        req.long_polling_timeout.seconds = poll_s
        return list(self.stub.ReceiveMessage(req, metadata=HEADERS, timeout=poll_s + 10))

    def ack(self, topic: str, group: str, handle: str):
        req = s.AckMessageRequest(group=d.Resource(name=group), topic=d.Resource(name=topic),
                                  entries=[s.AckMessageEntry(message_id="x", receipt_handle=handle)])
        return self.stub.AckMessage(req, metadata=HEADERS, timeout=10)

    def pull(self, topic: str, queue: int, offset: int, group="puller", batch=32):
        """PullMessage: (messages, next offset); raises on a non-OK status."""
        req = s.PullMessageRequest(group=d.Resource(name=group),
                                   message_queue=d.MessageQueue(topic=d.Resource(name=topic), id=queue),
                                   offset=offset, batch_size=batch)
        req.long_polling_timeout.seconds = 0
        messages, next_offset = [], offset
        for r in self.stub.PullMessage(req, metadata=HEADERS, timeout=30):
            if r.HasField("status") and r.status.code not in (d.OK, d.MESSAGE_NOT_FOUND):
                raise RuntimeError(f"PullMessage: {r.status.code} {r.status.message}")
            if r.HasField("message"):
                messages.append(r.message)
            if r.HasField("next_offset"):
                next_offset = r.next_offset
        return messages, next_offset

    def replay(self, topic: str, queue: int):
        """Every message of a queue from its beginning: [(offset, message id, body)]."""
        q = s.QueryOffsetRequest(message_queue=d.MessageQueue(topic=d.Resource(name=topic), id=queue),
                                 query_offset_policy=d.BEGINNING)
        offset = self.stub.QueryOffset(q, metadata=HEADERS, timeout=10).offset
        out = []
        while True:
            messages, nxt = self.pull(topic, queue, offset)
            out.extend((m.system_properties.queue_offset, m.system_properties.message_id, m.body) for m in messages)
            if nxt == offset:
                return out
            offset = nxt

    def sync_lite(self, topic: str, group: str, action, names, headers=HEADERS, offset_option=None):
        """SyncLiteSubscription; returns its status."""
        req = s.SyncLiteSubscriptionRequest(action=action, topic=d.Resource(name=topic), group=d.Resource(name=group),
                                            lite_topic_set=list(names), offset_option=offset_option)
        return self.stub.SyncLiteSubscription(req, metadata=headers, timeout=10).status

    def route(self, topic: str, endpoint: str):
        """The broker names of the topic's route (QueryRoute with `endpoint` as access point)."""
        host, port = endpoint.rsplit(":", 1)
        req = s.QueryRouteRequest(topic=d.Resource(name=topic), endpoints=d.Endpoints(
            scheme=d.IPv4, addresses=[d.Address(host=host, port=int(port))]))
        reply = self.stub.QueryRoute(req, metadata=HEADERS, timeout=10)
        return sorted({q.broker.name for q in reply.message_queues})

    def telemetry(self, settings, headers=HEADERS):
        """Opens a Telemetry stream that sends `settings` and stays open; returns the list
        the server's commands are appended to (by a background thread)."""
        requests = queue.Queue()
        requests.put(s.TelemetryCommand(settings=settings))

        def outgoing():
            while (item := requests.get()) is not None:
                yield item

        commands = []
        responses = self.stub.Telemetry(outgoing(), metadata=headers)

        def collect():
            try:
                for c in responses:
                    commands.append(c)
            except grpc.RpcError:
                pass

        threading.Thread(target=collect, daemon=True).start()
        self._close_telemetry = lambda: requests.put(None)
        return commands
