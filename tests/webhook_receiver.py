"""A real HTTP server on 127.0.0.1 that records webhook deliveries, for the delivery tests."""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    """One request as the receiver got it, and the status it answered."""

    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def event(self) -> dict:
        return json.loads(self.body)["data"]


class Receiver:
    """Answers ``failures`` requests with 500, then 204; every request lands in ``requests``."""

    def __init__(self, failures: int = 0, *, hold_first: bool = False) -> None:
        self.requests: queue.Queue[Received] = queue.Queue()
        self._failures = failures
        # With hold_first, the first request gets no answer until close(): its sender is
        # stuck mid-delivery, as a server killed then would be.
        self._hold = hold_first
        self.held = threading.Event()
        self._release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    hold, receiver._hold = receiver._hold, False
                if hold:
                    receiver.held.set()
                    receiver._release.wait()
                    return
                with receiver._lock:
                    failing = receiver._failures > 0
                    receiver._failures -= 1
                status = 500 if failing else 204
                self.send_response(status)
                self.end_headers()
                headers = {key.lower(): value for key, value in self.headers.items()}
                receiver.requests.put(Received(headers, body, status))

            def log_message(self, *_args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"
        # serve_forever notices shutdown() only between polls (every 0.5 s by default), and every
        # test closes its receiver: a short poll keeps close() from costing half a second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def take(self, count: int, timeout: float = 20.0) -> list[Received]:
        """The next ``count`` requests (fails the test when they do not come in time)."""
        return [self.requests.get(timeout=timeout) for _ in range(count)]

    def recover(self) -> None:
        """Answer 204 from now on."""
        with self._lock:
            self._failures = 0

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
