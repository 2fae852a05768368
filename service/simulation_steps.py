"""The steps every simulation write goes through, shared by the use cases and the architect.

:func:`transition`, :func:`write_revision` and :func:`record_event` run inside the caller's
unit of work, so a status change, a new config revision and their events commit together or
not at all. Every simulation write is a compare-and-swap on the simulation's etag: of two
writers that read the same version, exactly one wins.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from simulation.v1 import config_pb2

import storage
from service import errors, fields, lifecycle
from service.config_codec import config_to_document, sources_to_documents
from service.fields import check_labels, check_text, utc_now

T = TypeVar("T")

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

    def populated(self) -> set[str]:
        """The updatable fields this input sets: what an empty update mask changes."""
        return {name for name in ("name", "labels", "scenario_id") if getattr(self, name)}


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


def load_simulation(
    uow: storage.UnitOfWork, tenant_id: str, simulation_id: str, *, for_update: bool = False
) -> storage.Simulation:
    """The caller's live simulation; ``errors.NotFound`` otherwise.

    Writers pass ``for_update``: the row stays locked until they commit, so a write that sent
    no etag waits its turn instead of losing a compare-and-swap race to another writer.
    """
    try:
        return uow.simulations.get(tenant_id, simulation_id, for_update=for_update)
    except storage.NotFound:
        raise errors.NotFound("simulation", simulation_id) from None


def check_etag(given: str, stored: str, simulation_id: str) -> None:
    """A non-empty etag must match the simulation's stored one (``ABORTED`` otherwise)."""
    fields.check_etag(given, stored, "simulation", simulation_id)


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
        *check_text(values.name, f"{prefix}.name", max_length=200, required=True, single_line=True),
        *check_labels(values.labels, f"{prefix}.labels"),
        *check_text(values.prompt, f"{prefix}.prompt", max_length=10_000),
        *check_text(values.scenario_id, f"{prefix}.scenario_id", max_length=100),
    ]


def ensure_scenario(uow: storage.UnitOfWork, tenant_id: str, scenario_id: str) -> None:
    """The scenario must be a live one of the tenant (``NOT_FOUND`` otherwise).

    The row stays share-locked until the transaction ends, so a concurrent DeleteScenario
    cannot count the scenario empty while this transaction puts a simulation into it.
    """
    try:
        uow.scenarios.get(tenant_id, scenario_id, lock="share")
    except storage.NotFound:
        raise errors.NotFound("scenario", scenario_id) from None


def load_with_sources(
    uow: storage.UnitOfWork, tenant_id: str, simulation_id: str
) -> tuple[storage.Simulation, list[dict[str, Any]]]:
    """The caller's live simulation and the sources of its current config revision."""
    simulation = load_simulation(uow, tenant_id, simulation_id)
    if not simulation.current_revision:
        return simulation, []
    revision = uow.revisions.get(tenant_id, simulation_id, simulation.current_revision)
    return simulation, revision.sources


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

    ``with_config`` tells CreateSimulationWithConfig (starts in COMPLETED_CONFIG, revision 1
    imported) from CreateSimulation (starts PENDING for the architect). ``store`` runs in the
    transaction that added the simulation and writes what comes with it (events, the first
    revision or the architect job); it returns the simulation as it then is.

    A ``request_id`` used before returns the simulation it created when the request is the same
    (same ``fingerprint``, see :func:`service.fields.request_fingerprint`), and is
    ``INVALID_ARGUMENT`` (reason REQUEST_ID_REUSED) when it is not. With
    ``validate_only`` the would-be simulation is returned and nothing is stored.
    """

    def create(uow: storage.UnitOfWork) -> storage.Simulation:
        if request_id:
            existing = uow.simulations.get_by_request_id(tenant_id, request_id)
            if existing is not None:
                return _same_request(existing, fingerprint)
        if values.scenario_id:
            ensure_scenario(uow, tenant_id, values.scenario_id)
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
        if validate_only:
            return dataclasses.replace(simulation, id="", current_revision=int(with_config))
        return store(uow, uow.simulations.add(simulation), now)

    def first_result(uow: storage.UnitOfWork) -> storage.Simulation | None:
        found = uow.simulations.get_by_request_id(tenant_id, request_id)
        return None if found is None else _same_request(found, fingerprint)

    try:
        return database.run(create)
    except storage.AlreadyExists as exc:
        if exc.field == "request_id" and request_id:
            # A concurrent retry with the same request id won the race.
            found = database.run(first_result)
            if found is not None:
                return found
        raise errors.AlreadyExists("simulation", exc.field, exc.value) from None
    except storage.NotFound as exc:
        # The scenario was deleted between the check and the insert.
        raise errors.NotFound(exc.entity, exc.id) from None


def _same_request(existing: storage.Simulation, fingerprint: str) -> storage.Simulation:
    """``existing`` when the request that created it had these arguments; otherwise the
    request id was reused for a different request (``INVALID_ARGUMENT``)."""
    if existing.request_fingerprint != fingerprint:
        raise errors.InvalidArgument.field(
            "request_id",
            "was already used for a different request; send a new request_id for a new "
            "simulation, or the same arguments to get the first result",
            reason="REQUEST_ID_REUSED",
        )
    return existing
