"""Architect jobs on a real SQLite database: queuing, the worker, and its failure paths.

The use cases and the worker run for real; only the engine is swapped where a test needs one
that fails or lies (fakes subclass the ``ArchitectEngine`` ABC).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import grpc
import pytest
from simulation.v1 import config_pb2, config_service_pb2, simulation_pb2, simulation_service_pb2

import storage
from service.app.simulation_writes import SimulationInput
from service.app.simulations import SimulationOperations
from service.architect import (
    ArchitectEngine,
    ArchitectError,
    BuiltinArchitectEngine,
    GeneratedConfig,
)
from service.architect.jobs import (
    ArchitectOperations,
    ArchitectRerun,
    JobWaiter,
    PromptedSimulation,
    wait_budget,
)
from service.architect.worker import ArchitectWorker, ArchitectWorkerPool
from service.domain import errors
from service.domain.config_codec import config_from_document, parameters_from_document
from service.domain.validation import ConfigValidator
from tests.harness import raises_status
from tests.unit.simulation_api import make_harness

PROMPT = "A city council, three landlords and a tenants' union negotiate a rent cap"
PARAMS = config_pb2.ArchitectParameters(max_turns=12, num_agents=4, seed=7, temperature=0.4)

# -- fakes and helpers ---------------------------------------------------------------------------


class InvalidEngine(ArchitectEngine):
    """Returns a config with a duplicate agent id and an event after max_turns."""

    name = "invalid"

    def generate(self, prompt, parameters, *, simulation_id="", request_id=""):
        config = config_pb2.SimulationConfig(title="Broken", model="m", max_turns=3)
        config.agents.add(id="dup", name="A")
        config.agents.add(id="dup", name="B")
        config.events.add(turn=9, description="too late", agent_ids=["dup"])
        return GeneratedConfig(config=config, sources=[])


class FailingEngine(ArchitectEngine):
    """Raises the given ArchitectError and counts its calls."""

    name = "failing"

    def __init__(self, error: ArchitectError):
        self.error = error
        self.calls = 0

    def generate(self, prompt, parameters, *, simulation_id="", request_id=""):
        self.calls += 1
        raise self.error


class GatedEngine(ArchitectEngine):
    """The built-in engine, but each call waits until the test opens the gate."""

    name = "gated"

    def __init__(self):
        self.entered = threading.Event()
        self.gate = threading.Event()
        self._inner = BuiltinArchitectEngine()

    def generate(self, prompt, parameters, *, simulation_id="", request_id=""):
        self.entered.set()
        assert self.gate.wait(10), "the test never opened the gate"
        return self._inner.generate(prompt, parameters)


@pytest.fixture
def validator():
    return ConfigValidator()


@pytest.fixture
def ops(database, validator):
    return ArchitectOperations(database, validator, max_attempts=3)


@pytest.fixture
def make_worker(database, validator):
    def make(engine=None, *, lease_seconds=30.0, name="w1"):
        return ArchitectWorker(
            database,
            engine or BuiltinArchitectEngine(),
            validator,
            worker_id=name,
            lease_seconds=lease_seconds,
            poll_interval=0.01,
        )

    return make


@pytest.fixture
def alice(principals):
    return principals["alice"]


def create_request(prompt=PROMPT, params=PARAMS, **fields) -> PromptedSimulation:
    name = fields.pop("name", "Rent cap")
    labels = fields.pop("labels", {})
    scenario_id = fields.pop("scenario_id", "")
    return PromptedSimulation(
        simulation=SimulationInput(
            name=name, prompt=prompt, labels=labels, scenario_id=scenario_id
        ),
        parameters=params,
        **fields,
    )


def rerun_request(simulation_id, params=PARAMS, **fields) -> ArchitectRerun:
    return ArchitectRerun(simulation_id=simulation_id, parameters=params, **fields)


def create_rpc(
    prompt=PROMPT, params=PARAMS, **fields
) -> simulation_service_pb2.CreateSimulationRequest:
    """The CreateSimulation request message, for calls through the servicer."""
    name = fields.pop("name", "Rent cap")
    return simulation_service_pb2.CreateSimulationRequest(
        simulation=simulation_pb2.Simulation(name=name, prompt=prompt),
        parameters=params,
        **fields,
    )


def rerun_rpc(simulation_id, params=PARAMS, **fields) -> config_service_pb2.RunArchitectRequest:
    """The RunArchitect request message, for calls through the servicer."""
    return config_service_pb2.RunArchitectRequest(
        simulation_id=simulation_id, parameters=params, **fields
    )


def jobs_of(database, simulation: storage.Simulation) -> list[storage.ArchitectJob]:
    """The simulation's jobs, found through the ids its ARCHITECT_QUEUED events record."""
    ids = [
        e.details["job_id"] for e in events_of(database, simulation) if e.kind == "ARCHITECT_QUEUED"
    ]
    return [database.run(lambda uow, job_id=job_id: uow.jobs.get(job_id)) for job_id in ids]


