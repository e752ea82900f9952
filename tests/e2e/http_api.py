"""A caller of StrataMQ's HTTP/JSON API that signs as docs/http-api.md says: HMAC-SHA256 over
method, path and query, date, namespace and the body's SHA-256 (standard library only)."""

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request


def signature_headers(method: str, target: str, body: bytes, ak: str, sk: str, date: str = None,
                      namespace: str = "") -> dict:
    date = date or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    text = "\n".join([method, target, date, namespace, hashlib.sha256(body).hexdigest()])
    sig = hmac.new(sk.encode(), text.encode(), hashlib.sha256).hexdigest()
    return {"authorization": f"STRATA-HMAC-SHA256 Credential={ak}, Signature={sig}", "x-mq-date-time": date}


class Api:
    def __init__(self, base: str, ak: str = None, sk: str = None, namespace: str = None):
        self.base, self.ak, self.sk, self.namespace = base, ak, sk, namespace

    def raw(self, method: str, target: str, body: bytes = b"", headers: dict = None, timeout=60):
        """Sends exactly `body` to `target`; returns (HTTP status, decoded JSON or text)."""
        h = {"content-type": "application/json"}
        h.update(headers or {})
        if self.namespace is not None:
            h.setdefault("x-mq-namespace", self.namespace)
        if self.ak:
            h.update(signature_headers(method, target, body, self.ak, self.sk,
                                       namespace=h.get("x-mq-namespace", "")))
        req = urllib.request.Request(self.base + target, data=body if method != "GET" else None,
                                     headers=h, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def call(self, method: str, target: str, payload=None, **kw):
        body = b"" if payload is None else json.dumps(payload).encode()
        return self.raw(method, target, body, **kw)

    def ok(self, method: str, target: str, payload=None, **kw):
        """Like call, but the answer must be 2xx; returns its JSON."""
        status, answer = self.call(method, target, payload, **kw)
        assert 200 <= status < 300, (status, answer)
        return answer
