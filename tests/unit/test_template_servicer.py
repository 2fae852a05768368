"""TemplateService through the servicers on a real SQLite database."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2
from simulation.v1 import config_pb2, simulation_pb2, template_pb2
from simulation.v1 import config_service_pb2 as cpb
from simulation.v1 import template_service_pb2 as tpb

from service.api.config_service import ConfigServicer
from service.api.scenario_service import ScenarioServicer
from service.api.simulation_service import SimulationServicer
from service.api.template_service import TemplateServicer
from service.app.configs import ConfigOperations
from service.app.scenarios import ScenarioOperations
from service.app.simulations import SimulationOperations
from service.app.templates import TemplateOperations
from service.domain.presets import presets
from tests.harness import ServicerHarness
from tests.unit.simulation_api import (
    CONFIG_SERVICE,
    SCENARIO_SERVICE,
    SIMULATION_SERVICE,
    create_with_config,
    get_config,
    get_simulation,
    valid_config,
)

TEMPLATE_SERVICE = tpb.DESCRIPTOR.services_by_name["TemplateService"]
Origin = config_pb2.ConfigRevision.Origin


@pytest.fixture
def api(database, principals):
    simulations = SimulationOperations(database)
    return ServicerHarness(
        {
            CONFIG_SERVICE: ConfigServicer(ConfigOperations(database), simulations),
            SIMULATION_SERVICE: SimulationServicer(simulations),
            SCENARIO_SERVICE: ScenarioServicer(ScenarioOperations(database)),
            TEMPLATE_SERVICE: TemplateServicer(TemplateOperations(database), simulations),
        }
    )


def create(api, who, name="Market", config=None, **fields) -> template_pb2.Template:
    request_fields = {k: fields.pop(k) for k in ("request_id",) if k in fields}
    outcome = api.call(
        "CreateTemplate",
        tpb.CreateTemplateRequest(
            template=template_pb2.Template(
                display_name=name, config=config or valid_config(), **fields
            ),
            **request_fields,
        ),
        who,
    )
    assert outcome.ok, (outcome.details, outcome.violations)
    return outcome.response.template


def get(api, who, template_id, revision=0):
    return api.call(
        "GetTemplate", tpb.GetTemplateRequest(template_id=template_id, revision=revision), who
    )


def from_template(api, who, template_id, name="From template", **fields):
    return api.call(
        "CreateSimulationFromTemplate",
        tpb.CreateSimulationFromTemplateRequest(
            template_id=template_id, simulation=simulation_pb2.Simulation(name=name), **fields
        ),
        who,
    )


def update(api, who, template, paths, etag=""):
    return api.call(
        "UpdateTemplate",
        tpb.UpdateTemplateRequest(
            template=template_pb2.Template(
                id=template.id,
                display_name=template.display_name,
                description=template.description,
                labels=template.labels,
                config=template.config,
                parameters=template.parameters,
                etag=etag,
            ),
            update_mask=field_mask_pb2.FieldMask(paths=paths),
        ),
        who,
    )


# --- CRUD ----------------------------------------------------------------------------------


def test_create_stores_a_validated_template_at_revision_1(api, principals):
    template = create(
        api,
        principals["alice"],
        description="two traders",
        labels={"team": "risk"},
        parameters=config_pb2.ArchitectParameters(num_agents=2, max_turns=10),
    )

    assert template.id and template.etag and template.revision == 1
    assert not template.builtin
    assert template.config == valid_config()
    assert template.parameters.num_agents == 2
    fetched = get(api, principals["alice"], template.id)
    assert fetched.ok and fetched.response.template == template


def test_create_lists_every_violation_of_the_template_and_its_config(api, principals):
    broken = valid_config(max_turns=2)  # the event at turn 3 is now out of range
    broken.agents[0].id = "Bad Id"

    outcome = api.call(
        "CreateTemplate",
        tpb.CreateTemplateRequest(template=template_pb2.Template(display_name="", config=broken)),
        principals["alice"],
    )

    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "template.display_name" in outcome.violations
    assert "template.config.agents[0].id" in outcome.violations
    assert "template.config.events[0].turn" in outcome.violations


def test_create_needs_a_config(api, principals):
    outcome = api.call(
        "CreateTemplate",
        tpb.CreateTemplateRequest(template=template_pb2.Template(display_name="No config")),
        principals["alice"],
    )

    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.violations == ["template.config"]


def test_create_with_a_request_id_is_idempotent(api, principals):
    first = create(api, principals["alice"], request_id="t-1")
    again = create(api, principals["alice"], request_id="t-1")

    assert again.id == first.id
    reused = api.call(
        "CreateTemplate",
        tpb.CreateTemplateRequest(
            template=template_pb2.Template(display_name="Other", config=valid_config()),
            request_id="t-1",
        ),
        principals["alice"],
    )
    assert reused.reason == "REQUEST_ID_REUSED"


def test_a_taken_display_name_is_already_exists(api, principals):
    create(api, principals["alice"], "Market")

    outcome = api.call(
        "CreateTemplate",
        tpb.CreateTemplateRequest(
            template=template_pb2.Template(display_name="Market", config=valid_config())
        ),
        principals["alice"],
    )

    assert outcome.code == grpc.StatusCode.ALREADY_EXISTS
    create(api, principals["bob"], "Market")


def test_changing_the_config_makes_a_new_revision_and_keeps_the_old_one(api, principals):
    alice = principals["alice"]
    template = create(api, alice)
    template.config.max_turns = 30

    outcome = update(api, alice, template, ["config"], etag=template.etag)

    assert outcome.ok, (outcome.details, outcome.violations)
    assert outcome.response.template.revision == 2
    assert get(api, alice, template.id).response.template.config.max_turns == 30
    assert get(api, alice, template.id, revision=1).response.template.config.max_turns == 10
    assert get(api, alice, template.id, revision=3).code == grpc.StatusCode.NOT_FOUND


def test_changing_labels_keeps_the_revision(api, principals):
    alice = principals["alice"]
    template = create(api, alice)
    template.labels["team"] = "ops"

    outcome = update(api, alice, template, ["labels"])

    assert outcome.ok
    assert outcome.response.template.revision == 1
    assert dict(outcome.response.template.labels) == {"team": "ops"}


def test_a_stale_etag_is_aborted_and_an_invalid_config_is_refused(api, principals):
    alice = principals["alice"]
    template = create(api, alice)
    assert update(api, alice, template, ["description"], etag="stale").code == (
        grpc.StatusCode.ABORTED
    )
    template.config.max_turns = 0

    outcome = update(api, alice, template, ["config"])

    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "template.config.max_turns" in outcome.violations
    assert get(api, alice, template.id).response.template.revision == 1


def test_delete_and_undelete(api, principals):
    alice = principals["alice"]
    template = create(api, alice)

    deleted = api.call("DeleteTemplate", tpb.DeleteTemplateRequest(template_id=template.id), alice)

    assert deleted.ok and deleted.response.template.HasField("delete_time")
    listed = api.call("ListTemplates", tpb.ListTemplatesRequest(), alice)
    assert list(listed.response.templates) == []
    shown = api.call("ListTemplates", tpb.ListTemplatesRequest(show_deleted=True), alice)
    assert [t.id for t in shown.response.templates] == [template.id]
    assert from_template(api, alice, template.id).code == grpc.StatusCode.NOT_FOUND
    restored = api.call(
        "UndeleteTemplate", tpb.UndeleteTemplateRequest(template_id=template.id), alice
    )
    assert restored.ok and not restored.response.template.HasField("delete_time")


def test_list_pages_and_filters(api, principals):
    alice = principals["alice"]
    for name in ("delta", "alpha", "charlie", "bravo"):
        create(api, alice, name, labels={"kind": name[0]})

    first = api.call(
        "ListTemplates", tpb.ListTemplatesRequest(page_size=3, order_by="display_name"), alice
    )
    rest = api.call(
        "ListTemplates",
        tpb.ListTemplatesRequest(
            page_size=3, order_by="display_name", page_token=first.response.next_page_token
        ),
        alice,
    )
    labelled = api.call(
        "ListTemplates", tpb.ListTemplatesRequest(filter='labels.kind = "c"'), alice
    )

    names = [t.display_name for t in [*first.response.templates, *rest.response.templates]]
    assert names == ["alpha", "bravo", "charlie", "delta"]
    assert rest.response.next_page_token == ""
    assert [t.display_name for t in labelled.response.templates] == ["charlie"]


# --- Presets -------------------------------------------------------------------------------


def test_every_tenant_reads_the_built_in_presets(api, principals):
    for who in (principals["alice"], principals["bob"], principals["reader"]):
        listed = api.call("ListTemplates", tpb.ListTemplatesRequest(filter="builtin = true"), who)
        assert [t.id for t in listed.response.templates] == list(presets())
        assert all(t.builtin and t.revision == 1 for t in listed.response.templates)
    fetched = get(api, principals["bob"], "preset-market-day")
    assert fetched.ok and fetched.response.template.display_name == "Market day"


def test_presets_cannot_be_changed_or_deleted(api, principals):
    preset = get(api, principals["alice"], "preset-market-day").response.template

    assert update(api, principals["alice"], preset, ["description"]).code == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    deleted = api.call(
        "DeleteTemplate", tpb.DeleteTemplateRequest(template_id=preset.id), principals["alice"]
    )
    assert deleted.code == grpc.StatusCode.FAILED_PRECONDITION
    assert deleted.reason == "TEMPLATE_BUILTIN"


def test_an_unknown_preset_is_not_found(api, principals):
    assert get(api, principals["alice"], "preset-nothing").code == grpc.StatusCode.NOT_FOUND


# --- CreateSimulationFromTemplate ----------------------------------------------------------


def test_a_simulation_from_a_template_records_origin_and_template_revision(api, principals):
    alice = principals["alice"]
    template = create(api, alice, parameters=config_pb2.ArchitectParameters(num_agents=2))

    outcome = from_template(api, alice, template.id)

    assert outcome.ok, (outcome.details, outcome.violations)
    simulation = outcome.response.simulation
    assert simulation.status == simulation_pb2.Simulation.Status.COMPLETED_CONFIG
    config = get_config(api, alice, simulation.id)
    assert config.config == template.config
    assert [s.uri for s in config.sources] == [f"templates/{template.id}/revisions/1"]
    revisions = api.call(
        "ListConfigRevisions",
        cpb.ListConfigRevisionsRequest(simulation_id=simulation.id),
        alice,
    )
    assert revisions.response.revisions[0].origin == Origin.TEMPLATE


def test_a_simulation_from_a_template_answers_with_the_sources_get_returns(api, principals):
    alice = principals["alice"]
    template = create(api, alice)

    outcome = from_template(api, alice, template.id)

    assert outcome.ok, (outcome.details, outcome.violations)
    answered = outcome.response.simulation
    assert [s.uri for s in answered.sources] == [f"templates/{template.id}/revisions/1"]
    assert answered == get_simulation(api, alice, answered.id)


def test_overrides_replace_only_the_masked_fields_and_the_result_is_validated(api, principals):
    alice = principals["alice"]
    template = create(api, alice)

    outcome = from_template(
        api,
        alice,
        template.id,
        config=config_pb2.SimulationConfig(max_turns=40, title="ignored"),
        update_mask=field_mask_pb2.FieldMask(paths=["max_turns"]),
    )
    assert outcome.ok, outcome.violations
    config = get_config(api, alice, outcome.response.simulation.id).config
    assert (config.max_turns, config.title) == (40, template.config.title)

    invalid = from_template(
        api,
        alice,
        template.id,
        config=config_pb2.SimulationConfig(max_turns=2),
        update_mask=field_mask_pb2.FieldMask(paths=["max_turns"]),
    )
    assert invalid.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "config.events[0].turn" in invalid.violations
    unknown = from_template(
        api, alice, template.id, update_mask=field_mask_pb2.FieldMask(paths=["nope"])
    )
    assert unknown.violations == ["update_mask.paths[0]"]


def test_editing_a_template_leaves_simulations_made_from_it_alone(api, principals):
    alice = principals["alice"]
    template = create(api, alice)
    made = from_template(api, alice, template.id).response.simulation
    template.config.max_turns = 50
    assert update(api, alice, template, ["config"]).ok

    assert get_config(api, alice, made.id).config.max_turns == 10
    newer = from_template(api, alice, template.id).response.simulation
    assert get_config(api, alice, newer.id).config.max_turns == 50
    older = from_template(api, alice, template.id, template_revision=1).response.simulation
    assert get_config(api, alice, older.id).config.max_turns == 10


def test_a_simulation_can_be_made_from_a_preset(api, principals):
    outcome = from_template(api, principals["bob"], "preset-town-hall")

    assert outcome.ok, outcome.details
    config = get_config(api, principals["bob"], outcome.response.simulation.id)
    assert config.config.title == "Town hall"


# --- SaveAsTemplate ------------------------------------------------------------------------


def test_save_as_template_takes_the_current_config_or_a_given_revision(api, principals):
    alice = principals["alice"]
    simulation = create_with_config(api, alice, config=valid_config(max_turns=10))
    api.call(
        "UpdateConfig",
        cpb.UpdateConfigRequest(
            simulation_id=simulation.id,
            config=config_pb2.SimulationConfig(max_turns=25),
            update_mask=field_mask_pb2.FieldMask(paths=["max_turns"]),
        ),
        alice,
    )

    def save(name, revision=0):
        outcome = api.call(
            "SaveAsTemplate",
            tpb.SaveAsTemplateRequest(
                simulation_id=simulation.id,
                revision=revision,
                template=template_pb2.Template(display_name=name),
            ),
            alice,
        )
        assert outcome.ok, (outcome.details, outcome.violations)
        return outcome.response.template

    assert save("current").config.max_turns == 25
    assert save("first", revision=1).config.max_turns == 10


# --- Isolation -----------------------------------------------------------------------------


def test_another_tenants_templates_and_simulations_are_not_found(api, principals):
    alice, bob = principals["alice"], principals["bob"]
    template = create(api, alice)
    simulation = create_with_config(api, alice)

    assert get(api, bob, template.id).code == grpc.StatusCode.NOT_FOUND
    assert from_template(api, bob, template.id).code == grpc.StatusCode.NOT_FOUND
    assert update(api, bob, template, ["description"]).code == grpc.StatusCode.NOT_FOUND
    for method, request in (
        ("DeleteTemplate", tpb.DeleteTemplateRequest(template_id=template.id)),
        ("UndeleteTemplate", tpb.UndeleteTemplateRequest(template_id=template.id)),
        (
            "SaveAsTemplate",
            tpb.SaveAsTemplateRequest(
                simulation_id=simulation.id, template=template_pb2.Template(display_name="x")
            ),
        ),
    ):
        assert api.call(method, request, bob).code == grpc.StatusCode.NOT_FOUND, method
    listed = api.call("ListTemplates", tpb.ListTemplatesRequest(), bob)
    assert list(listed.response.templates) == []
