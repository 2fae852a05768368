"""SimulationService servicer tests through grpcio-testing on a real SQLite database."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2
from simulation.v1 import config_pb2, scenario_pb2, simulation_pb2
from simulation.v1 import config_service_pb2 as cpb
from simulation.v1 import scenario_service_pb2 as scpb
from simulation.v1 import simulation_service_pb2 as spb

from service.app import simulation_writes as simulation_steps
from service.architect import BuiltinArchitectEngine
from service.architect.jobs import ArchitectOperations
from service.architect.worker import ArchitectWorker
from service.domain import errors
from service.domain.validation import ConfigValidator
from tests.unit.simulation_api import (
    Status,
    create_with_config,
    events_of,
    get_config,
    get_simulation,
    kinds,
    make_harness,
    run_to,
    valid_config,
)


@pytest.fixture
def api(database, principals):
    return make_harness(database)


def scenario(api, who, name="Folder"):
    outcome = api.call(
        "CreateScenario",
        scpb.CreateScenarioRequest(scenario=scenario_pb2.Scenario(display_name=name)),
        who,
    )
    assert outcome.ok, outcome.details
    return outcome.response.scenario


def count_of(api, who, scenario_id) -> int:
    outcome = api.call("GetScenario", scpb.GetScenarioRequest(scenario_id=scenario_id), who)
    return outcome.response.scenario.simulation_count


def list_names(api, who, **fields) -> list[str]:
    outcome = api.call("ListSimulations", spb.ListSimulationsRequest(**fields), who)
    assert outcome.ok, (outcome.details, outcome.violations)
    return [s.name for s in outcome.response.simulations]


def patch(api, who, simulation, paths, **values):
    message = simulation_pb2.Simulation(id=simulation.id, **values)
    return api.call(
        "UpdateSimulation",
        spb.UpdateSimulationRequest(
            simulation=message, update_mask=field_mask_pb2.FieldMask(paths=paths)
        ),
        who,
    )


# -- CreateSimulation and GetSimulation ----------------------------------------------------------


def test_create_simulation_is_unimplemented_without_an_architect(api, principals):
    outcome = api.call(
        "CreateSimulation",
        spb.CreateSimulationRequest(simulation=simulation_pb2.Simulation(name="x", prompt="p")),
        principals["alice"],
    )
    assert outcome.code == grpc.StatusCode.UNIMPLEMENTED


def test_create_simulation_delegates_to_the_architect(database, principals):
    class FakeArchitect:
        def create_simulation(self, principal, request, *, wait_timeout=None):
            api_ = make_harness(database)
            made = create_with_config(api_, principal, request.simulation.name)
            return database.run(lambda uow: uow.simulations.get(principal.tenant_id, made.id))

    api = make_harness(database, architect=FakeArchitect())
    outcome = api.call(
        "CreateSimulation",
        spb.CreateSimulationRequest(simulation=simulation_pb2.Simulation(name="Gen", prompt="p")),
        principals["alice"],
    )
    assert outcome.ok and outcome.response.simulation.name == "Gen"


def test_get_returns_the_simulation_with_server_fields(api, principals):
    sim = create_with_config(api, principals["alice"], "One")
    fetched = get_simulation(api, principals["alice"], sim.id)
    assert fetched.id == sim.id and fetched.etag == sim.etag
    assert fetched.create_time.seconds > 0 and fetched.update_time.seconds > 0


def test_get_without_an_id_is_invalid(api, principals):
    outcome = api.call("GetSimulation", spb.GetSimulationRequest(), principals["alice"])
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT


# -- ListSimulations -----------------------------------------------------------------------------


def test_list_filters_by_scenario_status_name_and_labels(api, principals):
    alice = principals["alice"]
    folder = scenario(api, alice)
    create_with_config(api, alice, "alpha one", scenario_id=folder.id, labels={"env": "dev"})
    running = create_with_config(api, alice, "beta two", labels={"env": "prod"})
    create_with_config(api, alice, "gamma", labels={"team": "x"})
    run_to(api, alice, running.id, "RUNNING")
    create_with_config(api, principals["bob"], "alpha one")
    assert list_names(api, alice, filter=f'scenario_id = "{folder.id}"') == ["alpha one"]
    assert list_names(api, alice, filter="status = RUNNING") == ["beta two"]
    assert list_names(api, alice, filter="status = RUNNING AND status = FAILED") == []
    assert list_names(api, alice, filter='name = "gamma"') == ["gamma"]
    assert list_names(api, alice, filter='name : "ONE"') == ["alpha one"]
    assert list_names(api, alice, filter='labels.env = "prod"') == ["beta two"]
    assert list_names(api, alice, filter="labels.env : *", order_by="name desc") == [
        "beta two",
        "alpha one",
    ]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"filter": "status = SLEEPING"}, "filter"),
        ({"filter": "status : RUNNING"}, "filter"),
        ({"filter": "prompt = x"}, "filter"),
        ({"order_by": "status"}, "order_by"),
        ({"page_size": -1}, "page_size"),
        ({"page_token": "garbage"}, "page_token"),
    ],
)
def test_list_rejects_bad_arguments(api, principals, fields, field):
    outcome = api.call("ListSimulations", spb.ListSimulationsRequest(**fields), principals["alice"])
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == [field]


def test_list_pages_through_everything_once_by_name(api, principals):
    alice = principals["alice"]
    names = [f"sim-{n:02d}" for n in range(7)]
    for name in reversed(names):
        create_with_config(api, alice, name)
    seen, token = [], ""
    while True:
        outcome = api.call(
            "ListSimulations",
            spb.ListSimulationsRequest(page_size=3, order_by="name", page_token=token),
            alice,
        )
        seen += [s.name for s in outcome.response.simulations]
        token = outcome.response.next_page_token
        if not token:
            break
    assert seen == names
    first = api.call(
        "ListSimulations", spb.ListSimulationsRequest(page_size=3, order_by="name"), alice
    ).response.next_page_token
    mismatched = api.call(
        "ListSimulations",
        spb.ListSimulationsRequest(page_size=3, order_by="create_time", page_token=first),
        alice,
    )
    assert mismatched.code == grpc.StatusCode.INVALID_ARGUMENT
    foreign = api.call(
        "ListSimulations",
        spb.ListSimulationsRequest(page_size=3, order_by="name", page_token=first),
        principals["bob"],
    )
    assert foreign.code == grpc.StatusCode.INVALID_ARGUMENT


# -- UpdateSimulation ----------------------------------------------------------------------------


def test_update_renames_relabels_and_records_an_event(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice, "Old")
    outcome = patch(api, alice, sim, ["name", "labels"], name="New", labels={"k": "v"})
    assert outcome.ok, outcome.details
    updated = outcome.response.simulation
    assert updated.name == "New" and dict(updated.labels) == {"k": "v"}
    assert updated.etag != sim.etag
    event = events_of(api, alice, sim.id)[-1]
    assert kinds([event]) == ["METADATA_CHANGED"] and event.actor == alice.key_id
    assert "labels" in event.reason and "name" in event.reason


def test_update_with_a_stale_etag_is_aborted(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice, "Old")
    assert patch(api, alice, sim, ["name"], name="First").ok
    outcome = patch(api, alice, sim, ["name"], name="Second", etag=sim.etag)
    assert outcome.code == grpc.StatusCode.ABORTED
    assert get_simulation(api, alice, sim.id).name == "First"


def test_update_rejects_bad_fields_and_mask_paths(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    bad = patch(api, alice, sim, ["name", "labels"], name="", labels={"Bad": "v"})
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(bad.violations) == {"simulation.name", "simulation.labels['Bad']"}
    mask = patch(api, alice, sim, ["name", "status"], name="x")
    assert mask.code == grpc.StatusCode.INVALID_ARGUMENT
    assert mask.violations == ["update_mask.paths[1]"]
    assert get_simulation(api, alice, sim.id).etag == sim.etag


def test_moving_between_scenarios_keeps_simulation_counts_right(api, principals):
    alice = principals["alice"]
    first, second = scenario(api, alice, "First"), scenario(api, alice, "Second")
    sim = create_with_config(api, alice, scenario_id=first.id)
    other = create_with_config(api, alice, "Other", scenario_id=first.id)
    assert (count_of(api, alice, first.id), count_of(api, alice, second.id)) == (2, 0)
    assert patch(api, alice, sim, ["scenario_id"], scenario_id=second.id).ok
    assert (count_of(api, alice, first.id), count_of(api, alice, second.id)) == (1, 1)
    moved = get_simulation(api, alice, sim.id)
    assert moved.scenario_id == second.id
    assert patch(api, alice, moved, ["scenario_id"], scenario_id="").ok
    assert get_simulation(api, alice, sim.id).scenario_id == ""
    assert count_of(api, alice, second.id) == 0
    delete = api.call(
        "DeleteSimulation", spb.DeleteSimulationRequest(simulation_id=other.id), alice
    )
    assert delete.ok
    assert count_of(api, alice, first.id) == 0


def test_moving_to_a_missing_or_foreign_scenario_is_not_found(api, principals):
    alice = principals["alice"]
    foreign = scenario(api, principals["bob"], "Bob's")
    sim = create_with_config(api, alice)
    for target in ("no-such-scenario", foreign.id):
        outcome = patch(api, alice, sim, ["scenario_id"], scenario_id=target)
        assert outcome.code == grpc.StatusCode.NOT_FOUND
    assert count_of(api, principals["bob"], foreign.id) == 0


# -- DeleteSimulation ----------------------------------------------------------------------------


def test_delete_removes_the_simulation_and_its_history(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    stale = api.call(
        "DeleteSimulation", spb.DeleteSimulationRequest(simulation_id=sim.id, etag="nope"), alice
    )
    assert stale.code == grpc.StatusCode.ABORTED
    outcome = api.call(
        "DeleteSimulation", spb.DeleteSimulationRequest(simulation_id=sim.id, etag=sim.etag), alice
    )
    assert outcome.ok
    gone = api.call("GetSimulation", spb.GetSimulationRequest(simulation_id=sim.id), alice)
    assert gone.code == grpc.StatusCode.NOT_FOUND
    again = api.call("DeleteSimulation", spb.DeleteSimulationRequest(simulation_id=sim.id), alice)
    assert again.code == grpc.StatusCode.NOT_FOUND


def test_delete_while_running_is_a_failed_precondition(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    run_to(api, alice, sim.id, "RUNNING")
    outcome = api.call("DeleteSimulation", spb.DeleteSimulationRequest(simulation_id=sim.id), alice)
    assert outcome.code == grpc.StatusCode.FAILED_PRECONDITION and "RUNNING" in outcome.details


# -- the run lifecycle ---------------------------------------------------------------------------


def test_a_run_goes_from_start_to_complete_with_results_and_analysis(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    started = api.call(
        "StartRun", spb.StartRunRequest(simulation_id=sim.id, etag=sim.etag), alice
    ).response.simulation
    assert started.status == Status.RUNNING
    done = api.call(
        "CompleteRun",
        spb.CompleteRunRequest(simulation_id=sim.id, results={"winner": "alice"}),
        alice,
    ).response.simulation
    assert done.status == Status.COMPLETED and done.results["winner"] == "alice"
    analysed = api.call(
        "AttachAnalysis",
        spb.AttachAnalysisRequest(simulation_id=sim.id, analysis={"summary": "close"}),
        alice,
    ).response.simulation
    assert analysed.analysis["summary"] == "close" and analysed.results["winner"] == "alice"
    events = events_of(api, alice, sim.id)
    assert kinds(events) == [
        "CREATED",
        "CONFIG_CHANGED",
        "STATUS_CHANGED",
        "STATUS_CHANGED",
        "ANALYSIS_ATTACHED",
    ]
    assert [(e.from_status, e.to_status) for e in events[2:4]] == [
        (Status.COMPLETED_CONFIG, Status.RUNNING),
        (Status.RUNNING, Status.COMPLETED),
    ]
    assert all(e.actor == alice.key_id and e.create_time.seconds > 0 for e in events)


def test_fail_run_keeps_the_error(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    failed = run_to(api, alice, sim.id, "FAILED")
    assert failed.status == Status.FAILED
    assert (failed.last_error.reason, failed.last_error.message) == ("RUN_FAILED", "boom")
    assert "boom" in events_of(api, alice, sim.id)[-1].reason


@pytest.mark.parametrize("error", ["", " ", "x" * 4001])
def test_fail_run_needs_a_sane_error_text(api, principals, error):
    sim = create_with_config(api, principals["alice"])
    outcome = api.call(
        "FailRun", spb.FailRunRequest(simulation_id=sim.id, error=error), principals["alice"]
    )
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT and outcome.violations == ["error"]


def test_illegal_lifecycle_calls_are_failed_preconditions_naming_the_status(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    complete = api.call("CompleteRun", spb.CompleteRunRequest(simulation_id=sim.id), alice)
    assert complete.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "COMPLETED_CONFIG" in complete.details
    analysis = api.call(
        "AttachAnalysis", spb.AttachAnalysisRequest(simulation_id=sim.id, analysis={"a": 1}), alice
    )
    assert analysis.code == grpc.StatusCode.FAILED_PRECONDITION
    run_to(api, alice, sim.id, "COMPLETED")
    for method, request in [
        ("StartRun", spb.StartRunRequest(simulation_id=sim.id)),
        ("FailRun", spb.FailRunRequest(simulation_id=sim.id, error="late")),
        ("CompleteRun", spb.CompleteRunRequest(simulation_id=sim.id)),
    ]:
        outcome = api.call(method, request, alice)
        assert outcome.code == grpc.StatusCode.FAILED_PRECONDITION, method
        assert "COMPLETED" in outcome.details and outcome.reason == "ILLEGAL_TRANSITION"
    assert get_simulation(api, alice, sim.id).status == Status.COMPLETED


def test_lifecycle_calls_with_a_stale_etag_are_aborted(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    assert patch(api, alice, sim, ["name"], name="Renamed").ok
    outcome = api.call("StartRun", spb.StartRunRequest(simulation_id=sim.id, etag=sim.etag), alice)
    assert outcome.code == grpc.StatusCode.ABORTED
    assert get_simulation(api, alice, sim.id).status == Status.COMPLETED_CONFIG


def test_results_and_analysis_over_one_mebibyte_are_invalid(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    run_to(api, alice, sim.id, "RUNNING")
    huge = struct_pb2.Struct()
    huge.update({"blob": "x" * (1024 * 1024)})
    outcome = api.call(
        "CompleteRun", spb.CompleteRunRequest(simulation_id=sim.id, results=huge), alice
    )
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT and outcome.violations == ["results"]
    assert get_simulation(api, alice, sim.id).status == Status.RUNNING
    assert api.call("CompleteRun", spb.CompleteRunRequest(simulation_id=sim.id), alice).ok
    too_big = api.call(
        "AttachAnalysis", spb.AttachAnalysisRequest(simulation_id=sim.id, analysis=huge), alice
    )
    assert too_big.code == grpc.StatusCode.INVALID_ARGUMENT and too_big.violations == ["analysis"]
    missing = api.call("AttachAnalysis", spb.AttachAnalysisRequest(simulation_id=sim.id), alice)
    assert missing.code == grpc.StatusCode.INVALID_ARGUMENT and missing.violations == ["analysis"]


def test_events_are_paged_oldest_first(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    run_to(api, alice, sim.id, "COMPLETED")
    seen, token = [], ""
    while True:
        outcome = api.call(
            "ListSimulationEvents",
            spb.ListSimulationEventsRequest(simulation_id=sim.id, page_size=2, page_token=token),
            alice,
        )
        assert outcome.ok, outcome.details
        seen += list(outcome.response.events)
        token = outcome.response.next_page_token
        if not token:
            break
    assert kinds(seen) == ["CREATED", "CONFIG_CHANGED", "STATUS_CHANGED", "STATUS_CHANGED"]
    assert [e.id for e in seen] == sorted(e.id for e in seen)


def present(event: simulation_pb2.SimulationEvent) -> dict[str, object]:
    """The kind-specific fields an event carries on the wire (after a serialisation)."""
    received = simulation_pb2.SimulationEvent.FromString(event.SerializeToString())
    names = ("from_status", "to_status", "revision")
    return {name: getattr(received, name) for name in names if received.HasField(name)}


def test_an_event_carries_only_the_status_and_revision_fields_its_kind_has(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    assert patch(api, alice, sim, ["name"], name="renamed").ok
    run_to(api, alice, sim.id, "FAILED")
    edited = api.call(
        "UpdateConfig", cpb.UpdateConfigRequest(simulation_id=sim.id, config=valid_config()), alice
    )
    assert edited.ok, edited.details
    events = events_of(api, alice, sim.id)
    assert [(kind, present(e)) for kind, e in zip(kinds(events), events, strict=True)] == [
        ("CREATED", {"to_status": Status.COMPLETED_CONFIG, "revision": 1}),
        ("CONFIG_CHANGED", {"revision": 1}),
        ("METADATA_CHANGED", {}),
        ("STATUS_CHANGED", {"from_status": Status.COMPLETED_CONFIG, "to_status": Status.RUNNING}),
        ("STATUS_CHANGED", {"from_status": Status.RUNNING, "to_status": Status.FAILED}),
        ("CONFIG_CHANGED", {"revision": 2}),
        # The edit moved the failed run back, and says by which revision.
        (
            "STATUS_CHANGED",
            {"from_status": Status.FAILED, "to_status": Status.COMPLETED_CONFIG, "revision": 2},
        ),
    ]


# -- helpers used by the architect: write_revision and transition --------------------------------


def test_write_revision_lets_the_architect_finish_from_generating_config(database, principals):
    alice = principals["alice"]
    api = make_harness(database)
    sim = create_with_config(api, alice)
    now = datetime.now(UTC)

    def generate(uow):
        current = uow.simulations.get(alice.tenant_id, sim.id)
        queued = simulation_steps.transition(uow, current, "PENDING", "architect", now, "re-run")
        generating = simulation_steps.transition(uow, queued, "GENERATING_CONFIG", "architect", now)
        return simulation_steps.write_revision(
            uow,
            generating,
            config=valid_config("Generated"),
            sources=[],
            origin="ARCHITECT",
            actor="architect",
            now=now,
        )

    updated, revision = database.run(generate)
    assert (updated.status, updated.current_revision, revision.origin) == (
        "COMPLETED_CONFIG",
        2,
        "ARCHITECT",
    )
    assert get_config(api, alice, sim.id).config.title == "Generated"
    assert kinds(events_of(api, alice, sim.id))[-4:] == [
        "STATUS_CHANGED",
        "STATUS_CHANGED",
        "CONFIG_CHANGED",
        "STATUS_CHANGED",
    ]


def test_transition_refuses_an_illegal_move(database, principals):
    alice = principals["alice"]
    api = make_harness(database)
    sim = create_with_config(api, alice)

    def illegal(uow):
        current = uow.simulations.get(alice.tenant_id, sim.id)
        simulation_steps.transition(uow, current, "COMPLETED", "x", datetime.now(UTC))

    with pytest.raises(errors.FailedPrecondition, match="COMPLETED_CONFIG"):
        database.run(illegal)


# -- tenant isolation ----------------------------------------------------------------------------

FOREIGN_CALLS = {
    "GetSimulation": lambda s: spb.GetSimulationRequest(simulation_id=s.id),
    "UpdateSimulation": lambda s: spb.UpdateSimulationRequest(
        simulation=simulation_pb2.Simulation(id=s.id, name="Hijacked")
    ),
    "DeleteSimulation": lambda s: spb.DeleteSimulationRequest(simulation_id=s.id),
    "StartRun": lambda s: spb.StartRunRequest(simulation_id=s.id),
    "CompleteRun": lambda s: spb.CompleteRunRequest(simulation_id=s.id),
    "FailRun": lambda s: spb.FailRunRequest(simulation_id=s.id, error="sabotage"),
    "AttachAnalysis": lambda s: spb.AttachAnalysisRequest(simulation_id=s.id, analysis={"a": 1}),
    "ListSimulationEvents": lambda s: spb.ListSimulationEventsRequest(simulation_id=s.id),
    "RunArchitect": lambda s: cpb.RunArchitectRequest(simulation_id=s.id),
}


@pytest.fixture
def architect_api(database, principals):
    """The services with the real architect use cases, and a worker running the built-in engine.

    Calls that reach the architect (RunArchitect) then run the code a server runs: a
    tenant check missing there would queue a job on another tenant's simulation.
    """
    validator = ConfigValidator()
    worker = ArchitectWorker(
        database, BuiltinArchitectEngine(), validator, worker_id="w1", lease_seconds=30
    )
    operations = ArchitectOperations(database, validator)
    return make_harness(database, architect=operations), worker


def create_from_prompt(api, worker, who, name="Generated"):
    """A simulation made by the architect from a prompt, in COMPLETED_CONFIG at revision 1."""
    outcome = api.call(
        "CreateSimulation",
        spb.CreateSimulationRequest(
            simulation=simulation_pb2.Simulation(
                name=name, prompt="Three bakeries share one street and compete for regulars"
            ),
            parameters=config_pb2.ArchitectParameters(max_turns=8, num_agents=3, seed=5),
        ),
        who,
    )
    assert outcome.ok, (outcome.details, outcome.violations)
    assert worker.run_once(), "the architect job was not claimable"
    generated = get_simulation(api, who, outcome.response.simulation.id)
    assert generated.status == Status.COMPLETED_CONFIG, generated
    return generated


@pytest.mark.parametrize("method", sorted(FOREIGN_CALLS))
@pytest.mark.parametrize("status", ["COMPLETED_CONFIG", "RUNNING", "COMPLETED"])
def test_another_tenants_simulation_is_not_found_and_unchanged(
    architect_api, principals, method, status
):
    api, worker = architect_api
    alice, bob = principals["alice"], principals["bob"]
    # Made from a prompt, so that RunArchitect would have something to re-run.
    sim = create_from_prompt(api, worker, alice)
    if status != "COMPLETED_CONFIG":
        run_to(api, alice, sim.id, status)
    before = get_simulation(api, alice, sim.id)
    events_before = events_of(api, alice, sim.id)
    outcome = api.call(method, FOREIGN_CALLS[method](before), bob)
    assert outcome.code == grpc.StatusCode.NOT_FOUND, outcome.details
    assert not worker.run_once(), "a job was queued on another tenant's simulation"
    assert get_simulation(api, alice, sim.id) == before
    assert events_of(api, alice, sim.id) == events_before
    assert get_config(api, alice, sim.id).revision == 1


def test_list_never_shows_another_tenants_simulations(api, principals):
    create_with_config(api, principals["alice"], "Mine")
    assert list_names(api, principals["bob"]) == []
    assert list_names(api, principals["alice"]) == ["Mine"]


# -- review fixes: AIP-134 masks, single-line names, unfiled simulations -------------------------


def test_an_empty_mask_changes_only_the_fields_the_request_sets(api, principals):
    alice = principals["alice"]
    folder = scenario(api, alice)
    sim = create_with_config(api, alice, "Old", scenario_id=folder.id, labels={"env": "dev"})

    # PATCH /v1/simulations/ID {"name": "renamed"}
    outcome = patch(api, alice, sim, [], name="renamed")

    assert outcome.ok, outcome.details
    updated = outcome.response.simulation
    assert updated.name == "renamed"
    assert dict(updated.labels) == {"env": "dev"} and updated.scenario_id == folder.id
    assert list(events_of(api, alice, sim.id)[-1].details["fields"]) == ["name"]


def test_an_empty_mask_over_a_request_that_sets_nothing_is_invalid(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice, "Kept", labels={"env": "dev"})
    events_before = events_of(api, alice, sim.id)

    # PATCH /v1/simulations/ID {"nmae": "renamed"}: the gateway drops the misspelt field
    outcome = patch(api, alice, sim, [])

    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == ["update_mask"]
    assert outcome.reason == "UPDATE_MASK_EMPTY"
    assert events_of(api, alice, sim.id) == events_before


def test_a_star_mask_replaces_every_field_and_clears_the_empty_ones(api, principals):
    alice = principals["alice"]
    folder = scenario(api, alice)
    sim = create_with_config(api, alice, "Old", scenario_id=folder.id, labels={"env": "dev"})

    outcome = patch(api, alice, sim, ["*"], name="renamed")

    assert outcome.ok, outcome.details
    updated = outcome.response.simulation
    assert (updated.name, dict(updated.labels), updated.scenario_id) == ("renamed", {}, "")
    assert count_of(api, alice, folder.id) == 0


def test_an_update_of_other_fields_is_not_blocked_by_the_stored_name(api, principals, database):
    alice = principals["alice"]
    sim = create_with_config(api, alice, "Legacy")

    def store_legacy_name(uow):
        # A name stored before names had to be single lines.
        stored = uow.simulations.get(alice.tenant_id, sim.id)
        uow.simulations.update(
            dataclasses.replace(stored, name="Legacy "), expected_etag=stored.etag
        )

    database.run(store_legacy_name)

    outcome = patch(api, alice, sim, [], labels={"k": "v"})

    assert outcome.ok, outcome.details
    assert outcome.response.simulation.name == "Legacy "


@pytest.mark.parametrize("name", ["line\nbreak", "bell\u0007", "\u200bzero width", "trailing "])
def test_a_name_must_be_a_single_trimmed_line(api, principals, name):
    alice = principals["alice"]
    created = api.call(
        "CreateSimulationWithConfig",
        cpb.CreateSimulationWithConfigRequest(
            simulation=simulation_pb2.Simulation(name=name), config=valid_config()
        ),
        alice,
    )
    assert created.code == grpc.StatusCode.INVALID_ARGUMENT
    assert created.violations == ["simulation.name"]

    sim = create_with_config(api, alice, "Fine")
    renamed = patch(api, alice, sim, ["name"], name=name)
    assert renamed.code == grpc.StatusCode.INVALID_ARGUMENT
    assert renamed.violations == ["simulation.name"]


def test_list_with_an_empty_scenario_id_lists_the_unfiled_simulations(api, principals):
    alice = principals["alice"]
    folder = scenario(api, alice)
    create_with_config(api, alice, "filed", scenario_id=folder.id)
    create_with_config(api, alice, "loose one")
    create_with_config(api, alice, "loose two", labels={"env": "dev"})
    create_with_config(api, principals["bob"], "bob's loose")

    assert list_names(api, alice, filter='scenario_id = ""', order_by="name") == [
        "loose one",
        "loose two",
    ]
    assert list_names(api, alice, filter='scenario_id = "" AND labels.env = "dev"') == ["loose two"]
    # Conditions are ANDed: two different scenarios match nothing.
    assert list_names(api, alice, filter=f'scenario_id = "" AND scenario_id = "{folder.id}"') == []


def test_a_listed_simulation_has_every_field_a_fetched_one_has_sources_included(api, principals):
    alice = principals["alice"]
    source = config_pb2.Source(uri="catalogue://personas/mayor", title="Mayor", snippet="careful")
    with_sources = create_with_config(api, alice, "Sourced", sources=[source])
    without = create_with_config(api, alice, "Plain")

    outcome = api.call("ListSimulations", spb.ListSimulationsRequest(), alice)
    assert outcome.ok, outcome.details
    listed = {s.id: s for s in outcome.response.simulations}

    for simulation in (with_sources, without):
        assert listed[simulation.id] == get_simulation(api, alice, simulation.id)
    assert [s.uri for s in listed[with_sources.id].sources] == [source.uri]


def test_every_write_that_returns_a_simulation_answers_with_the_sources_get_returns(
    database, principals
):
    """Updates, the run lifecycle, analysis, a queued architect run and batch moves alike."""
    alice = principals["alice"]
    api = make_harness(
        database, architect=ArchitectOperations(database, ConfigValidator(), max_attempts=3)
    )
    source = config_pb2.Source(uri="catalogue://personas/mayor", title="Mayor", snippet="careful")
    ran = create_with_config(api, alice, "Ran", sources=[source], prompt="A town hall")
    failed = create_with_config(api, alice, "Failed", sources=[source])
    folder = scenario(api, alice)
    calls = [
        (
            "UpdateSimulation",
            spb.UpdateSimulationRequest(
                simulation=simulation_pb2.Simulation(id=ran.id, name="Renamed"),
                update_mask=field_mask_pb2.FieldMask(paths=["name"]),
            ),
        ),
        ("StartRun", spb.StartRunRequest(simulation_id=ran.id)),
        ("CompleteRun", spb.CompleteRunRequest(simulation_id=ran.id, results={"score": 3})),
        ("AttachAnalysis", spb.AttachAnalysisRequest(simulation_id=ran.id, analysis={"ok": 1})),
        # Queued, not waited for: the current revision and its sources stay until the job ends.
        ("RunArchitect", cpb.RunArchitectRequest(simulation_id=ran.id)),
        ("StartRun", spb.StartRunRequest(simulation_id=failed.id)),
        ("FailRun", spb.FailRunRequest(simulation_id=failed.id, error="boom")),
    ]

    for method, request in calls:
        outcome = api.call(method, request, alice)
        assert outcome.ok, (method, outcome.details)
        answered = outcome.response.simulation
        assert [s.uri for s in answered.sources] == [source.uri], method
        assert answered == get_simulation(api, alice, answered.id), method
    moved = api.call(
        "BatchMoveSimulations",
        spb.BatchMoveSimulationsRequest(simulation_ids=[failed.id, ran.id], scenario_id=folder.id),
        alice,
    )
    assert moved.ok, moved.details
    assert [s.sources for s in moved.response.simulations] == [
        get_simulation(api, alice, failed.id).sources,
        get_simulation(api, alice, ran.id).sources,
    ]
    assert all([s.uri for s in m.sources] == [source.uri] for m in moved.response.simulations)


def test_create_with_config_answers_with_the_sources_get_returns(api, principals):
    alice = principals["alice"]
    source = config_pb2.Source(uri="catalogue://personas/ada", title="Ada")

    created = create_with_config(api, alice, "Answered", sources=[source])

    assert created == get_simulation(api, alice, created.id)
    assert [s.uri for s in created.sources] == [source.uri]
