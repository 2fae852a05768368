"""The deadline of the call a thread is serving, for the storage layer to respect.

The API edge knows each call's remaining time; the storage layer must not wait past it (a
retry that succeeds after the client gave up is worse than none: the client sees
DEADLINE_EXCEEDED for a write that landed). The edge binds the deadline with
:func:`bounded_by`; the retry policy and the statement timeout read it with
:func:`time_left`. Work outside any call (workers, the CLI) has no deadline.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "simconfig_call_deadline", default=None
)


@contextmanager
def bounded_by(seconds: float | None) -> Iterator[None]:
    """Database work in the block must end within ``seconds`` (None: no deadline)."""
    deadline = None if seconds is None else time.monotonic() + max(0.0, seconds)
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


def time_left() -> float | None:
    """Seconds until the current call's deadline (may be negative), or None without one."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()
