"""The one transaction boundary of the use cases, and the one retry policy around it.

A use case method decorated with :func:`transactional` runs as a whole: when a transaction in
it fails transiently (a lost connection, a serialization failure or deadlock, SQLite's busy
lock) or loses a compare-and-swap race (``storage.Conflict``), the method runs again from the
top on fresh data, as often as the database's :class:`storage.RetryPolicy` allows. Inside, a
use case reads top to bottom::

    @transactional
    def rename(self, principal, scenario_id, name):
        with self._database.unit_of_work() as uow:
            current = uow.scenarios.get(principal.tenant_id, scenario_id, lock="edit")
            renamed = uow.scenarios.update(replace(current, display_name=name), ...)
            uow.commit()
        return renamed

A retried method therefore must have no effect outside its units of work before it returns.
Storage errors it does not handle (NotFound, AlreadyExists, an exhausted Conflict) are left to
the API edge, which maps them to statuses once (:mod:`service.api.error_status`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import storage

P = ParamSpec("P")
T = TypeVar("T")


class _HasDatabase(Protocol):
    _database: storage.Database


S = TypeVar("S", bound=_HasDatabase)


def transactional(method: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
    """Runs the use case again from the top on transient failures and lost races (bounded).

    A call with a ``request_id`` is also run again when the connection broke during its
    COMMIT (``storage.CommitOutcomeUnknown``): every use case taking a request id first looks
    it up in the transaction, so the next attempt either replays the write that landed or
    makes the one that did not. The client sees one answer instead of an unknown outcome.
    """

    @functools.wraps(method)
    def run(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
        def attempt() -> T:
            return method(self, *args, **kwargs)

        also: tuple[type[Exception], ...] = (storage.Conflict,)
        if kwargs.get("request_id"):
            also = (storage.Conflict, storage.CommitOutcomeUnknown)
        return self._database.retry.run(attempt, also=also)

    return run