def reload(database, simulation: storage.Simulation) -> storage.Simulation:
    return database.run(lambda uow: uow.simulations.get(simulation.tenant_id, simulation.id))


def events_of(database, simulation) -> list[storage.SimulationEvent]:
    return database.run(
        lambda uow: uow.events.list(simulation.tenant_id, simulation.id, after_id=None, limit=100)
    )


def revisions_of(database, simulation) -> list[storage.ConfigRevision]:
    return database.run(
        lambda uow: uow.revisions.list(
            simulation.tenant_id, simulation.id, before_revision=None, limit=100
        )
    )


def count_simulations(database, principal) -> int:
    return len(
        database.run(
            lambda uow: uow.simulations.list(
                principal.tenant_id, storage.SimulationQuery(limit=100)
            )
        )
    )


# -- validation before queuing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (config_pb2.ArchitectParameters(max_turns=1001), "parameters.max_turns"),
        (config_pb2.ArchitectParameters(max_turns=-1), "parameters.max_turns"),
        (config_pb2.ArchitectParameters(num_agents=501), "parameters.num_agents"),
        (config_pb2.ArchitectParameters(temperature=2.5), "parameters.temperature"),
        (config_pb2.ArchitectParameters(instructions="x" * 4001), "parameters.instructions"),
        (config_pb2.ArchitectParameters(model="bad model!"), "parameters.model"),
    ],
)
def test_bad_parameters_are_invalid_argument_naming_the_field_and_queue_nothing(
    ops, database, alice, params, field
):
    with pytest.raises(errors.InvalidArgument) as raised:
        ops.create_simulation(alice, create_request(params=params))

    assert [v.field for v in raised.value.violations] == [field]
    assert count_simulations(database, alice) == 0


def test_an_empty_prompt_is_invalid_argument_on_simulation_prompt(ops, database, alice):
    with pytest.raises(errors.InvalidArgument) as raised:
        ops.create_simulation(alice, create_request(prompt="  "))

    assert [v.field for v in raised.value.violations] == ["simulation.prompt"]
    assert count_simulations(database, alice) == 0


def test_every_bad_field_is_reported_at_once(ops, alice):
    request = create_request(
        prompt="p" * 10_001,
        name="",
        labels={"Bad": "x"},
        params=config_pb2.ArchitectParameters(max_turns=5000, num_agents=-2),
        request_id="r" * 101,
    )
    with pytest.raises(errors.InvalidArgument) as raised:
        ops.create_simulation(alice, request)

    assert sorted(v.field for v in raised.value.violations) == sorted(
        [
            "simulation.name",
            "simulation.prompt",
            "simulation.labels['Bad']",
            "parameters.max_turns",
            "parameters.num_agents",
            "request_id",
        ]
    )


def test_an_unknown_scenario_is_not_found(ops, database, alice):
    with raises_status(grpc.StatusCode.NOT_FOUND):
        ops.create_simulation(alice, create_request(scenario_id="no-such-scenario"))
    assert count_simulations(database, alice) == 0


def test_rerun_with_bad_parameters_queues_nothing(ops, database, alice, make_worker):
    simulation = ops.create_simulation(alice, create_request())
    make_worker().run_once()

    with pytest.raises(errors.InvalidArgument) as raised:
        ops.run_architect(
            alice, rerun_request(simulation.id, config_pb2.ArchitectParameters(temperature=-1))
        )

    assert [v.field for v in raised.value.violations] == ["parameters.temperature"]
    assert reload(database, simulation).status == "COMPLETED_CONFIG"
    assert len(jobs_of(database, simulation)) == 1


# -- queuing -------------------------------------------------------------------------------------


def test_create_stores_a_pending_simulation_its_events_and_a_queued_job(ops, database, alice):
    simulation = ops.create_simulation(alice, create_request(labels={"team": "policy"}))

    assert simulation.status == "PENDING" and simulation.current_revision == 0
    assert simulation.labels == {"team": "policy"}
    assert parameters_from_document(simulation.architect_parameters) == PARAMS
    assert [e.kind for e in events_of(database, simulation)] == ["CREATED", "ARCHITECT_QUEUED"]
    [job] = jobs_of(database, simulation)
    assert (job.state, job.attempts, job.max_attempts) == ("QUEUED", 0, 3)
    assert (job.prompt, job.actor) == (PROMPT, alice.key_id)


def test_the_same_request_id_returns_the_first_simulation_and_queues_once(ops, database, alice):
    first = ops.create_simulation(alice, create_request(request_id="create-1"))
    second = ops.create_simulation(alice, create_request(request_id="create-1"))

    assert first.id == second.id
    assert len(jobs_of(database, first)) == 1
    assert count_simulations(database, alice) == 1


