"""Batch RPCs (AIP-231/233/235) through the servicers on a real SQLite database.

All or nothing, every bad item named by index, idempotent with a request id, and another
tenant's ids as NOT_FOUND for the whole batch with nothing changed.
"""

from __future__ import annotations

import grpc
import pytest
from simulation.v1 import scenario_pb2
from simulation.v1 import scenario_service_pb2 as scpb
from simulation.v1 import simulation_service_pb2 as spb

from service.app.batches import MAX_BATCH_ITEMS
from tests.unit.simulation_api import (
    create_with_config,
    events_of,
    get_simulation,
    kinds,
    make_harness,
    run_to,
)


@pytest.fixture
def api(database, principals):
    return make_harness(database)


def create_request(*names: str, request_id: str = "") -> scpb.BatchCreateScenariosRequest:
    return scpb.BatchCreateScenariosRequest(
        requests=[
            scpb.CreateScenarioRequest(scenario=scenario_pb2.Scenario(display_name=name))
            for name in names
        ],
        request_id=request_id,
    )


def batch_create(api, who, *names: str, request_id: str = ""):
    outcome = api.call("BatchCreateScenarios", create_request(*names, request_id=request_id), who)
    assert outcome.ok, (outcome.details, outcome.violations)
    return list(outcome.response.scenarios)


def scenario_names(api, who, show_deleted=False) -> list[str]:
    outcome = api.call(
        "ListScenarios",
        scpb.ListScenariosRequest(
            page_size=1000, order_by="display_name", show_deleted=show_deleted
        ),
        who,
    )
    assert outcome.ok, outcome.details
    return [s.display_name for s in outcome.response.scenarios]


def delete_request(*ids: str, force=False, request_id="") -> scpb.BatchDeleteScenariosRequest:
    return scpb.BatchDeleteScenariosRequest(
        requests=[scpb.DeleteScenarioRequest(scenario_id=i, force=force) for i in ids],
        request_id=request_id,
    )


# --- BatchCreateScenarios ------------------------------------------------------------------


def test_batch_create_stores_every_scenario_and_returns_them_in_request_order(api, principals):
    created = batch_create(api, principals["alice"], "Gamma", "Alpha", "Beta")

    assert [s.display_name for s in created] == ["Gamma", "Alpha", "Beta"]
    assert all(s.id and s.etag for s in created)
    assert scenario_names(api, principals["alice"]) == ["Alpha", "Beta", "Gamma"]


def test_batch_create_reports_every_invalid_item_by_index_and_stores_nothing(api, principals):
    names = ["ok 0", "", "ok 2", "x" * 201, "ok 4", "ok 0"]

    outcome = api.call("BatchCreateScenarios", create_request(*names), principals["alice"])

    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == [
        "requests[1].scenario.display_name",
        "requests[3].scenario.display_name",
        "requests[5].scenario.display_name",
    ]
    assert scenario_names(api, principals["alice"]) == []


def test_batch_create_refuses_request_id_or_validate_only_on_an_item(api, principals):
    outcome = api.call(
        "BatchCreateScenarios",
        scpb.BatchCreateScenariosRequest(
            requests=[
                scpb.CreateScenarioRequest(
                    scenario=scenario_pb2.Scenario(display_name=name),
                    request_id="item",
                    validate_only=True,
                )
                for name in ("A", "B")
            ]
        ),
        principals["alice"],
    )

    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == [
        "requests[0].request_id",
        "requests[0].validate_only",
        "requests[1].request_id",
        "requests[1].validate_only",
    ]


@pytest.mark.parametrize("count", [0, MAX_BATCH_ITEMS + 1])
def test_batch_create_takes_one_to_a_thousand_items(api, principals, count):
    names = [f"s{i}" for i in range(count)]

    outcome = api.call("BatchCreateScenarios", create_request(*names), principals["alice"])

    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == ["requests"]


def test_batch_create_of_a_thousand_scenarios_succeeds(api, principals):
    created = batch_create(api, principals["alice"], *[f"s{i:04d}" for i in range(1000)])

    assert len(created) == 1000
    assert len(scenario_names(api, principals["alice"])) == 1000


