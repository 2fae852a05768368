"""Periodic runs: one claim per task and interval, shared by every server process."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert, update

from storage.driver_errors import UniqueRule
from storage.errors import AlreadyExists
from storage.repositories.base import SqlRepository
from storage.schema import periodic_runs


class PeriodicRunRepository(SqlRepository):
    """Decides which server runs a periodic task this time (not tenant data)."""

    def claim(self, name: str, now: datetime, interval: timedelta) -> bool:
        """True when the task ``name`` is due and this caller now owns its run.

        The next run becomes due ``interval`` after ``now``; of callers racing for one run,
        exactly one gets True once its transaction commits.
        """
        result = self._execute(
            update(periodic_runs)
            .where(periodic_runs.c.name == name, periodic_runs.c.next_run_time <= now)
            .values(next_run_time=now + interval)
        )
        if result.rowcount:
            return True
        try:
            # The first run of a task nobody has run yet.
            self._execute_guarded(
                insert(periodic_runs).values(name=name, next_run_time=now + interval),
                entity="periodic_run",
                uniques=(UniqueRule("periodic_runs_pkey", ("name",), "name", name),),
            )
        except AlreadyExists:
            return False
        return True