def test_validate_only_returns_the_would_be_simulation_and_stores_nothing(ops, database, alice):
    simulation = ops.create_simulation(alice, create_request(validate_only=True, wait=True))

    assert simulation.id == "" and simulation.status == "PENDING"
    assert count_simulations(database, alice) == 0


def test_rerun_while_a_job_is_queued_is_failed_precondition(ops, alice):
    simulation = ops.create_simulation(alice, create_request())

    with pytest.raises(errors.FailedPrecondition) as raised:
        ops.run_architect(alice, rerun_request(simulation.id))
    assert raised.value.reason == "ARCHITECT_JOB_IN_PROGRESS"


def test_rerun_while_generating_is_failed_precondition(ops, alice, make_worker):
    simulation = ops.create_simulation(alice, create_request())
    claimed = make_worker().claim()
    assert claimed is not None and claimed[1].status == "GENERATING_CONFIG"

    with pytest.raises(errors.FailedPrecondition):
        ops.run_architect(alice, rerun_request(simulation.id))


def test_rerun_while_running_is_failed_precondition(ops, database, alice, make_worker):
    simulation = ops.create_simulation(alice, create_request())
    make_worker().run_once()
    SimulationOperations(database).start_run(alice, simulation.id)

    with pytest.raises(errors.FailedPrecondition) as raised:
        ops.run_architect(alice, rerun_request(simulation.id))
    assert raised.value.reason == "SIMULATION_BUSY"


def test_rerun_with_a_stale_etag_is_aborted(ops, database, alice, make_worker):
    simulation = ops.create_simulation(alice, create_request())
    make_worker().run_once()

    with raises_status(grpc.StatusCode.ABORTED):
        ops.run_architect(alice, rerun_request(simulation.id, etag=simulation.etag))
    current = reload(database, simulation)
    assert ops.run_architect(alice, rerun_request(simulation.id, etag=current.etag)).status == (
        "PENDING"
    )


def test_rerun_of_another_tenants_simulation_is_not_found(ops, principals):
    simulation = ops.create_simulation(principals["alice"], create_request())

    with raises_status(grpc.StatusCode.NOT_FOUND):
        ops.run_architect(principals["bob"], rerun_request(simulation.id))


# -- the worker ----------------------------------------------------------------------------------


def test_a_finished_job_writes_revision_one_from_the_architect(ops, database, alice, make_worker):
    simulation = ops.create_simulation(alice, create_request())

    assert make_worker().run_once() is True

    done = reload(database, simulation)
    assert done.status == "COMPLETED_CONFIG" and done.current_revision == 1
    [revision] = revisions_of(database, simulation)
    config = config_from_document(revision.config)
    assert (revision.origin, revision.actor) == ("ARCHITECT", alice.key_id)
    assert config.max_turns == 12 and len(config.agents) == 4
    assert config.seed == 7 and config.temperature == pytest.approx(0.4)
    assert revision.sources, "the personas used become the sources"
    assert ConfigValidator().validate(config) == []
    [job] = jobs_of(database, simulation)
    assert (job.state, job.attempts, job.error) == ("SUCCEEDED", 1, None)
    transitions = [
        (e.from_status, e.to_status) for e in events_of(database, simulation) if e.to_status
    ]
    assert ("PENDING", "GENERATING_CONFIG") in transitions
    assert ("GENERATING_CONFIG", "COMPLETED_CONFIG") in transitions


def test_rerun_records_the_parameters_and_clears_earlier_results_and_analysis(
    ops, database, alice, make_worker
):
    worker = make_worker()
    simulations = SimulationOperations(database)
    simulation = ops.create_simulation(alice, create_request())
    worker.run_once()
    simulations.start_run(alice, simulation.id)
    simulations.complete_run(alice, simulation.id, results={"score": 1})
    simulations.attach_analysis(alice, simulation.id, analysis={"summary": "ok"})

    new_params = config_pb2.ArchitectParameters(max_turns=30, num_agents=6, seed=99)
    queued = ops.run_architect(alice, rerun_request(simulation.id, new_params))
    assert queued.status == "PENDING"
    assert worker.run_once() is True

    done = reload(database, simulation)
    assert done.status == "COMPLETED_CONFIG" and done.current_revision == 2
    assert done.results is None and done.analysis is None and done.last_error is None
    assert parameters_from_document(done.architect_parameters) == new_params
    newest = revisions_of(database, simulation)[0]
    assert (newest.revision, newest.origin) == (2, "ARCHITECT")
    config = config_from_document(newest.config)
    assert config.max_turns == 30 and len(config.agents) == 6 and config.seed == 99


