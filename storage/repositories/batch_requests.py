"""Batch requests: the recorded outcome of batch calls made with a request id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select

from storage.driver_errors import UniqueRule
from storage.records import BatchRequest
from storage.repositories.base import SqlRepository
from storage.schema import batch_requests


class BatchRequestRepository(SqlRepository):
    """Stores one row per (tenant, method, request id); every method is scoped by tenant id."""

    def add(self, record: BatchRequest) -> None:
        """Record a batch call; AlreadyExists(field="request_id") when the id was used before.

        Run in a savepoint, so the unit of work stays usable after the clash: the caller reads
        the first call's record and answers with it. Added before the call's writes, so a
        concurrent retry clashes here rather than on what the first call writes. On PostgreSQL a concurrent call with the
        same id waits here until the first one commits or rolls back.
        """
        self._execute_guarded(
            insert(batch_requests).values(
                tenant_id=record.tenant_id,
                method=record.method,
                request_id=record.request_id,
                request_fingerprint=record.request_fingerprint,
                resource_ids=list(record.resource_ids),
                create_time=record.create_time,
            ),
            entity="batch_request",
            uniques=(
                UniqueRule(
                    "pk_batch_requests",
                    ("tenant_id", "method", "request_id"),
                    "request_id",
                    record.request_id,
                ),
            ),
        )

    def get(self, tenant_id: str, method: str, request_id: str) -> BatchRequest | None:
        """Return the recorded call of ``method`` with ``request_id``, if any."""
        row = self._execute(
            select(batch_requests).where(
                batch_requests.c.tenant_id == tenant_id,
                batch_requests.c.method == method,
                batch_requests.c.request_id == request_id,
            )
        ).first()
        return None if row is None else BatchRequest(**row._mapping)

    def purge_older_than(self, cutoff: datetime) -> int:
        """Forget batch calls made before ``cutoff``, in every tenant; return how many.

        A retry after that is a new call: request ids are kept long enough for retries, not
        forever.
        """
        result = self._execute(delete(batch_requests).where(batch_requests.c.create_time < cutoff))
        return result.rowcount