def test_batch_create_is_all_or_nothing_when_a_name_is_taken(api, principals):
    batch_create(api, principals["alice"], "Taken")

    outcome = api.call(
        "BatchCreateScenarios", create_request("New 1", "Taken", "New 2"), principals["alice"]
    )

    assert outcome.code == grpc.StatusCode.ALREADY_EXISTS
    assert "Taken" in outcome.details
    assert scenario_names(api, principals["alice"]) == ["Taken"]


def test_batch_create_retried_with_its_request_id_returns_the_first_scenarios(api, principals):
    first = batch_create(api, principals["alice"], "A", "B", request_id="batch-1")

    again = batch_create(api, principals["alice"], "A", "B", request_id="batch-1")

    assert [s.id for s in again] == [s.id for s in first]
    assert scenario_names(api, principals["alice"]) == ["A", "B"]


def test_batch_create_request_id_reused_for_other_items_is_refused(api, principals):
    batch_create(api, principals["alice"], "A", "B", request_id="batch-1")

    outcome = api.call(
        "BatchCreateScenarios", create_request("A", "C", request_id="batch-1"), principals["alice"]
    )

    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.reason == "REQUEST_ID_REUSED"
    assert scenario_names(api, principals["alice"]) == ["A", "B"]


def test_batch_request_ids_are_per_tenant(api, principals):
    mine = batch_create(api, principals["alice"], "A", request_id="batch-1")

    theirs = batch_create(api, principals["bob"], "A", request_id="batch-1")

    assert theirs[0].id != mine[0].id
    assert scenario_names(api, principals["bob"]) == ["A"]


# --- BatchDeleteScenarios ------------------------------------------------------------------


def test_batch_delete_soft_deletes_every_scenario_in_request_order(api, principals):
    a, b, c = batch_create(api, principals["alice"], "A", "B", "C")

    outcome = api.call("BatchDeleteScenarios", delete_request(c.id, a.id), principals["alice"])

    assert outcome.ok, outcome.details
    assert [s.id for s in outcome.response.scenarios] == [c.id, a.id]
    assert all(s.HasField("delete_time") for s in outcome.response.scenarios)
    assert scenario_names(api, principals["alice"]) == ["B"]


def test_batch_delete_with_a_missing_or_foreign_id_is_not_found_and_deletes_nothing(
    api, principals
):
    a, b = batch_create(api, principals["alice"], "A", "B")
    (theirs,) = batch_create(api, principals["bob"], "Theirs")

    for stranger in (theirs.id, "no-such-scenario"):
        outcome = api.call(
            "BatchDeleteScenarios", delete_request(a.id, stranger, b.id), principals["alice"]
        )
        assert outcome.code == grpc.StatusCode.NOT_FOUND
        assert scenario_names(api, principals["alice"]) == ["A", "B"]
    assert scenario_names(api, principals["bob"]) == ["Theirs"]


def test_batch_delete_reports_empty_and_repeated_ids_by_index(api, principals):
    (a,) = batch_create(api, principals["alice"], "A")

    outcome = api.call("BatchDeleteScenarios", delete_request(a.id, "", a.id), principals["alice"])

    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == ["requests[1].scenario_id", "requests[2].scenario_id"]
    assert scenario_names(api, principals["alice"]) == ["A"]


def test_batch_delete_checks_each_items_etag_and_force(api, principals):
    a, b = batch_create(api, principals["alice"], "A", "B")
    create_with_config(api, principals["alice"], scenario_id=b.id)

    stale = scpb.BatchDeleteScenariosRequest(
        requests=[
            scpb.DeleteScenarioRequest(scenario_id=a.id, etag="stale"),
        ]
    )
    assert api.call("BatchDeleteScenarios", stale, principals["alice"]).code == (
        grpc.StatusCode.ABORTED
    )
    not_forced = api.call("BatchDeleteScenarios", delete_request(a.id, b.id), principals["alice"])
    assert not_forced.code == grpc.StatusCode.FAILED_PRECONDITION
    assert scenario_names(api, principals["alice"]) == ["A", "B"]

    forced = api.call(
        "BatchDeleteScenarios", delete_request(a.id, b.id, force=True), principals["alice"]
    )
    assert forced.ok, forced.details
    assert scenario_names(api, principals["alice"]) == []