def test_invalid_engine_output_fails_the_simulation_and_keeps_the_violations(
    ops, database, alice, make_worker
):
    simulation = ops.create_simulation(alice, create_request())

    make_worker(InvalidEngine()).run_once()

    failed = reload(database, simulation)
    assert failed.status == "FAILED" and failed.current_revision == 0
    assert failed.last_error["reason"] == "ARCHITECT_OUTPUT_INVALID"
    fields = [v["field"] for v in failed.last_error["violations"]]
    assert "agents[1].id" in fields and "events[0].turn" in fields
    assert revisions_of(database, simulation) == []
    [event] = [e for e in events_of(database, simulation) if e.to_status == "FAILED"]
    assert event.kind == "STATUS_CHANGED" and event.actor == "architect"
    assert [v["field"] for v in event.details["violations"]] == fields
    [job] = jobs_of(database, simulation)
    assert job.state == "FAILED" and job.error.startswith("ARCHITECT_OUTPUT_INVALID")


def test_a_failed_simulation_can_be_rerun(ops, database, alice, make_worker):
    simulation = ops.create_simulation(alice, create_request())
    make_worker(InvalidEngine()).run_once()

    ops.run_architect(alice, rerun_request(simulation.id))
    make_worker().run_once()

    done = reload(database, simulation)
    assert done.status == "COMPLETED_CONFIG" and done.current_revision == 1
    assert done.last_error is None


def test_a_non_retryable_engine_error_fails_at_once(ops, database, alice, make_worker):
    engine = FailingEngine(ArchitectError("BACKEND_REJECTED", "no thanks"))
    simulation = ops.create_simulation(alice, create_request())

    make_worker(engine).run_once()

    failed = reload(database, simulation)
    assert failed.status == "FAILED"
    assert failed.last_error["reason"] == "ARCHITECT_BACKEND_REJECTED"
    assert engine.calls == 1
    assert jobs_of(database, simulation)[0].state == "FAILED"


def test_a_retryable_error_is_retried_up_to_max_attempts_then_fails_with_the_reason(
    ops, database, alice, make_worker
):
    engine = FailingEngine(ArchitectError("BACKEND_UNAVAILABLE", "down", retryable=True))
    worker = make_worker(engine, lease_seconds=0.05)
    simulation = ops.create_simulation(alice, create_request())

    assert worker.run_once() is True
    [job] = jobs_of(database, simulation)
    assert (job.state, job.attempts) == ("RUNNING", 1)
    assert reload(database, simulation).status == "GENERATING_CONFIG"

    # Each retry waits for the 0.05 s lease to run out; the bound only stops a broken loop.
    deadline = time.monotonic() + 30
    while engine.calls < 3 and time.monotonic() < deadline:
        worker.run_once() or time.sleep(0.02)

    failed = reload(database, simulation)
    assert engine.calls == 3
    assert failed.status == "FAILED"
    assert failed.last_error["reason"] == "ARCHITECT_BACKEND_UNAVAILABLE"
    assert "3 job attempt" in failed.last_error["message"]
    # The engine's own text ("down") may name internal hosts: it stays on the job row.
    assert "down" not in failed.last_error["message"]
    [job] = jobs_of(database, simulation)
    assert (job.state, job.attempts) == ("FAILED", 3)
    assert "down" in job.error


def test_a_job_whose_worker_died_is_reclaimed_after_its_lease(ops, database, alice, make_worker):
    simulation = ops.create_simulation(alice, create_request())
    dead = make_worker(lease_seconds=0.05, name="dead")
    assert dead.claim() is not None  # ...and never finishes

    time.sleep(0.1)  # the lease runs out: time itself is what this test is about
    assert make_worker(name="survivor").run_once() is True

    done = reload(database, simulation)
    assert done.status == "COMPLETED_CONFIG" and done.current_revision == 1
    [job] = jobs_of(database, simulation)
    assert (job.state, job.attempts, job.lease_owner) == ("SUCCEEDED", 2, "survivor")


def test_a_job_abandoned_on_its_last_attempt_fails_the_simulation(
    database, validator, alice, make_worker
):
    ops = ArchitectOperations(database, validator, max_attempts=1)
    simulation = ops.create_simulation(alice, create_request())
    assert make_worker(lease_seconds=0.05, name="dead").claim() is not None
    time.sleep(0.1)  # the lease runs out

    survivor = make_worker(name="survivor")
    assert survivor.fail_exhausted() == 1
    assert survivor.fail_exhausted() == 0

    failed = reload(database, simulation)
    assert failed.status == "FAILED"
    assert failed.last_error["reason"] == "ARCHITECT_ABANDONED"
    assert jobs_of(database, simulation)[0].state == "FAILED"


