"""The conventions batch calls share (AIP-231/233/235): item limits, indexed paths, request ids.

The request-id record is shared with the single-resource writes (UpdateScenario, StartRun,
DeleteWebhook, ...): :func:`replayed_write` records them in the same table.

A batch call is all or nothing: its items are checked first and every bad one is reported in
one ``INVALID_ARGUMENT`` with its index (``requests[7].scenario.display_name``); then the
whole batch runs in one transaction. A batch made with a request id is recorded (its
fingerprint and the ids it returned) in the same transaction, so a retry gets the first
call's resources and a different call reusing the id is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TypeVar

import storage
from service.app.conventions import first_result, utc_now
from service.app.page_tokens import RESPONSE_BUDGET_BYTES
from service.app.transactions import transactional
from service.domain.errors import InvalidArgument, Violation
from service.domain.validation import check_request_id

T = TypeVar("T")

MAX_BATCH_ITEMS = 1000
_MAX_ID_CHARS = 100
# How long the request id of a batch call or a single-resource write is remembered for its
# retries.
REQUEST_ID_RETENTION = timedelta(days=7)
# How often the forgetting runs, across all servers.
PURGE_INTERVAL = timedelta(hours=1)


def check_item_count(count: int, field: str) -> None:
    """A batch holds 1 to ``MAX_BATCH_ITEMS`` items (``INVALID_ARGUMENT`` otherwise).

    Checked before the items themselves, so an oversized batch costs no per-item work.
    """
    if count == 0:
        raise InvalidArgument.field(field, "at least one item is required")
    if count > MAX_BATCH_ITEMS:
        raise InvalidArgument.field(
            field, f"at most {MAX_BATCH_ITEMS:,} items per call; got {count:,}"
        )


def check_ids(ids: Sequence[str], path: str, *, unique: bool = True) -> list[Violation]:
    """Violations of a batch's ids: empty, too long, or (when ``unique``) repeated.

    ``path`` is a format string with the item index, e.g. ``"requests[{}].scenario_id"``.
    """
    violations: list[Violation] = []
    first_index: dict[str, int] = {}
    for index, value in enumerate(ids):
        field = path.format(index)
        if not value:
            violations.append(Violation(field, "is required"))
        elif len(value) > _MAX_ID_CHARS:
            violations.append(Violation(field, f"must be at most {_MAX_ID_CHARS} characters"))
        elif unique and value in first_index:
            violations.append(
                Violation(field, f"repeats the id of {path.format(first_index[value])}")
            )
        else:
            first_index.setdefault(value, index)
    return violations


def raise_if_any(violations: list[Violation], request_id: str) -> None:
    """Raises one ``INVALID_ARGUMENT`` listing every violation, the request id's included."""
    violations = [*violations, *check_request_id(request_id)]
    if violations:
        raise InvalidArgument(violations)


def replay_or_record(
    uow: storage.UnitOfWork,
    tenant_id: str,
    method: str,
    request_id: str,
    request_fingerprint: str,
    resource_ids: list[str],
    *,
    noun: str = "batch",
) -> list[str] | None:
    """Records this call; or, when ``request_id`` was used before, returns its ids.

    None means the call is the first with this id (or has none) and goes ahead; the record
    commits with its writes. A list is the ids the first call returned, in order, when this
    call has the same arguments; different arguments are ``INVALID_ARGUMENT``
    (REQUEST_ID_REUSED). Called before the batch's writes, so a concurrent retry waits on
    the record and then answers with the first call's result.

    Single-resource writes (UpdateScenario, StartRun, ...) record themselves here too, with
    the one id they wrote; ``noun`` names what the REQUEST_ID_REUSED message talks about.
    """
    if not request_id:
        return None
    record = storage.BatchRequest(
        tenant_id=tenant_id,
        method=method,
        request_id=request_id,
        request_fingerprint=request_fingerprint,
        resource_ids=resource_ids,
        create_time=utc_now(),
    )
    try:
        uow.batch_requests.add(record)
        return None
    except storage.AlreadyExists:
        first = uow.batch_requests.get(tenant_id, method, request_id)
        if first is None:  # the clashing call rolled back since: it never happened
            raise storage.Conflict("batch_request", request_id) from None
    return first_result(first, first.request_fingerprint, request_fingerprint, noun).resource_ids


def ensure_request_id(request_id: str) -> None:
    """An ill-formed request id is ``INVALID_ARGUMENT`` (see :func:`check_request_id`)."""
    raise_if_any([], request_id)


def replayed_write(
    uow: storage.UnitOfWork,
    tenant_id: str,
    method: str,
    request_id: str,
    request_fingerprint: str,
    resource_id: str,
    *,
    noun: str,
) -> bool:
    """Whether this write of one resource was made before with ``request_id`` (AIP-155).

    False means it goes ahead and is recorded in its own transaction (nothing is recorded
    without a request id); True means the first call's write stands, and the caller answers
    with the resource as it is now. A reuse with other arguments is ``INVALID_ARGUMENT``.
    """
    first = replay_or_record(
        uow, tenant_id, method, request_id, request_fingerprint, [resource_id], noun=noun
    )
    return first is not None


def check_response_size(estimate: int, field: str, budget: int = RESPONSE_BUDGET_BYTES) -> None:
    """Refuses a batch whose answer would not fit in one response, before anything commits.

    A list cuts its page short instead; a batch is all or nothing, so the caller is told to
    send fewer items. ``estimate`` is the resources' size as JSON, which is larger than their
    encoded protos, so a batch that passes always fits.
    """
    if estimate > budget:
        raise InvalidArgument.field(
            field,
            f"the resources of this batch are too large for one response (about {estimate:,} "
            f"bytes, at most {budget:,}); send fewer items per call",
            reason="RESPONSE_TOO_LARGE",
        )


def in_order(found: Mapping[str, T], ids: Sequence[str]) -> list[T]:
    """The found records in the order of ``ids`` (an id given twice appears twice)."""
    return [found[value] for value in ids if value in found]


class BatchRequestRetention:
    """Forgets recorded calls older than the retention, once per interval across all servers.

    Batch calls and single-resource writes alike: their request ids share one table.
    """

    def __init__(self, database: storage.Database, *, keep: timedelta = REQUEST_ID_RETENTION):
        self._database = database
        self._keep = keep

    @transactional
    def purge_expired(self) -> int:
        """Deletes the records of calls made before the retention; returns how many."""
        with self._database.unit_of_work() as uow:
            now = utc_now()
            if not uow.periodic_runs.claim("batch-request-purge", now, PURGE_INTERVAL):
                return 0
            purged = uow.batch_requests.purge_older_than(now - self._keep)
            uow.commit()
        return purged
