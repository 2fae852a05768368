"""Fits a list response under the gRPC message limit by cutting its page shorter."""

from __future__ import annotations

from collections.abc import Iterable

from service.app.page_tokens import RESPONSE_BUDGET_BYTES, Page


def _varint_size(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def _repeated_entry_size(message) -> int:
    """Bytes one message adds to a repeated field: tag (≤ 2 bytes), length, body."""
    body = message.ByteSize()
    return 2 + _varint_size(body) + body


def fit_to_budget(
    page: Page, protos: Iterable, budget: int = RESPONSE_BUDGET_BYTES
) -> tuple[list, str]:
    """The leading ``protos`` (one per item of ``page``) that fit in ``budget`` bytes.

    Always keeps at least one, so a single large item is still served; returns them
    with the token that resumes after the last one kept. ``protos`` may be a generator:
    items past the budget are then never converted.
    """
    kept: list = []
    used = 0
    for message in protos:
        size = _repeated_entry_size(message)
        if kept and used + size > budget:
            break
        kept.append(message)
        used += size
    return kept, page.cut(len(kept)).next_page_token