def test_a_worker_that_lost_its_lease_drops_its_result(ops, database, alice, make_worker):
    simulation = ops.create_simulation(alice, create_request())
    slow = make_worker(lease_seconds=0.05, name="slow")
    job, claimed = slow.claim()
    time.sleep(0.1)  # the lease runs out
    assert make_worker(name="fast").run_once() is True

    slow.process(job, claimed)  # finishes late: must not write a second revision

    assert [r.revision for r in revisions_of(database, simulation)] == [1]
    [job] = jobs_of(database, simulation)
    assert (job.state, job.lease_owner) == ("SUCCEEDED", "fast")


def test_a_job_of_a_deleted_simulation_is_dropped(ops, database, alice, make_worker):
    simulation = ops.create_simulation(alice, create_request())
    # Deleting a simulation deletes its jobs with it (cascade).
    database.run(lambda uow: uow.simulations.delete(alice.tenant_id, simulation.id))

    assert make_worker().run_once() is False


def test_a_job_of_a_simulation_soft_deleted_with_its_scenario_is_failed(
    ops, database, alice, make_worker
):
    from service.app.scenarios import ScenarioInput, ScenarioOperations

    scenarios = ScenarioOperations(database)
    scenario = scenarios.create(alice, ScenarioInput(display_name="Housing"))
    simulation = ops.create_simulation(alice, create_request(scenario_id=scenario.id))
    # DeleteScenario refuses while the job is queued; soft-delete underneath it, as a scenario
    # deleted before that rule (or by hand) would have left it.
    database.run(
        lambda uow: uow.simulations.soft_delete_in_scenario(
            alice.tenant_id, scenario.id, datetime.now(UTC)
        )
    )

    assert make_worker().run_once() is False

    job = database.run(lambda uow: uow.jobs.find_active(alice.tenant_id, simulation.id))
    assert job is None


# -- outcomes reported for the metrics -----------------------------------------------------------


def test_each_finished_job_is_reported_once_with_its_outcome(database, validator, alice):
    from service.app.scenarios import ScenarioInput, ScenarioOperations

    ops = ArchitectOperations(database, validator, max_attempts=1)
    reported: list[str] = []

    def worker(engine=None, *, lease_seconds=30.0, name="w1"):
        return ArchitectWorker(
            database,
            engine or BuiltinArchitectEngine(),
            validator,
            worker_id=name,
            lease_seconds=lease_seconds,
            on_outcome=reported.append,
        )

    ops.create_simulation(alice, create_request())
    assert worker().run_once() is True
    ops.create_simulation(alice, create_request())
    assert worker(InvalidEngine()).run_once() is True
    ops.create_simulation(alice, create_request())
    rejected = FailingEngine(ArchitectError("BACKEND_REJECTED", "no thanks"))
    assert worker(rejected).run_once() is True
    ops.create_simulation(alice, create_request())
    assert worker(lease_seconds=0.05, name="dead").claim() is not None
    time.sleep(0.1)  # the dead worker's lease runs out on its only attempt
    assert worker(name="survivor").fail_exhausted() == 1
    scenario = ScenarioOperations(database).create(alice, ScenarioInput(display_name="Gone"))
    ops.create_simulation(alice, create_request(scenario_id=scenario.id))
    database.run(
        lambda uow: uow.simulations.soft_delete_in_scenario(
            alice.tenant_id, scenario.id, datetime.now(UTC)
        )
    )
    assert worker().run_once() is False
    # A dead worker's claim and an empty queue report nothing.
    assert worker().run_once() is False

    assert reported == ["succeeded", "invalid_output", "failed", "abandoned", "superseded"]


def test_a_retried_attempt_is_no_outcome_until_the_job_ends(ops, database, alice, validator):
    reported: list[str] = []
    engine = FailingEngine(ArchitectError("BACKEND_UNAVAILABLE", "down", retryable=True))
    worker = ArchitectWorker(
        database,
        engine,
        validator,
        worker_id="w1",
        lease_seconds=0.05,
        on_outcome=reported.append,
    )
    ops.create_simulation(alice, create_request())

    assert worker.run_once() is True
    assert reported == []
    deadline = time.monotonic() + 30
    while engine.calls < 3 and time.monotonic() < deadline:
        worker.run_once() or time.sleep(0.02)

    assert reported == ["failed"]


# -- determinism ---------------------------------------------------------------------------------


def _generated_config(ops, database, alice, worker, params) -> config_pb2.SimulationConfig:
    simulation = ops.create_simulation(alice, create_request(params=params))
    worker.run_once()
    [revision] = revisions_of(database, simulation)
    return config_from_document(revision.config)


def test_the_same_prompt_and_parameters_give_the_same_config(ops, database, alice, make_worker):
    worker = make_worker()
    first = _generated_config(ops, database, alice, worker, PARAMS)
    second = _generated_config(ops, database, alice, worker, PARAMS)
    other_seed = config_pb2.ArchitectParameters()
    other_seed.CopyFrom(PARAMS)
    other_seed.seed = 8
    different = _generated_config(ops, database, alice, worker, other_seed)

    assert first == second
    assert different != first


