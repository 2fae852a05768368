"""SimulationService use cases: read, list, update, delete, and the run lifecycle.

The steps they share with the config use cases and the architect (status transitions, new
revisions, audit events) live in :mod:`service.app.simulation_writes`; every write runs as a
whole transaction retried by :func:`~service.app.transactions.transactional`.
"""

from __future__ import annotations

import builtins
import dataclasses
from datetime import datetime
from typing import Any

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
from service.app.conventions import check_etag, check_mask, fingerprint, utc_now
from service.app.list_filters import FilterField, config_fields, parse_filter, parse_order_by
from service.app.page_tokens import IntRange, Page, PageRequest
from service.app.simulation_reads import page_of_simulation, simulation_with_sources
from service.app.simulation_writes import (
    UPDATABLE_FIELDS,
    SimulationInput,
    ensure_scenario,
    json_size,
    record_event,
    transition,
)
from service.app.transactions import transactional
from service.domain import errors, lifecycle
from service.domain.validation import (
    check_json_values,
    check_text,
    require_id,
)

# What a ListSimulations filter can name (labels.KEY included); config.* read the current revision.
FILTER_FIELDS = {
    "scenario_id": FilterField("id"),
    "name": FilterField("string", contains=True),
    "status": FilterField("enum", values=lifecycle.STATUSES),
    "labels": FilterField("labels"),
    "create_time": FilterField("timestamp"),
    "update_time": FilterField("timestamp"),
    "current_revision": FilterField("integer"),
    **config_fields(
        {
            "title": "string",
            "objective": "string",
            "model": "string",
            "max_turns": "integer",
            "temperature": "number",
            "seed": "integer",
            "agents[].id": "string",
            "agents[].name": "string",
            "agents[].role": "string",
            "agents[].persona": "string",
            "environment.description": "string",
            "environment.rules[]": "string",
            "metrics[].name": "string",
        }
    ),
}
ORDER_FIELDS = {"create_time", "name"}
MAX_STRUCT_BYTES = 1024 * 1024
MAX_ERROR_CHARS = 4000


