#!/usr/bin/python3
"""pyservice.py: a tiny HTTP service instrumented with prometheus_client, for the
Prometheus provider's tests and bench (tests/promql, bench/promql).

It exposes what a Python team's service typically exposes with the default registry:
http_requests_total{code,method} (counter), http_request_duration_seconds (histogram),
and the process collector's process_cpu_seconds_total and process_resident_memory_bytes.

  GET  /work      answers 200, or 500 for a share --error-rate of the requests (spread
                  evenly: request n fails when floor((n+1)*rate) > floor(n*rate)), after
                  a short sleep (1..5 ms) so latencies are never zero
  GET  /healthz   200 "ok"
  GET  /metrics   the Prometheus text exposition of the default registry
  POST /fault?error_rate=R   change the error rate while running (the bench's switch)

Usage: pyservice.py --port PORT [--error-rate R]   (PORT also from $PORT)
"""
import argparse
import math
import os
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

REQUESTS = Counter("http_requests_total", "requests", ["code", "method"])
LATENCY = Histogram("http_request_duration_seconds", "request duration",
                    buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))


class State:
    lock = threading.Lock()
    served = 0
    error_rate = 0.0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: the driver keeps our output as a log
        pass

    def _answer(self, code, body, content_type="text/plain"):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = urlparse(self.path).path
        if path == "/healthz":
            self._answer(200, "ok\n")
        elif path == "/metrics":
            self._answer(200, generate_latest(), CONTENT_TYPE_LATEST)
        elif path == "/work":
            started = time.monotonic()
            with State.lock:
                n = State.served
                State.served += 1
                rate = State.error_rate
            fail = math.floor((n + 1) * rate) > math.floor(n * rate)
            time.sleep(random.uniform(0.001, 0.005))
            code = 500 if fail else 200
            self._answer(code, "failed\n" if fail else "done\n")
            LATENCY.observe(time.monotonic() - started)
            REQUESTS.labels(code=str(code), method="GET").inc()
        else:
            self._answer(404, "not found\n")

    def do_POST(self):
        url = urlparse(self.path)
        if url.path != "/fault":
            self._answer(404, "not found\n")
            return
        try:
            rate = float(parse_qs(url.query)["error_rate"][0])
            if not 0 <= rate <= 1:
                raise ValueError(rate)
        except (KeyError, ValueError):
            self._answer(400, "error_rate: a number in 0..1\n")
            return
        with State.lock:
            State.error_rate = rate
        self._answer(200, "error_rate=%g\n" % rate)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "0")))
    parser.add_argument("--error-rate", type=float, default=0.0)
    options = parser.parse_args()
    if not 0 <= options.error_rate <= 1:
        parser.error("--error-rate: a number in 0..1")
    State.error_rate = options.error_rate
    server = ThreadingHTTPServer(("127.0.0.1", options.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
