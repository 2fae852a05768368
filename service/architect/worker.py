"""Architect workers: threads that run queued architect jobs from the database.

Every server process runs a few; they share one queue (the ``architect_jobs`` table) with every
other replica. One job, step by step:

1. **Claim** (one transaction): lease the oldest claimable job and move its simulation
   ``PENDING -> GENERATING_CONFIG``. A job whose server died is claimable again once its lease
   has expired; each claim counts as an attempt.
2. **Generate** (no transaction open): call the engine while a heartbeat thread renews the lease,
   so a long but healthy call is not taken over.
3. **Apply** (one transaction): validate the output with the shared ``ConfigValidator``, then write
   the revision (``COMPLETED_CONFIG``) or fail the simulation (``FAILED``, violations kept in the
   event trail), and mark the job finished. Marking the job is conditional on this worker still
   holding the lease; when it does not, the transaction is rolled back, so a job is applied at
   most once even when two workers ended up generating it.

A retryable engine failure (backend unavailable, deadline exceeded) with attempts left keeps the
job ``RUNNING`` and shortens its lease to a backoff; when that expires any worker reclaims the job
exactly as it would reclaim the job of a dead worker. With no attempts left, or for a
non-retryable failure, the simulation is ``FAILED`` with ``ARCHITECT_<engine reason>``. Jobs whose
lease expired with no attempts left (their workers died) fail with ``ARCHITECT_ABANDONED``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

import storage
from service.app.conventions import utc_now
from service.app.simulation_writes import transition, write_revision
from service.architect.engine import ArchitectEngine, ArchitectError, GeneratedConfig
from service.domain import lifecycle
from service.domain.config_codec import parameters_from_document
from service.domain.validation import ConfigValidator
from service.telemetry.trace_context import context_from_traceparent

log = logging.getLogger(__name__)

ACTOR = "architect"
SUCCEEDED, FAILED = "SUCCEEDED", "FAILED"
_tracer = trace.get_tracer("simconfig.architect")
# Upper bound of the wait before a job that failed retryably may be claimed again.
MAX_RETRY_BACKOFF_SECONDS = 30.0
# Longest idle wait of a worker whose loop keeps failing (say, the database is down).
MAX_IDLE_BACKOFF_SECONDS = 30.0
# How long stopping waits for workers at least: an idle worker ends within this once signalled.
IDLE_STOP_SECONDS = 0.1
# How long handing a job back at shutdown may take beyond the stop timeout (one small write).
HAND_BACK_SECONDS = 1.0
# A concurrent simulation update (rename, relabel) between read and write is retried this often.
_APPLY_ATTEMPTS = 5
# How a job can finish, as reported to ``on_outcome`` (a bounded metric label): it wrote a
# revision; the engine failed for good; its output failed validation; its workers died on the
# last attempt; or its simulation was deleted or moved on before the result was written.
SUCCEEDED_OUTCOME, FAILED_OUTCOME = "succeeded", "failed"
INVALID_OUTPUT_OUTCOME, ABANDONED_OUTCOME, SUPERSEDED_OUTCOME = (
    "invalid_output",
    "abandoned",
    "superseded",
)
JOB_OUTCOMES = (
    SUCCEEDED_OUTCOME,
    FAILED_OUTCOME,
    INVALID_OUTPUT_OUTCOME,
    ABANDONED_OUTCOME,
    SUPERSEDED_OUTCOME,
)


def new_worker_id(index: int = 0) -> str:
    """A worker id unique across hosts, processes and restarts."""
    # lease_owner holds 128 characters; host names may be longer.
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}:{index}"


class _LeaseLost(Exception):
    """The job is no longer ours: roll back and leave it alone."""


@dataclass(frozen=True)
class _Outcome:
    """How a job ended: the job's final state and, for a failure, why."""

    job_state: str
    reason: str = ""
    message: str = ""  # shown to clients: never addresses, transport or exception text
    violations: tuple = ()
    detail: str = ""  # kept on the job row and in the log only
    label: str = FAILED_OUTCOME  # what on_outcome is told (one of JOB_OUTCOMES)


