"""Architect use cases: queue a durable architect job, and optionally wait for it.

``CreateSimulation`` and ``RunArchitect`` never call an engine themselves. They validate the
request, then in ONE transaction store the simulation as ``PENDING``, record the audit events and
insert an :class:`storage.ArchitectJob`; the worker threads of any server replica
(:mod:`service.architect.worker`) pick the job up from the database. So a request that returned
has a job that survives any crash, and a request that failed queued nothing.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from simulation.v1 import config_pb2

import storage
from service.app.authentication import Principal
from service.app.batches import replay_or_record
from service.app.conventions import check_etag, fingerprint, utc_now
from service.app.simulation_writes import (
    SimulationInput,
    create_simulation,
    record_event,
    transition,
)
from service.app.transactions import transactional
from service.domain import errors, lifecycle
from service.domain.config_codec import parameters_to_document
from service.domain.validation import ConfigValidator, check_request_id, check_text, require_id
from service.telemetry.trace_context import current_traceparent

PROMPT_MAX = 10_000
DEFAULT_WAIT_SECONDS = 30.0
MAX_WAIT_SECONDS = 300.0
# Answer a little before the caller's deadline, so it gets the simulation rather than
# DEADLINE_EXCEEDED when the job is still running.
_DEADLINE_MARGIN_SECONDS = 0.25
# Statuses in which an architect job is still to finish.
BUSY_STATUSES = frozenset({lifecycle.PENDING, lifecycle.GENERATING_CONFIG})


def wait_budget(wait_timeout: float | None) -> float:
    """Seconds a ``wait: true`` call may block: the caller's time left, at most 300 s.

    ``None`` (a call without a deadline) means the default 30 s.
    """
    if wait_timeout is None:
        return DEFAULT_WAIT_SECONDS
    return max(0.0, min(wait_timeout - _DEADLINE_MARGIN_SECONDS, MAX_WAIT_SECONDS))


class JobWaiter:
    """Blocks a ``wait: true`` caller until its simulation leaves PENDING/GENERATING_CONFIG.

    It polls the database, so it sees jobs finished by any replica; workers of this process call
    :meth:`notify` when they finish one, which ends the current poll interval early.

    Waiting holds an RPC worker thread, so at most ``max_waiters`` calls wait at once; past
    that a call returns the simulation as it is (the client polls ``GetSimulation``), leaving
    threads for every other call, health checks included. :meth:`close` (at shutdown) returns
    every waiter at once instead of holding the process until their deadlines.
    """

    def __init__(
        self,
        database: storage.Database,
        *,
        poll_interval: float = 0.1,
        max_waiters: int = 8,
        on_done: Callable[[str], None] = lambda _simulation_id: None,
    ):
        self._database = database
        self._poll_interval = poll_interval
        # Told the id of a simulation a waiter saw its job finish for, before the waiter
        # answers: its config may have changed (the read cache drops it; a job finished by a
        # worker of any replica is otherwise heard only through the change feed).
        self._on_done = on_done
        self._changed = threading.Condition()
        self._slots = threading.BoundedSemaphore(max(1, max_waiters))
        self._closed = False

    def notify(self) -> None:
        """Wake every waiter so it re-reads its simulation now."""
        with self._changed:
            self._changed.notify_all()

    def close(self) -> None:
        """Return every current and future waiter at once (the server is stopping)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait(self, tenant_id: str, simulation_id: str, timeout: float) -> storage.Simulation:
        """Return the simulation once its job is done, or as it is when ``timeout`` passes."""
        if not self._slots.acquire(blocking=False):
            # Every waiting slot is taken: answer now; the client can poll GetSimulation.
            return self._read(tenant_id, simulation_id)
        try:
            deadline = time.monotonic() + timeout
            while True:
                simulation = self._read(tenant_id, simulation_id)
                remaining = deadline - time.monotonic()
                if simulation.status not in BUSY_STATUSES:
                    self._on_done(simulation_id)
                    return simulation
                if remaining <= 0 or self._closed:
                    return simulation
                with self._changed:
                    if not self._closed:
                        self._changed.wait(min(self._poll_interval, remaining))
        finally:
            self._slots.release()

    def _read(self, tenant_id: str, simulation_id: str) -> storage.Simulation:
        return self._database.read(lambda uow: uow.simulations.get(tenant_id, simulation_id))


@dataclass(frozen=True)
class PromptedSimulation:
    """What CreateSimulation asks for, in the use case's terms."""

    simulation: SimulationInput
    parameters: config_pb2.ArchitectParameters
    request_id: str = ""
    validate_only: bool = False
    wait: bool = False


