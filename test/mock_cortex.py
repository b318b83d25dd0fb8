#!/usr/bin/env python3
"""A stand-in for the Cortex custom-events API, for cortex_hook's tests and demo.

    POST /api/v1/catalog/{tagOrId}/custom-events

answers like Cortex: 200 with the created event and a "uuid" (plus, under
"received", exactly what the server got: method, path, headers, body); 400 for
a body without "title" or "type"; 401 without the right Bearer token (the echo
shows "Bearer (valid)" or "Bearer (invalid)" and no other credential header); 404 for
an entity whose tag starts with "missing"; 429 with Retry-After when scripted.

Control endpoints (not part of Cortex):
    POST /_mock/script   {"entity": "e", "fail": 2, "status": 500, "retry_after": "2",
                          "delay_ms": 200, "close": true, "huge_bytes": 1000000,
                          "drip": true, "many_headers": 10000, "redirect": "http://..."}
        "fail" N: the next N requests for e get "status" (default 500), or are
        closed without an answer ("close"), or redirected ("redirect");
        "delay_ms", "huge_bytes", "drip" (a body one byte a second),
        "many_headers", "garbage" (a malformed status line) and
        "reset_mid_body" (a TCP reset after part of the body) apply to every
        request for e.
    GET  /_mock/requests[?entity=e]   every request received, oldest first
    GET  /_mock/counts                {"requests": n, "distinct": k, "twice": d,
                                      "refused": r}: requests, distinct
                                      Idempotency-Keys, keys received more than
                                      once, and answers other than 2xx
    POST /_mock/reset                 forget requests and scripts

With --count-only (for soak runs) requests are counted, not kept.

Binds to 127.0.0.1 only.  Standard library only.
"""
import argparse
import json
import socketserver
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LOCK = threading.Lock()
REQUESTS = []
SCRIPTS = {}
KEYS = {}           # Idempotency-Key -> times received
REFUSED = [0]       # answers other than 2xx to Cortex requests
PREFIX = "/api/v1/catalog/"
SUFFIX = "/custom-events"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-cortex/1.0"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, obj=None, headers=None, body=None):
        if status >= 300 and not self.path.startswith("/_mock/"):
            with LOCK:
                REFUSED[0] += 1
        data = body if body is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_DELETE(self):
        self._handle("DELETE")

    def _control(self, method, path, raw):
        if path == "/_mock/reset" and method == "POST":
            with LOCK:
                REQUESTS.clear()
                SCRIPTS.clear()
                KEYS.clear()
                REFUSED[0] = 0
            return self._send(200, {"ok": True})
        if path == "/_mock/script" and method == "POST":
            spec = json.loads(raw or b"{}")
            with LOCK:
                SCRIPTS[spec["entity"]] = spec
            return self._send(200, {"ok": True})
        if path == "/_mock/requests":
            q = parse_qs(urlsplit(self.path).query)
            entity = q.get("entity", [None])[0]
            with LOCK:
                rows = [r for r in REQUESTS if entity is None or r["entity"] == entity]
            return self._send(200, rows)
        if path == "/_mock/counts":
            with LOCK:
                counts = {"requests": sum(KEYS.values()), "distinct": len(KEYS),
                          "twice": sum(1 for n in KEYS.values() if n > 1),
                          "refused": REFUSED[0]}
            return self._send(200, counts)
        return self._send(404, {"message": "unknown control endpoint"})

    def _handle(self, method):
        raw = self._read_body()
        path = urlsplit(self.path).path
        if path.startswith("/_mock/"):
            return self._control(method, path, raw)

        entity = None
        if path.startswith(PREFIX) and path.endswith(SUFFIX):
            entity = unquote(path[len(PREFIX):-len(SUFFIX)])
        text = raw.decode("utf-8", "replace")
        auth = self.headers.get("Authorization", "")
        headers = {k: v for k, v in self.headers.items()}
        # never echo credentials back: tests check they are stored nowhere
        for k in list(headers):
            low = k.lower()
            if low == "authorization":
                headers[k] = "Bearer (valid)" if auth == "Bearer " + self.server.token \
                    else "Bearer (invalid)"
            elif low in ("cookie", "x-api-key", "proxy-authorization") or \
                    any(w in low for w in ("token", "secret", "key", "password", "auth")):
                if low != "idempotency-key":
                    headers[k] = "(not echoed)"
        received = {
            "entity": entity,
            "method": method,
            "path": self.path,
            "headers": headers,
            "body": text,
            "time": time.time(),
        }
        key = self.headers.get("Idempotency-Key")
        with LOCK:
            if not self.server.count_only:
                REQUESTS.append(received)
            if key is not None:
                KEYS[key] = KEYS.get(key, 0) + 1
            script = SCRIPTS.get(entity) if entity is not None else None
            failing = False
            if script and script.get("fail", 0) > 0:
                script["fail"] -= 1
                failing = True

        if entity is None:
            return self._send(404, {"message": "Not Found"})
        if script:
            if script.get("delay_ms"):
                time.sleep(script["delay_ms"] / 1000.0)
            if failing and script.get("close"):
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if failing and script.get("redirect"):
                return self._send(302, {"message": "moved"}, {"Location": script["redirect"]})
            if failing:
                status = script.get("status", 500)
                headers = {}
                if script.get("retry_after") is not None:
                    headers["Retry-After"] = str(script["retry_after"])
                return self._send(status, {"message": "scripted failure %d" % status}, headers)
            if script.get("many_headers"):
                self.send_response(200)
                for i in range(script["many_headers"]):
                    self.send_header("X-Filler-%d" % i, "x" * 20)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
                return
            if script.get("huge_bytes"):
                n = script["huge_bytes"]
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(n))
                self.end_headers()
                chunk = b" " * 65536
                try:
                    while n > 0:
                        self.wfile.write(chunk[:min(n, len(chunk))])
                        n -= min(n, len(chunk))
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True
                return
            if script.get("garbage"):
                # not HTTP at all
                self.wfile.write(b"HTTP/1.1 two hundred OK\r\n\r\n")
                self.close_connection = True
                return
            if script.get("reset_mid_body"):
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(b"{\"partial\": ")
                self.wfile.flush()
                import socket, struct
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return
            if script.get("drip"):
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                try:
                    for _ in range(1000):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(1)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True
                return

        if auth != "Bearer " + self.server.token:
            return self._send(401, {"message": "Unauthorized", "details": "Invalid or missing API key"})
        if entity.startswith("missing"):
            return self._send(404, {"message": "Entity %s not found" % entity})
        try:
            body = json.loads(text)
        except ValueError:
            return self._send(400, {"message": "Request body is not valid JSON"})
        if not isinstance(body, dict) or "title" not in body or "type" not in body:
            return self._send(400, {"message": "title and type are required"})
        event = {
            "uuid": str(uuid.uuid4()),
            "title": body.get("title"),
            "type": body.get("type"),
            "description": body.get("description"),
            "timestamp": body.get("timestamp"),
            "customData": body.get("customData"),
            "received": received,
        }
        return self._send(200, event)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", help="write the bound port here")
    ap.add_argument("--token", default="test-token", help="the API key that is accepted")
    ap.add_argument("--count-only", action="store_true",
                    help="count requests by Idempotency-Key instead of keeping them")
    ap.add_argument("--tls-cert", help="serve https with this certificate (PEM, key included)")
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        import ssl
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert)
        srv.socket = tls.wrap_socket(srv.socket, server_side=True)
    srv.token = args.token
    srv.count_only = args.count_only
    port = srv.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(port))
        import os
        os.replace(args.port_file + ".tmp", args.port_file)
    print("mock cortex listening on 127.0.0.1:%d" % port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
