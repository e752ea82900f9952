"""A bare 4.x Remoting connection for frame-level tests: what no client library sends on purpose
(bad frames, codes the Python 4.x wrapper lacks)."""

import itertools
import json
import socket
import struct


def frame(code, fields=None, body=b"", opaque=1, flag=0) -> bytes:
    header = json.dumps({"code": code, "language": "PYTHON", "version": 0, "opaque": opaque, "flag": flag,
                         "extFields": fields or {}}).encode()
    return struct.pack(">II", 4 + len(header) + len(body), len(header)) + header + body


class Reply:
    def __init__(self, header: dict, body: bytes):
        self.code = header["code"]
        self.remark = header.get("remark")
        self.fields = header.get("extFields") or {}
        self.opaque = header["opaque"]
        self.body = body

    def json(self):
        return json.loads(self.body)


class RemotingConn:
    def __init__(self, address: str, timeout=30):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.opaques = itertools.count(1)

    def close(self):
        self.sock.close()

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def _read(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed by the broker")
            out += chunk
        return out

    def read_reply(self) -> Reply:
        (total,) = struct.unpack(">I", self._read(4))
        rest = self._read(total)
        (packed,) = struct.unpack(">I", rest[:4])
        assert packed >> 24 == 0, "replies are JSON with a zero serialize-type byte (the C++ client needs it)"
        header_len = packed & 0xFFFFFF
        header = json.loads(rest[4:4 + header_len])
        for k, v in (header.get("extFields") or {}).items():
            assert isinstance(v, str), f"reply field {k} must be a JSON string, not {v!r}"
        return Reply(header, rest[4 + header_len:])

    def call(self, code, fields=None, body=b"") -> Reply:
        opaque = next(self.opaques)
        self.send_raw(frame(code, fields, body, opaque))
        reply = self.read_reply()
        assert reply.opaque == opaque
        return reply

    def closed_by_broker(self) -> bool:
        """Whether the broker closed this connection (reads until EOF or a reply)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def properties(d: dict) -> str:
    return "".join(f"{k}\x01{v}\x02" for k, v in d.items())


def parse_properties(s: str) -> dict:
    return dict(p.split("\x01", 1) for p in s.split("\x02") if "\x01" in p)


def decode_messages(body: bytes):
    """Stored messages of a pull reply: (queue, queue offset, commit-log offset, reconsume
    times, body, topic, properties)."""
    out, i = [], 0
    while i < len(body):
        (size,) = struct.unpack(">i", body[i:i + 4])
        m = body[i:i + size]
        queue, = struct.unpack(">i", m[12:16])
        queue_offset, commit_log_offset = struct.unpack(">qq", m[20:36])
        reconsume, = struct.unpack(">i", m[72:76])
        body_len, = struct.unpack(">i", m[84:88])
        payload = m[88:88 + body_len]
        j = 88 + body_len
        topic_len = m[j]
        topic = m[j + 1:j + 1 + topic_len].decode()
        j += 1 + topic_len
        props_len, = struct.unpack(">h", m[j:j + 2])
        props = parse_properties(m[j + 2:j + 2 + props_len].decode())
        out.append((queue, queue_offset, commit_log_offset, reconsume, payload, topic, props))
        i += size
    return out