@dataclass(frozen=True)
class ArchitectRerun:
    """What RunArchitect asks for; ``parameters`` None means "the last ones again"."""

    simulation_id: str
    parameters: config_pb2.ArchitectParameters | None = None
    etag: str = ""
    wait: bool = False
    request_id: str = ""


class ArchitectOperations:
    """The ``CreateSimulation`` and ``RunArchitect`` use cases over a :class:`storage.Database`."""

    def __init__(
        self,
        database: storage.Database,
        validator: ConfigValidator,
        *,
        max_attempts: int = 3,
        waiter: JobWaiter | None = None,
        on_queued: Callable[[], None] | None = None,
    ):
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._database = database
        self._validator = validator
        self._max_attempts = max_attempts
        self._waiter = waiter or JobWaiter(database)
        # Wakes this process's idle workers once a job is committed, so they need not wait for
        # their next poll; other replicas find the job on theirs.
        self._on_queued = on_queued or (lambda: None)

    # -- CreateSimulation --------------------------------------------------------------------------

    def create_simulation(
        self,
        principal: Principal,
        request: PromptedSimulation,
        *,
        wait_timeout: float | None = None,
    ) -> storage.Simulation:
        """Stores a PENDING simulation and queues its architect job, atomically.

        The same ``request_id`` with the same arguments returns the simulation the first call
        created (and queues nothing); with other arguments it is ``INVALID_ARGUMENT``. With
        ``wait`` it returns once the job is done or the wait budget is spent.
        """
        values, parameters = request.simulation, request.parameters
        violations = [
            *values.violations(),
            # check_input checks the prompt's length; here the architect needs one at all.
            *(
                []
                if values.prompt.strip()
                else check_text("", "simulation.prompt", max_length=PROMPT_MAX, required=True)
            ),
            *self._validator.validate_parameters(parameters),
            *check_request_id(request.request_id),
        ]
        if violations:
            raise errors.InvalidArgument(violations)
        tenant_id, actor = principal.tenant_id, principal.key_id
        parameters_document = parameters_to_document(parameters)

        def store(uow: storage.UnitOfWork, added: storage.Simulation, now) -> storage.Simulation:
            record_event(uow, added, "CREATED", actor, now, to_status=lifecycle.PENDING)
            self._queue(uow, added, parameters_document, actor, now)
            return added

        request_fingerprint = fingerprint(
            rpc="CreateSimulation",
            name=values.name,
            prompt=values.prompt,
            labels=dict(values.labels),
            scenario_id=values.scenario_id,
            parameters=parameters_document,
        )
        simulation = self._store_new(
            tenant_id,
            values,
            request_id=request.request_id,
            fingerprint=request_fingerprint,
            parameters=parameters_document,
            validate_only=request.validate_only,
            store=store,
        )
        if not request.validate_only:
            self._on_queued()
        if request.wait and not request.validate_only:
            return self._waiter.wait(tenant_id, simulation.id, wait_budget(wait_timeout))
        return simulation

    @transactional
    def _store_new(
        self,
        tenant_id: str,
        values: SimulationInput,
        *,
        request_id: str,
        fingerprint: str,
        parameters: dict,
        validate_only: bool,
        store,
    ) -> storage.Simulation:
        # The transaction alone, so that a retry never repeats the wake-up or the wait.
        return create_simulation(
            self._database,
            tenant_id,
            values,
            with_config=False,
            request_id=request_id,
            fingerprint=fingerprint,
            architect_parameters=parameters,
            validate_only=validate_only,
            store=store,
        )

    # -- RunArchitect ------------------------------------------------------------------------------

    def run_architect(
        self,
        principal: Principal,
        request: ArchitectRerun,
        *,
        wait_timeout: float | None = None,
    ) -> storage.Simulation:
        """Moves the simulation back to PENDING and queues a new architect job, atomically.

        Without ``parameters`` the simulation's last architect parameters are used again (engine
        defaults when it never had any). A stale ``etag`` is ``ABORTED``; a simulation without a
        prompt (made with a config), one that is running, or one that already has an architect
        job queued or running is ``FAILED_PRECONDITION``. A retry with the same ``request_id``
        and arguments returns the simulation as it is now and queues nothing.
        """
        simulation_id = request.simulation_id
        require_id(simulation_id, "simulation_id")
        violations = check_request_id(request.request_id)
        given_parameters = None
        if request.parameters is not None:
            violations += self._validator.validate_parameters(request.parameters)
            given_parameters = parameters_to_document(request.parameters)
        if violations:
            raise errors.InvalidArgument(violations)
        tenant_id = principal.tenant_id

        simulation = self._queue_rerun(
            principal, request, given_parameters, request_id=request.request_id
        )
        self._on_queued()
        if request.wait:
            return self._waiter.wait(tenant_id, simulation.id, wait_budget(wait_timeout))
        return simulation

    @transactional
    def _queue_rerun(
        self,
        principal: Principal,
        request: ArchitectRerun,
        given_parameters: dict | None,
        *,
        request_id: str,
    ) -> storage.Simulation:
        # The transaction alone, so that a retry never repeats the wake-up or the wait.
        # ``request_id`` is a keyword of its own: the retry policy reads it to know that a
        # commit with an unknown outcome may be run again.
        tenant_id, actor, simulation_id = (
            principal.tenant_id,
            principal.key_id,
            request.simulation_id,
        )
        request_fingerprint = fingerprint(
            rpc="RunArchitect",
            simulation_id=simulation_id,
            parameters=given_parameters,
            etag=request.etag,
        )
        with self._database.unit_of_work() as uow:
            first = replay_or_record(
                uow,
                tenant_id,
                "RunArchitect",
                request_id,
                request_fingerprint,
                [simulation_id],
                noun="architect run",
            )
            if first is not None:
                return uow.simulations.get(tenant_id, simulation_id)
            current = uow.simulations.get(tenant_id, simulation_id, for_update=True)
            check_etag(request.etag, current.etag, "simulation", simulation_id)
            if not current.prompt.strip():
                raise _no_prompt(current)
            active = uow.jobs.find_active(tenant_id, simulation_id)
            if active is not None or not lifecycle.can_queue_architect(current.status):
                raise _busy(current, active)
            parameters_document = given_parameters
            if parameters_document is None:
                parameters_document = current.architect_parameters or parameters_to_document(
                    config_pb2.ArchitectParameters()
                )
            now = utc_now()
            queued = transition(
                uow,
                current,
                lifecycle.PENDING,
                actor,
                now,
                reason="architect re-run requested",
                architect_parameters=parameters_document,
            )
            self._queue(uow, queued, parameters_document, actor, now)
            uow.commit()
        return queued

    # -- shared ------------------------------------------------------------------------------------

    def _queue(
        self,
        uow: storage.UnitOfWork,
        simulation: storage.Simulation,
        parameters_document: dict,
        actor: str,
        now: datetime,
    ) -> storage.ArchitectJob:
        job = uow.jobs.add(
            storage.ArchitectJob(
                id=str(uuid.uuid4()),
                tenant_id=simulation.tenant_id,
                simulation_id=simulation.id,
                prompt=simulation.prompt,
                parameters=parameters_document,
                actor=actor,
                state="QUEUED",
                create_time=now,
                update_time=now,
                max_attempts=self._max_attempts,
                # The run joins this call's trace, whichever worker runs it and when.
                traceparent=current_traceparent(),
            )
        )
        record_event(
            uow,
            simulation,
            "ARCHITECT_QUEUED",
            actor,
            now,
            reason="architect job queued",
            details={"job_id": job.id, "parameters": parameters_document},
        )
        return job


def _no_prompt(simulation: storage.Simulation) -> errors.FailedPrecondition:
    return errors.FailedPrecondition(
        f"simulation {simulation.id!r} has no prompt to run the architect on; simulations "
        "created with a config have no prompt for the architect",
        [errors.PreconditionViolation("PROMPT", f"simulations/{simulation.id}", "no prompt")],
        reason="NO_PROMPT",
    )


def _busy(simulation: storage.Simulation, job: storage.ArchitectJob | None):
    subject = f"simulations/{simulation.id}"
    if job is not None:
        return errors.FailedPrecondition(
            f"simulation {simulation.id!r} already has an architect job {job.state.lower()}; "
            "wait for it to finish",
            [errors.PreconditionViolation("ARCHITECT_JOB", subject, f"job {job.id} {job.state}")],
            reason="ARCHITECT_JOB_IN_PROGRESS",
        )
    return errors.FailedPrecondition(
        f"cannot re-run the architect while simulation {simulation.id!r} is {simulation.status}",
        [errors.PreconditionViolation("STATUS", subject, f"status is {simulation.status}")],
        reason="SIMULATION_BUSY",
    )