# What a client reads in last_error for each engine failure; the engine's own message can name
# internal addresses or carry a backend's exception text, so it stays on the job row.
_PUBLIC_MESSAGES = {
    "BACKEND_UNAVAILABLE": "the architect backend could not be reached",
    "DEADLINE_EXCEEDED": "the architect backend did not answer in time",
    "BACKEND_REJECTED": "the architect backend refused the request",
    "INVALID_PARAMETERS": "the architect refused the parameters",
}


class _Heartbeat:
    """Renews a job's lease every third of the lease while the engine works."""

    def __init__(self, database: storage.Database, job_id: str, worker_id: str, lease: float):
        self._database = database
        self._job_id = job_id
        self._worker_id = worker_id
        self._lease = lease
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(
            target=self._run, name=f"architect-heartbeat-{worker_id}", daemon=True
        )

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stops renewing; returns once no renewal is in flight."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _renew(self, uow: storage.UnitOfWork) -> bool:
        until = utc_now() + timedelta(seconds=self._lease)
        return uow.jobs.renew_lease(self._job_id, self._worker_id, until)

    def _run(self) -> None:
        while not self._stop.wait(self._lease / 3):
            try:
                held = self._database.run(self._renew)
            except storage.StorageError:
                log.warning("renewing the lease of job %s failed", self._job_id, exc_info=True)
                continue
            if not held:
                log.warning("lost the lease of architect job %s", self._job_id)
                self.lost = True
                return


