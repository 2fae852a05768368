"""Contract tests of ArchitectJobRepository: the durable, leased job queue.

Claiming works across tenants, so these tests start from empty tables.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from storage import NotFound

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def sim(clean_database, make):
    return make.simulation(make.tenant())


def test_added_job_reads_back_unchanged(clean_database, make, sim):
    job = make.job(sim, create_time=T0, update_time=T0)

    assert clean_database.run(lambda uow: uow.jobs.get(job.id)) == job
    assert (job.state, job.attempts, job.max_attempts, job.lease_owner) == ("QUEUED", 0, 3, None)


def test_getting_a_missing_job_raises_not_found(clean_database):
    with pytest.raises(NotFound):
        clean_database.run(lambda uow: uow.jobs.get("missing"))


def test_find_active_returns_a_queued_or_running_job_of_that_tenant_only(clean_database, make, sim):
    db = clean_database
    make.job(sim, state="SUCCEEDED")
    assert db.run(lambda uow: uow.jobs.find_active(sim.tenant_id, sim.id)) is None

    job = make.job(sim)

    assert db.run(lambda uow: uow.jobs.find_active(sim.tenant_id, sim.id)) == job
    assert db.run(lambda uow: uow.jobs.find_active(make.tenant(), sim.id)) is None


def test_claim_next_leases_the_oldest_queued_job(clean_database, make, sim):
    db = clean_database
    newer = make.job(sim, create_time=T0 + timedelta(seconds=1))
    older = make.job(sim, create_time=T0)
    now = T0 + timedelta(minutes=1)

    claimed = db.run(lambda uow: uow.jobs.claim_next("worker-a", now, 30))

    assert claimed.id == older.id
    assert claimed.state == "RUNNING"
    assert claimed.lease_owner == "worker-a"
    assert claimed.lease_expire_time == now + timedelta(seconds=30)
    assert (claimed.attempts, claimed.update_time) == (1, now)
    assert db.run(lambda uow: uow.jobs.claim_next("worker-b", now, 30)).id == newer.id
    assert db.run(lambda uow: uow.jobs.claim_next("worker-c", now, 30)) is None


def test_a_tenant_with_no_job_running_is_served_before_one_with_a_backlog(clean_database, make):
    db = clean_database
    busy_sim, quiet_sim = make.simulation(make.tenant()), make.simulation(make.tenant())
    backlog = [make.job(busy_sim, create_time=T0 + timedelta(seconds=i)) for i in range(5)]
    late = make.job(quiet_sim, create_time=T0 + timedelta(minutes=1))
    now = T0 + timedelta(minutes=2)

    first = db.run(lambda uow: uow.jobs.claim_next("worker-a", now, 30))
    second = db.run(lambda uow: uow.jobs.claim_next("worker-b", now, 30))
    third = db.run(lambda uow: uow.jobs.claim_next("worker-c", now, 30))

    # Both tenants had nothing running: the oldest job went first. Then the busy tenant had a
    # job running and the quiet one none: the quiet tenant's job came next, backlog or not.
    assert [first.id, second.id, third.id] == [backlog[0].id, late.id, backlog[1].id]


def test_a_job_whose_lease_expired_is_reclaimed_by_another_worker(clean_database, make, sim):
    db = clean_database
    job = make.job(sim, create_time=T0)
    db.run(lambda uow: uow.jobs.claim_next("dead-worker", T0, 10))

    too_early = db.run(lambda uow: uow.jobs.claim_next("worker-b", T0 + timedelta(seconds=9), 10))
    reclaimed = db.run(lambda uow: uow.jobs.claim_next("worker-b", T0 + timedelta(seconds=11), 10))

    assert too_early is None
    assert (reclaimed.id, reclaimed.lease_owner, reclaimed.attempts) == (job.id, "worker-b", 2)
    finished_by_dead = db.run(
        lambda uow: uow.jobs.finish(job.id, "dead-worker", state="SUCCEEDED", error=None, now=T0)
    )
    assert finished_by_dead is False


def test_a_job_out_of_attempts_is_not_claimed_but_listed_as_exhausted(clean_database, make, sim):
    db = clean_database
    job = make.job(sim, create_time=T0, max_attempts=2)
    db.run(lambda uow: uow.jobs.claim_next("w1", T0, 10))
    db.run(lambda uow: uow.jobs.claim_next("w2", T0 + timedelta(seconds=20), 10))
    after_lease = T0 + timedelta(seconds=40)

    assert db.run(lambda uow: uow.jobs.claim_next("w3", after_lease, 10)) is None
    exhausted = db.run(lambda uow: uow.jobs.list_exhausted(after_lease))
    assert [(j.id, j.attempts) for j in exhausted] == [(job.id, 2)]
    assert db.run(lambda uow: uow.jobs.list_exhausted(T0 + timedelta(seconds=25))) == []


def test_renew_lease_succeeds_only_for_the_current_owner(clean_database, make, sim):
    db = clean_database
    job = make.job(sim, create_time=T0)
    db.run(lambda uow: uow.jobs.claim_next("owner", T0, 10))
    until = T0 + timedelta(minutes=5)

    assert db.run(lambda uow: uow.jobs.renew_lease(job.id, "owner", until)) is True
    assert db.run(lambda uow: uow.jobs.renew_lease(job.id, "intruder", until)) is False
    assert db.run(lambda uow: uow.jobs.get(job.id)).lease_expire_time == until
    assert db.run(lambda uow: uow.jobs.claim_next("other", T0 + timedelta(seconds=60), 10)) is None


def test_finish_records_the_outcome_once(clean_database, make, sim):
    db = clean_database
    job = make.job(sim, create_time=T0)
    db.run(lambda uow: uow.jobs.claim_next("owner", T0, 10))
    done = T0 + timedelta(seconds=3)

    first = db.run(
        lambda uow: uow.jobs.finish(job.id, "owner", state="FAILED", error="invalid", now=done)
    )
    second = db.run(
        lambda uow: uow.jobs.finish(job.id, "owner", state="SUCCEEDED", error=None, now=done)
    )

    assert (first, second) == (True, False)
    stored = db.run(lambda uow: uow.jobs.get(job.id))
    assert (stored.state, stored.error, stored.finish_time) == ("FAILED", "invalid", done)
    assert db.run(lambda uow: uow.jobs.renew_lease(job.id, "owner", done)) is False
    assert db.run(lambda uow: uow.jobs.find_active(sim.tenant_id, sim.id)) is None


def test_concurrent_claimers_never_get_the_same_job(clean_database, make, sim):
    db = clean_database
    jobs = {make.job(sim, create_time=T0 + timedelta(milliseconds=i)).id for i in range(8)}
    workers = 6
    barrier = threading.Barrier(workers)
    claims: list[str] = []
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            for _ in range(len(jobs) + 1):  # no worker can claim more jobs than there are
                job = db.run(lambda uow: uow.jobs.claim_next(f"w{index}", T0, 60))
                if job is None:
                    return
                claims.append(job.id)
            raise AssertionError(f"worker {index} claimed more jobs than there are")
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(claims) == sorted(jobs)


def test_the_oldest_active_job_is_found_first_whatever_the_ids(clean_database, make, sim):
    # Ids sort the other way round from creation, so only create_time gives this order.
    older = make.job(sim, id="zzzz-older", create_time=T0)
    make.job(sim, id="aaaa-newer", create_time=T0 + timedelta(seconds=1))

    found = clean_database.run(lambda uow: uow.jobs.find_active(sim.tenant_id, sim.id))

    assert found.id == older.id


def test_exhausted_jobs_are_listed_oldest_first_whatever_the_ids(clean_database, make, sim):
    spent = {"state": "RUNNING", "attempts": 3, "max_attempts": 3, "lease_expire_time": T0}
    older = make.job(sim, id="zzzz-older", create_time=T0, **spent)
    newer = make.job(sim, id="aaaa-newer", create_time=T0 + timedelta(seconds=1), **spent)

    listed = clean_database.run(lambda uow: uow.jobs.list_exhausted(T0 + timedelta(minutes=1)))

    assert [j.id for j in listed] == [older.id, newer.id]


def test_a_lease_ending_exactly_now_has_not_expired_yet(clean_database, make, sim):
    running = {"state": "RUNNING", "lease_owner": "worker-a", "lease_expire_time": T0}
    make.job(sim, attempts=1, **running)
    make.job(sim, attempts=3, max_attempts=3, **running)

    assert clean_database.run(lambda uow: uow.jobs.claim_next("worker-b", T0, 30)) is None
    assert clean_database.run(lambda uow: uow.jobs.list_exhausted(T0)) == []


def test_only_running_jobs_out_of_attempts_are_exhausted(clean_database, make, sim):
    expired = {"lease_owner": "worker-a", "lease_expire_time": T0}
    make.job(sim, state="SUCCEEDED", attempts=3, max_attempts=3, **expired)
    make.job(sim, state="RUNNING", attempts=1, max_attempts=3, **expired)
    spent = make.job(sim, state="RUNNING", attempts=3, max_attempts=3, **expired)

    listed = clean_database.run(lambda uow: uow.jobs.list_exhausted(T0 + timedelta(minutes=1)))

    assert [j.id for j in listed] == [spent.id]


def test_jobs_created_together_are_claimed_in_id_order(clean_database, make, sim):
    second = make.job(sim, id="job-b", create_time=T0)
    first = make.job(sim, id="job-a", create_time=T0)
    now = T0 + timedelta(minutes=1)

    claimed = [clean_database.run(lambda uow: uow.jobs.claim_next("w", now, 30)).id for _ in "ab"]

    assert claimed == [first.id, second.id]


def test_among_jobs_created_together_the_lowest_id_is_found_and_listed_first(
    clean_database, make, sim
):
    spent = {"state": "RUNNING", "attempts": 3, "max_attempts": 3, "lease_expire_time": T0}
    make.job(sim, id="job-b", create_time=T0, **spent)
    make.job(sim, id="job-a", create_time=T0, **spent)
    make.job(sim, id="job-d", create_time=T0)
    make.job(sim, id="job-c", create_time=T0)

    active = clean_database.run(lambda uow: uow.jobs.find_active(sim.tenant_id, sim.id))
    listed = clean_database.run(lambda uow: uow.jobs.list_exhausted(T0 + timedelta(minutes=1)))

    assert active.id == "job-a"
    assert [j.id for j in listed] == ["job-a", "job-b"]


def test_the_queue_summary_counts_active_jobs_and_dates_the_oldest_queued(
    clean_database, make, sim
):
    db = clean_database
    assert db.read(lambda uow: uow.jobs.queue_summary()) == ({"QUEUED": 0, "RUNNING": 0}, None)
    make.job(sim, create_time=T0 + timedelta(seconds=5))
    make.job(sim, create_time=T0)
    make.job(sim, create_time=T0 - timedelta(hours=1), state="RUNNING")
    make.job(sim, create_time=T0 - timedelta(days=1), state="SUCCEEDED")
    make.job(sim, create_time=T0 - timedelta(days=1), state="FAILED")

    counts, oldest = db.read(lambda uow: uow.jobs.queue_summary())

    assert counts == {"QUEUED": 2, "RUNNING": 1}
    assert oldest == T0


@pytest.mark.parametrize(
    ("leased", "claimed_first"),
    [
        # A job finished before its lease ran out is not running: the tenants are even, and
        # the busy tenant's older queued job goes first.
        ({"state": "SUCCEEDED", "lease_expire_time": T0 + timedelta(minutes=10)}, "older"),
        # Nor is one whose worker died: its lease expired, and it is the oldest claimable job.
        ({"state": "RUNNING", "lease_expire_time": T0 + timedelta(seconds=59)}, "earlier"),
        # A lease that ends this very moment still holds: the other tenant goes first.
        ({"state": "RUNNING", "lease_expire_time": T0 + timedelta(minutes=1)}, "later"),
    ],
)
def test_only_a_job_holding_its_lease_counts_as_its_tenants_running_job(
    clean_database, make, leased, claimed_first
):
    db = clean_database
    busy_sim, quiet_sim = make.simulation(make.tenant()), make.simulation(make.tenant())
    jobs = {
        "earlier": make.job(
            busy_sim, lease_owner="worker-0", create_time=T0 - timedelta(hours=1), **leased
        ),
        "older": make.job(busy_sim, create_time=T0),
        "later": make.job(quiet_sim, create_time=T0 + timedelta(seconds=1)),
    }
    now = T0 + timedelta(minutes=1)

    claimed = db.run(lambda uow: uow.jobs.claim_next("worker-a", now, 30))

    assert claimed.id == jobs[claimed_first].id
