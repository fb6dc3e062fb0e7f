#!/usr/bin/env python3
"""A tiny HTTPS upload target for the egress integration test (loopback only).

Every request is answered with JSON: the method, path, request headers, the
body length and its SHA-256. Bodies are streamed (never held in memory), and
each request is appended to a log file as one JSON line.
Usage: upload_target.py PORT CERT KEY LOGFILE
"""
import hashlib
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length", "0") or 0)
        h = hashlib.sha256()
        left = length
        while left > 0:
            data = self.rfile.read(min(left, 1 << 20))
            if not data:
                break
            h.update(data)
            left -= len(data)
        record = {
            "method": self.command,
            "host": self.headers.get("Host", ""),
            "path": self.path,
            "headers": {k: v for k, v in self.headers.items()},
            "length": length - left,
            "sha256": h.hexdigest(),
        }
        with open(LOG, "a") as f:
            f.write(json.dumps(record) + "\n")
        body = json.dumps(record).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer
    do_PUT = _answer


if __name__ == "__main__":
    port, cert, key, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()
