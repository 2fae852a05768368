"""ConfigService servicer tests through grpcio-testing on a real SQLite database."""

from __future__ import annotations

import dataclasses

import grpc
import jsonpatch
import pytest
from google.protobuf import field_mask_pb2, json_format
from simulation.v1 import config_pb2, simulation_pb2
from simulation.v1 import config_service_pb2 as cpb
from simulation.v1 import simulation_service_pb2 as spb

import storage
from service.api.config_service import ConfigServicer
from service.app.configs import ConfigOperations
from service.app.simulations import SimulationOperations
from service.domain.config_diff import config_json
from service.domain.validation import ConfigLimits, ConfigValidator
from tests.harness import ServicerHarness
from tests.unit.simulation_api import (
    CONFIG_SERVICE,
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

Origin = config_pb2.ConfigRevision.Origin


@pytest.fixture
def api(database, principals):
    return make_harness(database)


def update(api, who, simulation_id, config, **fields):
    return api.call(
        "UpdateConfig",
        cpb.UpdateConfigRequest(simulation_id=simulation_id, config=config, **fields),
        who,
    )


# -- CreateSimulationWithConfig ------------------------------------------------------------------


def test_create_with_config_lands_in_completed_config_with_an_imported_revision(api, principals):
    alice = principals["alice"]
    sim = create_with_config(
        api,
        alice,
        "Imported",
        prompt="a market",
        labels={"team": "risk"},
        sources=[config_pb2.Source(uri="https://example.com", title="Example")],
    )
    assert sim.status == Status.COMPLETED_CONFIG and sim.config_revision == 1
    assert sim.id and sim.etag and sim.prompt == "a market" and dict(sim.labels) == {"team": "risk"}
    view = get_config(api, alice, sim.id)
    assert view.revision == 1 and view.origin == Origin.IMPORT
    assert view.config == valid_config()
    assert [s.uri for s in view.sources] == ["https://example.com"]
    assert [s.uri for s in get_simulation(api, alice, sim.id).sources] == ["https://example.com"]
    events = events_of(api, alice, sim.id)
    assert kinds(events) == ["CREATED", "CONFIG_CHANGED"]
    assert all(e.actor == alice.key_id for e in events) and events[1].revision == 1


def test_create_with_config_reports_every_bad_field_and_config_violation(api, principals):
    bad = valid_config()
    bad.agents[1].id = "Not An Id"
    bad.max_turns = 0
    outcome = api.call(
        "CreateSimulationWithConfig",
        cpb.CreateSimulationWithConfigRequest(
            simulation=simulation_pb2.Simulation(name="", prompt="p" * 10_001),
            config=bad,
            request_id="r" * 101,
        ),
        principals["alice"],
    )
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(outcome.violations) == {
        "simulation.name",
        "simulation.prompt",
        "request_id",
        "config.max_turns",
        "config.agents[1].id",
    }
    listed = api.call("ListSimulations", spb.ListSimulationsRequest(), principals["alice"])
    assert list(listed.response.simulations) == []


def test_an_invalid_config_alone_has_reason_config_invalid(api, principals):
    bad = valid_config()
    bad.events[0].agent_ids.append("nobody")
    outcome = api.call(
        "CreateSimulationWithConfig",
        cpb.CreateSimulationWithConfigRequest(
            simulation=simulation_pb2.Simulation(name="x"), config=bad
        ),
        principals["alice"],
    )
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == ["config.events[0].agent_ids[1]"]
    assert outcome.reason == "CONFIG_INVALID"


def test_create_with_the_same_request_id_returns_the_first_simulation(api, principals):
    first = create_with_config(api, principals["alice"], "Once", request_id="req-1")
    second = create_with_config(api, principals["alice"], "Once", request_id="req-1")
    assert first.id == second.id
    listed = api.call("ListSimulations", spb.ListSimulationsRequest(), principals["alice"])
    assert len(listed.response.simulations) == 1
    # Request ids are per tenant.
    other = create_with_config(api, principals["bob"], "Once", request_id="req-1")
    assert other.id != first.id


def test_create_validate_only_stores_nothing(api, principals):
    outcome = api.call(
        "CreateSimulationWithConfig",
        cpb.CreateSimulationWithConfigRequest(
            simulation=simulation_pb2.Simulation(name="Dry"),
            config=valid_config(),
            validate_only=True,
        ),
        principals["alice"],
    )
    assert outcome.ok and outcome.response.simulation.name == "Dry"
    assert outcome.response.simulation.status == Status.COMPLETED_CONFIG
    listed = api.call("ListSimulations", spb.ListSimulationsRequest(), principals["alice"])
    assert list(listed.response.simulations) == []


def test_create_in_a_missing_or_foreign_scenario_is_not_found(api, principals):
    from simulation.v1 import scenario_pb2
    from simulation.v1 import scenario_service_pb2 as scpb

    foreign = api.call(
        "CreateScenario",
        scpb.CreateScenarioRequest(scenario=scenario_pb2.Scenario(display_name="Bob's")),
        principals["bob"],
    ).response.scenario
    for scenario_id in ("no-such-scenario", foreign.id):
        outcome = api.call(
            "CreateSimulationWithConfig",
            cpb.CreateSimulationWithConfigRequest(
                simulation=simulation_pb2.Simulation(name="x", scenario_id=scenario_id),
                config=valid_config(),
            ),
            principals["alice"],
        )
        assert outcome.code == grpc.StatusCode.NOT_FOUND, scenario_id


# -- GetConfig -----------------------------------------------------------------------------------


def test_get_config_reads_the_current_or_a_given_revision(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    assert update(api, alice, sim.id, valid_config("Second")).ok
    assert get_config(api, alice, sim.id).config.title == "Second"
    old = get_config(api, alice, sim.id, revision=1)
    assert old.revision == 1 and old.config.title == "Market day"
    # The etag is always the current config's, whichever revision is read.
    assert old.etag == get_config(api, alice, sim.id).etag


@pytest.mark.parametrize(
    ("revision", "code"),
    [(-1, grpc.StatusCode.INVALID_ARGUMENT), (7, grpc.StatusCode.NOT_FOUND)],
)
def test_get_config_rejects_bad_revisions(api, principals, revision, code):
    sim = create_with_config(api, principals["alice"])
    outcome = api.call(
        "GetConfig",
        cpb.GetConfigRequest(simulation_id=sim.id, revision=revision),
        principals["alice"],
    )
    assert outcome.code == code


def test_get_config_without_an_id_is_invalid(api, principals):
    outcome = api.call("GetConfig", cpb.GetConfigRequest(), principals["alice"])
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == ["simulation_id"]


# -- DiffConfigRevisions -------------------------------------------------------------------------


def diff(api, who, simulation_id, **fields):
    return api.call(
        "DiffConfigRevisions",
        cpb.DiffConfigRevisionsRequest(simulation_id=simulation_id, **fields),
        who,
    )


def _with_changes(title: str) -> config_pb2.SimulationConfig:
    config = valid_config(title)
    config.agents[1].persona = "haggles"
    config.agents[0].attributes["mood"] = "calm"
    config.seed = 2**62 + 1
    return config


def test_a_diff_is_a_json_patch_that_turns_one_revision_into_the_other(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    assert update(api, alice, sim.id, valid_config("Second")).ok
    assert update(api, alice, sim.id, _with_changes("Third")).ok

    outcome = diff(api, alice, sim.id, from_revision=1, to_revision=3)

    assert outcome.ok, outcome.details
    response = outcome.response
    assert (response.simulation_id, response.from_revision, response.to_revision) == (sim.id, 1, 3)
    patch = json_format.MessageToDict(response.patch)
    first = config_json(get_config(api, alice, sim.id, revision=1).config)
    third = config_json(get_config(api, alice, sim.id, revision=3).config)
    assert jsonpatch.apply_patch(first, patch) == third
    assert sorted(response.changed_paths) == sorted(
        ["title", "seed", "agents[1].persona", 'agents[0].attributes["mood"]']
    )
    # 64-bit integers travel as strings, as in the REST form of the config: exact.
    assert {"op": "add", "path": "/seed", "value": str(2**62 + 1)} in patch


def test_a_diff_defaults_to_the_current_revision_against_the_one_before(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    assert update(api, alice, sim.id, valid_config("Second")).ok

    latest = diff(api, alice, sim.id).response
    backwards = diff(api, alice, sim.id, from_revision=2, to_revision=1).response
    first = diff(api, alice, sim.id, to_revision=1).response

    assert (latest.from_revision, latest.to_revision) == (1, 2)
    assert list(latest.changed_paths) == ["title"]
    assert json_format.MessageToDict(backwards.patch) == [
        {"op": "replace", "path": "/title", "value": "Market day"}
    ]
    # Revision 1 is compared with an empty config: every field it sets is a change.
    assert first.from_revision == 0
    assert {"title", "agents", "model", "max_turns"} <= set(first.changed_paths)


def test_a_diff_of_a_revision_with_itself_is_empty(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    response = diff(api, alice, sim.id, from_revision=1, to_revision=1).response
    assert list(response.patch) == [] and list(response.changed_paths) == []


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"from_revision": -1}, grpc.StatusCode.INVALID_ARGUMENT, "from_revision"),
        ({"to_revision": -2}, grpc.StatusCode.INVALID_ARGUMENT, "to_revision"),
        ({"to_revision": 9}, grpc.StatusCode.NOT_FOUND, None),
        ({"from_revision": 9}, grpc.StatusCode.NOT_FOUND, None),
    ],
)
def test_a_diff_of_bad_revisions_fails(api, principals, fields, code, field):
    sim = create_with_config(api, principals["alice"])
    outcome = diff(api, principals["alice"], sim.id, **fields)
    assert outcome.code == code
    if field:
        assert outcome.violations == [field]


def test_listed_revisions_name_the_paths_each_one_changed(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    assert update(api, alice, sim.id, valid_config("Second")).ok
    assert update(api, alice, sim.id, _with_changes("Second")).ok
    changed = {}
    token = ""
    while True:  # Pages of one: the revision before each page's last one is read too.
        response = api.call(
            "ListConfigRevisions",
            cpb.ListConfigRevisionsRequest(simulation_id=sim.id, page_size=1, page_token=token),
            alice,
        ).response
        changed.update({r.revision: sorted(r.changed_paths) for r in response.revisions})
        token = response.next_page_token
        if not token:
            break
    assert changed[3] == sorted(["seed", "agents[1].persona", 'agents[0].attributes["mood"]'])
    assert changed[2] == ["title"]
    assert {"title", "agents", "model"} <= set(changed[1])


# -- UpdateConfig --------------------------------------------------------------------------------


def test_update_replaces_the_config_as_a_new_edit_revision(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice, sources=[config_pb2.Source(uri="s://1")])
    before = get_config(api, alice, sim.id)
    outcome = update(
        api, alice, sim.id, valid_config("Edited"), etag=before.etag, description="retitle"
    )
    assert outcome.ok, outcome.details
    view = outcome.response
    assert view.revision == 2 and view.origin == Origin.EDIT
    assert view.config.title == "Edited" and view.etag != before.etag
    # No sources in the request: the current revision's are kept.
    assert [s.uri for s in view.sources] == ["s://1"]
    assert get_config(api, alice, sim.id).etag == view.etag
    revision = api.call(
        "ListConfigRevisions", cpb.ListConfigRevisionsRequest(simulation_id=sim.id), alice
    ).response.revisions[0]
    assert revision.description == "retitle" and revision.actor == alice.key_id


def test_update_with_a_stale_etag_is_aborted_and_changes_nothing(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    stale = get_config(api, alice, sim.id).etag
    assert update(api, alice, sim.id, valid_config("First"), etag=stale).ok
    outcome = update(api, alice, sim.id, valid_config("Second"), etag=stale)
    assert outcome.code == grpc.StatusCode.ABORTED
    assert get_config(api, alice, sim.id).config.title == "First"


def test_update_mask_replaces_only_the_named_fields(api, principals):
    alice = principals["alice"]
    config = valid_config()
    config.environment.description = "a town"
    config.environment.rules.append("be nice")
    sim = create_with_config(api, alice, config=config)
    patch = config_pb2.SimulationConfig(title="Patched", max_turns=999)
    patch.environment.rules.append("be fair")
    outcome = update(
        api,
        alice,
        sim.id,
        patch,
        update_mask=field_mask_pb2.FieldMask(paths=["title", "environment.rules"]),
    )
    assert outcome.ok, (outcome.details, outcome.violations)
    stored = get_config(api, alice, sim.id).config
    assert stored.title == "Patched" and stored.max_turns == 10
    assert list(stored.environment.rules) == ["be fair"]
    assert stored.environment.description == "a town" and len(stored.agents) == 2


def test_update_mask_with_unknown_paths_is_invalid(api, principals):
    sim = create_with_config(api, principals["alice"])
    outcome = update(
        api,
        principals["alice"],
        sim.id,
        valid_config(),
        update_mask=field_mask_pb2.FieldMask(paths=["title", "agents.id", "nope"]),
    )
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == ["update_mask.paths[1]", "update_mask.paths[2]"]


def test_update_with_an_invalid_config_reports_every_violation_and_stores_nothing(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    bad = valid_config()
    bad.agents[1].id = "alice"
    bad.events[0].turn = 50
    bad.temperature = 3.0
    outcome = update(api, alice, sim.id, bad)
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.reason == "CONFIG_INVALID"
    assert set(outcome.violations) == {
        "config.temperature",
        "config.agents[1].id",
        "config.events[0].turn",
    }
    assert get_config(api, alice, sim.id).revision == 1
    assert kinds(events_of(api, alice, sim.id)) == ["CREATED", "CONFIG_CHANGED"]


def test_update_validate_only_returns_the_would_be_revision_and_stores_nothing(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    outcome = update(api, alice, sim.id, valid_config("Dry"), validate_only=True)
    assert outcome.ok and outcome.response.revision == 2
    assert outcome.response.config.title == "Dry"
    assert get_config(api, alice, sim.id).revision == 1


@pytest.mark.parametrize("status", ["COMPLETED", "FAILED"])
def test_editing_after_a_run_returns_to_completed_config_and_clears_results(
    api, principals, status
):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    ran = run_to(api, alice, sim.id, status)
    assert ran.status == Status.Value(status)
    if status == "COMPLETED":
        analysed = api.call(
            "AttachAnalysis",
            spb.AttachAnalysisRequest(simulation_id=sim.id, analysis={"verdict": "ok"}),
            alice,
        )
        assert analysed.ok
    assert update(api, alice, sim.id, valid_config("After")).ok
    now = get_simulation(api, alice, sim.id)
    assert now.status == Status.COMPLETED_CONFIG and now.config_revision == 2
    assert not now.HasField("results") and not now.HasField("analysis")
    assert not now.HasField("last_error")
    events = events_of(api, alice, sim.id)
    assert kinds(events)[-2:] == ["CONFIG_CHANGED", "STATUS_CHANGED"]
    assert events[-1].from_status == Status.Value(status)
    assert events[-1].to_status == Status.COMPLETED_CONFIG


def test_editing_while_running_is_a_failed_precondition_naming_the_status(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    run_to(api, alice, sim.id, "RUNNING")
    outcome = update(api, alice, sim.id, valid_config("Nope"))
    assert outcome.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "RUNNING" in outcome.details and outcome.reason == "ILLEGAL_TRANSITION"
    assert get_config(api, alice, sim.id).revision == 1


def test_edits_in_pending_or_generating_config_are_failed_preconditions(api, principals, database):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    for status in ("PENDING", "GENERATING_CONFIG"):
        _force_status(database, alice.tenant_id, sim.id, status)
        outcome = update(api, alice, sim.id, valid_config("Nope"))
        assert outcome.code == grpc.StatusCode.FAILED_PRECONDITION, status
        assert status in outcome.details
        rollback = api.call(
            "RollbackConfig", cpb.RollbackConfigRequest(simulation_id=sim.id, revision=1), alice
        )
        assert rollback.code == grpc.StatusCode.FAILED_PRECONDITION, status


def _force_status(database, tenant_id, simulation_id, status):
    def force(uow):
        sim = uow.simulations.get(tenant_id, simulation_id)
        uow.simulations.update(dataclasses.replace(sim, status=status), expected_etag=sim.etag)

    database.run(force)


# -- ValidateConfig ------------------------------------------------------------------------------


def test_validate_config_accepts_a_valid_config_and_stores_nothing(api, principals):
    outcome = api.call(
        "ValidateConfig", cpb.ValidateConfigRequest(config=valid_config()), principals["reader"]
    )
    assert outcome.ok and outcome.response.valid


def test_validate_config_reports_every_violation_with_request_paths(api, principals):
    bad = valid_config(title="")
    bad.agents.add(id="-bad", name="")
    outcome = api.call("ValidateConfig", cpb.ValidateConfigRequest(config=bad), principals["alice"])
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == ["config.title", "config.agents[2].id", "config.agents[2].name"]


# -- ListConfigRevisions and RollbackConfig ------------------------------------------------------


def test_revisions_are_listed_newest_first_across_pages(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)
    for n in range(2, 6):
        assert update(api, alice, sim.id, valid_config(f"v{n}")).ok
    seen, token = [], ""
    while True:
        outcome = api.call(
            "ListConfigRevisions",
            cpb.ListConfigRevisionsRequest(simulation_id=sim.id, page_size=2, page_token=token),
            alice,
        )
        assert outcome.ok, outcome.details
        seen += [(r.revision, Origin.Name(r.origin)) for r in outcome.response.revisions]
        token = outcome.response.next_page_token
        if not token:
            break
    assert seen == [(5, "EDIT"), (4, "EDIT"), (3, "EDIT"), (2, "EDIT"), (1, "IMPORT")]
    first_page = api.call(
        "ListConfigRevisions",
        cpb.ListConfigRevisionsRequest(simulation_id=sim.id, page_size=2),
        alice,
    ).response
    assert first_page.revisions[0].create_time.seconds > 0
    # A token is bound to its simulation.
    other = create_with_config(api, alice, "Other")
    outcome = api.call(
        "ListConfigRevisions",
        cpb.ListConfigRevisionsRequest(
            simulation_id=other.id, page_size=2, page_token=first_page.next_page_token
        ),
        alice,
    )
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT


def test_rollback_writes_a_new_revision_copying_the_old_one(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice, sources=[config_pb2.Source(uri="s://first")])
    assert update(
        api, alice, sim.id, valid_config("Second"), sources=[config_pb2.Source(uri="s://2")]
    ).ok
    run_to(api, alice, sim.id, "COMPLETED")
    etag = get_config(api, alice, sim.id).etag
    outcome = api.call(
        "RollbackConfig",
        cpb.RollbackConfigRequest(simulation_id=sim.id, revision=1, etag=etag),
        alice,
    )
    assert outcome.ok, outcome.details
    view = outcome.response
    assert view.revision == 3 and view.origin == Origin.ROLLBACK
    assert view.config == valid_config() and [s.uri for s in view.sources] == ["s://first"]
    now = get_simulation(api, alice, sim.id)
    assert now.status == Status.COMPLETED_CONFIG and not now.HasField("results")
    # The etag used is now stale.
    again = api.call(
        "RollbackConfig",
        cpb.RollbackConfigRequest(simulation_id=sim.id, revision=2, etag=etag),
        alice,
    )
    assert again.code == grpc.StatusCode.ABORTED


@pytest.mark.parametrize(
    ("revision", "code"),
    [
        (0, grpc.StatusCode.INVALID_ARGUMENT),
        (-3, grpc.StatusCode.INVALID_ARGUMENT),
        (9, grpc.StatusCode.NOT_FOUND),
    ],
)
def test_rollback_to_a_bad_revision_fails(api, principals, revision, code):
    sim = create_with_config(api, principals["alice"])
    outcome = api.call(
        "RollbackConfig",
        cpb.RollbackConfigRequest(simulation_id=sim.id, revision=revision),
        principals["alice"],
    )
    assert outcome.code == code
    assert get_config(api, principals["alice"], sim.id).revision == 1


def test_rollback_to_a_config_that_no_longer_validates_is_invalid(database, principals):
    alice = principals["alice"]
    lenient = make_harness(database)
    sim = create_with_config(lenient, alice)  # three words in the title are fine here
    strict = ServicerHarness(
        {
            CONFIG_SERVICE: ConfigServicer(
                ConfigOperations(database, ConfigValidator(ConfigLimits(title_max_chars=3))),
                SimulationOperations(database),
            )
        }
    )
    outcome = strict.call(
        "RollbackConfig", cpb.RollbackConfigRequest(simulation_id=sim.id, revision=1), alice
    )
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == ["config.title"]
    assert get_config(lenient, alice, sim.id).revision == 1


# -- RunArchitect --------------------------------------------------------------------------------


def test_run_architect_is_unimplemented_without_an_architect(api, principals):
    sim = create_with_config(api, principals["alice"])
    outcome = api.call(
        "RunArchitect", cpb.RunArchitectRequest(simulation_id=sim.id), principals["alice"]
    )
    assert outcome.code == grpc.StatusCode.UNIMPLEMENTED


def test_run_architect_delegates_to_the_architect(database, principals):
    class FakeArchitect:
        def __init__(self):
            self.calls = []

        def run_architect(self, principal, request, *, wait_timeout=None):
            self.calls.append((principal, request.simulation_id))
            return database.run(
                lambda uow: uow.simulations.get(principal.tenant_id, request.simulation_id)
            )

    architect = FakeArchitect()
    api = make_harness(database, architect=architect)
    sim = create_with_config(api, principals["alice"])
    outcome = api.call(
        "RunArchitect", cpb.RunArchitectRequest(simulation_id=sim.id), principals["alice"]
    )
    assert outcome.ok and outcome.response.simulation.id == sim.id
    assert architect.calls == [(principals["alice"], sim.id)]


# -- tenant isolation ----------------------------------------------------------------------------

FOREIGN_CALLS = {
    "GetConfig": lambda sid, etag: cpb.GetConfigRequest(simulation_id=sid),
    "UpdateConfig": lambda sid, etag: cpb.UpdateConfigRequest(
        simulation_id=sid, config=valid_config("Hijack")
    ),
    "ListConfigRevisions": lambda sid, etag: cpb.ListConfigRevisionsRequest(simulation_id=sid),
    "DiffConfigRevisions": lambda sid, etag: cpb.DiffConfigRevisionsRequest(
        simulation_id=sid, from_revision=1, to_revision=2
    ),
    "RollbackConfig": lambda sid, etag: cpb.RollbackConfigRequest(simulation_id=sid, revision=1),
}


@pytest.mark.parametrize("method", sorted(FOREIGN_CALLS))
def test_another_tenants_simulation_is_not_found_and_unchanged(api, principals, method):
    alice, bob = principals["alice"], principals["bob"]
    sim = create_with_config(api, alice)
    assert update(api, alice, sim.id, valid_config("Second")).ok
    before = get_config(api, alice, sim.id)
    outcome = api.call(method, FOREIGN_CALLS[method](sim.id, before.etag), bob)
    assert outcome.code == grpc.StatusCode.NOT_FOUND
    missing = api.call(method, FOREIGN_CALLS[method]("no-such-id", before.etag), bob)
    assert missing.code == grpc.StatusCode.NOT_FOUND
    after = get_config(api, alice, sim.id)
    assert (after.revision, after.etag, after.config) == (
        before.revision,
        before.etag,
        before.config,
    )
    assert len(events_of(api, alice, sim.id)) == 3


def test_the_stored_config_reads_back_exactly(database, principals):
    api = make_harness(database)
    config = valid_config()
    config.temperature = 0.25
    config.seed = -(2**63)
    config.agents[0].attributes["mood"] = "calm ☀"
    config.metrics.add(name="trust", kind=config_pb2.Metric.Kind.Value("GAUGE"))
    sim = create_with_config(api, principals["alice"], config=config)
    stored = database.run(lambda uow: uow.revisions.get(principals["alice"].tenant_id, sim.id, 1))
    assert isinstance(stored, storage.ConfigRevision) and stored.config["schema_version"] == 2
    assert get_config(api, principals["alice"], sim.id).config == config


# -- review fixes: request_id reuse, sources, the CREATED event ----------------------------------


def test_a_request_id_reused_with_other_arguments_is_invalid(api, principals):
    alice = principals["alice"]
    first = create_with_config(api, alice, "Once", request_id="req-1", labels={"a": "b"})

    for simulation in (
        simulation_pb2.Simulation(name="Twice", labels={"a": "b"}),
        simulation_pb2.Simulation(name="Once", labels={"a": "c"}),
        simulation_pb2.Simulation(name="Once", labels={"a": "b"}, prompt="now with a prompt"),
    ):
        reused = api.call(
            "CreateSimulationWithConfig",
            cpb.CreateSimulationWithConfigRequest(
                simulation=simulation, config=valid_config(), request_id="req-1"
            ),
            alice,
        )
        assert reused.code == grpc.StatusCode.INVALID_ARGUMENT
        assert reused.violations == ["request_id"]
        assert reused.reason == "REQUEST_ID_REUSED"

    again = create_with_config(api, alice, "Once", request_id="req-1", labels={"a": "b"})
    assert again.id == first.id


def test_create_with_config_records_how_the_simulation_got_its_status(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice, "Imported")

    created = events_of(api, alice, sim.id)[0]

    assert kinds([created]) == ["CREATED"]
    assert created.to_status == Status.COMPLETED_CONFIG and created.revision == 1


def _bad_sources():
    return [
        config_pb2.Source(uri="https://ok.example"),
        config_pb2.Source(uri="", title="t" * 501),
        config_pb2.Source(uri="u" * 2001, snippet="s" * 2001),
        config_pb2.Source(uri="https://nul.example/\x00"),
    ]


BAD_SOURCE_PATHS = [
    "sources[1].uri",
    "sources[1].title",
    "sources[2].uri",
    "sources[2].snippet",
    "sources[3].uri",
]


def test_create_with_config_rejects_bad_sources_and_stores_nothing(api, principals):
    alice = principals["alice"]
    outcome = api.call(
        "CreateSimulationWithConfig",
        cpb.CreateSimulationWithConfigRequest(
            simulation=simulation_pb2.Simulation(name="Sourced"),
            config=valid_config(),
            sources=_bad_sources(),
        ),
        alice,
    )

    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == BAD_SOURCE_PATHS
    listed = api.call("ListSimulations", spb.ListSimulationsRequest(), alice)
    assert list(listed.response.simulations) == []


def test_update_config_rejects_bad_sources_and_stores_nothing(api, principals):
    alice = principals["alice"]
    sim = create_with_config(api, alice)

    outcome = update(api, alice, sim.id, valid_config("New"), sources=_bad_sources())
    too_many = update(
        api,
        alice,
        sim.id,
        valid_config("New"),
        sources=[config_pb2.Source(uri=f"u{i}") for i in range(101)],
    )

    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == BAD_SOURCE_PATHS
    assert too_many.code == grpc.StatusCode.INVALID_ARGUMENT
    assert too_many.violations == ["sources"]
    assert get_config(api, alice, sim.id).revision == 1