class ArchitectWorker:
    """One thread that claims and runs architect jobs until stopped."""

    def __init__(
        self,
        database: storage.Database,
        engine: ArchitectEngine,
        validator: ConfigValidator,
        *,
        worker_id: str,
        lease_seconds: float,
        poll_interval: float = 1.0,
        on_finished: Callable[[], None] | None = None,
        on_outcome: Callable[[str], None] | None = None,
    ):
        self._database = database
        self._engine = engine
        self._validator = validator
        self.worker_id = worker_id
        self._lease = lease_seconds
        self._poll_interval = poll_interval
        self._on_finished = on_finished
        # Told how each job this worker finished ended (one of JOB_OUTCOMES), once per job.
        self._on_outcome = on_outcome
        self._stop = threading.Event()
        # Set (by wake) when this process queues a job: an idle worker looks at once.
        self._wakeup = threading.Event()
        # Set while the loop backs off after failures, so a database that answers again can
        # end the wait at once (database_answered) instead of after up to 30 s.
        self._failing = False
        # Set when stop() handed the running job back: whatever the engine says next is dropped.
        self._handed_back = threading.Event()
        self._current: storage.ArchitectJob | None = None
        self._heartbeat: _Heartbeat | None = None
        self._thread = threading.Thread(
            target=self._loop, name=f"architect-{worker_id}", daemon=True
        )

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the worker thread."""
        self._thread.start()

    def wake(self) -> None:
        """Ends the current idle wait early: a job was just queued."""
        self._wakeup.set()

    def database_answered(self) -> None:
        """Ends a failure backoff early: the database answers again."""
        if self._failing:
            self._wakeup.set()

    def signal_stop(self) -> None:
        """Asks the thread to stop after the current step; does not wait."""
        self._stop.set()
        self._wakeup.set()

    def stop(self, timeout: float = 2.0) -> None:
        """Stops the thread, waiting at most ``timeout`` seconds.

        A worker stuck in a slow engine call is not waited for: its job is handed back (lease
        expired now) so another replica can claim it at once, and whatever the engine answers
        later is dropped; the daemon thread dies with the process.
        """
        self.signal_stop()
        if self._thread.is_alive():
            self._thread.join(timeout)
        job, heartbeat = self._current, self._heartbeat
        if self._thread.is_alive() and job is not None:
            self._handed_back.set()
            if heartbeat is not None:
                heartbeat.stop()  # or it would extend the lease we are about to give up
            self._hand_back(job)

    def join(self, timeout: float | None = None) -> None:
        """Waits for the thread to end (after a stop)."""
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _hand_back(self, job: storage.ArchitectJob) -> None:
        try:
            self._database.run(lambda uow: uow.jobs.renew_lease(job.id, self.worker_id, utc_now()))
            log.info("handed architect job %s back to the queue at shutdown", job.id)
        except storage.StorageError:
            log.warning("could not hand back architect job %s", job.id, exc_info=True)

    # -- the loop ----------------------------------------------------------------------------------

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            worked = False
            try:
                self.fail_exhausted()
                worked = self.run_once()
                failures = 0
            except Exception:  # noqa: BLE001 - a worker must outlive any one failure; logged
                failures += 1
                # Once per outage, not once per poll: a database that is down would
                # otherwise fill the log with the same traceback.
                if failures == 1:
                    log.exception("architect worker %s failed; carrying on", self.worker_id)
            self._failing = failures > 0
            if not worked:
                # Back off while failing: 1, 2, 4 ... polls, at most MAX_IDLE_BACKOFF_SECONDS.
                idle = min(self._poll_interval * 2 ** min(failures, 10), MAX_IDLE_BACKOFF_SECONDS)
                self._wakeup.wait(max(idle, self._poll_interval))
                # Cleared only after waking: a wake that lands from here on precedes the next
                # claim, which then sees the job that caused it.
                self._wakeup.clear()

    def run_once(self) -> bool:
        """Claims and runs one job; False when the queue had nothing claimable."""
        claimed = self.claim()
        if claimed is None:
            return False
        job, simulation = claimed
        self._current = job
        try:
            # A span per attempt (no-op unless tracing is on) with its statements inside, a
            # child of the call that queued the job: one trace from the request to its config.
            # A job queued untraced gets a trace of its own.
            with _tracer.start_as_current_span(
                "architect job",
                context=context_from_traceparent(job.traceparent),
                kind=SpanKind.CONSUMER,
                attributes={"simconfig.job.id": job.id, "simconfig.job.attempt": job.attempts},
            ):
                self.process(job, simulation)
        finally:
            self._current = self._heartbeat = None
            self._notify()
        return True

    def fail_exhausted(self) -> int:
        """Fails the jobs whose workers died on their last attempt; returns how many."""
        failed = 0
        for job in self._database.run(lambda uow: uow.jobs.list_exhausted(utc_now())):
            outcome = _Outcome(
                FAILED,
                "ARCHITECT_ABANDONED",
                f"the architect job was abandoned after {job.attempts} attempt(s): "
                "its worker stopped answering",
                label=ABANDONED_OUTCOME,
            )
            # Finishing as the dead owner is a compare-and-swap: of several workers failing the
            # same job, exactly one succeeds.
            if self._apply(job, outcome, owner=job.lease_owner or ""):
                failed += 1
                self._notify()
        return failed

    # -- steps -------------------------------------------------------------------------------------

    def claim(self) -> tuple[storage.ArchitectJob, storage.Simulation] | None:
        """Leases the next job and marks its simulation GENERATING_CONFIG, in one transaction.

        Returns the job and its simulation, or None when nothing is claimable (or the job
        claimed turned out moot and was finished at once).
        """
        claimed = self._database.run(self._claim)
        if isinstance(claimed, str):
            # Reported once the transaction committed: a retried one would count twice.
            self._report(claimed)
            return None
        return claimed

    def _claim(
        self, uow: storage.UnitOfWork
    ) -> tuple[storage.ArchitectJob, storage.Simulation] | str | None:
        now = utc_now()
        job = uow.jobs.claim_next(self.worker_id, now, self._lease)
        if job is None:
            return None
        try:
            simulation = uow.simulations.get(job.tenant_id, job.simulation_id)
        except storage.NotFound:
            uow.jobs.finish(
                job.id, self.worker_id, state=FAILED, error="SIMULATION_DELETED", now=now
            )
            return SUPERSEDED_OUTCOME
        if simulation.status == lifecycle.PENDING:
            simulation = transition(
                uow,
                simulation,
                lifecycle.GENERATING_CONFIG,
                ACTOR,
                now,
                reason=f"architect job {job.id} started",
            )
        elif simulation.status != lifecycle.GENERATING_CONFIG:
            # Something else moved the simulation on (it was failed, say): the job is moot.
            uow.jobs.finish(
                job.id,
                self.worker_id,
                state=FAILED,
                error=f"SUPERSEDED: simulation is {simulation.status}",
                now=now,
            )
            return SUPERSEDED_OUTCOME
        log.info(
            "worker %s claimed architect job %s (attempt %d of %d)",
            self.worker_id,
            job.id,
            job.attempts,
            job.max_attempts,
        )
        return job, simulation

    def process(self, job: storage.ArchitectJob, simulation: storage.Simulation) -> None:
        """Generates the config of a claimed job and records the outcome (see the module doc)."""
        try:
            parameters = parameters_from_document(job.parameters)
            heartbeat = _Heartbeat(self._database, job.id, self.worker_id, self._lease)
            self._heartbeat = heartbeat
            with heartbeat:
                generated = self._engine.generate(
                    job.prompt, parameters, simulation_id=job.simulation_id, request_id=job.id
                )
        except ArchitectError as error:
            if self._handed_back.is_set():
                return
            log.warning("architect job %s failed: %r", job.id, error)
            public = _PUBLIC_MESSAGES.get(error.reason, "the architect failed")
            self._failed(
                job, f"ARCHITECT_{error.reason}", public, error.retryable, detail=error.message
            )
            return
        except Exception:  # noqa: BLE001 - an engine bug must not kill the worker; logged
            if self._handed_back.is_set():
                return
            log.exception("architect engine raised on job %s", job.id)
            self._failed(job, "ARCHITECT_INTERNAL_ERROR", "the architect engine failed", True)
            return
        if self._handed_back.is_set():
            log.info("dropping the output of job %s: it was handed back at shutdown", job.id)
            return
        if heartbeat.lost:
            log.warning("dropping the output of job %s: its lease was taken over", job.id)
            return
        self._apply(job, self._judge(generated), owner=self.worker_id, generated=generated)

    def _judge(self, generated: GeneratedConfig) -> _Outcome:
        violations = [
            *self._validator.validate(generated.config),
            *self._validator.validate_sources(generated.sources),
        ]
        if not violations:
            return _Outcome(SUCCEEDED, label=SUCCEEDED_OUTCOME)
        return _Outcome(
            FAILED,
            "ARCHITECT_OUTPUT_INVALID",
            f"the architect produced a config with {len(violations)} violation(s)",
            tuple({"field": v.field, "description": v.description} for v in violations),
            label=INVALID_OUTPUT_OUTCOME,
        )

    def _failed(
        self,
        job: storage.ArchitectJob,
        reason: str,
        message: str,
        retryable: bool,
        *,
        detail: str = "",
    ):
        if retryable and job.attempts < job.max_attempts:
            backoff = min(self._lease, 2.0**job.attempts, MAX_RETRY_BACKOFF_SECONDS)
            until = utc_now() + timedelta(seconds=backoff)
            self._database.run(lambda uow: uow.jobs.renew_lease(job.id, self.worker_id, until))
            log.info("architect job %s will be retried in %.1fs", job.id, backoff)
            return
        if retryable:
            message = f"{message} (gave up after {job.attempts} job attempt(s))"
        self._apply(job, _Outcome(FAILED, reason, message, detail=detail), owner=self.worker_id)

    def _apply(
        self,
        job: storage.ArchitectJob,
        outcome: _Outcome,
        *,
        owner: str,
        generated: GeneratedConfig | None = None,
    ) -> bool:
        """Records ``outcome`` in one transaction; False when the job was no longer ``owner``'s."""
        for attempt in range(1, _APPLY_ATTEMPTS + 1):
            try:
                written = self._database.run(
                    lambda uow: self._write(uow, job, outcome, owner, generated)
                )
                self._report(written)
                return True
            except _LeaseLost:
                log.warning("architect job %s was taken over; its result is dropped", job.id)
                return False
            except storage.Conflict:
                if attempt == _APPLY_ATTEMPTS:
                    raise
        return False

    def _write(
        self,
        uow: storage.UnitOfWork,
        job: storage.ArchitectJob,
        outcome: _Outcome,
        owner: str,
        generated: GeneratedConfig | None,
    ) -> str:
        """Writes the job's end; returns the outcome written (one of JOB_OUTCOMES)."""
        now = utc_now()
        try:
            simulation = uow.simulations.get(job.tenant_id, job.simulation_id)
        except storage.NotFound:
            simulation = None
        if simulation is None or simulation.status != lifecycle.GENERATING_CONFIG:
            state = simulation.status if simulation else "deleted"
            if not uow.jobs.finish(
                job.id, owner, state=FAILED, error=f"SUPERSEDED: simulation is {state}", now=now
            ):
                raise _LeaseLost
            return SUPERSEDED_OUTCOME
        error = (
            None
            if outcome.job_state == SUCCEEDED
            else f"{outcome.reason}: {outcome.detail or outcome.message}"
        )
        if not uow.jobs.finish(job.id, owner, state=outcome.job_state, error=error, now=now):
            raise _LeaseLost
        if outcome.job_state == SUCCEEDED:
            assert generated is not None
            write_revision(
                uow,
                simulation,
                config=generated.config,
                sources=list(generated.sources),
                origin="ARCHITECT",
                actor=job.actor,
                description=f"generated by architect job {job.id}",
                now=now,
                expected_etag=simulation.etag,
            )
            return outcome.label
        last_error: dict[str, Any] = {
            "reason": outcome.reason,
            "message": outcome.message,
            "violations": list(outcome.violations),
        }
        transition(
            uow,
            simulation,
            lifecycle.FAILED,
            ACTOR,
            now,
            outcome.message,
            details={"job_id": job.id, "attempts": job.attempts, **last_error},
            last_error=last_error,
        )
        return outcome.label

    def _report(self, outcome: str) -> None:
        if self._on_outcome is not None:
            self._on_outcome(outcome)

    def _notify(self) -> None:
        if self._on_finished is not None:
            self._on_finished()


