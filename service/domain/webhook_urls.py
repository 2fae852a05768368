"""Which URLs a webhook may be delivered to: the server-side request forgery guard.

A tenant chooses the URL, and the server makes the request, so an unchecked URL would let a
tenant reach what only the server can: its own loopback interface, cloud metadata services
(link-local ``169.254.169.254``), the private network behind it. Only ``http``/``https`` URLs
without credentials are accepted, and addresses that are not public are refused unless the
operator allows them (``SIMCONFIG_WEBHOOK_ALLOW_PRIVATE=true``, for tests and closed
networks). A host name is checked again, by the addresses it resolves to, at every delivery.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from service.domain.errors import Violation

MAX_URL_CHARS = 2000
_LOCAL_NAMES = ("localhost", "localhost.localdomain")


def is_public_address(address: str) -> bool:
    """False for loopback, link-local, private, reserved, multicast and unspecified addresses."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_webhook_url(url: str, *, allow_private: bool, field: str = "url") -> list[Violation]:
    """Every reason ``url`` cannot receive webhooks (empty when it can)."""
    if not url:
        return [Violation(field, "is required")]
    if len(url) > MAX_URL_CHARS:
        return [Violation(field, f"must be at most {MAX_URL_CHARS} characters")]
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        return [Violation(field, f"is not a valid URL: {exc}")]
    if parts.scheme not in ("http", "https"):
        return [Violation(field, "must be an http or https URL")]
    if not host:
        return [Violation(field, "must name a host")]
    if parts.username is not None or parts.password is not None:
        return [Violation(field, "must not carry credentials")]
    if any(ord(character) < 33 for character in url):
        return [Violation(field, "must not contain spaces or control characters")]
    if allow_private:
        return []
    try:
        public = is_public_address(host)
    except ValueError:  # a name, not an address: checked by what it resolves to, per delivery
        public = host.rstrip(".").lower() not in _LOCAL_NAMES
    if not public:
        return [
            Violation(
                field,
                "must not point at a loopback, link-local or private address "
                "(the server allows those only with SIMCONFIG_WEBHOOK_ALLOW_PRIVATE=true)",
            )
        ]
    return []
