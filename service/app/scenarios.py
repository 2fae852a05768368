"""Scenario use cases: create, read, list, update, soft delete, undelete and purge.

Every operation takes the caller's :class:`~service.app.authentication.Principal`; writes run
as whole transactions retried by :func:`~service.app.transactions.transactional`.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import storage
from service.app.authentication import Principal
from service.app.batches import (
    check_ids,
    check_item_count,
    check_response_size,
    ensure_request_id,
    in_order,
    raise_if_any,
    replay_or_record,
    replayed_write,
)
from service.app.conventions import check_etag, check_mask, fingerprint, first_result, utc_now
from service.app.list_filters import FilterField, parse_filter, parse_order_by
from service.app.page_tokens import Page, PageRequest
from service.app.read_cache import ReadCache
from service.app.transactions import transactional
from service.domain import errors, lifecycle
from service.domain.validation import check_labels, check_request_id, check_text, require_id

# What a ListScenarios filter can name (labels.KEY included).
FILTER_FIELDS = {
    "display_name": FilterField("string", contains=True),
    "description": FilterField("string", contains=True),
    "labels": FilterField("labels"),
    "create_time": FilterField("timestamp"),
    "update_time": FilterField("timestamp"),
    "delete_time": FilterField("timestamp"),
    "simulation_count": FilterField("integer"),
}
ORDER_FIELDS = {"create_time", "display_name"}
# How often soft-deleted scenarios past their retention are purged, across all servers.
PURGE_INTERVAL = timedelta(minutes=5)
# How many busy simulations a refused DeleteScenario names.
_BUSY_REPORTED = 20


@dataclass(frozen=True)
class ScenarioInput:
    """The caller-writable fields of a scenario: what a request may set, and nothing else.

    The one list of them: update masks, request fingerprints and validation derive from it.
    """

    display_name: str = ""
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def fields(cls) -> set[str]:
        """The names of the writable fields (what an update mask may name)."""
        return {f.name for f in dataclasses.fields(cls)}

    def populated(self) -> set[str]:
        """The fields this input sets: what an empty update mask changes."""
        return {name for name in self.fields() if getattr(self, name)}

    def violations(self, prefix: str = "scenario") -> list[errors.Violation]:
        """Every rule the fields break, with paths under ``prefix``."""
        return [
            *check_text(
                self.display_name,
                f"{prefix}.display_name",
                max_length=200,
                required=True,
                single_line=True,
            ),
            *check_text(self.description, f"{prefix}.description", max_length=4000),
            *check_labels(self.labels, f"{prefix}.labels"),
        ]


@dataclass(frozen=True)
class CreateScenarioItem:
    """One item of BatchCreateScenarios: a CreateScenario request inside the batch.

    ``request_id`` and ``validate_only`` belong to the batch; an item that sets them is refused
    rather than silently ignored.
    """

    values: ScenarioInput
    request_id: str = ""
    validate_only: bool = False

    def violations(self, index: int) -> list[errors.Violation]:
        """Every rule the item breaks, with paths under ``requests[index]``."""
        prefix = f"requests[{index}]"
        found = self.values.violations(f"{prefix}.scenario")
        if self.request_id:
            found.append(
                errors.Violation(
                    f"{prefix}.request_id", "must be empty; set request_id on the batch request"
                )
            )
        if self.validate_only:
            found.append(
                errors.Violation(f"{prefix}.validate_only", "is not supported inside a batch")
            )
        return found


@dataclass(frozen=True)
class DeleteScenarioItem:
    """One item of BatchDeleteScenarios: a DeleteScenario request inside the batch."""

    scenario_id: str
    etag: str = ""
    force: bool = False


class ScenarioOperations:
    """The scenario use cases over a :class:`storage.Database`."""

    def __init__(
        self,
        database: storage.Database,
        *,
        retention: timedelta = timedelta(days=30),
        cache: ReadCache[storage.Scenario] | None = None,
    ):
        self._database = database
        self._retention = retention
        # Warm reads by id from memory; see service.app.read_cache for why they stay exact.
        # Without one, a cache with no room: every read goes to the database.
        self._cache: ReadCache[storage.Scenario] = (
            cache if cache is not None else ReadCache(max_entries=0)
        )

    @transactional
    def create(
        self,
        principal: Principal,
        values: ScenarioInput,
        *,
        request_id: str = "",
        validate_only: bool = False,
    ) -> storage.Scenario:
        """Creates a scenario; the same ``request_id`` returns the first result (AIP-155)."""
        violations = [*values.violations(), *check_request_id(request_id)]
        if violations:
            raise errors.InvalidArgument(violations)
        tenant_id = principal.tenant_id
        request = fingerprint(rpc="CreateScenario", **dataclasses.asdict(values))
        now = utc_now()
        scenario = storage.Scenario(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            **dataclasses.asdict(values),
            create_time=now,
            update_time=now,
            request_id=request_id or None,
            request_fingerprint=request if request_id else None,
        )
        try:
            with self._database.unit_of_work() as uow:
                if request_id:
                    existing = uow.scenarios.get_by_request_id(tenant_id, request_id)
                    if existing is not None:
                        return first_result(
                            existing, existing.request_fingerprint, request, "scenario"
                        )
                if validate_only:
                    _ensure_name_free(uow, tenant_id, values.display_name)
                    return dataclasses.replace(scenario, id="")
                created = uow.scenarios.add(scenario)
                uow.commit()
                return created
        except storage.AlreadyExists as exc:
            if exc.field != "request_id":
                raise
        # A concurrent retry with the same request id won the race: answer with its result.
        with self._database.read_unit_of_work() as reader:
            existing = reader.scenarios.get_by_request_id(tenant_id, request_id)
        if existing is None:
            raise storage.AlreadyExists("scenario", "request_id", request_id)
        return first_result(existing, existing.request_fingerprint, request, "scenario")

    @transactional
    def get(self, principal: Principal, scenario_id: str) -> storage.Scenario:
        """Returns a scenario, live or soft-deleted."""
        require_id(scenario_id, "scenario_id")
        tenant_id = principal.tenant_id
        return self._cache.read_through(
            scenario_id, tenant_id, _tenant_of, lambda: self._read(tenant_id, scenario_id)
        )

    def _read(self, tenant_id: str, scenario_id: str) -> storage.Scenario:
        with self._database.read_unit_of_work() as uow:
            return uow.scenarios.get(tenant_id, scenario_id, include_deleted=True)

    @transactional
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
        condition = parse_filter(filter_text, FILTER_FIELDS)
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
            filter=condition,
        )
        with self._database.read_unit_of_work() as uow:
            rows = uow.scenarios.list(principal.tenant_id, query)
        return paging.page(rows, lambda row: storage.cursor_of(row, sort_field))

    @transactional
    def update(
        self,
        principal: Principal,
        scenario_id: str,
        values: ScenarioInput,
        *,
        mask: builtins.list[str],
        etag: str = "",
        validate_only: bool = False,
        request_id: str = "",
    ) -> storage.Scenario:
        """Changes the masked fields; a stale ``etag`` is ``ABORTED``.

        An empty mask changes the fields ``values`` sets; ``*`` replaces all of them. A retry
        with the same ``request_id`` and arguments returns the scenario as it is now.
        """
        require_id(scenario_id, "scenario.id")
        paths = check_mask(mask, ScenarioInput.fields(), values.populated())
        ensure_request_id(request_id)
        tenant_id = principal.tenant_id
        request = fingerprint(
            rpc="UpdateScenario",
            scenario_id=scenario_id,
            values=dataclasses.asdict(values),
            mask=mask,
            etag=etag,
        )
        with self._database.unit_of_work() as uow:
            # validate_only stores nothing, so there is nothing to replay.
            if not validate_only and replayed_write(
                uow,
                tenant_id,
                "UpdateScenario",
                request_id,
                request,
                scenario_id,
                noun="scenario write",
            ):
                return uow.scenarios.get(tenant_id, scenario_id, include_deleted=True)
            # Locked: writers without an etag take turns instead of failing each other.
            current = uow.scenarios.get(
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
            edits = {name: getattr(values, name) for name in paths}
            changed = dataclasses.replace(current, **edits, update_time=utc_now())
            # Only the changed fields: a stored value that predates a rule does not block edits
            # of the others.
            now_values = ScenarioInput(**{n: getattr(changed, n) for n in ScenarioInput.fields()})
            violations = [v for v in now_values.violations() if _field_of(v) in paths]
            if violations:
                raise errors.InvalidArgument(violations)
            if validate_only:
                _ensure_name_free(uow, principal.tenant_id, changed.display_name, current.id)
                return changed
            updated = uow.scenarios.update(changed, expected_etag=current.etag)
            uow.commit()
        return updated

    @transactional
    def delete(
        self,
        principal: Principal,
        scenario_id: str,
        *,
        etag: str = "",
        force: bool = False,
        request_id: str = "",
    ) -> storage.Scenario:
        """Soft-deletes a scenario; one holding simulations needs ``force``.

        A retry with the same ``request_id`` and arguments returns the scenario as it is now
        (deleted, unless undeleted since) instead of NOT_FOUND.
        """
        require_id(scenario_id, "scenario_id")
        ensure_request_id(request_id)
        request = fingerprint(rpc="DeleteScenario", scenario_id=scenario_id, etag=etag, force=force)
        with self._database.unit_of_work() as uow:
            if replayed_write(
                uow,
                principal.tenant_id,
                "DeleteScenario",
                request_id,
                request,
                scenario_id,
                noun="scenario write",
            ):
                return uow.scenarios.get(principal.tenant_id, scenario_id, include_deleted=True)
            deleted = self._delete_one(
                uow, principal.tenant_id, scenario_id, etag=etag, force=force, now=utc_now()
            )
            uow.commit()
        return deleted

    def _delete_one(
        self,
        uow: storage.UnitOfWork,
        tenant_id: str,
        scenario_id: str,
        *,
        etag: str,
        force: bool,
        now: datetime,
    ) -> storage.Scenario:
        """Soft-deletes one scenario inside the caller's transaction (not committed)."""
        # Locked first: simulations being added to the scenario commit before the count.
        current = uow.scenarios.get(tenant_id, scenario_id, lock="update")
        check_etag(etag, current.etag, "scenario", scenario_id)
        # Then its simulations, in one order: statuses read from locked rows cannot change
        # under us (a run starting now waits for this delete).
        members = uow.simulations.lock_in_scenario(tenant_id, scenario_id)
        _ensure_none_busy(scenario_id, members)
        count = len(members)
        if count and not force:
            raise errors.FailedPrecondition(
                f"scenario {scenario_id!r} holds {count} simulation(s); "
                "set force to delete them with it",
                [
                    errors.PreconditionViolation(
                        "NOT_EMPTY", f"scenarios/{scenario_id}", f"holds {count} simulation(s)"
                    )
                ],
                reason="SCENARIO_NOT_EMPTY",
            )
        if count:
            uow.simulations.soft_delete_in_scenario(tenant_id, scenario_id, now)
        return uow.scenarios.update(
            dataclasses.replace(
                current, delete_time=now, purge_time=now + self._retention, update_time=now
            ),
            expected_etag=current.etag,
        )

    @transactional
    def undelete(
        self, principal: Principal, scenario_id: str, *, etag: str = "", request_id: str = ""
    ) -> storage.Scenario:
        """Restores a soft-deleted scenario and the simulations deleted with it.

        A retry with the same ``request_id`` and arguments returns the scenario as it is now
        instead of FAILED_PRECONDITION.
        """
        require_id(scenario_id, "scenario_id")
        ensure_request_id(request_id)
        tenant_id = principal.tenant_id
        request = fingerprint(rpc="UndeleteScenario", scenario_id=scenario_id, etag=etag)
        with self._database.unit_of_work() as uow:
            if replayed_write(
                uow,
                tenant_id,
                "UndeleteScenario",
                request_id,
                request,
                scenario_id,
                noun="scenario write",
            ):
                return uow.scenarios.get(tenant_id, scenario_id, include_deleted=True)
            current = uow.scenarios.get(tenant_id, scenario_id, include_deleted=True, lock="update")
            if current.delete_time is None:
                raise errors.FailedPrecondition(
                    f"scenario {scenario_id!r} is not deleted",
                    [errors.PreconditionViolation("STATE", f"scenarios/{scenario_id}", "live")],
                    reason="SCENARIO_NOT_DELETED",
                )
            now = utc_now()
            if current.purge_time is not None and current.purge_time <= now:
                raise storage.NotFound("scenario", scenario_id)
            check_etag(etag, current.etag, "scenario", scenario_id)
            uow.scenarios.update(
                dataclasses.replace(current, delete_time=None, purge_time=None, update_time=now),
                expected_etag=current.etag,
            )
            uow.simulations.restore_in_scenario(tenant_id, scenario_id, current.delete_time)
            # Read back: the database counted the restored simulations.
            restored = uow.scenarios.get(tenant_id, scenario_id)
            uow.commit()
        return restored

    @transactional
    def batch_create(
        self,
        principal: Principal,
        items: builtins.list[CreateScenarioItem],
        *,
        request_id: str = "",
    ) -> builtins.list[storage.Scenario]:
        """Creates every scenario of the batch or none (AIP-233), in the order given.

        Every bad item is reported at once, by index; two items with one display name are
        refused like a clash with a stored scenario would be. A retry with the same
        ``request_id`` returns the scenarios the first call created, as they are now.
        """
        check_item_count(len(items), "requests")
        violations = [v for index, item in enumerate(items) for v in item.violations(index)]
        first_with_name: dict[str, int] = {}
        for index, item in enumerate(items):
            name = item.values.display_name
            if name in first_with_name:
                violations.append(
                    errors.Violation(
                        f"requests[{index}].scenario.display_name",
                        f"repeats the display name of requests[{first_with_name[name]}]",
                    )
                )
            first_with_name.setdefault(name, index)
        raise_if_any(violations, request_id)
        tenant_id = principal.tenant_id
        request = fingerprint(
            rpc="BatchCreateScenarios", items=[dataclasses.asdict(i.values) for i in items]
        )
        now = utc_now()
        records = [
            storage.Scenario(
                id=str(uuid.uuid4()),
                tenant_id=tenant_id,
                **dataclasses.asdict(item.values),
                create_time=now,
                update_time=now,
            )
            for item in items
        ]
        with self._database.unit_of_work() as uow:
            first = replay_or_record(
                uow,
                tenant_id,
                "BatchCreateScenarios",
                request_id,
                request,
                [record.id for record in records],
            )
            if first is not None:
                return in_order(uow.scenarios.get_many(tenant_id, first), first)
            created = [uow.scenarios.add(record) for record in records]
            uow.commit()
        return created

    @transactional
    def batch_delete(
        self,
        principal: Principal,
        items: builtins.list[DeleteScenarioItem],
        *,
        request_id: str = "",
    ) -> builtins.list[storage.Scenario]:
        """Soft-deletes every scenario of the batch or none (AIP-235), each as :meth:`delete`.

        Any scenario missing, already deleted or another tenant's fails the whole batch with
        NOT_FOUND. A retry with the same ``request_id`` returns the first call's scenarios.
        """
        check_item_count(len(items), "requests")
        raise_if_any(
            check_ids([i.scenario_id for i in items], "requests[{}].scenario_id"), request_id
        )
        tenant_id = principal.tenant_id
        request = fingerprint(
            rpc="BatchDeleteScenarios", items=[dataclasses.asdict(i) for i in items]
        )
        ids = [item.scenario_id for item in items]
        with self._database.unit_of_work() as uow:
            first = replay_or_record(
                uow, tenant_id, "BatchDeleteScenarios", request_id, request, ids
            )
            if first is not None:
                return in_order(uow.scenarios.get_many(tenant_id, first), first)
            now = utc_now()
            deleted: dict[str, storage.Scenario] = {}
            # In id order: two batches deleting overlapping scenarios lock them in one order.
            for item in sorted(items, key=lambda i: i.scenario_id):
                deleted[item.scenario_id] = self._delete_one(
                    uow, tenant_id, item.scenario_id, etag=item.etag, force=item.force, now=now
                )
            check_response_size(sum(map(_size_of, deleted.values())), "requests")
            uow.commit()
        return in_order(deleted, ids)

    @transactional
    def purge_expired(self) -> int:
        """Hard-deletes scenarios whose retention period is over; at most once per interval.

        Every server process calls this on a timer; the claim makes one of them, across all
        processes and replicas, do the work each ``PURGE_INTERVAL``.
        """
        with self._database.unit_of_work() as uow:
            now = utc_now()
            if not uow.periodic_runs.claim("scenario-purge", now, PURGE_INTERVAL):
                return 0
            purged = uow.scenarios.purge_expired(now)
            uow.commit()
        return purged