# -- waiting -------------------------------------------------------------------------------------


def test_wait_returns_the_finished_simulation(database, validator, alice):
    waiter = JobWaiter(database, poll_interval=0.05)
    ops = ArchitectOperations(database, validator, max_attempts=3, waiter=waiter)
    pool = ArchitectWorkerPool.create(
        database,
        BuiltinArchitectEngine(),
        validator,
        count=2,
        lease_seconds=5,
        poll_interval=0.02,
        on_finished=waiter.notify,
    )
    pool.start()
    try:
        done = ops.create_simulation(alice, create_request(wait=True), wait_timeout=10)
        assert done.status == "COMPLETED_CONFIG" and done.current_revision == 1

        again = ops.run_architect(alice, rerun_request(done.id, wait=True), wait_timeout=10)
        assert again.status == "COMPLETED_CONFIG" and again.current_revision == 2
    finally:
        pool.stop()


def test_wait_gives_up_at_the_deadline_and_returns_the_pending_simulation(ops, alice):
    started = time.monotonic()
    simulation = ops.create_simulation(alice, create_request(wait=True), wait_timeout=2)
    elapsed = time.monotonic() - started

    assert simulation.status == "PENDING"
    # It waited its whole budget (2 s less a 0.25 s margin), and not the 30 s default.
    assert 1.75 <= elapsed < 20


def test_the_wait_budget_is_bounded():
    assert wait_budget(None) == 30
    assert wait_budget(10_000) == 300
    assert 0 < wait_budget(5) < 5
    assert wait_budget(0.1) == 0


def test_stopping_the_pool_does_not_wait_for_a_slow_engine(ops, database, alice, validator):
    engine = GatedEngine()
    pool = ArchitectWorkerPool.create(
        database,
        engine,
        validator,
        count=1,
        lease_seconds=30,
        poll_interval=0.02,
        stop_timeout=0.2,
    )
    simulation = ops.create_simulation(alice, create_request())
    pool.start()
    assert engine.entered.wait(5)

    started = time.monotonic()
    pool.stop()
    # The engine is held for up to 10 s; a stop that waited for it would take that long.
    assert time.monotonic() - started < 8

    # The job was handed back: its lease no longer blocks another worker.
    [job] = jobs_of(database, simulation)
    assert job.state == "RUNNING" and job.lease_expire_time <= datetime.now(UTC)
    engine.gate.set()
    pool.workers[0].join(5)


class CountingGatedEngine(GatedEngine):
    """A gated engine that also tells how many calls are inside it."""

    def __init__(self):
        super().__init__()
        self.inside = threading.Semaphore(0)

    def generate(self, prompt, parameters, *, simulation_id="", request_id=""):
        self.inside.release()
        return super().generate(prompt, parameters)


def test_stopping_many_busy_workers_takes_one_stop_timeout_not_one_each(
    ops, database, alice, validator
):
    engine = CountingGatedEngine()
    pool = ArchitectWorkerPool.create(
        database, engine, validator, count=4, lease_seconds=30, poll_interval=0.02, stop_timeout=1
    )
    simulations = [ops.create_simulation(alice, create_request()) for _ in range(4)]
    pool.start()
    for _ in range(4):
        assert engine.inside.acquire(timeout=10)

    started = time.monotonic()
    pool.stop()
    elapsed = time.monotonic() - started

    # One after another, four busy workers took a stop timeout each (4 s here).
    assert elapsed < 3, f"stopping took {elapsed:.1f} s"
    for simulation in simulations:
        [job] = jobs_of(database, simulation)
        assert job.state == "RUNNING" and job.lease_expire_time <= datetime.now(UTC)
    engine.gate.set()
    for worker in pool.workers:
        worker.join(5)


def test_a_worker_backing_off_from_failures_resumes_as_soon_as_the_database_answers(
    ops, database, alice, validator
):
    worker = ArchitectWorker(
        database,
        BuiltinArchitectEngine(),
        validator,
        worker_id="w-backoff",
        lease_seconds=30,
        poll_interval=5,
    )
    broken = threading.Event()
    broken.set()
    claim = worker.claim

    def claim_while_broken():
        if broken.is_set():
            broken.clear()
            raise storage.Unavailable("the database is restarting")
        return claim()

    worker.claim = claim_while_broken
    worker.start()
    try:
        # The first claim fails: the worker now backs off for 2 polls (10 s).
        while broken.is_set():
            time.sleep(0.01)  # waiting for the failure to happen, not ordering threads
        simulation = ops.create_simulation(alice, create_request())
        deadline = time.monotonic() + 4
        while reload(database, simulation).status != "COMPLETED_CONFIG":
            assert time.monotonic() < deadline, "the worker kept backing off"
            # As the health probe does each time the database answers.
            worker.database_answered()
            time.sleep(0.02)
    finally:
        worker.stop()


