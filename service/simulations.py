"""Simulation use cases, and the audit-trail helpers every simulation write goes through.

:func:`transition`, :func:`write_revision` and :func:`record_event` run inside the caller's
unit of work, so a status change, a new config revision and their events commit together or
not at all. Every simulation write is a compare-and-swap on the simulation's etag: of two
writers that read the same version, exactly one wins.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from simulation.v1 import config_pb2

import storage
from service import errors, lifecycle
from service.auth import Principal
from service.config_codec import config_to_document, sources_to_documents
from service.fields import check_labels, check_mask, check_text
from service.filters import parse_filter, parse_order_by
from service.pagination import Page, PageRequest

T = TypeVar("T")

UPDATABLE_FIELDS = {"name", "labels", "scenario_id"}
FILTER_FIELDS = {"scenario_id", "status", "name"}
ORDER_FIELDS = {"create_time", "name"}
MAX_STRUCT_BYTES = 1024 * 1024
MAX_ERROR_CHARS = 4000
# A writer that sent no etag did not ask for a conditional write: when it loses a race it is
# retried on fresh data, a few times, instead of failing with ABORTED.
UNCONDITIONAL_ATTEMPTS = 3


@dataclass(frozen=True)
class SimulationInput:
    """The caller-writable fields of a simulation; ``scenario_id`` "" means none."""

    name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    scenario_id: str = ""
    prompt: str = ""


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


# -- helpers shared with the config use cases and the architect worker ---------------------------


def record_event(
    uow: storage.UnitOfWork,
    simulation: storage.Simulation,
    kind: str,
    actor: str,
    now: datetime,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    revision: int | None = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> storage.SimulationEvent:
    """Appends one audit-trail event (kind: a ``SimulationEvent.Kind`` name) to ``simulation``."""
    return uow.events.add(
        storage.SimulationEvent(
            tenant_id=simulation.tenant_id,
            simulation_id=simulation.id,
            kind=kind,
            actor=actor,
            create_time=now,
            from_status=from_status,
            to_status=to_status,
            revision=revision,
            reason=reason,
            details=details,
        )
    )


def transition(
    uow: storage.UnitOfWork,
    simulation: storage.Simulation,
    target: str,
    actor: str,
    now: datetime,
    reason: str = "",
    **changes: Any,
) -> storage.Simulation:
    """Moves ``simulation`` to ``target`` (with ``changes`` to other fields) and records it.

    Raises ``errors.FailedPrecondition`` for an illegal transition and ``storage.Conflict``
    when the simulation changed since it was read (compare-and-swap on its etag).
    """
    lifecycle.check_transition(simulation.status, target, simulation_id=simulation.id)
    changed = dataclasses.replace(simulation, status=target, update_time=now, **changes)
    updated = uow.simulations.update(changed, expected_etag=simulation.etag)
    if simulation.status != target:
        record_event(
            uow,
            updated,
            "STATUS_CHANGED",
            actor,
            now,
            from_status=simulation.status,
            to_status=target,
            reason=reason,
        )
    return updated


def write_revision(
    uow: storage.UnitOfWork,
    simulation: storage.Simulation,
    *,
    config: config_pb2.SimulationConfig,
    sources: list[config_pb2.Source],
    origin: str,
    actor: str,
    description: str = "",
    now: datetime,
    expected_etag: str | None = None,
) -> tuple[storage.Simulation, storage.ConfigRevision]:
    """Stores ``config`` as the next revision and makes it current, in the caller's transaction.

    The simulation moves to COMPLETED_CONFIG; its results, analysis and last error are cleared
    because they belonged to the previous config. Records CONFIG_CHANGED (and STATUS_CHANGED
    when the status changes). origin: "ARCHITECT", "EDIT", "ROLLBACK" or "IMPORT".

    Neither validates the config nor checks whether the status allows the write: callers do,
    so that the architect can write from GENERATING_CONFIG. Raises ``storage.Conflict`` when the
    stored etag is not ``expected_etag`` (default: the etag of ``simulation`` as read).
    """
    number = simulation.current_revision + 1
    changed = dataclasses.replace(
        simulation,
        status=lifecycle.COMPLETED_CONFIG,
        current_revision=number,
        results=None,
        analysis=None,
        last_error=None,
        update_time=now,
    )
    # The compare-and-swap comes first: a losing concurrent writer stops here, before it could
    # collide on the revision number.
    updated = uow.simulations.update(changed, expected_etag=expected_etag or simulation.etag)
    revision = uow.revisions.add(
        storage.ConfigRevision(
            tenant_id=simulation.tenant_id,
            simulation_id=simulation.id,
            revision=number,
            config=config_to_document(config),
            sources=sources_to_documents(sources),
            create_time=now,
            actor=actor,
            origin=origin,
            description=description,
        )
    )
    record_event(
        uow,
        updated,
        "CONFIG_CHANGED",
        actor,
        now,
        revision=number,
        reason=description or f"config revision {number} ({origin.lower()})",
        details={"origin": origin},
    )
    if simulation.status != lifecycle.COMPLETED_CONFIG:
        record_event(
            uow,
            updated,
            "STATUS_CHANGED",
            actor,
            now,
            from_status=simulation.status,
            to_status=lifecycle.COMPLETED_CONFIG,
            revision=number,
            reason=f"config revision {number} written",
        )
    return updated, revision


def load_simulation(uow: storage.UnitOfWork, tenant_id: str, simulation_id: str):
    """The caller's live simulation; ``errors.NotFound`` otherwise."""
    try:
        return uow.simulations.get(tenant_id, simulation_id)
    except storage.NotFound:
        raise errors.NotFound("simulation", simulation_id) from None


