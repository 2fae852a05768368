"""Webhook endpoints: tenant-scoped, written with compare-and-swap on their etag."""

from __future__ import annotations

from dataclasses import replace
from uuid import uuid4

from sqlalchemy import delete, select

from storage.errors import Conflict, NotFound
from storage.records import Webhook
from storage.repositories.base import RecordTable, SqlRepository
from storage.schema import webhooks

# The record is the column list: see RecordTable.
COLUMNS = RecordTable(Webhook, webhooks, keys=("tenant_id", "id"), fixed=("create_time",))


class WebhookRepository(SqlRepository):
    """Adds, reads, pages through, updates and deletes a tenant's webhook endpoints."""

    def add(self, webhook: Webhook) -> Webhook:
        """Store a new endpoint and return it."""
        self._write(COLUMNS.insert, COLUMNS.insert_values(webhook), entity="webhook")
        return webhook

    def get(self, tenant_id: str, webhook_id: str) -> Webhook:
        """The tenant's endpoint; NotFound otherwise."""
        row = self._execute(
            select(webhooks).where(webhooks.c.tenant_id == tenant_id, webhooks.c.id == webhook_id)
        ).first()
        if row is None:
            raise NotFound("webhook", webhook_id)
        return Webhook(**row._mapping)

    def list(self, tenant_id: str, *, after_id: str | None, limit: int) -> list[Webhook]:
        """Up to ``limit`` of the tenant's endpoints in id order, after ``after_id``."""
        statement = select(webhooks).where(webhooks.c.tenant_id == tenant_id)
        if after_id is not None:
            statement = statement.where(webhooks.c.id > after_id)
        rows = self._execute(statement.order_by(webhooks.c.id).limit(limit))
        return [Webhook(**row._mapping) for row in rows]

    def update(self, webhook: Webhook, *, expected_etag: str) -> Webhook:
        """Write every mutable field if the stored etag is ``expected_etag``.

        Conflict when the etag differs, NotFound when the endpoint is gone.
        """
        written = replace(webhook, etag=uuid4().hex)
        count = self._write(
            COLUMNS.update, COLUMNS.update_values(written, expected_etag), entity="webhook"
        )
        if count == 0:
            self.get(webhook.tenant_id, webhook.id)
            raise Conflict("webhook", webhook.id)
        return written

    def delete(self, tenant_id: str, webhook_id: str, *, expected_etag: str | None) -> None:
        """Delete the endpoint (compare-and-swap with ``expected_etag``)."""
        statement = delete(webhooks).where(
            webhooks.c.tenant_id == tenant_id, webhooks.c.id == webhook_id
        )
        if expected_etag is not None:
            statement = statement.where(webhooks.c.etag == expected_etag)
        if self._execute(statement).rowcount == 0:
            self.get(tenant_id, webhook_id)
            raise Conflict("webhook", webhook_id)
