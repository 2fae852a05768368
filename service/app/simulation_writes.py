"""The steps every simulation write goes through, shared by the use cases and the architect.

:func:`transition`, :func:`write_revision` and :func:`record_event` run inside the caller's
unit of work, so a status change, a new config revision and their events commit together or
not at all. Every simulation write is a compare-and-swap on the simulation's etag: of two
writers that read the same version, exactly one wins (the loser's use case runs again, see
:mod:`service.app.transactions`).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from simulation.v1 import config_pb2

import storage
from service.app.conventions import first_result, utc_now
from service.domain import lifecycle
from service.domain.config_codec import config_to_document, sources_to_documents
from service.domain.errors import Violation
from service.domain.validation import check_labels, check_text

# What UpdateSimulation may change; the prompt is fixed at creation.
UPDATABLE_FIELDS = frozenset({"name", "labels", "scenario_id"})


@dataclass(frozen=True)
class SimulationInput:
    """The caller-writable fields of a simulation; ``scenario_id`` "" means none."""

    name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    scenario_id: str = ""
    prompt: str = ""

    def populated(self) -> set[str]:
        """The updatable fields this input sets: what an empty update mask changes."""
        return {name for name in UPDATABLE_FIELDS if getattr(self, name)}

    def violations(self, prefix: str = "simulation") -> list[Violation]:
        """Name (1..200), labels and prompt (at most 10,000) rules, paths under ``prefix``."""
        return [
            *check_text(
                self.name, f"{prefix}.name", max_length=200, required=True, single_line=True
            ),
            *check_labels(self.labels, f"{prefix}.labels"),
            *check_text(self.prompt, f"{prefix}.prompt", max_length=10_000),
            *check_text(self.scenario_id, f"{prefix}.scenario_id", max_length=100),
        ]


def _event(
    simulation: storage.Simulation, kind: str, actor: str, now: datetime, **fields: Any
) -> storage.SimulationEvent:
    return storage.SimulationEvent(
        tenant_id=simulation.tenant_id,
        simulation_id=simulation.id,
        kind=kind,
        actor=actor,
        create_time=now,
        **fields,
    )


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
) -> None:
    """Appends one audit-trail event (kind: a ``SimulationEvent.Kind`` name) to ``simulation``."""
    uow.events.add(
        _event(
            simulation,
            kind,
            actor,
            now,
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
    *,
    details: dict[str, Any] | None = None,
    **changes: Any,
) -> storage.Simulation:
    """Moves ``simulation`` to ``target`` (with ``changes`` to other fields) and records it.

    ``details`` go into the STATUS_CHANGED event (e.g. the violations of rejected output).

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
            details=details,
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
    request_id: str | None = None,
    request_fingerprint: str | None = None,
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
    revision, config_changed, status_changed = _next_revision(
        simulation.tenant_id,
        simulation.id,
        number,
        config=config,
        sources=sources,
        origin=origin,
        actor=actor,
        description=description,
        now=now,
        request_id=request_id,
        request_fingerprint=request_fingerprint,
        from_status=simulation.status,
    )
    events = [config_changed]
    if simulation.status != lifecycle.COMPLETED_CONFIG:
        events.append(status_changed)
    # One round trip where the driver allows: the compare-and-swap update, the revision, the
    # events. A losing concurrent writer gets Conflict and nothing it sent is kept.
    updated = uow.revisions.add_current(changed, expected_etag or simulation.etag, revision, events)
    return updated, revision


def _next_revision(
    tenant_id: str,
    simulation_id: str,
    number: int,
    *,
    config: config_pb2.SimulationConfig,
    sources: list[config_pb2.Source],
    origin: str,
    actor: str,
    description: str,
    now: datetime,
    request_id: str | None,
    request_fingerprint: str | None,
    from_status: str | None,
) -> tuple[storage.ConfigRevision, storage.SimulationEvent, storage.SimulationEvent]:
    """Revision ``number`` of ``config``, its CONFIG_CHANGED event, and the STATUS_CHANGED one
    to record when the simulation was not in COMPLETED_CONFIG (``from_status``) before it."""
    revision = storage.ConfigRevision(
        tenant_id=tenant_id,
        simulation_id=simulation_id,
        revision=number,
        config=config_to_document(config),
        sources=sources_to_documents(sources),
        create_time=now,
        actor=actor,
        origin=origin,
        description=description,
        request_id=request_id or None,
        request_fingerprint=request_fingerprint if request_id else None,
    )
    config_changed = storage.SimulationEvent(
        tenant_id=tenant_id,
        simulation_id=simulation_id,
        kind="CONFIG_CHANGED",
        actor=actor,
        create_time=now,
        revision=number,
        reason=description or f"config revision {number} ({origin.lower()})",
        details={"origin": origin},
    )
    status_changed = storage.SimulationEvent(
        tenant_id=tenant_id,
        simulation_id=simulation_id,
        kind="STATUS_CHANGED",
        actor=actor,
        create_time=now,
        from_status=from_status,
        to_status=lifecycle.COMPLETED_CONFIG,
        revision=number,
        reason=f"config revision {number} written",
    )
    return revision, config_changed, status_changed


