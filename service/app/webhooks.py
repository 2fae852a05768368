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
from service.app.batches import ensure_request_id, replay_or_record, replayed_write
from service.app.conventions import check_etag, check_mask, fingerprint, utc_now
from service.app.page_tokens import IntRange, Page, PageRequest
from service.app.transactions import transactional
from service.domain import errors
from service.domain.validation import check_request_id, check_text, require_id
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
    def create(
        self, principal: Principal, values: WebhookInput, *, request_id: str = ""
    ) -> tuple[storage.Webhook, str]:
        """Stores a new endpoint; returns it with its secret (shown only to this call).

        A retry with the same ``request_id`` and arguments returns the endpoint the first call
        created, with its current secret, instead of creating another.
        """
        violations = [
            *values.violations(allow_private=self._allow_private),
            *check_request_id(request_id),
        ]
        if violations:
            raise errors.InvalidArgument(violations)
        tenant_id = principal.tenant_id
        request = fingerprint(rpc="CreateWebhook", **_fingerprinted(values))
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
            first = replay_or_record(
                uow, tenant_id, "CreateWebhook", request_id, request, [webhook.id], noun="webhook"
            )
            if first is not None:
                replayed = uow.webhooks.get(tenant_id, first[0])
                return replayed, replayed.secret
            _check_targets(uow, tenant_id, values)
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
        request_id: str = "",
    ) -> storage.Webhook:
        """Changes the masked fields; re-enabling a FAILING endpoint makes it ACTIVE.

        A retry with the same ``request_id`` and arguments returns the endpoint as it is now.
        """
        require_id(webhook_id, "webhook.id")
        paths = check_mask(mask, WebhookInput.fields(), values.populated())
        violations = [
            *values.violations(allow_private=self._allow_private, only=set(paths)),
            *check_request_id(request_id),
        ]
        if violations:
            raise errors.InvalidArgument(violations)
        request = fingerprint(
            rpc="UpdateWebhook",
            webhook_id=webhook_id,
            values=_fingerprinted(values),
            mask=mask,
            etag=etag,
        )
        with self._database.unit_of_work() as uow:
            if replayed_write(
                uow,
                principal.tenant_id,
                "UpdateWebhook",
                request_id,
                request,
                webhook_id,
                noun="webhook write",
            ):
                return uow.webhooks.get(principal.tenant_id, webhook_id)
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
    def delete(
        self, principal: Principal, webhook_id: str, *, etag: str = "", request_id: str = ""
    ) -> None:
        """Deletes the endpoint; a stale ``etag`` is ``ABORTED``.

        A retry with the same ``request_id`` and arguments succeeds again instead of
        NOT_FOUND: the record of the first call outlives the endpoint.
        """
        require_id(webhook_id, "webhook_id")
        ensure_request_id(request_id)
        request = fingerprint(rpc="DeleteWebhook", webhook_id=webhook_id, etag=etag)
        with self._database.unit_of_work() as uow:
            if replayed_write(
                uow,
                principal.tenant_id,
                "DeleteWebhook",
                request_id,
                request,
                webhook_id,
                noun="webhook write",
            ):
                return
            current = uow.webhooks.get(principal.tenant_id, webhook_id)
            check_etag(etag, current.etag, "webhook", webhook_id)
            uow.webhooks.delete(principal.tenant_id, webhook_id, expected_etag=current.etag)
            uow.commit()

    @transactional
    def rotate_secret(
        self, principal: Principal, webhook_id: str, *, etag: str = "", request_id: str = ""
    ) -> tuple[storage.Webhook, str]:
        """Replaces the signing secret; returns the endpoint and the new secret.

        A retry with the same ``request_id`` and arguments returns the endpoint and its
        current secret instead of rotating again (which would void the secret the client
        never saw).
        """
        require_id(webhook_id, "webhook_id")
        ensure_request_id(request_id)
        request = fingerprint(rpc="RotateWebhookSecret", webhook_id=webhook_id, etag=etag)
        with self._database.unit_of_work() as uow:
            tenant_id = principal.tenant_id
            if replayed_write(
                uow,
                tenant_id,
                "RotateWebhookSecret",
                request_id,
                request,
                webhook_id,
                noun="webhook write",
            ):
                replayed = uow.webhooks.get(tenant_id, webhook_id)
                return replayed, replayed.secret
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
        self, principal: Principal, webhook_id: str, delivery_id: int, *, request_id: str = ""
    ) -> storage.WebhookDelivery:
        """Makes a delivery due again now, with fresh attempts.

        A retry with the same ``request_id`` and arguments returns the delivery as it is now
        instead of queueing it again (which would send the receiver the event once more).
        """
        require_id(webhook_id, "webhook_id")
        if delivery_id <= 0:
            raise errors.InvalidArgument.field("delivery_id", "is required")
        ensure_request_id(request_id)
        tenant_id = principal.tenant_id
        request = fingerprint(
            rpc="RedeliverWebhook", webhook_id=webhook_id, delivery_id=delivery_id
        )
        with self._database.unit_of_work() as uow:
            if replayed_write(
                uow,
                tenant_id,
                "RedeliverWebhook",
                request_id,
                request,
                webhook_id,
                noun="webhook write",
            ):
                return uow.webhook_deliveries.get(tenant_id, webhook_id, delivery_id)
            delivery = uow.webhook_deliveries.requeue(tenant_id, webhook_id, delivery_id, utc_now())
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


def _fingerprinted(values: WebhookInput) -> dict:
    return {**dataclasses.asdict(values), "kinds": sorted(values.kinds)}


def _check_targets(
    uow: storage.UnitOfWork, tenant_id: str, values: WebhookInput, only: set[str] | None = None
) -> None:
    # A filter naming another tenant's (or no) simulation or scenario is NOT_FOUND.
    if values.simulation_id and (only is None or "simulation_id" in only):
        uow.simulations.get(tenant_id, values.simulation_id)
    if values.scenario_id and (only is None or "scenario_id" in only):
        uow.scenarios.get(tenant_id, values.scenario_id)