# -- through the servicers (grpcio-testing) ------------------------------------------------------


@pytest.fixture
def api(database, principals, ops):
    return make_harness(database, architect=ops)


def test_create_simulation_rpc_answers_pending_and_names_bad_fields(api, alice):
    outcome = api.call("CreateSimulation", create_rpc(), alice)
    assert outcome.ok, outcome.details
    assert outcome.response.simulation.status == simulation_pb2.Simulation.PENDING
    assert outcome.response.simulation.architect_parameters == PARAMS

    bad = api.call(
        "CreateSimulation",
        create_rpc(params=config_pb2.ArchitectParameters(num_agents=900)),
        alice,
    )
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
    assert bad.violations == ["parameters.num_agents"]


def test_run_architect_rpc_is_failed_precondition_while_a_job_is_queued(api, alice):
    created = api.call("CreateSimulation", create_rpc(), alice).response.simulation

    outcome = api.call("RunArchitect", rerun_rpc(created.id), alice)

    assert outcome.code == grpc.StatusCode.FAILED_PRECONDITION
    assert outcome.reason == "ARCHITECT_JOB_IN_PROGRESS"


def test_wait_on_a_real_server_answers_before_the_calls_deadline(database, tmp_path):
    from simulation.v1 import simulation_service_pb2_grpc

    from service.app import tenants
    from service.server import create_server
    from service.settings import Settings

    # No workers: the job stays queued, so only the deadline can end the wait.
    settings = Settings(port=0, data_dir=tmp_path, architect_workers=0)
    server, port = create_server(settings, database=database)
    server.start()
    try:
        tenant = tenants.new_tenant(database, "deadline")
        key = tenants.issue_key(database, tenant.id).secret
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = simulation_service_pb2_grpc.SimulationServiceStub(channel)
            started = time.monotonic()
            response = stub.CreateSimulation(
                create_rpc(wait=True), metadata=(("x-api-key", key),), timeout=1.5
            )
            elapsed = time.monotonic() - started
    finally:
        server.stop(0)

    # It answered (a missed deadline would have raised DEADLINE_EXCEEDED), still PENDING,
    # after waiting most of the budget rather than returning at once.
    assert response.simulation.status == simulation_pb2.Simulation.PENDING
    assert elapsed > 0.8


# -- review fixes --------------------------------------------------------------------------------


class BadSourcesEngine(ArchitectEngine):
    """The built-in engine's config, with sources that break the limits."""

    name = "bad-sources"

    def generate(self, prompt, parameters, *, simulation_id="", request_id=""):
        generated = BuiltinArchitectEngine().generate(prompt, parameters)
        return GeneratedConfig(
            config=generated.config,
            sources=[config_pb2.Source(uri=""), config_pb2.Source(uri="u", snippet="s" * 2001)],
        )


def _with_config(database, alice, name="Imported", **fields) -> storage.Simulation:
    from service.app.configs import ConfigOperations
    from service.app.simulation_writes import SimulationInput
    from tests.unit.simulation_api import valid_config

    request_id = fields.pop("request_id", "")
    return ConfigOperations(database).create_with_config(
        alice, SimulationInput(name=name, **fields), valid_config(), request_id=request_id
    )


def test_create_records_a_created_event_to_pending(ops, database, alice):
    simulation = ops.create_simulation(alice, create_request())

    created = events_of(database, simulation)[0]

    assert (created.kind, created.from_status, created.to_status) == ("CREATED", None, "PENDING")


@pytest.mark.parametrize(
    "changed",
    [{"name": "Other name"}, {"prompt": "Another prompt"}, {"labels": {"team": "x"}}],
)
def test_a_request_id_reused_with_other_arguments_is_invalid_and_queues_nothing(
    ops, database, alice, changed
):
    first = ops.create_simulation(alice, create_request(request_id="create-1"))

    with pytest.raises(errors.InvalidArgument) as raised:
        ops.create_simulation(alice, create_request(request_id="create-1", **changed))

    assert [v.field for v in raised.value.violations] == ["request_id"]
    assert raised.value.reason == "REQUEST_ID_REUSED"
    assert "was already used for a different request" in raised.value.violations[0].description
    assert len(jobs_of(database, first)) == 1 and count_simulations(database, alice) == 1


def test_a_request_id_of_create_with_config_cannot_be_reused_by_create_simulation(
    ops, database, alice
):
    # Same name, prompt and labels: only the RPC differs.
    _with_config(database, alice, "Rent cap", prompt=PROMPT, request_id="shared")

    with pytest.raises(errors.InvalidArgument) as raised:
        ops.create_simulation(alice, create_request(request_id="shared"))

    assert raised.value.reason == "REQUEST_ID_REUSED"
    assert count_simulations(database, alice) == 1


