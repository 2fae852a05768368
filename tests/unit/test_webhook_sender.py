"""The webhook sender against a real local HTTP server: guarded, bounded, no redirects."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from service.webhooks.sender import WebhookSender


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
        self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("location", "http://127.0.0.1:1/elsewhere")
            self.end_headers()
            return
        if self.path == "/huge":
            self.send_response(200)
            self.end_headers()
            try:
                while True:  # an answer that never ends
                    self.wfile.write(b"x" * 65536)
            except OSError:
                return
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture(scope="module")
def base_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def sender(**overrides) -> WebhookSender:
    values = {"timeout": 5.0, "max_response_bytes": 1024, "allow_private": True} | overrides
    return WebhookSender(**values)


def test_a_2xx_answer_succeeds(base_url):
    attempt = sender().post(base_url + "/ok", {"content-type": "application/json"}, b"{}")
    assert attempt.succeeded and attempt.status == 204 and attempt.error == ""


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(base_url):
    attempt = sender().post(base_url + "/redirect", {}, b"{}")
    assert not attempt.succeeded
    assert (attempt.status, attempt.error) == (302, "HTTP 302")


def test_an_endless_answer_is_read_only_up_to_the_cap(base_url):
    attempt = sender(max_response_bytes=4096).post(base_url + "/huge", {}, b"{}")
    assert attempt.succeeded and attempt.status == 200


def test_a_closed_port_is_a_failed_attempt_without_a_status():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    attempt = sender().post(f"http://127.0.0.1:{port}/", {}, b"{}")
    assert attempt.status is None and "Connection" in attempt.error


def test_a_host_name_that_resolves_to_a_private_address_is_refused_at_delivery(base_url):
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 80)}
    except OSError:
        pytest.skip("this machine's host name does not resolve")
    if not any(a.startswith(("127.", "10.", "172.", "192.168.")) for a in addresses):
        pytest.skip("this machine's host name resolves to a public address")
    port = base_url.rsplit(":", 1)[1]
    attempt = sender(allow_private=False).post(f"http://{name}:{port}/ok", {}, b"{}")
    assert attempt.status is None and "not public" in attempt.error
    # The same name is delivered to when the operator allows private addresses.
    assert sender(allow_private=True).post(f"http://{name}:{port}/ok", {}, b"{}").succeeded
