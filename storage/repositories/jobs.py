"""Architect jobs: a durable work queue with leases, shared by every server replica."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from storage.driver_errors import UniqueRule
from storage.errors import NotFound
from storage.records import ArchitectJob
from storage.repositories.base import RecordTable, SqlRepository
from storage.schema import architect_jobs

_table = architect_jobs
QUEUED, RUNNING = "QUEUED", "RUNNING"
# The record is the column list; claims and outcomes update the row by their own statements.
COLUMNS = RecordTable(ArchitectJob, _table, keys=("id",))


class ArchitectJobRepository(SqlRepository):
    """Queues architect jobs and hands them to workers under a lease.

    A worker that dies keeps its lease until it expires; then another worker reclaims the job,
    up to ``max_attempts`` attempts in all.
    """

    def add(self, job: ArchitectJob) -> ArchitectJob:
        """Queue a job; NotFound when its simulation does not exist."""
        self._write(
            COLUMNS.insert,
            COLUMNS.insert_values(job),
            entity="architect_job",
            uniques=(UniqueRule("architect_jobs_pkey", ("id",), "id", job.id),),
            parent=("simulation", job.simulation_id),
        )
        # Nothing in a new job is computed by the database: it is stored as given.
        return job

    def get(self, job_id: str) -> ArchitectJob:
        """Return the job by id (workers run across tenants); NotFound otherwise."""
        row = self._execute(select(_table).where(_table.c.id == job_id)).first()
        if row is None:
            raise NotFound("architect_job", job_id)
        return ArchitectJob(**row._mapping)

    def find_active(self, tenant_id: str, simulation_id: str) -> ArchitectJob | None:
        """Return the simulation's QUEUED or RUNNING job, if any."""
        row = self._execute(
            select(_table)
            .where(
                _table.c.tenant_id == tenant_id,
                _table.c.simulation_id == simulation_id,
                _table.c.state.in_((QUEUED, RUNNING)),
            )
            .order_by(_table.c.create_time, _table.c.id)
        ).first()
        return None if row is None else ArchitectJob(**row._mapping)

    def claim_next(
        self, worker_id: str, now: datetime, lease_seconds: float
    ) -> ArchitectJob | None:
        """Lease the next claimable job to ``worker_id`` and return it, or None.

        Next: the oldest job of the tenant with the fewest jobs running right now, so that
        one tenant's hundred queued jobs do not hold up another tenant's one (each tenant
        gets a worker in turn); within a tenant, oldest first. Claimable: QUEUED, or RUNNING with an expired lease (its worker died), and attempts
        left. On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets concurrent claimers pass each other
        without waiting; SQLite ignores it, and its BEGIN IMMEDIATE write lock serialises
        claimers instead. Either way no two claimers get the same job.
        """
        claimable = and_(
            or_(
                _table.c.state == QUEUED,
                and_(_table.c.state == RUNNING, _table.c.lease_expire_time < now),
            ),
            _table.c.attempts < _table.c.max_attempts,
        )
        running = _table.alias("running")
        tenant_running = (
            select(func.count())
            .select_from(running)
            .where(
                running.c.tenant_id == _table.c.tenant_id,
                running.c.state == RUNNING,
                running.c.lease_expire_time >= now,
            )
            .scalar_subquery()
        )
        job_id = self._execute(
            select(_table.c.id)
            .where(claimable)
            .order_by(tenant_running, _table.c.create_time, _table.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).scalar()
        if job_id is None:
            return None
        self._execute(
            update(_table)
            .where(_table.c.id == job_id)
            .values(
                state=RUNNING,
                lease_owner=worker_id,
                lease_expire_time=now + timedelta(seconds=lease_seconds),
                attempts=_table.c.attempts + 1,
                update_time=now,
            )
        )
        return self.get(job_id)

    def queue_summary(self) -> tuple[dict[str, int], datetime | None]:
        """Counts of QUEUED and RUNNING jobs, and when the oldest QUEUED one was queued.

        Finished jobs are not counted: they only grow; the index on (state, create_time)
        keeps this cheap however many there are.
        """
        counts = dict.fromkeys((QUEUED, RUNNING), 0)
        rows = self._execute(
            select(_table.c.state, func.count(), func.min(_table.c.create_time))
            .where(_table.c.state.in_((QUEUED, RUNNING)))
            .group_by(_table.c.state)
        )
        oldest = None
        row: Any
        for row in rows:
            state, count, first = row
            counts[state] = count
            if state == QUEUED:
                oldest = first
        return counts, oldest

    def list_exhausted(self, now: datetime) -> list[ArchitectJob]:
        """Return RUNNING jobs whose lease expired with no attempts left (to be failed)."""
        rows = self._execute(
            select(_table)
            .where(
                _table.c.state == RUNNING,
                _table.c.lease_expire_time < now,
                _table.c.attempts >= _table.c.max_attempts,
            )
            .order_by(_table.c.create_time, _table.c.id)
        )
        return [ArchitectJob(**row._mapping) for row in rows]

    def renew_lease(self, job_id: str, worker_id: str, until: datetime) -> bool:
        """Extend the lease if ``worker_id`` still holds it; False when it was taken over."""
        result = self._execute(
            update(_table)
            .where(
                _table.c.id == job_id,
                _table.c.lease_owner == worker_id,
                _table.c.state == RUNNING,
            )
            .values(lease_expire_time=until)
        )
        return result.rowcount == 1

    def finish(
        self, job_id: str, worker_id: str, *, state: str, error: str | None, now: datetime
    ) -> bool:
        """Record the outcome if ``worker_id`` still holds the RUNNING job; False otherwise.

        The owner check stops a worker whose lease was taken over from finishing the job twice.
        """
        result = self._execute(
            update(_table)
            .where(
                _table.c.id == job_id,
                _table.c.lease_owner == worker_id,
                _table.c.state == RUNNING,
            )
            .values(state=state, error=error, finish_time=now, update_time=now)
        )
        return result.rowcount == 1