def test_a_request_id_of_create_simulation_cannot_be_reused_with_a_config(
    ops, database, alice, make_worker
):
    ops.create_simulation(alice, create_request(request_id="shared"))
    for _ in range(2):  # before and after the architect wrote revision 1
        with pytest.raises(errors.InvalidArgument) as raised:
            _with_config(database, alice, "Rent cap", prompt=PROMPT, request_id="shared")
        assert raised.value.reason == "REQUEST_ID_REUSED"
        make_worker().run_once()
    assert count_simulations(database, alice) == 1


def test_an_id_collision_is_already_exists_on_both_create_paths(ops, database, alice, monkeypatch):
    import uuid

    existing = ops.create_simulation(alice, create_request())
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(existing.id))

    with raises_status(grpc.StatusCode.ALREADY_EXISTS):
        ops.create_simulation(alice, create_request(name="Another"))
    with raises_status(grpc.StatusCode.ALREADY_EXISTS):
        _with_config(database, alice, "Another")


def test_architect_output_with_invalid_sources_fails_the_simulation(
    ops, database, alice, make_worker
):
    simulation = ops.create_simulation(alice, create_request())

    make_worker(BadSourcesEngine()).run_once()

    failed = reload(database, simulation)
    assert failed.status == "FAILED" and failed.current_revision == 0
    assert failed.last_error["reason"] == "ARCHITECT_OUTPUT_INVALID"
    assert [v["field"] for v in failed.last_error["violations"]] == [
        "sources[0].uri",
        "sources[1].snippet",
    ]
    assert revisions_of(database, simulation) == []


def test_a_rerun_without_parameters_reuses_the_last_ones(ops, database, alice, make_worker):
    simulation = ops.create_simulation(alice, create_request())
    make_worker().run_once()

    queued = ops.run_architect(alice, ArchitectRerun(simulation_id=simulation.id))

    assert parameters_from_document(queued.architect_parameters) == PARAMS
    newest_job = jobs_of(database, simulation)[-1]
    assert parameters_from_document(newest_job.parameters) == PARAMS
    make_worker().run_once()
    newest = revisions_of(database, simulation)[0]
    assert config_from_document(newest.config).max_turns == PARAMS.max_turns


def test_a_rerun_with_empty_parameters_uses_the_engine_defaults(ops, database, alice, make_worker):
    simulation = ops.create_simulation(alice, create_request())
    make_worker().run_once()

    queued = ops.run_architect(
        alice, rerun_request(simulation.id, params=config_pb2.ArchitectParameters())
    )

    assert parameters_from_document(queued.architect_parameters) == config_pb2.ArchitectParameters()


def test_a_simulation_created_with_a_config_and_no_prompt_cannot_run_the_architect(
    ops, database, alice
):
    simulation = _with_config(database, alice)

    with pytest.raises(errors.FailedPrecondition) as raised:
        ops.run_architect(alice, rerun_request(simulation.id))

    assert raised.value.reason == "NO_PROMPT"
    assert "created with a config have no prompt" in raised.value.message
    assert jobs_of(database, simulation) == []
    assert reload(database, simulation).status == "COMPLETED_CONFIG"


def test_a_simulation_created_with_a_config_and_a_prompt_reruns_with_engine_defaults(
    ops, database, alice
):
    simulation = _with_config(database, alice, prompt=PROMPT)

    queued = ops.run_architect(alice, ArchitectRerun(simulation_id=simulation.id))

    assert queued.status == "PENDING"
    assert parameters_from_document(queued.architect_parameters) == config_pb2.ArchitectParameters()


def test_wait_replies_carry_the_sources_get_simulation_shows(database, validator, principals):
    from tests.unit.simulation_api import get_simulation

    alice = principals["alice"]
    waiter = JobWaiter(database, poll_interval=0.05)
    ops = ArchitectOperations(database, validator, max_attempts=3, waiter=waiter)
    api = make_harness(database, architect=ops)
    pool = ArchitectWorkerPool.create(
        database,
        BuiltinArchitectEngine(),
        validator,
        count=1,
        lease_seconds=5,
        poll_interval=0.02,
        on_finished=waiter.notify,
    )
    pool.start()
    try:
        created = api.call("CreateSimulation", create_rpc(wait=True), alice)
        assert created.ok, created.details
        simulation = created.response.simulation
        assert simulation.status == simulation_pb2.Simulation.COMPLETED_CONFIG
        assert simulation.sources
        assert simulation == get_simulation(api, alice, simulation.id)

        other = config_pb2.ArchitectParameters(num_agents=6, seed=3)
        rerun = api.call("RunArchitect", rerun_rpc(simulation.id, other, wait=True), alice)
        assert rerun.ok, rerun.details
        again = rerun.response.simulation
        assert again.config_revision == 2 and again.sources
        assert again == get_simulation(api, alice, simulation.id)
    finally:
        pool.stop()