def require_id(value: str, field: str) -> None:
    """An id field must be present and of sane length."""
    if not value:
        raise errors.InvalidArgument.field(field, "is required")
    if len(value) > 100:
        raise errors.InvalidArgument.field(field, "must be at most 100 characters")


def check_etag(given: str, stored: str, simulation_id: str) -> None:
    """A non-empty etag must match the stored one (``ABORTED`` otherwise)."""
    if given and given != stored:
        raise errors.EtagMismatch("simulation", simulation_id)


def run_write(
    database: storage.Database, fn: Callable[[storage.UnitOfWork], T], simulation_id: str, etag: str
) -> T:
    """Runs a compare-and-swap write; a lost race is ``ABORTED`` when the caller sent an etag.

    Without an etag the caller asked for no condition, so the write is retried on fresh data.
    """
    attempts = 1 if etag else UNCONDITIONAL_ATTEMPTS
    for attempt in range(attempts):
        try:
            return database.run(fn)
        except storage.Conflict:
            if attempt + 1 == attempts:
                raise errors.EtagMismatch("simulation", simulation_id) from None
    raise AssertionError("unreachable")


def json_size(value: Any) -> int:
    """Bytes of the compact JSON form of ``value``: what is stored and sent."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def check_input(values: SimulationInput, prefix: str = "simulation") -> list[errors.FieldViolation]:
    """Name (1..200), labels and prompt (at most 10,000) rules."""
    return [
        *check_text(values.name, f"{prefix}.name", max_length=200, required=True),
        *check_labels(values.labels, f"{prefix}.labels"),
        *check_text(values.prompt, f"{prefix}.prompt", max_length=10_000),
        *check_text(values.scenario_id, f"{prefix}.scenario_id", max_length=100),
    ]


def ensure_scenario(uow: storage.UnitOfWork, tenant_id: str, scenario_id: str) -> None:
    """The scenario must be a live one of the tenant (``NOT_FOUND`` otherwise)."""
    try:
        uow.scenarios.get(tenant_id, scenario_id)
    except storage.NotFound:
        raise errors.NotFound("scenario", scenario_id) from None


# -- the use cases -------------------------------------------------------------------------------


class SimulationOperations:
    """The SimulationService use cases over a :class:`storage.Database`."""

    def __init__(self, database: storage.Database, validator=None):
        self._database = database
        self._validator = validator

    def get(self, principal: Principal, simulation_id: str) -> storage.Simulation:
        """Returns a simulation of the caller's tenant."""
        require_id(simulation_id, "simulation_id")
        return self._database.run(
            lambda uow: load_simulation(uow, principal.tenant_id, simulation_id)
        )

    def get_with_sources(
        self, principal: Principal, simulation_id: str
    ) -> tuple[storage.Simulation, list[dict[str, Any]]]:
        """Returns a simulation and the sources of its current config revision."""
        require_id(simulation_id, "simulation_id")

        def read(uow):
            simulation = load_simulation(uow, principal.tenant_id, simulation_id)
            if not simulation.current_revision:
                return simulation, []
            revision = uow.revisions.get(
                principal.tenant_id, simulation_id, simulation.current_revision
            )
            return simulation, revision.sources

        return self._database.run(read)

    def list(
        self,
        principal: Principal,
        *,
        page_size: int = 0,
        page_token: str = "",
        filter_text: str = "",
        order_by: str = "",
    ) -> Page:
        """Lists simulations one keyset page at a time."""
        query = _query_of(filter_text)
        query.order_by, query.descending = parse_order_by(order_by, ORDER_FIELDS)
        paging = PageRequest(
            principal.tenant_id,
            page_size,
            page_token,
            kind="simulations",
            filter=filter_text,
            order_by=order_by,
        )
        query.after, query.limit = paging.after, paging.limit
        rows = self._database.run(lambda uow: uow.simulations.list(principal.tenant_id, query))
        return paging.page(rows, lambda row: storage.cursor_of(row, query.order_by))

    def update(
        self,
        principal: Principal,
        simulation_id: str,
        values: SimulationInput,
        *,
        mask: list[str],
        etag: str = "",
    ) -> storage.Simulation:
        """Changes name, labels or scenario (masked); a stale ``etag`` is ``ABORTED``."""
        require_id(simulation_id, "simulation.id")
        paths = check_mask(mask, UPDATABLE_FIELDS)

        def update(uow: storage.UnitOfWork) -> storage.Simulation:
            current = load_simulation(uow, principal.tenant_id, simulation_id)
            check_etag(etag, current.etag, simulation_id)
            changed = dataclasses.replace(
                current,
                name=values.name if "name" in paths else current.name,
                labels=dict(values.labels) if "labels" in paths else current.labels,
                scenario_id=(values.scenario_id or None)
                if "scenario_id" in paths
                else current.scenario_id,
            )
            violations = check_input(
                SimulationInput(changed.name, changed.labels, changed.scenario_id or "")
            )
            if violations:
                raise errors.InvalidArgument(violations)
            fields = [
                name for name in sorted(paths) if getattr(changed, name) != getattr(current, name)
            ]
            if not fields:
                return current
            if "scenario_id" in fields and changed.scenario_id:
                ensure_scenario(uow, principal.tenant_id, changed.scenario_id)
            now = utc_now()
            updated = uow.simulations.update(
                dataclasses.replace(changed, update_time=now), expected_etag=current.etag
            )
            details: dict[str, Any] = {"fields": fields}
            if "scenario_id" in fields:
                details["from_scenario_id"] = current.scenario_id or ""
                details["to_scenario_id"] = changed.scenario_id or ""
            record_event(
                uow,
                updated,
                "METADATA_CHANGED",
                principal.key_id,
                now,
                reason=f"changed {', '.join(fields)}",
                details=details,
            )
            return updated

        try:
            return run_write(self._database, update, simulation_id, etag)
        except storage.NotFound as exc:
            # The target scenario vanished between the check and the write.
            raise errors.NotFound(exc.entity, exc.id) from None

    def delete(self, principal: Principal, simulation_id: str, *, etag: str = "") -> None:
        """Hard-deletes a simulation with its revisions and events; not while it is busy."""
        require_id(simulation_id, "simulation_id")

        def delete(uow: storage.UnitOfWork) -> None:
            current = load_simulation(uow, principal.tenant_id, simulation_id)
            check_etag(etag, current.etag, simulation_id)
            lifecycle.check_deletable(current.status, simulation_id=simulation_id)
            uow.simulations.delete(principal.tenant_id, simulation_id)

        self._database.run(delete)

    def start_run(self, principal: Principal, simulation_id: str, *, etag: str = ""):
        """COMPLETED_CONFIG -> RUNNING."""
        return self._transition(
            principal, simulation_id, lifecycle.RUNNING, etag, reason="run started"
        )

    def complete_run(
        self,
        principal: Principal,
        simulation_id: str,
        *,
        results: dict[str, Any] | None,
        etag: str = "",
    ) -> storage.Simulation:
        """RUNNING -> COMPLETED, storing ``results`` (at most 1 MiB)."""
        require_id(simulation_id, "simulation_id")
        _check_struct_size(results, "results")
        return self._transition(
            principal,
            simulation_id,
            lifecycle.COMPLETED,
            etag,
            reason="run completed",
            results=results,
        )

    def fail_run(
        self, principal: Principal, simulation_id: str, *, error: str, etag: str = ""
    ) -> storage.Simulation:
        """Any non-final status -> FAILED, keeping ``error`` as the last error."""
        require_id(simulation_id, "simulation_id")
        violations = check_text(error, "error", max_length=MAX_ERROR_CHARS, required=True)
        if violations:
            raise errors.InvalidArgument(violations)
        return self._transition(
            principal,
            simulation_id,
            lifecycle.FAILED,
            etag,
            reason=f"run failed: {error}"[:1000],
            last_error={"reason": "RUN_FAILED", "message": error, "violations": []},
        )

    def attach_analysis(
        self,
        principal: Principal,
        simulation_id: str,
        *,
        analysis: dict[str, Any] | None,
        etag: str = "",
    ) -> storage.Simulation:
        """Stores the analysis of a COMPLETED run (at most 1 MiB)."""
        require_id(simulation_id, "simulation_id")
        if analysis is None:
            raise errors.InvalidArgument.field("analysis", "is required")
        _check_struct_size(analysis, "analysis")

        def attach(uow: storage.UnitOfWork) -> storage.Simulation:
            current = load_simulation(uow, principal.tenant_id, simulation_id)
            check_etag(etag, current.etag, simulation_id)
            if current.status != lifecycle.COMPLETED:
                raise errors.FailedPrecondition(
                    f"simulation {simulation_id!r} is {current.status}; "
                    "an analysis can only be attached to a COMPLETED run",
                    [
                        errors.PreconditionViolation(
                            "STATUS", f"simulations/{simulation_id}", current.status
                        )
                    ],
                    reason="NOT_COMPLETED",
                    metadata={"status": current.status},
                )
            now = utc_now()
            updated = uow.simulations.update(
                dataclasses.replace(current, analysis=analysis, update_time=now),
                expected_etag=current.etag,
            )
            record_event(
                uow, updated, "ANALYSIS_ATTACHED", principal.key_id, now, reason="analysis attached"
            )
            return updated

        return run_write(self._database, attach, simulation_id, etag)

    def list_events(
        self, principal: Principal, simulation_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> Page:
        """The audit trail, oldest first, one page at a time."""
        require_id(simulation_id, "simulation_id")
        paging = PageRequest(
            principal.tenant_id,
            page_size,
            page_token,
            kind="simulation_events",
            simulation_id=simulation_id,
        )

        def read(uow):
            load_simulation(uow, principal.tenant_id, simulation_id)
            return uow.events.list(
                principal.tenant_id,
                simulation_id,
                after_id=paging.after[0] if paging.after else None,
                limit=paging.limit,
            )

        return paging.page(self._database.run(read), lambda row: (row.id,))

    def _transition(
        self,
        principal: Principal,
        simulation_id: str,
        target: str,
        etag: str,
        *,
        reason: str,
        **changes: Any,
    ) -> storage.Simulation:
        require_id(simulation_id, "simulation_id")

        def move(uow: storage.UnitOfWork) -> storage.Simulation:
            current = load_simulation(uow, principal.tenant_id, simulation_id)
            check_etag(etag, current.etag, simulation_id)
            return transition(uow, current, target, principal.key_id, utc_now(), reason, **changes)

        return run_write(self._database, move, simulation_id, etag)


def _check_struct_size(value: dict[str, Any] | None, field_name: str) -> None:
    if value is not None and json_size(value) > MAX_STRUCT_BYTES:
        raise errors.InvalidArgument.field(
            field_name,
            f"must be at most {MAX_STRUCT_BYTES} bytes serialised; got {json_size(value)}",
            reason="TOO_LARGE",
        )


def _query_of(filter_text: str) -> storage.SimulationQuery:
    query = storage.SimulationQuery(limit=0)
    for condition in parse_filter(filter_text, FILTER_FIELDS):
        if condition.field == "scenario_id":
            _require_equals(condition)
            query.scenario_id = condition.value
        elif condition.field == "status":
            _require_equals(condition)
            if condition.value not in lifecycle.STATUSES:
                raise errors.InvalidArgument.field(
                    "filter",
                    f"unknown status {condition.value!r}; "
                    f"expected one of {', '.join(lifecycle.STATUSES)}",
                    reason="FILTER_INVALID",
                )
            if query.statuses and condition.value not in query.statuses:
                # "status = A AND status = B" with A != B matches nothing; keep AND semantics.
                query.statuses = ["__no_such_status__"]
            else:
                query.statuses = [condition.value]
        elif condition.field == "name":
            if condition.op == "=":
                query.name_equals = condition.value
            else:
                query.name_contains = condition.value
        else:
            query.labels.append(
                storage.LabelFilter(condition.field.removeprefix("labels."), condition.value)
            )
    return query


def _require_equals(condition) -> None:
    if condition.op != "=":
        raise errors.InvalidArgument.field(
            "filter", f"{condition.field} supports only '='", reason="FILTER_INVALID"
        )