class SimulationOperations:
    """The SimulationService use cases over a :class:`storage.Database`."""

    def __init__(self, database: storage.Database):
        self._database = database

    @transactional
    def get(self, principal: Principal, simulation_id: str) -> storage.Simulation:
        """Returns a simulation of the caller's tenant."""
        require_id(simulation_id, "simulation_id")
        with self._database.read_unit_of_work() as uow:
            return uow.simulations.get(principal.tenant_id, simulation_id)

    @transactional
    def get_with_sources(
        self, principal: Principal, simulation_id: str
    ) -> tuple[storage.Simulation, list[dict[str, Any]]]:
        """Returns a simulation and the sources of its current config revision."""
        return simulation_with_sources(self._database, principal, simulation_id)

    @transactional
    def with_sources(
        self, principal: Principal, simulation: storage.Simulation
    ) -> tuple[storage.Simulation, list[dict[str, Any]]]:
        """``simulation`` (as a write left it) with the sources of its current revision.

        What GetSimulation would answer with, for the responses of writes. Revisions never
        change once written, so reading them after the write's transaction adds no race; one
        statement, none for a simulation that has no config yet.
        """
        if not simulation.current_revision:
            return simulation, []
        with self._database.read_unit_of_work() as uow:
            sources = uow.revisions.sources_of(
                principal.tenant_id, simulation.id, simulation.current_revision
            )
        return simulation, sources

    @transactional
    def batch_get(
        self, principal: Principal, simulation_ids: list[str]
    ) -> list[tuple[storage.Simulation, list[dict[str, Any]]]]:
        """The simulations with their current sources, in the order asked (AIP-231).

        One statement. Any id missing or another tenant's is NOT_FOUND for the whole batch.
        """
        check_item_count(len(simulation_ids), "simulation_ids")
        raise_if_any(check_ids(simulation_ids, "simulation_ids[{}]", unique=False), "")
        with self._database.read_unit_of_work() as uow:
            found = uow.simulations.get_many_with_sources(principal.tenant_id, simulation_ids)
        _ensure_all_found(found, simulation_ids)
        return in_order(found, simulation_ids)

    @transactional
    def batch_move(
        self,
        principal: Principal,
        simulation_ids: list[str],
        scenario_id: str,
        *,
        request_id: str = "",
    ) -> list[tuple[storage.Simulation, list[dict[str, Any]]]]:
        """Moves every simulation into ``scenario_id`` (empty: out of any) or none of them.

        Each simulation that changes scenario gets a METADATA_CHANGED event, as
        :meth:`update` records. Returns the simulations with their current sources, as
        BatchGetSimulations would; a retry with the same ``request_id`` returns them as they
        are now.
        """
        check_item_count(len(simulation_ids), "simulation_ids")
        violations = check_ids(simulation_ids, "simulation_ids[{}]")
        if len(scenario_id) > 100:
            violations.append(errors.Violation("scenario_id", "must be at most 100 characters"))
        raise_if_any(violations, request_id)
        tenant_id = principal.tenant_id
        request = fingerprint(
            rpc="BatchMoveSimulations", simulation_ids=simulation_ids, scenario_id=scenario_id
        )
        with self._database.unit_of_work() as uow:
            first = replay_or_record(
                uow, tenant_id, "BatchMoveSimulations", request_id, request, simulation_ids
            )
            if first is not None:
                found = uow.simulations.get_many_with_sources(tenant_id, first)
                _ensure_all_found(found, first)
                return in_order(found, first)
            if scenario_id:
                # Scenario before simulations, the order DeleteScenario locks in too.
                ensure_scenario(uow, tenant_id, scenario_id)
            now = utc_now()
            moved: dict[str, storage.Simulation] = {}
            # In id order: two batches moving overlapping simulations lock them in one order.
            for simulation_id in sorted(simulation_ids):
                current = uow.simulations.get(tenant_id, simulation_id, for_update=True)
                if (current.scenario_id or "") == scenario_id:
                    moved[simulation_id] = current
                    continue
                updated = uow.simulations.update(
                    dataclasses.replace(current, scenario_id=scenario_id or None, update_time=now),
                    expected_etag=current.etag,
                )
                _record_metadata_change(uow, principal, current, updated, ["scenario_id"], now)
                moved[simulation_id] = updated
            check_response_size(sum(map(_size_of, moved.values())), "simulation_ids")
            # Their current revisions' sources, as BatchGetSimulations answers: one statement.
            found = uow.simulations.get_many_with_sources(tenant_id, builtins.list(moved))
            uow.commit()
        return in_order(
            {key: (simulation, found[key][1]) for key, simulation in moved.items()},
            simulation_ids,
        )

    @transactional
    def list(
        self,
        principal: Principal,
        *,
        page_size: int = 0,
        page_token: str = "",
        filter_text: str = "",
        order_by: str = "",
    ) -> Page:
        """Lists simulations one keyset page at a time; items are (simulation, its sources)."""
        query = storage.SimulationQuery(limit=0, filter=parse_filter(filter_text, FILTER_FIELDS))
        query.order_by, query.descending = parse_order_by(order_by, ORDER_FIELDS)
        paging = PageRequest(
            principal.tenant_id,
            page_size,
            page_token,
            cursor_types=(datetime if query.order_by == "create_time" else str, str),
            kind="simulations",
            filter=filter_text,
            order_by=order_by,
        )
        query.after, query.limit = paging.after, paging.limit
        with self._database.read_unit_of_work() as uow:
            rows = uow.simulations.list_with_sources(principal.tenant_id, query)
        return paging.page(rows, lambda row: storage.cursor_of(row[0], query.order_by))

    @transactional
    def update(
        self,
        principal: Principal,
        simulation_id: str,
        values: SimulationInput,
        *,
        mask: builtins.list[str],
        etag: str = "",
        request_id: str = "",
    ) -> storage.Simulation:
        """Changes name, labels or scenario (masked); a stale ``etag`` is ``ABORTED``.

        An empty mask changes the fields ``values`` sets; ``*`` replaces all three. A retry
        with the same ``request_id`` and arguments returns the simulation as it is now.
        """
        require_id(simulation_id, "simulation.id")
        paths = check_mask(mask, set(UPDATABLE_FIELDS), values.populated())
        ensure_request_id(request_id)
        tenant_id = principal.tenant_id
        request = fingerprint(
            rpc="UpdateSimulation",
            simulation_id=simulation_id,
            values=dataclasses.asdict(values),
            mask=mask,
            etag=etag,
        )
        with self._database.unit_of_work() as uow:
            if replayed_write(
                uow,
                tenant_id,
                "UpdateSimulation",
                request_id,
                request,
                simulation_id,
                noun="simulation write",
            ):
                return uow.simulations.get(tenant_id, simulation_id)
            if "scenario_id" in paths and values.scenario_id:
                # Scenario before simulation, the order DeleteScenario locks in too.
                ensure_scenario(uow, tenant_id, values.scenario_id)
            current = uow.simulations.get(tenant_id, simulation_id, for_update=True)
            check_etag(etag, current.etag, "simulation", simulation_id)
            changed = dataclasses.replace(
                current,
                name=values.name if "name" in paths else current.name,
                labels=dict(values.labels) if "labels" in paths else current.labels,
                scenario_id=(values.scenario_id or None)
                if "scenario_id" in paths
                else current.scenario_id,
            )
            # Only the changed fields: a stored value that predates a rule does not block edits
            # of the others.
            now_values = SimulationInput(changed.name, changed.labels, changed.scenario_id or "")
            violations = [
                v
                for v in now_values.violations()
                if v.field.split(".", 1)[1].split("[", 1)[0] in paths
            ]
            if violations:
                raise errors.InvalidArgument(violations)
            fields = [
                name for name in sorted(paths) if getattr(changed, name) != getattr(current, name)
            ]
            if not fields:
                return current
            now = utc_now()
            updated = uow.simulations.update(
                dataclasses.replace(changed, update_time=now), expected_etag=current.etag
            )
            _record_metadata_change(uow, principal, current, updated, fields, now)
            uow.commit()
        return updated

    @transactional
    def delete(
        self, principal: Principal, simulation_id: str, *, etag: str = "", request_id: str = ""
    ) -> None:
        """Hard-deletes a simulation with its revisions and events; not while it is busy.

        One DELETED event is kept (and sent to webhooks), so that watchers learn of it. A
        retry with the same ``request_id`` and arguments succeeds again instead of NOT_FOUND:
        the record of the first call outlives the simulation.
        """
        require_id(simulation_id, "simulation_id")
        ensure_request_id(request_id)
        tenant_id = principal.tenant_id
        request = fingerprint(rpc="DeleteSimulation", simulation_id=simulation_id, etag=etag)
        with self._database.unit_of_work() as uow:
            if replayed_write(
                uow,
                tenant_id,
                "DeleteSimulation",
                request_id,
                request,
                simulation_id,
                noun="simulation write",
            ):
                return
            current = uow.simulations.get(tenant_id, simulation_id, for_update=True)
            check_etag(etag, current.etag, "simulation", simulation_id)
            lifecycle.check_deletable(current.status, simulation_id=simulation_id)
            # Written while the simulation exists: webhooks filtered by scenario still match.
            record_event(
                uow,
                current,
                "DELETED",
                principal.key_id,
                utc_now(),
                reason="simulation deleted",
                details={"scenario_id": current.scenario_id or "", "name": current.name},
            )
            # Compare-and-swap: a run started since the read must not be deleted under it.
            uow.simulations.delete(tenant_id, simulation_id, expected_etag=current.etag)
            uow.commit()

    def start_run(
        self, principal: Principal, simulation_id: str, *, etag: str = "", request_id: str = ""
    ) -> storage.Simulation:
        """COMPLETED_CONFIG -> RUNNING."""
        return self._transition(
            principal,
            simulation_id,
            lifecycle.RUNNING,
            etag,
            reason="run started",
            method="StartRun",
            request_id=request_id,
        )

    def complete_run(
        self,
        principal: Principal,
        simulation_id: str,
        *,
        results: dict[str, Any] | None,
        etag: str = "",
        request_id: str = "",
    ) -> storage.Simulation:
        """RUNNING -> COMPLETED, storing ``results`` (at most 1 MiB)."""
        require_id(simulation_id, "simulation_id")
        _check_json_field(results, "results")
        return self._transition(
            principal,
            simulation_id,
            lifecycle.COMPLETED,
            etag,
            reason="run completed",
            method="CompleteRun",
            request_id=request_id,
            changes={"results": results},
        )

    def fail_run(
        self,
        principal: Principal,
        simulation_id: str,
        *,
        error: str,
        etag: str = "",
        request_id: str = "",
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
            method="FailRun",
            request_id=request_id,
            changes={"last_error": {"reason": "RUN_FAILED", "message": error, "violations": []}},
        )

    @transactional
    def attach_analysis(
        self,
        principal: Principal,
        simulation_id: str,
        *,
        analysis: dict[str, Any] | None,
        etag: str = "",
        request_id: str = "",
    ) -> storage.Simulation:
        """Stores the analysis of a COMPLETED run (at most 1 MiB).

        A retry with the same ``request_id`` and arguments returns the simulation as it is
        now instead of attaching the analysis again.
        """
        require_id(simulation_id, "simulation_id")
        if analysis is None:
            raise errors.InvalidArgument.field("analysis", "is required")
        _check_json_field(analysis, "analysis")
        ensure_request_id(request_id)
        tenant_id = principal.tenant_id
        request = fingerprint(
            rpc="AttachAnalysis", simulation_id=simulation_id, analysis=analysis, etag=etag
        )
        with self._database.unit_of_work() as uow:
            if replayed_write(
                uow,
                tenant_id,
                "AttachAnalysis",
                request_id,
                request,
                simulation_id,
                noun="simulation write",
            ):
                return uow.simulations.get(tenant_id, simulation_id)
            current = uow.simulations.get(principal.tenant_id, simulation_id, for_update=True)
            check_etag(etag, current.etag, "simulation", simulation_id)
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
            uow.commit()
        return updated

    @transactional
    def list_events(
        self, principal: Principal, simulation_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> Page:
        """The audit trail, oldest first, one page at a time."""
        return page_of_simulation(
            self._database,
            principal,
            simulation_id,
            page_size=page_size,
            page_token=page_token,
            kind="simulation_events",
            cursor_range=IntRange(0, 2**63),
            read=lambda uow, after, limit: uow.events.list_of_live_simulation(
                principal.tenant_id, simulation_id, after_id=after, limit=limit
            ),
            cursor_of=lambda row: row.id,
        )

    @transactional
    def _transition(
        self,
        principal: Principal,
        simulation_id: str,
        target: str,
        etag: str,
        *,
        reason: str,
        method: str,
        request_id: str = "",
        changes: dict[str, Any] | None = None,
    ) -> storage.Simulation:
        """Moves a simulation to ``target`` as ``method`` (StartRun, CompleteRun, FailRun).

        A retry with the same ``request_id`` and arguments returns the simulation as it is
        now: the first call moved it, so moving it again would be an illegal transition.
        """
        require_id(simulation_id, "simulation_id")
        ensure_request_id(request_id)
        tenant_id = principal.tenant_id
        request = fingerprint(
            rpc=method, simulation_id=simulation_id, etag=etag, changes=changes or {}
        )
        with self._database.unit_of_work() as uow:
            if replayed_write(
                uow, tenant_id, method, request_id, request, simulation_id, noun="simulation write"
            ):
                return uow.simulations.get(tenant_id, simulation_id)
            current = uow.simulations.get(tenant_id, simulation_id, for_update=True)
            check_etag(etag, current.etag, "simulation", simulation_id)
            moved = transition(
                uow, current, target, principal.key_id, utc_now(), reason, **(changes or {})
            )
            uow.commit()
        return moved


def _record_metadata_change(
    uow: storage.UnitOfWork,
    principal: Principal,
    before: storage.Simulation,
    after: storage.Simulation,
    fields: list[str],
    now: datetime,
) -> None:
    """The audit event of a rename, relabel or move: which fields changed, and from where."""
    details: dict[str, Any] = {"fields": fields}
    if "scenario_id" in fields:
        details["from_scenario_id"] = before.scenario_id or ""
        details["to_scenario_id"] = after.scenario_id or ""
    record_event(
        uow,
        after,
        "METADATA_CHANGED",
        principal.key_id,
        now,
        reason=f"changed {', '.join(fields)}",
        details=details,
    )


def _size_of(simulation: storage.Simulation) -> int:
    """About how many bytes a simulation takes in a response: its JSON, plus room for the rest."""
    return 1024 + json_size(
        [
            simulation.name,
            simulation.prompt,
            simulation.labels,
            simulation.architect_parameters,
            simulation.results,
            simulation.analysis,
            simulation.last_error,
        ]
    )


def _ensure_all_found(found: dict[str, Any], simulation_ids: list[str]) -> None:
    """NOT_FOUND for the first id asked that is missing (or another tenant's)."""
    for simulation_id in simulation_ids:
        if simulation_id not in found:
            raise storage.NotFound("simulation", simulation_id)


def _check_json_field(value: dict[str, Any] | None, field_name: str) -> None:
    """Results and analysis: storable values on both engines, and at most 1 MiB."""
    if value is None:
        return
    violations = check_json_values(value, field_name)
    if violations:
        raise errors.InvalidArgument(violations, reason="JSON_VALUE_INVALID")
    if json_size(value) > MAX_STRUCT_BYTES:
        raise errors.InvalidArgument.field(
            field_name,
            f"must be at most {MAX_STRUCT_BYTES} bytes serialised; got {json_size(value)}",
            reason="TOO_LARGE",
        )
