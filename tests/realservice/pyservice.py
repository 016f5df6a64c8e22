#!/usr/bin/python3
"""pyservice.py: a tiny HTTP service instrumented the ordinary way, with nothing airlock-specific.

It is what a team writes with the official Prometheus Python client
(Debian python3-prometheus-client): the default registry with its process
collector (process_cpu_seconds_total, process_resident_memory_bytes, ...), a
Counter http_requests_total{code,method} and a Histogram
http_request_duration_seconds. tests/realservice proves airlock judges it with no
signal configuration at all.

Endpoints: /healthz and /readyz (200), /metrics (the exposition), /work (a little
work; fails with 500 at --error-rate). Flags, or the environment variables named
in brackets: --port [PORT] (0: the kernel chooses; the chosen port is printed),
--error-rate [ERROR_RATE] 0..1, --cpu-burn [CPU_BURN] 0..100 (a thread keeps that
share of one core busy), --burn-threads [BURN_THREADS] 1..8 (that many such threads),
--version [VERSION] (printed only).
"""
import argparse
import hashlib
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

REQUESTS = Counter('http_requests_total', 'HTTP requests served.', ['code', 'method'])
DURATION = Histogram('http_request_duration_seconds', 'Time to answer a request, in seconds.')


def burn(percent):
    """Keep percent of one core busy, in 100 ms periods. The work is hashing, which
    releases the GIL: the process burns CPU without holding up the request threads
    (a saturated service, not a slow one)."""
    period = 0.1
    chunk = b'x' * (256 * 1024)
    while True:
        start = time.monotonic()
        while time.monotonic() - start < period * percent / 100.0:
            hashlib.sha256(chunk).digest()
        rest = period - (time.monotonic() - start)
        if rest > 0:
            time.sleep(rest)


class Handler(BaseHTTPRequestHandler):
    error_rate = 0.0

    def _answer(self, code, body, content_type='text/plain; charset=utf-8'):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(code)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(data)

    def do_GET(self):
        path = self.path.split('?', 1)[0]
        if path in ('/healthz', '/readyz'):
            self._answer(200, 'ok\n')
        elif path == '/metrics':
            self._answer(200, generate_latest(), CONTENT_TYPE_LATEST)
        elif path == '/work':
            #  Counted before the answer: a client that reads /metrics right after its
            #  answer finds its request there.
            with DURATION.time():
                total = sum(i * i for i in range(200))      # a little work
                code = 500 if random.random() < self.error_rate else 200
            REQUESTS.labels(code=str(code), method=self.command).inc()
            self._answer(code, '{"result": %d}\n' % total, 'application/json')
        else:
            REQUESTS.labels(code='404', method=self.command).inc()
            self._answer(404, 'not found\n')

    do_HEAD = do_GET

    def log_message(self, format, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description='A small service instrumented with prometheus_client.')
    parser.add_argument('--port', type=int, default=int(os.environ.get('PORT', '8080')))
    parser.add_argument('--error-rate', type=float, default=float(os.environ.get('ERROR_RATE', '0')))
    parser.add_argument('--cpu-burn', type=int, default=int(os.environ.get('CPU_BURN', '0')))
    parser.add_argument('--burn-threads', type=int, default=int(os.environ.get('BURN_THREADS', '1')))
    parser.add_argument('--version', default=os.environ.get('VERSION', '1.0.0'))
    options = parser.parse_args()
    if not 0 <= options.error_rate <= 1 or not 0 <= options.cpu_burn <= 100 \
            or not 1 <= options.burn_threads <= 8:
        parser.error('--error-rate is 0..1, --cpu-burn 0..100, --burn-threads 1..8')
    Handler.error_rate = options.error_rate
    for _ in range(options.burn_threads if options.cpu_burn else 0):
        threading.Thread(target=burn, args=(options.cpu_burn,), daemon=True).start()
    server = ThreadingHTTPServer(('127.0.0.1', options.port), Handler)
    server.daemon_threads = True
    print('pyservice %s listening on 127.0.0.1:%d' % (options.version, server.server_address[1]), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
