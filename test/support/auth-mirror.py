#!/usr/bin/env python3
"""A Debian mirror that wants credentials: HTTP Basic auth in front of an upstream mirror (a private
mirror as users run them). Answers 401 with a challenge without the right Authorization header, and
proxies GET/HEAD to UPSTREAM otherwise. Prints its port, then serves until stdin closes; counts
requests by outcome in COUNTS_FILE (JSON, rewritten per request).

  auth-mirror.py USER PASSWORD UPSTREAM COUNTS_FILE
"""
import base64
import json
import shutil
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

user, password, upstream, counts_file = sys.argv[1:5]
expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
counts = {"authorized": 0, "challenged": 0}
lock = threading.Lock()


def count(key: str) -> None:
    with lock:
        counts[key] += 1
        with open(counts_file, "w") as f:
            json.dump(counts, f)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def do_HEAD(self):
        self.do_GET(body=False)

    def do_GET(self, body=True):
        if self.headers.get("Authorization") != expected:
            count("challenged")
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="mirror"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        count("authorized")
        path = self.path.split("/", 2)[2] if self.path.count("/") >= 2 else ""
        try:
            with urllib.request.urlopen(f"{upstream.rstrip('/')}/{path}", timeout=60) as r:
                self.send_response(r.status)
                for h in ("Content-Type", "Content-Length", "Last-Modified"):
                    if r.headers.get(h):
                        self.send_header(h, r.headers[h])
                self.end_headers()
                if body:
                    shutil.copyfileobj(r, self.wfile)
        except urllib.error.HTTPError as e:
            self.send_response(e.code)
            self.send_header("Content-Length", "0")
            self.end_headers()


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.stdin.read()
server.shutdown()