def test_batch_delete_retried_with_its_request_id_returns_the_deleted_scenarios(api, principals):
    a, b = batch_create(api, principals["alice"], "A", "B")
    request = delete_request(a.id, b.id, request_id="delete-1")
    first = api.call("BatchDeleteScenarios", request, principals["alice"])
    assert first.ok

    again = api.call("BatchDeleteScenarios", request, principals["alice"])

    assert again.ok, again.details
    assert list(again.response.scenarios) == list(first.response.scenarios)
    without_id = api.call("BatchDeleteScenarios", delete_request(a.id), principals["alice"])
    assert without_id.code == grpc.StatusCode.NOT_FOUND


# --- BatchGetSimulations -------------------------------------------------------------------


def test_batch_get_returns_simulations_in_the_order_asked_with_their_sources(api, principals):
    one = create_with_config(api, principals["alice"], name="one")
    two = create_with_config(api, principals["alice"], name="two")

    outcome = api.call(
        "BatchGetSimulations",
        spb.BatchGetSimulationsRequest(simulation_ids=[two.id, one.id, two.id]),
        principals["alice"],
    )

    assert outcome.ok, outcome.details
    assert [s.name for s in outcome.response.simulations] == ["two", "one", "two"]
    assert outcome.response.simulations[1] == get_simulation(api, principals["alice"], one.id)


def test_batch_get_with_another_tenants_id_is_not_found_for_the_whole_batch(api, principals):
    mine = create_with_config(api, principals["alice"])
    theirs = create_with_config(api, principals["bob"])

    outcome = api.call(
        "BatchGetSimulations",
        spb.BatchGetSimulationsRequest(simulation_ids=[mine.id, theirs.id]),
        principals["alice"],
    )

    assert outcome.code == grpc.StatusCode.NOT_FOUND
    assert outcome.response is None


def test_batch_get_reports_empty_ids_by_index_and_limits_the_count(api, principals):
    outcome = api.call(
        "BatchGetSimulations",
        spb.BatchGetSimulationsRequest(simulation_ids=["a", ""]),
        principals["alice"],
    )
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == ["simulation_ids[1]"]

    too_many = api.call(
        "BatchGetSimulations",
        spb.BatchGetSimulationsRequest(simulation_ids=["a"] * (MAX_BATCH_ITEMS + 1)),
        principals["alice"],
    )
    assert too_many.code == grpc.StatusCode.INVALID_ARGUMENT
    assert too_many.violations == ["simulation_ids"]


# --- BatchMoveSimulations ------------------------------------------------------------------


def move(api, who, ids, scenario_id="", request_id=""):
    return api.call(
        "BatchMoveSimulations",
        spb.BatchMoveSimulationsRequest(
            simulation_ids=ids, scenario_id=scenario_id, request_id=request_id
        ),
        who,
    )


def count_of(api, who, scenario_id) -> int:
    outcome = api.call("GetScenario", scpb.GetScenarioRequest(scenario_id=scenario_id), who)
    return outcome.response.scenario.simulation_count


def test_batch_move_puts_simulations_into_a_scenario_and_out_of_any(api, principals):
    alice = principals["alice"]
    source, target = batch_create(api, alice, "Source", "Target")
    filed = create_with_config(api, alice, name="filed", scenario_id=source.id)
    loose = create_with_config(api, alice, name="loose")

    moved = move(api, alice, [filed.id, loose.id], target.id)

    assert moved.ok, moved.details
    assert [s.scenario_id for s in moved.response.simulations] == [target.id, target.id]
    assert (count_of(api, alice, source.id), count_of(api, alice, target.id)) == (0, 2)
    assert kinds(events_of(api, alice, loose.id))[-1] == "METADATA_CHANGED"

    out = move(api, alice, [filed.id, loose.id])

    assert out.ok, out.details
    assert [s.scenario_id for s in out.response.simulations] == ["", ""]
    assert count_of(api, alice, target.id) == 0