class ArchitectWorkerPool:
    """The architect workers of one server process, started and stopped together."""

    name = "architect-workers"

    def __init__(self, workers: Sequence[ArchitectWorker], *, stop_timeout: float = 2.0):
        self.workers = list(workers)
        self._stop_timeout = stop_timeout

    def wake(self) -> None:
        """Tells idle workers a job was just queued, so they claim it without waiting to poll."""
        for worker in self.workers:
            worker.wake()

    @classmethod
    def create(
        cls,
        database: storage.Database,
        engine: ArchitectEngine,
        validator: ConfigValidator,
        *,
        count: int,
        lease_seconds: float,
        poll_interval: float = 1.0,
        on_finished: Callable[[], None] | None = None,
        on_outcome: Callable[[str], None] | None = None,
        stop_timeout: float = 2.0,
    ) -> ArchitectWorkerPool:
        """``count`` workers with fresh ids sharing one engine."""
        return cls(
            [
                ArchitectWorker(
                    database,
                    engine,
                    validator,
                    worker_id=new_worker_id(index),
                    lease_seconds=lease_seconds,
                    poll_interval=poll_interval,
                    on_finished=on_finished,
                    on_outcome=on_outcome,
                )
                for index in range(count)
            ],
            stop_timeout=stop_timeout,
        )

    def start(self) -> None:
        """Starts every worker."""
        for worker in self.workers:
            worker.start()

    def database_answered(self) -> None:
        """The database answers again: workers backing off from failures look at once."""
        for worker in self.workers:
            worker.database_answered()

    def stop(self, timeout: float | None = None) -> None:
        """Stops every worker within one shared ``timeout`` (default: the pool's stop timeout).

        Every worker is signalled first and all are waited for against the same deadline;
        the jobs of those still busy then are handed back all at once, one thread each, so
        stopping takes the same time whatever the number of workers.
        """
        timeout = self._stop_timeout if timeout is None else min(timeout, self._stop_timeout)
        # Idle workers end at once when signalled: wait that moment even with no time to spare.
        deadline = time.monotonic() + max(timeout, IDLE_STOP_SECONDS)
        for worker in self.workers:
            worker.signal_stop()
        for worker in self.workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        handing_back = [
            threading.Thread(target=worker.stop, args=(0.0,), name=f"hand-back-{worker.worker_id}")
            for worker in self.workers
        ]
        for thread in handing_back:
            thread.start()
        for thread in handing_back:
            thread.join(max(0.0, deadline - time.monotonic()) + HAND_BACK_SECONDS)
