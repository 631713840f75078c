#!/usr/bin/env python3
"""A demo upstream service for the local stack: answers every request with a JSON echo of what it received.

Shows, through apigw, which path, headers (X-Forwarded-For, X-Request-Id, ...) and body reached the service.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "apigw-demo-upstream"
    # The head and the body go out in two writes: with Nagle's algorithm the body would wait for the ACK of the
    # head, which a keep-alive peer delays by 40 ms.
    disable_nagle_algorithm = True

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == "/health":
            payload = {"status": "ok", "service": self.server.name}
        else:
            payload = {
                "service": self.server.name,
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body": body.decode("utf-8", "replace"),
            }
        data = (json.dumps(payload, indent=2) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer

    def log_message(self, fmt, *args):
        pass


class DemoServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default of 5 makes connects time out under any load


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9001
    name = sys.argv[2] if len(sys.argv) > 2 else f"demo-{port}"
    server = DemoServer(("127.0.0.1", port), EchoHandler)
    server.name = name
    server.serve_forever()


if __name__ == "__main__":
    main()
