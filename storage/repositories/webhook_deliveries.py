"""Webhook deliveries: the outbox filled by the events trigger (migration 0013), claimed once.

Claiming follows the architect jobs: the oldest due delivery is leased to one worker, on
PostgreSQL with ``FOR UPDATE SKIP LOCKED`` so replicas pass each other, on SQLite under its
single write lock. A delivery is due only when no earlier delivery of the same endpoint and
simulation is still pending: events reach an endpoint in order per simulation.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.orm import aliased

from storage.errors import NotFound
from storage.records import Webhook, WebhookDelivery
from storage.repositories.base import SqlRepository
from storage.schema import webhook_deliveries, webhooks

_table = webhook_deliveries
PENDING, DELIVERED, FAILED = "PENDING", "DELIVERED", "FAILED"


class WebhookDeliveryRepository(SqlRepository):
    """Claims, settles, lists and re-queues deliveries."""

    def claim_next(
        self, now: datetime, lease_seconds: float
    ) -> tuple[WebhookDelivery, Webhook] | None:
        """Lease the oldest due delivery (and return it with its endpoint), or None."""
        earlier = aliased(_table)
        blocked = exists().where(
            earlier.c.webhook_id == _table.c.webhook_id,
            earlier.c.simulation_id == _table.c.simulation_id,
            earlier.c.state == PENDING,
            earlier.c.id < _table.c.id,
        )
        statement = (
            select(_table.c.id)
            .join(webhooks, webhooks.c.id == _table.c.webhook_id)
            .where(
                _table.c.state == PENDING,
                _table.c.next_attempt_time <= now,
                or_(_table.c.lease_expire_time.is_(None), _table.c.lease_expire_time < now),
                webhooks.c.enabled.is_(True),
                webhooks.c.state == "ACTIVE",
                ~blocked,
            )
            .order_by(_table.c.id)
            .limit(1)
            .with_for_update(skip_locked=True, of=_table)
        )
        delivery_id = self._execute(statement).scalar()
        if delivery_id is None:
            return None
        self._execute(
            update(_table)
            .where(_table.c.id == delivery_id)
            .values(
                lease_expire_time=now + timedelta(seconds=lease_seconds),
                attempts=_table.c.attempts + 1,
                update_time=now,
            )
        )
        row = self._execute(
            select(_table, *[c.label(f"w_{c.name}") for c in webhooks.c])
            .join(webhooks, webhooks.c.id == _table.c.webhook_id)
            .where(_table.c.id == delivery_id)
        ).one()
        mapping = row._mapping
        delivery = WebhookDelivery(**{c.name: mapping[c.name] for c in _table.c})
        webhook = Webhook(**{c.name: mapping[f"w_{c.name}"] for c in webhooks.c})
        return delivery, webhook

    def settle(
        self,
        delivery_id: int,
        now: datetime,
        *,
        state: str,
        response_code: int | None,
        latency_ms: int | None,
        error: str = "",
        next_attempt_time: datetime | None = None,
    ) -> None:
        """Record an attempt's outcome: DELIVERED, FAILED, or PENDING again at a later time."""
        values = {
            "state": state,
            "lease_expire_time": None,
            "response_code": response_code,
            "latency_ms": latency_ms,
            "last_error": error[:2000],
            "update_time": now,
        }
        if next_attempt_time is not None:
            values["next_attempt_time"] = next_attempt_time
        self._execute(update(_table).where(_table.c.id == delivery_id).values(**values))

    def mark_webhook_failing(self, webhook_id: str, now: datetime) -> None:
        """The endpoint's retries ran out: stop delivering until it is re-enabled."""
        self._execute(
            update(webhooks)
            .where(webhooks.c.id == webhook_id)
            .values(state="FAILING", update_time=now)
        )

    def list(
        self, tenant_id: str, webhook_id: str, *, before_id: int | None, limit: int
    ) -> list[WebhookDelivery]:
        """Up to ``limit`` of an endpoint's deliveries, newest first, before ``before_id``."""
        statement = select(_table).where(
            _table.c.tenant_id == tenant_id, _table.c.webhook_id == webhook_id
        )
        if before_id is not None:
            statement = statement.where(_table.c.id < before_id)
        rows = self._execute(statement.order_by(_table.c.id.desc()).limit(limit))
        return [WebhookDelivery(**row._mapping) for row in rows]

    def get(self, tenant_id: str, webhook_id: str, delivery_id: int) -> WebhookDelivery:
        """One delivery of the tenant's endpoint; NotFound when it is not there."""
        row = self._execute(
            select(_table).where(
                _table.c.tenant_id == tenant_id,
                _table.c.webhook_id == webhook_id,
                _table.c.id == delivery_id,
            )
        ).first()
        if row is None:
            raise NotFound("webhook_delivery", str(delivery_id))
        return WebhookDelivery(**row._mapping)

    def requeue(
        self, tenant_id: str, webhook_id: str, delivery_id: int, now: datetime
    ) -> WebhookDelivery:
        """Make a delivery due again now, with fresh attempts; NotFound when it is not there."""
        result = self._execute(
            update(_table)
            .where(
                and_(
                    _table.c.tenant_id == tenant_id,
                    _table.c.webhook_id == webhook_id,
                    _table.c.id == delivery_id,
                )
            )
            .values(
                state=PENDING,
                attempts=0,
                next_attempt_time=now,
                lease_expire_time=None,
                update_time=now,
            )
        )
        if result.rowcount == 0:
            raise NotFound("webhook_delivery", str(delivery_id))
        row = self._execute(select(_table).where(_table.c.id == delivery_id)).one()
        return WebhookDelivery(**row._mapping)

    def purge_settled_before(self, cutoff: datetime) -> int:
        """Delete settled deliveries last updated before ``cutoff``; return how many.

        DELIVERED and FAILED ones, in every tenant; PENDING ones stay however old.
        """
        result = self._execute(
            delete(_table).where(
                _table.c.state.in_((DELIVERED, FAILED)), _table.c.update_time < cutoff
            )
        )
        return result.rowcount
