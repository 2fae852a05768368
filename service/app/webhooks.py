"""Webhook endpoints: create (the secret shown once), read, list, update, delete, rotate.

Each endpoint belongs to one tenant and signs what it receives with its own secret, in the
Standard Webhooks format (``whsec_`` and the base64 of 24 random bytes), so a receiver can
verify deliveries with any Standard Webhooks library.
"""

from __future__ import annotations

import base64
import builtins
import dataclasses
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import storage
from service.app.authentication import Principal
from service.app.conventions import check_etag, check_mask, utc_now
from service.app.page_tokens import IntRange, Page, PageRequest
from service.app.transactions import transactional
from service.domain import errors
from service.domain.validation import check_text, require_id
from service.domain.webhook_urls import check_webhook_url

MAX_DESCRIPTION_CHARS = 1000
ACTIVE, FAILING = "ACTIVE", "FAILING"


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks format."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


@dataclass
class WebhookInput:
    """The fields of an endpoint a caller sets (``enabled`` None: not given)."""

    url: str = ""
    kinds: frozenset[str] = field(default_factory=frozenset)
    simulation_id: str = ""
    scenario_id: str = ""
    description: str = ""
    enabled: bool | None = None

    @classmethod
    def fields(cls) -> set[str]:
        """Every field an update mask may name."""
        return {f.name for f in dataclasses.fields(cls)}

    def populated(self) -> set[str]:
        """The fields this input sets (what an empty update mask changes)."""
        return {
            name for name in self.fields() if getattr(self, name) not in ("", None, frozenset())
        }

    def violations(self, *, allow_private: bool, only: set[str] | None = None) -> list:
        """Every problem of the fields (of ``only``, when given), with ``webhook.`` paths."""
        found = []
        if only is None or "url" in only:
            found += check_webhook_url(self.url, allow_private=allow_private, field="webhook.url")
        for name in ("simulation_id", "scenario_id"):
            value = getattr(self, name)
            if value and (only is None or name in only):
                found += check_text(value, f"webhook.{name}", max_length=100, single_line=True)
        if only is None or "description" in only:
            found += check_text(
                self.description, "webhook.description", max_length=MAX_DESCRIPTION_CHARS
            )
        return found


