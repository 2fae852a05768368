"""One HTTP POST to a tenant's endpoint, guarded: the request is the server's, the URL is not.

The host is resolved once and every address it resolves to must be public (unless private
ones are allowed); the connection then goes to that address, so the name cannot resolve
elsewhere between the check and the connect. Redirects are not followed (a 3xx is a failed
attempt), the whole exchange has a deadline, and at most ``max_response_bytes`` of the
answer are read.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from service.domain.webhook_urls import check_webhook_url, is_public_address


@dataclass(frozen=True)
class Attempt:
    """What one POST ended with: the HTTP status (None when there was none) and timing."""

    status: int | None
    latency_ms: int
    error: str = ""

    @property
    def succeeded(self) -> bool:
        """A 2xx answer."""
        return self.status is not None and 200 <= self.status < 300


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


class WebhookSender:
    """POSTs deliveries with a deadline, a response cap and the address guard."""

    def __init__(
        self, *, timeout: float, max_response_bytes: int, allow_private: bool = False
    ) -> None:
        self._timeout = timeout
        self._max_response_bytes = max_response_bytes
        self._allow_private = allow_private

    def post(self, url: str, headers: dict[str, str], body: bytes) -> Attempt:
        """Send ``body``; never raises for network or HTTP failures (they are the Attempt's)."""
        started = time.monotonic()

        def failed(error: str, status: int | None = None) -> Attempt:
            return Attempt(status, int((time.monotonic() - started) * 1000), error)

        problems = check_webhook_url(url, allow_private=self._allow_private)
        if problems:
            return failed(problems[0].description)
        parts = urlsplit(url)
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        try:
            address = self._resolve(parts.hostname or "", port)
        except (OSError, ValueError) as exc:
            return failed(f"cannot resolve or refused address: {exc}")
        connection_type = _PinnedHTTPSConnection if https else _PinnedHTTPConnection
        connection = connection_type(parts.hostname or "", port, address, self._timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            deadline = started + self._timeout
            remaining = self._max_response_bytes
            while remaining > 0 and time.monotonic() < deadline:
                chunk = response.read(min(remaining, 16 * 1024))
                if not chunk:
                    break
                remaining -= len(chunk)
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            return failed(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()
        attempt = Attempt(status, int((time.monotonic() - started) * 1000))
        if not attempt.succeeded:
            return Attempt(status, attempt.latency_ms, f"HTTP {status}")
        return attempt

    def _resolve(self, host: str, port: int) -> str:
        """The address to connect to; ValueError when any address of ``host`` is not public."""
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [str(info[4][0]) for info in infos]
        if not addresses:
            raise ValueError(f"{host} has no address")
        if not self._allow_private:
            for address in addresses:
                if not is_public_address(address):
                    raise ValueError(f"{host} resolves to {address}, which is not public")
        return addresses[0]