def test_batch_move_leaves_a_simulation_already_there_unchanged(api, principals):
    alice = principals["alice"]
    (target,) = batch_create(api, alice, "Target")
    there = create_with_config(api, alice, scenario_id=target.id)
    events_before = events_of(api, alice, there.id)

    moved = move(api, alice, [there.id], target.id)

    assert moved.ok
    assert moved.response.simulations[0].etag == there.etag
    assert events_of(api, alice, there.id) == events_before


def test_batch_move_into_another_tenants_scenario_or_of_their_simulation_is_not_found(
    api, principals
):
    alice, bob = principals["alice"], principals["bob"]
    (mine,) = batch_create(api, alice, "Mine")
    (theirs,) = batch_create(api, bob, "Theirs")
    my_sim = create_with_config(api, alice)
    their_sim = create_with_config(api, bob, scenario_id=theirs.id)

    assert move(api, alice, [my_sim.id], theirs.id).code == grpc.StatusCode.NOT_FOUND
    assert move(api, alice, [my_sim.id, their_sim.id], mine.id).code == grpc.StatusCode.NOT_FOUND

    assert get_simulation(api, alice, my_sim.id).scenario_id == ""
    assert get_simulation(api, bob, their_sim.id).scenario_id == theirs.id
    assert count_of(api, alice, mine.id) == 0


def test_batch_move_reports_repeated_ids_by_index(api, principals):
    sim = create_with_config(api, principals["alice"])

    outcome = move(api, principals["alice"], [sim.id, "", sim.id])

    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == ["simulation_ids[1]", "simulation_ids[2]"]


def test_batch_move_retried_with_its_request_id_is_answered_not_applied_again(api, principals):
    alice = principals["alice"]
    a, b = batch_create(api, alice, "A", "B")
    sim = create_with_config(api, alice)
    assert move(api, alice, [sim.id], a.id, request_id="move-1").ok
    # Moved on since: the retry answers with the simulation as it is, and moves nothing.
    assert move(api, alice, [sim.id], b.id).ok

    again = move(api, alice, [sim.id], a.id, request_id="move-1")

    assert again.ok, again.details
    assert again.response.simulations[0].scenario_id == b.id
    reused = move(api, alice, [sim.id], b.id, request_id="move-1")
    assert reused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert reused.reason == "REQUEST_ID_REUSED"


def test_batch_move_works_whatever_the_status(api, principals):
    alice = principals["alice"]
    (target,) = batch_create(api, alice, "Target")
    sim = create_with_config(api, alice)
    run_to(api, alice, sim.id, "COMPLETED")

    moved = move(api, alice, [sim.id], target.id)

    assert moved.ok, moved.details
    assert moved.response.simulations[0].results


# --- Responses too large for one message ---------------------------------------------------


def test_a_batch_whose_answer_would_not_fit_in_one_response_is_refused_before_it_commits(
    api, principals
):
    alice = principals["alice"]
    (target,) = batch_create(api, alice, "Target")
    big = {"log": "x" * 900_000}
    sims = []
    for _ in range(4):
        sim = create_with_config(api, alice)
        run_to(api, alice, sim.id, "RUNNING")
        completed = api.call(
            "CompleteRun", spb.CompleteRunRequest(simulation_id=sim.id, results=big), alice
        )
        assert completed.ok, completed.details
        sims.append(sim.id)

    moved = move(api, alice, sims, target.id)
    got = api.call(
        "BatchGetSimulations", spb.BatchGetSimulationsRequest(simulation_ids=sims), alice
    )

    for outcome in (moved, got):
        assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
        assert outcome.reason == "RESPONSE_TOO_LARGE"
    assert {get_simulation(api, alice, i).scenario_id for i in sims} == {""}
    assert move(api, alice, sims[:2], target.id).ok