class WebhookOperations:
    """The WebhookService use cases; ``allow_private`` lifts the private-address guard."""

    def __init__(self, database: storage.Database, *, allow_private: bool = False) -> None:
        self._database = database
        self._allow_private = allow_private

    @transactional
    def create(self, principal: Principal, values: WebhookInput) -> tuple[storage.Webhook, str]:
        """Stores a new endpoint; returns it with its secret (never shown again)."""
        violations = values.violations(allow_private=self._allow_private)
        if violations:
            raise errors.InvalidArgument(violations)
        now = utc_now()
        webhook = storage.Webhook(
            id=str(uuid.uuid4()),
            tenant_id=principal.tenant_id,
            url=values.url,
            kinds=sorted(values.kinds),
            simulation_id=values.simulation_id,
            scenario_id=values.scenario_id,
            description=values.description,
            enabled=True if values.enabled is None else values.enabled,
            state=ACTIVE,
            secret=new_secret(),
            create_time=now,
            update_time=now,
            etag=uuid.uuid4().hex,
        )
        with self._database.unit_of_work() as uow:
            _check_targets(uow, principal.tenant_id, values)
            created = uow.webhooks.add(webhook)
            uow.commit()
        return created, created.secret

    def get(self, principal: Principal, webhook_id: str) -> storage.Webhook:
        """The tenant's endpoint."""
        require_id(webhook_id, "webhook_id")
        with self._database.read_unit_of_work() as uow:
            return uow.webhooks.get(principal.tenant_id, webhook_id)

    def list(self, principal: Principal, *, page_size: int = 0, page_token: str = "") -> Page:
        """The tenant's endpoints, one keyset page at a time."""
        paging = PageRequest(
            principal.tenant_id, page_size, page_token, cursor_types=(str,), kind="webhooks"
        )
        after = paging.after[0] if paging.after else None
        with self._database.read_unit_of_work() as uow:
            rows = uow.webhooks.list(principal.tenant_id, after_id=after, limit=paging.limit)
        return paging.page(rows, lambda row: (row.id,))

    @transactional
    def update(
        self,
        principal: Principal,
        webhook_id: str,
        values: WebhookInput,
        *,
        mask: builtins.list[str],
        etag: str = "",
    ) -> storage.Webhook:
        """Changes the masked fields; re-enabling a FAILING endpoint makes it ACTIVE."""
        require_id(webhook_id, "webhook.id")
        paths = check_mask(mask, WebhookInput.fields(), values.populated())
        violations = values.violations(allow_private=self._allow_private, only=set(paths))
        if violations:
            raise errors.InvalidArgument(violations)
        with self._database.unit_of_work() as uow:
            current = uow.webhooks.get(principal.tenant_id, webhook_id)
            check_etag(etag, current.etag, "webhook", webhook_id)
            if not paths:
                return current
            edits = {name: getattr(values, name) for name in paths}
            if "kinds" in edits:
                edits["kinds"] = sorted(edits["kinds"])
            if "enabled" in edits:
                edits["enabled"] = bool(edits["enabled"])
                if edits["enabled"]:
                    edits["state"] = ACTIVE
            _check_targets(uow, principal.tenant_id, values, only=set(paths))
            changed = dataclasses.replace(current, **edits, update_time=utc_now())
            updated = uow.webhooks.update(changed, expected_etag=current.etag)
            uow.commit()
        return updated

    @transactional
    def delete(self, principal: Principal, webhook_id: str, *, etag: str = "") -> None:
        """Deletes the endpoint; a stale ``etag`` is ``ABORTED``."""
        require_id(webhook_id, "webhook_id")
        with self._database.unit_of_work() as uow:
            current = uow.webhooks.get(principal.tenant_id, webhook_id)
            check_etag(etag, current.etag, "webhook", webhook_id)
            uow.webhooks.delete(principal.tenant_id, webhook_id, expected_etag=current.etag)
            uow.commit()

    @transactional
    def rotate_secret(
        self, principal: Principal, webhook_id: str, *, etag: str = ""
    ) -> tuple[storage.Webhook, str]:
        """Replaces the signing secret; returns the endpoint and the new secret."""
        require_id(webhook_id, "webhook_id")
        with self._database.unit_of_work() as uow:
            current = uow.webhooks.get(principal.tenant_id, webhook_id)
            check_etag(etag, current.etag, "webhook", webhook_id)
            changed = dataclasses.replace(current, secret=new_secret(), update_time=utc_now())
            updated = uow.webhooks.update(changed, expected_etag=current.etag)
            uow.commit()
        return updated, updated.secret

    def list_deliveries(
        self, principal: Principal, webhook_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> Page:
        """An endpoint's deliveries, newest first, one keyset page at a time."""
        require_id(webhook_id, "webhook_id")
        paging = PageRequest(
            principal.tenant_id,
            page_size,
            page_token,
            cursor_types=(IntRange(0, 2**63),),
            kind="webhook_deliveries",
            webhook_id=webhook_id,
        )
        before = paging.after[0] if paging.after else None
        with self._database.read_unit_of_work() as uow:
            uow.webhooks.get(principal.tenant_id, webhook_id)
            rows = uow.webhook_deliveries.list(
                principal.tenant_id, webhook_id, before_id=before, limit=paging.limit
            )
        return paging.page(rows, lambda row: (row.id,))

    @transactional
    def redeliver(
        self, principal: Principal, webhook_id: str, delivery_id: int
    ) -> storage.WebhookDelivery:
        """Makes a delivery due again now, with fresh attempts."""
        require_id(webhook_id, "webhook_id")
        if delivery_id <= 0:
            raise errors.InvalidArgument.field("delivery_id", "is required")
        with self._database.unit_of_work() as uow:
            delivery = uow.webhook_deliveries.requeue(
                principal.tenant_id, webhook_id, delivery_id, utc_now()
            )
            uow.commit()
        return delivery


# How often settled deliveries past their retention are purged, across all servers.
DELIVERY_PURGE_INTERVAL = timedelta(hours=1)


class WebhookDeliveryRetention:
    """Forgets delivered and finally failed deliveries older than ``keep``.

    Every server process calls :meth:`purge_expired` on a timer; the claim makes one of them,
    across all processes and replicas, do the work each ``DELIVERY_PURGE_INTERVAL``. Pending
    deliveries are never purged, however old: they are still owed to their endpoint.
    """

    def __init__(self, database: storage.Database, *, keep: timedelta) -> None:
        self._database = database
        self._keep = keep

    @transactional
    def purge_expired(self) -> int:
        """Deletes settled deliveries last touched before the retention; returns how many."""
        with self._database.unit_of_work() as uow:
            now = utc_now()
            if not uow.periodic_runs.claim("webhook-delivery-purge", now, DELIVERY_PURGE_INTERVAL):
                return 0
            purged = uow.webhook_deliveries.purge_settled_before(now - self._keep)
            uow.commit()
        return purged


def _check_targets(
    uow: storage.UnitOfWork, tenant_id: str, values: WebhookInput, only: set[str] | None = None
) -> None:
    # A filter naming another tenant's (or no) simulation or scenario is NOT_FOUND.
    if values.simulation_id and (only is None or "simulation_id" in only):
        uow.simulations.get(tenant_id, values.simulation_id)
    if values.scenario_id and (only is None or "scenario_id" in only):
        uow.scenarios.get(tenant_id, values.scenario_id)