def replace_config(
    uow: storage.UnitOfWork,
    tenant_id: str,
    simulation_id: str,
    *,
    expected_revision: int,
    config: config_pb2.SimulationConfig,
    sources: list[config_pb2.Source],
    actor: str,
    description: str = "",
    now: datetime,
    request_id: str | None = None,
    request_fingerprint: str | None = None,
) -> tuple[storage.Simulation, storage.ConfigRevision] | None:
    """An edit that replaces the whole config, written without reading the simulation first.

    What :func:`write_revision` does for an EDIT (next revision, COMPLETED_CONFIG, results
    cleared, the same events), in one statement that also checks what the caller would have
    read: the simulation is live, at ``expected_revision`` (the etag the client sent) and in
    a status that allows an edit. No ``sources``: the previous revision's are kept. Returns
    the simulation and revision as stored, or None when nothing was written: the caller then
    takes the usual path, which says why (or writes, on SQLite, where this never does).
    """
    # The stored status goes into the STATUS_CHANGED event in the statement itself.
    revision, config_changed, status_changed = _next_revision(
        tenant_id,
        simulation_id,
        expected_revision + 1,
        config=config,
        sources=sources,
        origin="EDIT",
        actor=actor,
        description=description,
        now=now,
        request_id=request_id,
        request_fingerprint=request_fingerprint,
        from_status=None,
    )
    return uow.revisions.replace_current(
        tenant_id,
        simulation_id,
        status=lifecycle.COMPLETED_CONFIG,
        etag=uuid.uuid4().hex,
        now=now,
        expected_revision=expected_revision,
        editable=lifecycle.CONFIG_EDITABLE,
        keep_sources=not sources,
        revision=revision,
        changed=config_changed,
        status_changed=status_changed,
    )


def ensure_scenario(uow: storage.UnitOfWork, tenant_id: str, scenario_id: str) -> None:
    """The scenario must be a live one of the tenant (``storage.NotFound`` otherwise).

    The row stays share-locked until the transaction ends, so a concurrent DeleteScenario
    cannot count the scenario empty while this transaction puts a simulation into it.
    """
    uow.scenarios.get(tenant_id, scenario_id, lock="share")


def json_size(value: Any) -> int:
    """Bytes of the compact JSON form of ``value``: what is stored and sent."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def create_simulation(
    database: storage.Database,
    tenant_id: str,
    values: SimulationInput,
    *,
    with_config: bool,
    request_id: str = "",
    fingerprint: str = "",
    architect_parameters: dict[str, Any] | None = None,
    validate_only: bool = False,
    store: Callable[[storage.UnitOfWork, storage.Simulation, datetime], storage.Simulation],
) -> storage.Simulation:
    """Creates a simulation once per ``request_id`` (AIP-155); shared by both create RPCs.

    Runs inside a transactional use case. ``with_config`` tells CreateSimulationWithConfig
    (starts in COMPLETED_CONFIG, revision 1 imported) from CreateSimulation (starts PENDING for
    the architect). ``store`` runs in the transaction that added the simulation and writes what
    comes with it (events, the first revision or the architect job); it returns the simulation
    as it then is.

    A ``request_id`` used before returns the simulation it created when the request is the
    same (same ``fingerprint``), and is ``INVALID_ARGUMENT`` (REQUEST_ID_REUSED) when it is
    not. With ``validate_only`` the would-be simulation is returned and nothing is stored.
    """
    now = utc_now()
    simulation = storage.Simulation(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        scenario_id=values.scenario_id or None,
        name=values.name,
        prompt=values.prompt,
        labels=dict(values.labels),
        status=lifecycle.COMPLETED_CONFIG if with_config else lifecycle.PENDING,
        current_revision=0,
        architect_parameters=architect_parameters,
        results=None,
        analysis=None,
        last_error=None,
        create_time=now,
        update_time=now,
        request_id=request_id or None,
        request_fingerprint=fingerprint if request_id else None,
    )
    try:
        with database.unit_of_work() as uow:
            if request_id:
                existing = uow.simulations.get_by_request_id(tenant_id, request_id)
                if existing is not None:
                    return first_result(
                        existing, existing.request_fingerprint, fingerprint, "simulation"
                    )
            if values.scenario_id:
                ensure_scenario(uow, tenant_id, values.scenario_id)
            if validate_only:
                return dataclasses.replace(simulation, id="", current_revision=int(with_config))
            created = store(uow, uow.simulations.add(simulation), now)
            uow.commit()
            return created
    except storage.AlreadyExists as exc:
        if exc.field != "request_id" or not request_id:
            raise
    # A concurrent retry with the same request id won the race: answer with its result.
    with database.read_unit_of_work() as reader:
        existing = reader.simulations.get_by_request_id(tenant_id, request_id)
    if existing is None:
        raise storage.AlreadyExists("simulation", "request_id", request_id)
    return first_result(existing, existing.request_fingerprint, fingerprint, "simulation")
