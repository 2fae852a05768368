"""SimulationService use cases: read, list, update, delete, and the run lifecycle.

The steps they share with the config use cases and the architect (status transitions, new
revisions, audit events) live in :mod:`service.app.simulation_writes`; every write runs as a
whole transaction retried by :func:`~service.app.transactions.transactional`.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import storage
from service.app.authentication import Principal
from service.app.conventions import check_etag, check_mask, utc_now
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
from service.domain.validation import check_json_values, check_text, require_id

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
            rows = uow.simulations.list(principal.tenant_id, query)
        return paging.page(rows, lambda row: storage.cursor_of(row, query.order_by))

    @transactional
    def update(
        self,
        principal: Principal,
        simulation_id: str,
        values: SimulationInput,
        *,
        mask: list[str],
        etag: str = "",
    ) -> storage.Simulation:
        """Changes name, labels or scenario (masked); a stale ``etag`` is ``ABORTED``.

        An empty mask changes the fields ``values`` sets; ``*`` replaces all three.
        """
        require_id(simulation_id, "simulation.id")
        paths = check_mask(mask, set(UPDATABLE_FIELDS), values.populated())
        tenant_id = principal.tenant_id
        with self._database.unit_of_work() as uow:
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
            uow.commit()
        return updated

    @transactional
    def delete(self, principal: Principal, simulation_id: str, *, etag: str = "") -> None:
        """Hard-deletes a simulation with its revisions and events; not while it is busy."""
        require_id(simulation_id, "simulation_id")
        with self._database.unit_of_work() as uow:
            current = uow.simulations.get(principal.tenant_id, simulation_id, for_update=True)
            check_etag(etag, current.etag, "simulation", simulation_id)
            lifecycle.check_deletable(current.status, simulation_id=simulation_id)
            # Compare-and-swap: a run started since the read must not be deleted under it.
            uow.simulations.delete(principal.tenant_id, simulation_id, expected_etag=current.etag)
            uow.commit()

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
        _check_json_field(results, "results")
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

    @transactional
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
        _check_json_field(analysis, "analysis")
        with self._database.unit_of_work() as uow:
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
        **changes: Any,
    ) -> storage.Simulation:
        require_id(simulation_id, "simulation_id")
        with self._database.unit_of_work() as uow:
            current = uow.simulations.get(principal.tenant_id, simulation_id, for_update=True)
            check_etag(etag, current.etag, "simulation", simulation_id)
            moved = transition(uow, current, target, principal.key_id, utc_now(), reason, **changes)
            uow.commit()
        return moved


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
