"""Periodic runs: a task is claimed once per interval, however many servers ask."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

from storage import Unavailable


def test_a_task_is_due_once_per_interval(database, make):
    name = f"task-{uuid.uuid4().hex[:8]}"
    interval = timedelta(minutes=5)
    claim = lambda now: database.run(lambda uow: uow.periodic_runs.claim(name, now, interval))  # noqa: E731

    assert claim(make.now) is True
    assert claim(make.now + timedelta(minutes=4)) is False
    assert claim(make.now + timedelta(minutes=5)) is True
    assert claim(make.now + timedelta(minutes=6)) is False


def test_of_servers_racing_for_a_run_exactly_one_wins(database, make):
    name = f"task-{uuid.uuid4().hex[:8]}"
    start = threading.Barrier(6)
    results: list[bool] = []

    def claim() -> None:
        start.wait()
        try:
            won = database.run(
                lambda uow: uow.periodic_runs.claim(name, make.now, timedelta(minutes=5))
            )
        except Unavailable:
            won = False  # a contended SQLite write lock: this server simply skips its turn
        results.append(won)

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * 5 + [True]


def test_claiming_one_task_leaves_the_others_due(database, make):
    first, second = (f"task-{uuid.uuid4().hex[:8]}" for _ in range(2))
    interval = timedelta(minutes=5)

    def claim(name, now):
        return database.run(lambda uow: uow.periodic_runs.claim(name, now, interval))

    assert (claim(first, make.now), claim(second, make.now)) == (True, True)
    due = make.now + interval
    assert claim(first, due) is True
    assert claim(second, due) is True