def _tenant_of(scenario: storage.Scenario) -> str:
    return scenario.tenant_id


def _size_of(scenario: storage.Scenario) -> int:
    """About how many bytes a scenario takes in a response: its JSON, plus room for the rest."""
    return 512 + len(
        json.dumps([scenario.display_name, scenario.description, scenario.labels]).encode()
    )


def _ensure_name_free(uow: storage.UnitOfWork, tenant_id: str, name: str, own_id: str = ""):
    same_name = storage.Comparison("display_name", "=", name)
    clash = uow.scenarios.list(tenant_id, storage.ScenarioQuery(limit=2, filter=same_name))
    if any(s.id != own_id for s in clash):
        raise storage.AlreadyExists("scenario", "display_name", name)


def _ensure_none_busy(scenario_id: str, members: list[storage.Simulation]) -> None:
    """A scenario whose simulations are being generated or run cannot be deleted, even by force.

    Deleting would strand their architect jobs and runs on simulations nobody can see.
    """
    busy = [s for s in members if s.status in lifecycle.BUSY][:_BUSY_REPORTED]
    if busy:
        raise errors.FailedPrecondition(
            f"scenario {scenario_id!r} holds simulations that are being generated or run; "
            "wait until they finish (or fail them) before deleting it",
            [errors.PreconditionViolation("STATUS", f"simulations/{s.id}", s.status) for s in busy],
            reason="SIMULATIONS_BUSY",
        )


def _field_of(violation: errors.Violation) -> str:
    """``display_name`` of ``scenario.display_name``, ``labels`` of ``scenario.labels['k']``."""
    return violation.field.split(".", 1)[1].split("[", 1)[0]
