"""Scenario use cases: create, read, list, update, soft delete and undelete.

Every operation takes the caller's :class:`~service.auth.Principal` and runs as
one retried transaction through :meth:`storage.Database.run`.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import storage
from service import errors, lifecycle
from service.auth import Principal
from service.fields import (
    check_etag,
    check_labels,
    check_mask,
    check_request_id,
    check_text,
    request_fingerprint,
    require_id,
    utc_now,
)
from service.filters import parse_filter, parse_order_by
from service.pagination import Page, PageRequest

UPDATABLE_FIELDS = {"display_name", "description", "labels"}
FILTER_FIELDS = {"display_name"}
ORDER_FIELDS = {"create_time", "display_name"}
# Simulations in these statuses have an architect job or a run working on them.
_BUSY_STATUSES = [lifecycle.PENDING, lifecycle.GENERATING_CONFIG, lifecycle.RUNNING]
# How many busy simulations a refused DeleteScenario names.
_BUSY_REPORTED = 20


@dataclass(frozen=True)
class ScenarioInput:
    """The caller-writable fields of a scenario."""

    display_name: str = ""
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    def populated(self) -> set[str]:
        """The fields this input sets: what an empty update mask changes."""
        return {name for name in UPDATABLE_FIELDS if getattr(self, name)}


def _check_input(values: ScenarioInput, prefix: str = "scenario") -> list[errors.FieldViolation]:
    return [
        *check_text(
            values.display_name,
            f"{prefix}.display_name",
            max_length=200,
            required=True,
            single_line=True,
        ),
        *check_text(values.description, f"{prefix}.description", max_length=4000),
        *check_labels(values.labels, f"{prefix}.labels"),
    ]


class ScenarioOperations:
    """The scenario use cases over a :class:`storage.Database`."""

    def __init__(self, database: storage.Database, *, retention: timedelta = timedelta(days=30)):
        self._database = database
        self._retention = retention

    def create(
        self,
        principal: Principal,
        values: ScenarioInput,
        *,
        request_id: str = "",
        validate_only: bool = False,
    ) -> storage.Scenario:
        """Creates a scenario; the same ``request_id`` returns the first result."""
        violations = [*_check_input(values), *check_request_id(request_id)]
        if violations:
            raise errors.InvalidArgument(violations)
        tenant_id = principal.tenant_id

        fingerprint = request_fingerprint(
            rpc="CreateScenario",
            display_name=values.display_name,
            description=values.description,
            labels=dict(values.labels),
        )

        def create(uow: storage.UnitOfWork) -> storage.Scenario:
            if request_id:
                existing = uow.scenarios.get_by_request_id(tenant_id, request_id)
                if existing is not None:
                    return _same_request(existing, fingerprint)
            now = utc_now()
            scenario = storage.Scenario(
                id=str(uuid.uuid4()),
                tenant_id=tenant_id,
                display_name=values.display_name,
                description=values.description,
                labels=dict(values.labels),
                create_time=now,
                update_time=now,
                request_id=request_id or None,
                request_fingerprint=fingerprint if request_id else None,
            )
            if validate_only:
                self._ensure_name_free(uow, tenant_id, values.display_name)
                return dataclasses.replace(scenario, id="")
            return uow.scenarios.add(scenario)

        try:
            return self._database.run(create)
        except storage.AlreadyExists as exc:
            if exc.field == "request_id":
                # A concurrent retry with the same request id won the race.
                found = self._database.run(
                    lambda uow: uow.scenarios.get_by_request_id(tenant_id, request_id)
                )
                if found is not None:
                    return _same_request(found, fingerprint)
            raise errors.AlreadyExists("scenario", "display_name", values.display_name) from None

    @staticmethod
    def _ensure_name_free(uow: storage.UnitOfWork, tenant_id: str, name: str, own_id: str = ""):
        clash = uow.scenarios.list(
            tenant_id, storage.ScenarioQuery(limit=2, display_name_equals=name)
        )
        if any(s.id != own_id for s in clash):
            raise errors.AlreadyExists("scenario", "display_name", name)

    def get(self, principal: Principal, scenario_id: str) -> storage.Scenario:
        """Returns a scenario, live or soft-deleted."""
        require_id(scenario_id, "scenario_id")
        try:
            return self._database.run(
                lambda uow: uow.scenarios.get(
                    principal.tenant_id, scenario_id, include_deleted=True
                )
            )
        except storage.NotFound:
            raise errors.NotFound("scenario", scenario_id) from None

    def list(
        self,
        principal: Principal,
        *,
        page_size: int = 0,
        page_token: str = "",
        filter_text: str = "",
        order_by: str = "",
        show_deleted: bool = False,
    ) -> Page:
        """Lists scenarios one keyset page at a time."""
        conditions = parse_filter(filter_text, FILTER_FIELDS)
        sort_field, descending = parse_order_by(order_by, ORDER_FIELDS)
        paging = PageRequest(
            principal.tenant_id,
            page_size,
            page_token,
            cursor_types=(datetime if sort_field == "create_time" else str, str),
            kind="scenarios",
            filter=filter_text,
            order_by=order_by,
            show_deleted=show_deleted,
        )
        query = storage.ScenarioQuery(
            limit=paging.limit,
            order_by=sort_field,
            descending=descending,
            after=paging.after,
            show_deleted=show_deleted,
        )
        for condition in conditions:
            if condition.field == "display_name":
                if condition.op == "=":
                    query.display_name_equals = condition.value
                else:
                    query.display_name_contains = condition.value
            else:
                query.labels.append(
                    storage.LabelFilter(condition.field.removeprefix("labels."), condition.value)
                )
        rows = self._database.run(lambda uow: uow.scenarios.list(principal.tenant_id, query))
        return paging.page(rows, lambda row: storage.cursor_of(row, sort_field))

    def update(
        self,
        principal: Principal,
        scenario_id: str,
        values: ScenarioInput,
        *,
        mask: list[str],
        etag: str = "",
        validate_only: bool = False,
    ) -> storage.Scenario:
        """Changes the masked fields; a stale ``etag`` is ``ABORTED``.

        An empty mask changes the fields ``values`` sets; ``*`` replaces all three.
        """
        require_id(scenario_id, "scenario.id")
        paths = check_mask(mask, UPDATABLE_FIELDS, values.populated())

        def update(uow: storage.UnitOfWork) -> storage.Scenario:
            # Locked: writers without an etag take turns instead of failing each other.
            current = self._load(
                uow,
                principal.tenant_id,
                scenario_id,
                include_deleted=True,
                lock=None if validate_only else "edit",
            )
            if current.delete_time is not None:
                raise errors.FailedPrecondition(
                    f"scenario {scenario_id!r} is deleted; undelete it first",
                    [errors.PreconditionViolation("STATE", f"scenarios/{scenario_id}", "deleted")],
                    reason="SCENARIO_DELETED",
                )
            check_etag(etag, current.etag, "scenario", scenario_id)
            if not paths:
                return current
            changed = dataclasses.replace(
                current,
                display_name=values.display_name
                if "display_name" in paths
                else current.display_name,
                description=values.description if "description" in paths else current.description,
                labels=dict(values.labels) if "labels" in paths else current.labels,
                update_time=utc_now(),
            )
            # Only the changed fields: a stored value that predates a rule does not block edits
            # of the others.
            violations = [
                v
                for v in _check_input(
                    ScenarioInput(changed.display_name, changed.description, changed.labels)
                )
                if _field_of(v) in paths
            ]
            if violations:
                raise errors.InvalidArgument(violations)
            if validate_only:
                self._ensure_name_free(uow, principal.tenant_id, changed.display_name, current.id)
                return changed
            return uow.scenarios.update(changed, expected_etag=current.etag)

        return self._run_write(update, scenario_id, values.display_name)

    def delete(
        self, principal: Principal, scenario_id: str, *, etag: str = "", force: bool = False
    ) -> storage.Scenario:
        """Soft-deletes a scenario; one holding simulations needs ``force``."""
        require_id(scenario_id, "scenario_id")

        def delete(uow: storage.UnitOfWork) -> storage.Scenario:
            # Locked first: simulations being added to the scenario commit before the count.
            current = self._load(uow, principal.tenant_id, scenario_id, lock="update")
            check_etag(etag, current.etag, "scenario", scenario_id)
            # Then its simulations, in one order: statuses read from locked rows cannot change
            # under us (a run starting now waits for this delete).
            members = uow.simulations.lock_in_scenario(principal.tenant_id, scenario_id)
            _ensure_none_busy(scenario_id, members)
            count = len(members)
            if count and not force:
                raise errors.FailedPrecondition(
                    f"scenario {scenario_id!r} holds {count} simulation(s); "
                    "set force to delete them with it",
                    [
                        errors.PreconditionViolation(
                            "NOT_EMPTY",
                            f"scenarios/{scenario_id}",
                            f"holds {count} simulation(s)",
                        )
                    ],
                    reason="SCENARIO_NOT_EMPTY",
                )
            now = utc_now()
            if count:
                uow.simulations.soft_delete_in_scenario(principal.tenant_id, scenario_id, now)
            deleted = dataclasses.replace(
                current, delete_time=now, purge_time=now + self._retention, update_time=now
            )
            return uow.scenarios.update(deleted, expected_etag=current.etag)

        return self._run_write(delete, scenario_id)

    def undelete(
        self, principal: Principal, scenario_id: str, *, etag: str = ""
    ) -> storage.Scenario:
        """Restores a soft-deleted scenario and the simulations deleted with it."""
        require_id(scenario_id, "scenario_id")

        def undelete(uow: storage.UnitOfWork) -> storage.Scenario:
            current = self._load(
                uow, principal.tenant_id, scenario_id, include_deleted=True, lock="update"
            )
            if current.delete_time is None:
                raise errors.FailedPrecondition(
                    f"scenario {scenario_id!r} is not deleted",
                    [errors.PreconditionViolation("STATE", f"scenarios/{scenario_id}", "live")],
                    reason="SCENARIO_NOT_DELETED",
                )
            now = utc_now()
            if current.purge_time is not None and current.purge_time <= now:
                raise errors.NotFound("scenario", scenario_id)
            check_etag(etag, current.etag, "scenario", scenario_id)
            restored = dataclasses.replace(
                current, delete_time=None, purge_time=None, update_time=now
            )
            uow.scenarios.update(restored, expected_etag=current.etag)
            uow.simulations.restore_in_scenario(
                principal.tenant_id, scenario_id, current.delete_time
            )
            # Read back so simulation_count includes the restored simulations.
            return uow.scenarios.get(principal.tenant_id, scenario_id)

        return self._run_write(undelete, scenario_id)

    def purge_expired(self) -> int:
        """Hard-deletes scenarios whose retention period is over."""
        return self._database.run(lambda uow: uow.scenarios.purge_expired(utc_now()))

    def _run_write(self, fn, scenario_id: str, display_name: str = ""):
        try:
            return self._database.run(fn)
        except storage.Conflict:
            raise errors.EtagMismatch("scenario", scenario_id) from None
        except storage.AlreadyExists as exc:
            raise errors.AlreadyExists("scenario", exc.field, exc.value or display_name) from None

    @staticmethod
    def _load(
        uow: storage.UnitOfWork,
        tenant_id: str,
        scenario_id: str,
        *,
        include_deleted: bool = False,
        lock: str | None = None,
    ) -> storage.Scenario:
        try:
            return uow.scenarios.get(
                tenant_id, scenario_id, include_deleted=include_deleted, lock=lock
            )
        except storage.NotFound:
            raise errors.NotFound("scenario", scenario_id) from None


def _same_request(existing: storage.Scenario, fingerprint: str) -> storage.Scenario:
    """``existing`` when the request that created it is this one; a reused request id otherwise."""
    if existing.request_fingerprint != fingerprint:
        raise errors.InvalidArgument.field(
            "request_id",
            "was already used for a different request; send a new request_id for a new "
            "scenario, or the same arguments to get the first result",
            reason="REQUEST_ID_REUSED",
        )
    return existing


def _ensure_none_busy(scenario_id: str, members: list[storage.Simulation]) -> None:
    """A scenario whose simulations are being generated or run cannot be deleted, even by force.

    Deleting would strand their architect jobs and runs on simulations nobody can see.
    """
    busy = [s for s in members if s.status in _BUSY_STATUSES][:_BUSY_REPORTED]
    if busy:
        raise errors.FailedPrecondition(
            f"scenario {scenario_id!r} holds simulations that are being generated or run; "
            "wait until they finish (or fail them) before deleting it",
            [errors.PreconditionViolation("STATUS", f"simulations/{s.id}", s.status) for s in busy],
            reason="SIMULATIONS_BUSY",
        )


def _field_of(violation: errors.FieldViolation) -> str:
    """``display_name`` of ``scenario.display_name``, ``labels`` of ``scenario.labels['k']``."""
    return violation.field.split(".", 1)[1].split("[", 1)[0]
