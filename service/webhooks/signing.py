"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

The signed content is ``<webhook-id>.<webhook-timestamp>.<body>``; the signature is its
HMAC-SHA256 under the secret's key (the base64 after ``whsec_``), sent base64-encoded as
``v1,<signature>`` in the ``webhook-signature`` header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for ``body``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header a delivery carries."""
    return {
        "content-type": "application/json",
        "user-agent": "simconfig-webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }
