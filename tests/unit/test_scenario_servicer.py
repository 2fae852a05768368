"""ScenarioService servicer tests through grpcio-testing on a real SQLite database."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2
from simulation.v1 import scenario_pb2
from simulation.v1 import scenario_service_pb2 as pb

import storage
from service.api.scenario_service import ScenarioServicer
from service.app.scenarios import ScenarioOperations
from tests.harness import ServicerHarness

DESCRIPTOR = pb.DESCRIPTOR.services_by_name["ScenarioService"]


@pytest.fixture
def api(database, principals):
    servicer = ScenarioServicer(ScenarioOperations(database))
    harness = ServicerHarness({DESCRIPTOR: servicer})
    return harness


def create(api, who, name="Alpha", **fields):
    outcome = api.call(
        "CreateScenario",
        pb.CreateScenarioRequest(scenario=scenario_pb2.Scenario(display_name=name, **fields)),
        who,
    )
    assert outcome.ok, outcome.details
    return outcome.response.scenario


def test_create_returns_the_stored_scenario_with_server_fields(api, principals):
    scenario = create(api, principals["alice"], "Alpha", description="d", labels={"env": "dev"})
    assert scenario.id and scenario.etag
    assert scenario.display_name == "Alpha"
    assert dict(scenario.labels) == {"env": "dev"}
    assert scenario.create_time.seconds > 0 and scenario.simulation_count == 0


def test_create_with_same_request_id_returns_the_first_scenario(api, principals):
    request = pb.CreateScenarioRequest(
        scenario=scenario_pb2.Scenario(display_name="Once"), request_id="req-1"
    )
    first = api.call("CreateScenario", request, principals["alice"])
    second = api.call("CreateScenario", request, principals["alice"])
    assert first.ok and second.ok
    assert first.response.scenario.id == second.response.scenario.id
    listed = api.call("ListScenarios", pb.ListScenariosRequest(), principals["alice"])
    assert len(listed.response.scenarios) == 1


def test_validate_only_stores_nothing(api, principals):
    outcome = api.call(
        "CreateScenario",
        pb.CreateScenarioRequest(
            scenario=scenario_pb2.Scenario(display_name="Dry"), validate_only=True
        ),
        principals["alice"],
    )
    assert outcome.ok and outcome.response.scenario.display_name == "Dry"
    listed = api.call("ListScenarios", pb.ListScenariosRequest(), principals["alice"])
    assert list(listed.response.scenarios) == []


def test_create_rejects_every_bad_field_at_once(api, principals):
    outcome = api.call(
        "CreateScenario",
        pb.CreateScenarioRequest(
            scenario=scenario_pb2.Scenario(
                display_name="", description="x" * 4001, labels={"Bad Key": "v"}
            ),
            request_id="r" * 101,
        ),
        principals["alice"],
    )
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(outcome.violations) == {
        "scenario.display_name",
        "scenario.description",
        "scenario.labels['Bad Key']",
        "request_id",
    }


def test_too_long_display_name_is_invalid(api, principals):
    outcome = api.call(
        "CreateScenario",
        pb.CreateScenarioRequest(scenario=scenario_pb2.Scenario(display_name="n" * 201)),
        principals["alice"],
    )
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == ["scenario.display_name"]


def test_duplicate_display_name_is_already_exists_per_tenant(api, principals):
    create(api, principals["alice"], "Same")
    outcome = api.call(
        "CreateScenario",
        pb.CreateScenarioRequest(scenario=scenario_pb2.Scenario(display_name="Same")),
        principals["alice"],
    )
    assert outcome.code == grpc.StatusCode.ALREADY_EXISTS
    # Another tenant may use the same name.
    create(api, principals["bob"], "Same")


def test_get_of_another_tenants_scenario_is_not_found(api, principals):
    scenario = create(api, principals["alice"])
    outcome = api.call(
        "GetScenario", pb.GetScenarioRequest(scenario_id=scenario.id), principals["bob"]
    )
    assert outcome.code == grpc.StatusCode.NOT_FOUND
    missing = api.call(
        "GetScenario", pb.GetScenarioRequest(scenario_id="no-such-id"), principals["bob"]
    )
    assert missing.details.replace("no-such-id", scenario.id) == outcome.details


def test_list_pages_through_every_scenario_once(api, principals):
    names = [f"S{i:02d}" for i in range(7)]
    for name in names:
        create(api, principals["alice"], name)
    seen, token = [], ""
    while True:
        page = api.call(
            "ListScenarios",
            pb.ListScenariosRequest(page_size=3, page_token=token, order_by="display_name desc"),
            principals["alice"],
        )
        assert page.ok, page.details
        seen += [s.display_name for s in page.response.scenarios]
        token = page.response.next_page_token
        if not token:
            break
    assert seen == sorted(names, reverse=True)


def test_page_token_bound_to_query_and_tenant(api, principals):
    for name in ("a1", "a2"):
        create(api, principals["alice"], name)
    first = api.call("ListScenarios", pb.ListScenariosRequest(page_size=1), principals["alice"])
    token = first.response.next_page_token
    assert token
    changed = api.call(
        "ListScenarios",
        pb.ListScenariosRequest(page_size=1, page_token=token, order_by="display_name"),
        principals["alice"],
    )
    assert changed.code == grpc.StatusCode.INVALID_ARGUMENT
    assert changed.violations == ["page_token"]
    foreign = api.call(
        "ListScenarios", pb.ListScenariosRequest(page_size=1, page_token=token), principals["bob"]
    )
    assert foreign.code == grpc.StatusCode.INVALID_ARGUMENT
    garbage = api.call(
        "ListScenarios", pb.ListScenariosRequest(page_token="%%%not-a-token"), principals["alice"]
    )
    assert garbage.code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"page_size": -1}, "page_size"),
        ({"filter": "display_name ="}, "filter"),
        ({"filter": 'owner = "x"'}, "filter"),
        ({"filter": 'display_name = "a" OR'}, "filter"),
        ({"order_by": "update_time"}, "order_by"),
    ],
)
def test_bad_list_arguments_are_invalid(api, principals, request_fields, field):
    outcome = api.call(
        "ListScenarios", pb.ListScenariosRequest(**request_fields), principals["alice"]
    )
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == [field]


def test_list_filters_by_name_and_labels(api, principals):
    create(api, principals["alice"], "Market crash", labels={"team": "risk"})
    create(api, principals["alice"], "Market boom", labels={"team": "growth"})
    create(api, principals["alice"], "Election", labels={"team": "risk", "tier": "gold"})

    def names(filter_text):
        outcome = api.call(
            "ListScenarios",
            pb.ListScenariosRequest(filter=filter_text, order_by="display_name"),
            principals["alice"],
        )
        assert outcome.ok, outcome.details
        return [s.display_name for s in outcome.response.scenarios]

    assert names('display_name : "market"') == ["Market boom", "Market crash"]
    assert names('labels.team = "risk"') == ["Election", "Market crash"]
    assert names("labels.tier : *") == ["Election"]
    assert names('display_name = "Election" AND labels.team = risk') == ["Election"]


def test_page_size_above_limit_is_cut_to_1000(api, principals):
    create(api, principals["alice"])
    outcome = api.call(
        "ListScenarios", pb.ListScenariosRequest(page_size=5000), principals["alice"]
    )
    assert outcome.ok and len(outcome.response.scenarios) == 1


def test_update_with_mask_changes_only_masked_fields(api, principals):
    scenario = create(api, principals["alice"], "Before", description="keep")
    outcome = api.call(
        "UpdateScenario",
        pb.UpdateScenarioRequest(
            scenario=scenario_pb2.Scenario(id=scenario.id, display_name="After", description=""),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
        principals["alice"],
    )
    assert outcome.ok, outcome.details
    updated = outcome.response.scenario
    assert (updated.display_name, updated.description) == ("After", "keep")
    assert updated.etag != scenario.etag


def test_update_with_stale_etag_is_aborted_and_changes_nothing(api, principals):
    scenario = create(api, principals["alice"], "Original")
    fresh = api.call(
        "UpdateScenario",
        pb.UpdateScenarioRequest(
            scenario=scenario_pb2.Scenario(
                id=scenario.id, display_name="First", etag=scenario.etag
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
        principals["alice"],
    )
    assert fresh.ok
    stale = api.call(
        "UpdateScenario",
        pb.UpdateScenarioRequest(
            scenario=scenario_pb2.Scenario(
                id=scenario.id, display_name="Second", etag=scenario.etag
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
        principals["alice"],
    )
    assert stale.code == grpc.StatusCode.ABORTED
    current = api.call(
        "GetScenario", pb.GetScenarioRequest(scenario_id=scenario.id), principals["alice"]
    )
    assert current.response.scenario.display_name == "First"


def test_update_with_unknown_mask_path_is_invalid(api, principals):
    scenario = create(api, principals["alice"])
    outcome = api.call(
        "UpdateScenario",
        pb.UpdateScenarioRequest(
            scenario=scenario_pb2.Scenario(id=scenario.id),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name", "simulation_count"]),
        ),
        principals["alice"],
    )
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == ["update_mask.paths[1]"]


def test_update_of_another_tenants_scenario_is_not_found_and_unchanged(api, principals):
    scenario = create(api, principals["alice"], "Mine")
    outcome = api.call(
        "UpdateScenario",
        pb.UpdateScenarioRequest(
            scenario=scenario_pb2.Scenario(id=scenario.id, display_name="Theirs")
        ),
        principals["bob"],
    )
    assert outcome.code == grpc.StatusCode.NOT_FOUND
    current = api.call(
        "GetScenario", pb.GetScenarioRequest(scenario_id=scenario.id), principals["alice"]
    )
    assert current.response.scenario.display_name == "Mine"


def test_delete_soft_deletes_and_undelete_restores(api, principals):
    scenario = create(api, principals["alice"], "Temporary")
    deleted = api.call(
        "DeleteScenario", pb.DeleteScenarioRequest(scenario_id=scenario.id), principals["alice"]
    )
    assert deleted.ok
    assert deleted.response.scenario.HasField("delete_time")
    assert (
        deleted.response.scenario.purge_time.seconds > deleted.response.scenario.delete_time.seconds
    )
    live = api.call("ListScenarios", pb.ListScenariosRequest(), principals["alice"])
    assert list(live.response.scenarios) == []
    everything = api.call(
        "ListScenarios", pb.ListScenariosRequest(show_deleted=True), principals["alice"]
    )
    assert [s.id for s in everything.response.scenarios] == [scenario.id]
    again = api.call(
        "DeleteScenario", pb.DeleteScenarioRequest(scenario_id=scenario.id), principals["alice"]
    )
    assert again.code == grpc.StatusCode.NOT_FOUND
    restored = api.call(
        "UndeleteScenario", pb.UndeleteScenarioRequest(scenario_id=scenario.id), principals["alice"]
    )
    assert restored.ok and not restored.response.scenario.HasField("delete_time")
    twice = api.call(
        "UndeleteScenario", pb.UndeleteScenarioRequest(scenario_id=scenario.id), principals["alice"]
    )
    assert twice.code == grpc.StatusCode.FAILED_PRECONDITION


def test_delete_with_stale_etag_is_aborted(api, principals):
    scenario = create(api, principals["alice"])
    outcome = api.call(
        "DeleteScenario",
        pb.DeleteScenarioRequest(scenario_id=scenario.id, etag="stale"),
        principals["alice"],
    )
    assert outcome.code == grpc.StatusCode.ABORTED
    assert outcome.reason == "ETAG_MISMATCH"


def test_empty_ids_are_invalid(api, principals):
    outcome = api.call("GetScenario", pb.GetScenarioRequest(), principals["alice"])
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == ["scenario_id"]


# -- review fixes: AIP-134 masks, busy simulations, request_id reuse, single-line names ---------


def _update(api, who, paths, **values):
    request = pb.UpdateScenarioRequest(scenario=scenario_pb2.Scenario(**values))
    if paths is not None:
        request.update_mask.paths.extend(paths)
    return api.call("UpdateScenario", request, who)


def test_an_empty_mask_changes_only_the_fields_the_request_sets(api, principals):
    alice = principals["alice"]
    scenario = create(api, alice, "Before", description="keep", labels={"env": "dev"})

    outcome = _update(api, alice, None, id=scenario.id, display_name="After")

    assert outcome.ok, outcome.details
    updated = outcome.response.scenario
    assert (updated.display_name, updated.description) == ("After", "keep")
    assert dict(updated.labels) == {"env": "dev"}


def test_an_empty_mask_with_nothing_set_is_invalid_and_changes_nothing(api, principals):
    """A body whose fields were all misspelt (and dropped by a JSON gateway) must not pass."""
    alice = principals["alice"]
    scenario = create(api, alice, "Still", description="keep")

    outcome = _update(api, alice, None, id=scenario.id)

    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == ["update_mask"]
    assert outcome.reason == "UPDATE_MASK_EMPTY"
    stored = api.call(
        "GetScenario", pb.GetScenarioRequest(scenario_id=scenario.id), alice
    ).response.scenario
    assert stored.etag == scenario.etag


def test_a_star_mask_replaces_every_field_and_clears_the_empty_ones(api, principals):
    alice = principals["alice"]
    scenario = create(api, alice, "Before", description="gone", labels={"env": "dev"})

    outcome = _update(api, alice, ["*"], id=scenario.id, display_name="After")

    assert outcome.ok, outcome.details
    updated = outcome.response.scenario
    assert (updated.display_name, updated.description, dict(updated.labels)) == ("After", "", {})


def _add_simulation(database, tenant_id, scenario_id, status):
    import uuid
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return database.run(
        lambda uow: uow.simulations.add(
            storage.Simulation(
                id=str(uuid.uuid4()),
                tenant_id=tenant_id,
                scenario_id=scenario_id,
                name=f"sim {status}",
                prompt="p",
                labels={},
                status=status,
                current_revision=0,
                architect_parameters=None,
                results=None,
                analysis=None,
                last_error=None,
                create_time=now,
                update_time=now,
            )
        )
    )


@pytest.mark.parametrize("status", ["PENDING", "GENERATING_CONFIG", "RUNNING"])
def test_a_scenario_with_a_busy_simulation_cannot_be_deleted_even_by_force(
    api, principals, database, status
):
    from google.rpc import error_details_pb2

    from tests.harness import detail

    alice = principals["alice"]
    scenario = create(api, alice, "Busy")
    _add_simulation(database, alice.tenant_id, scenario.id, "COMPLETED")
    busy = _add_simulation(database, alice.tenant_id, scenario.id, status)

    for force in (True, False):
        refused = api.call(
            "DeleteScenario", pb.DeleteScenarioRequest(scenario_id=scenario.id, force=force), alice
        )
        assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
        assert refused.reason == "SIMULATIONS_BUSY"
        failure = detail(refused.status, error_details_pb2.PreconditionFailure)
        assert [(v.type, v.subject) for v in failure.violations] == [
            ("STATUS", f"simulations/{busy.id}")
        ]

    still = api.call("GetScenario", pb.GetScenarioRequest(scenario_id=scenario.id), alice)
    assert not still.response.scenario.HasField("delete_time")
    assert still.response.scenario.simulation_count == 2


def test_a_request_id_reused_with_other_arguments_is_invalid(api, principals):
    alice = principals["alice"]
    first = api.call(
        "CreateScenario",
        pb.CreateScenarioRequest(
            scenario=scenario_pb2.Scenario(display_name="Once", labels={"a": "b"}),
            request_id="req-1",
        ),
        alice,
    )
    assert first.ok

    for changed in (
        scenario_pb2.Scenario(display_name="Twice", labels={"a": "b"}),
        scenario_pb2.Scenario(display_name="Once", labels={"a": "c"}),
        scenario_pb2.Scenario(display_name="Once", labels={"a": "b"}, description="x"),
    ):
        reused = api.call(
            "CreateScenario", pb.CreateScenarioRequest(scenario=changed, request_id="req-1"), alice
        )
        assert reused.code == grpc.StatusCode.INVALID_ARGUMENT
        assert reused.violations == ["request_id"]
        assert reused.reason == "REQUEST_ID_REUSED"

    listed = api.call("ListScenarios", pb.ListScenariosRequest(), alice)
    assert [s.display_name for s in listed.response.scenarios] == ["Once"]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("two\nlines", "control characters"),
        ("bell\u0007", "control characters"),
        ("rtl\u202eoverride", "control characters"),
        (" padded", "whitespace"),
        ("padded\t", "control characters"),
        ("padded ", "whitespace"),
    ],
)
def test_a_display_name_must_be_a_single_trimmed_line(api, principals, name, problem):
    alice = principals["alice"]
    outcome = api.call(
        "CreateScenario",
        pb.CreateScenarioRequest(scenario=scenario_pb2.Scenario(display_name=name)),
        alice,
    )
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == ["scenario.display_name"]
    assert problem in outcome.details

    scenario = create(api, alice, "Fine")
    renamed = _update(api, alice, ["display_name"], id=scenario.id, display_name=name)
    assert renamed.code == grpc.StatusCode.INVALID_ARGUMENT


def test_a_display_name_may_hold_joiners_and_inner_spaces(api, principals):
    name = "Family \U0001f468\u200d\U0001f469 plans"
    assert create(api, principals["alice"], name).display_name == name
