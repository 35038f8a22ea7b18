"""A real HTTP mirror on 127.0.0.1 that serves the MNIST files and misbehaves on request.

Shared by tests/unit/io/test_mirrors.py, tests/stages/test_download.py and tests/e2e/test_faults.py. Faults are
queued per file name and used up one per request, so a test states exactly what the network does:
an HTTP status, bytes to serve instead, "drop" (announce the full length, close after a third of
the body), "stall" (never answer) or "stall-body" (send the headers and 100 bytes, then nothing).
Stalled handlers end when the mirror stops, or after STALL_S at most.
"""

import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

STALL_S = 30.0


class _Handler(BaseHTTPRequestHandler):
    """Serves `<any path>/<file name>` from the mirror's folder, or the next fault queued for it."""

    def do_GET(self):
        mirror = self.server.mirror
        name = self.path.rsplit("/", 1)[-1]
        with mirror.lock:
            mirror.requests[name] += 1
            queue = mirror.faults.get(name)
            fault = queue.pop(0) if queue else None
        if isinstance(fault, int):
            self.send_error(fault)
            return
        if fault == "stall":
            mirror.released.wait(STALL_S)
            return
        path = mirror.folder / name
        body = fault if isinstance(fault, bytes) else path.read_bytes() if path.is_file() else None
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault == "drop":
            self.wfile.write(body[: len(body) // 3])
        elif fault == "stall-body":
            self.wfile.write(body[:100])
            self.wfile.flush()
            mirror.released.wait(STALL_S)
        else:
            self.wfile.write(body)

    def log_message(self, *args):
        pass


class Mirror:
    """A threaded HTTP server on a free 127.0.0.1 port serving `folder`; `faults[name]` is used up
    one per request and `requests[name]` counts the requests."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.faults: dict[str, list] = {}
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.released = threading.Event()  # ends stalled handlers when the test is over
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.mirror = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/mnist/"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def dead_url() -> str:
    """A base URL on a 127.0.0.1 port that nothing listens on, so connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
