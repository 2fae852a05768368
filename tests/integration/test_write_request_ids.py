"""Every single-resource write takes a request id (AIP-155): a retry never writes twice.

A retry with the same id and arguments answers as the first call did (for a delete: the
same answer, not NOT_FOUND; for a run transition: not FAILED_PRECONDITION), and a reuse
of the id with other arguments is INVALID_ARGUMENT (REQUEST_ID_REUSED). Through a real
server, on both engines.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import struct_pb2
from simulation.v1 import (
    config_pb2,
    config_service_pb2,
    config_service_pb2_grpc,
    scenario_pb2,
    scenario_service_pb2,
    scenario_service_pb2_grpc,
    simulation_pb2,
    simulation_service_pb2,
    simulation_service_pb2_grpc,
    template_pb2,
    template_service_pb2,
    template_service_pb2_grpc,
)

import storage
from service.app import tenants
from service.server import create_server
from service.settings import Settings
from tests.unit.simulation_api import valid_config

QUEUED = simulation_pb2.SimulationEvent.ARCHITECT_QUEUED


@dataclass
class Api:
    scenarios: scenario_service_pb2_grpc.ScenarioServiceStub
    configs: config_service_pb2_grpc.ConfigServiceStub
    simulations: simulation_service_pb2_grpc.SimulationServiceStub
    templates: template_service_pb2_grpc.TemplateServiceStub
    metadata: tuple

    def call(self, stub, method: str, request):
        return getattr(stub, method)(request, metadata=self.metadata, timeout=30)

    def refused(self, stub, method: str, request) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as caught:
            self.call(stub, method, request)
        return caught.value

    def new_scenario(self, name: str) -> scenario_pb2.Scenario:
        return self.call(
            self.scenarios,
            "CreateScenario",
            scenario_service_pb2.CreateScenarioRequest(
                scenario=scenario_pb2.Scenario(display_name=name)
            ),
        ).scenario

    def new_simulation(self, name: str = "retried") -> simulation_pb2.Simulation:
        return self.call(
            self.configs,
            "CreateSimulationWithConfig",
            config_service_pb2.CreateSimulationWithConfigRequest(
                simulation=simulation_pb2.Simulation(name=name), config=valid_config()
            ),
        ).simulation

    def new_template(self, name: str) -> template_pb2.Template:
        return self.call(
            self.templates,
            "CreateTemplate",
            template_service_pb2.CreateTemplateRequest(
                template=template_pb2.Template(display_name=name, config=valid_config())
            ),
        ).template

    def template_names(self) -> list[str]:
        listed = self.call(
            self.templates,
            "ListTemplates",
            template_service_pb2.ListTemplatesRequest(page_size=1000, show_deleted=True),
        )
        return [template.display_name for template in listed.templates]

    def events(self, simulation_id: str) -> list:
        return list(
            self.call(
                self.simulations,
                "ListSimulationEvents",
                simulation_service_pb2.ListSimulationEventsRequest(
                    simulation_id=simulation_id, page_size=1000
                ),
            ).events
        )

    def start(self, simulation_id: str) -> simulation_pb2.Simulation:
        return self.call(
            self.simulations,
            "StartRun",
            simulation_service_pb2.StartRunRequest(simulation_id=simulation_id),
        ).simulation

    def complete(self, simulation_id: str) -> simulation_pb2.Simulation:
        return self.call(
            self.simulations,
            "CompleteRun",
            simulation_service_pb2.CompleteRunRequest(simulation_id=simulation_id),
        ).simulation


def assert_reused(error: grpc.RpcError) -> None:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id" in (error.details() or "")


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request, tmp_path, migrated_sqlite_url):
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = migrated_sqlite_url
    database = storage.Database(url)
    database.migrate()
    tenant = tenants.new_tenant(database, f"write-ids-{tmp_path.name}")
    key = tenants.issue_key(database, tenant.id).secret
    # One architect worker: RunArchitect needs a simulation whose first job is done.
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, architect_workers=1), database=database
    )
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield Api(
        scenario_service_pb2_grpc.ScenarioServiceStub(channel),
        config_service_pb2_grpc.ConfigServiceStub(channel),
        simulation_service_pb2_grpc.SimulationServiceStub(channel),
        template_service_pb2_grpc.TemplateServiceStub(channel),
        (("x-api-key", key),),
    )
    channel.close()
    server.stop(0)
    database.dispose()


# -- ScenarioService ---------------------------------------------------------------------------


def test_a_retried_scenario_update_returns_the_first_result_and_writes_once(api):
    created = api.new_scenario("before")
    request = scenario_service_pb2.UpdateScenarioRequest(
        scenario=scenario_pb2.Scenario(id=created.id, display_name="after", etag=created.etag),
        request_id="update-1",
    )
    first = api.call(api.scenarios, "UpdateScenario", request).scenario
    # The etag sent is stale now: only the request id makes the retry succeed.
    again = api.call(api.scenarios, "UpdateScenario", request).scenario

    assert again.display_name == "after"
    assert again.etag == first.etag != created.etag
    request.scenario.display_name = "other"
    assert_reused(api.refused(api.scenarios, "UpdateScenario", request))


def test_a_retried_scenario_delete_returns_the_deleted_scenario_not_not_found(api):
    created = api.new_scenario("doomed")
    request = scenario_service_pb2.DeleteScenarioRequest(
        scenario_id=created.id, request_id="delete-1"
    )
    first = api.call(api.scenarios, "DeleteScenario", request).scenario
    again = api.call(api.scenarios, "DeleteScenario", request).scenario

    assert first.HasField("delete_time")
    assert again.delete_time == first.delete_time
    assert again.etag == first.etag
    request.force = True
    assert_reused(api.refused(api.scenarios, "DeleteScenario", request))


def test_a_retried_scenario_undelete_returns_the_scenario_not_failed_precondition(api):
    created = api.new_scenario("revived")
    api.call(
        api.scenarios,
        "DeleteScenario",
        scenario_service_pb2.DeleteScenarioRequest(scenario_id=created.id),
    )
    request = scenario_service_pb2.UndeleteScenarioRequest(
        scenario_id=created.id, request_id="undelete-1"
    )
    first = api.call(api.scenarios, "UndeleteScenario", request).scenario
    again = api.call(api.scenarios, "UndeleteScenario", request).scenario

    assert not again.HasField("delete_time")
    assert again.etag == first.etag
    request.etag = "some other etag"
    assert_reused(api.refused(api.scenarios, "UndeleteScenario", request))


# -- SimulationService -------------------------------------------------------------------------


def test_a_retried_simulation_update_returns_the_first_result_and_writes_once(api):
    created = api.new_simulation()
    request = simulation_service_pb2.UpdateSimulationRequest(
        simulation=simulation_pb2.Simulation(id=created.id, name="renamed", etag=created.etag),
        request_id="rename-1",
    )
    first = api.call(api.simulations, "UpdateSimulation", request).simulation
    again = api.call(api.simulations, "UpdateSimulation", request).simulation

    assert again.name == "renamed"
    assert again.etag == first.etag
    changes = [
        e
        for e in api.events(created.id)
        if e.kind == simulation_pb2.SimulationEvent.METADATA_CHANGED
    ]
    assert len(changes) == 1
    request.simulation.name = "renamed again"
    assert_reused(api.refused(api.simulations, "UpdateSimulation", request))


def test_a_retried_simulation_delete_answers_again_not_not_found(api):
    created = api.new_simulation()
    request = simulation_service_pb2.DeleteSimulationRequest(
        simulation_id=created.id, request_id="delete-sim-1"
    )
    api.call(api.simulations, "DeleteSimulation", request)
    api.call(api.simulations, "DeleteSimulation", request)

    gone = api.refused(
        api.simulations,
        "GetSimulation",
        simulation_service_pb2.GetSimulationRequest(simulation_id=created.id),
    )
    assert gone.code() == grpc.StatusCode.NOT_FOUND
    request.etag = "some other etag"
    assert_reused(api.refused(api.simulations, "DeleteSimulation", request))


def test_a_retried_start_run_returns_the_running_simulation_and_moves_it_once(api):
    created = api.new_simulation()
    request = simulation_service_pb2.StartRunRequest(simulation_id=created.id, request_id="start-1")
    first = api.call(api.simulations, "StartRun", request).simulation
    events = len(api.events(created.id))
    again = api.call(api.simulations, "StartRun", request).simulation

    assert again.status == simulation_pb2.Simulation.RUNNING
    assert again.etag == first.etag
    assert len(api.events(created.id)) == events
    request.etag = first.etag
    assert_reused(api.refused(api.simulations, "StartRun", request))


def test_a_retried_complete_run_returns_the_completed_simulation_and_moves_it_once(api):
    created = api.new_simulation()
    api.start(created.id)
    results = struct_pb2.Struct()
    results.update({"score": 3})
    request = simulation_service_pb2.CompleteRunRequest(
        simulation_id=created.id, results=results, request_id="complete-1"
    )
    first = api.call(api.simulations, "CompleteRun", request).simulation
    events = len(api.events(created.id))
    again = api.call(api.simulations, "CompleteRun", request).simulation

    assert again.status == simulation_pb2.Simulation.COMPLETED
    assert again.etag == first.etag
    assert dict(again.results) == {"score": 3}
    assert len(api.events(created.id)) == events
    request.results.update({"score": 4})
    assert_reused(api.refused(api.simulations, "CompleteRun", request))


def test_a_retried_fail_run_returns_the_failed_simulation_and_moves_it_once(api):
    created = api.new_simulation()
    api.start(created.id)
    request = simulation_service_pb2.FailRunRequest(
        simulation_id=created.id, error="simulator crashed", request_id="fail-1"
    )
    first = api.call(api.simulations, "FailRun", request).simulation
    events = len(api.events(created.id))
    again = api.call(api.simulations, "FailRun", request).simulation

    assert again.status == simulation_pb2.Simulation.FAILED
    assert again.etag == first.etag
    assert len(api.events(created.id)) == events
    request.error = "something else"
    assert_reused(api.refused(api.simulations, "FailRun", request))


def test_a_retried_attach_analysis_returns_the_first_result_and_writes_once(api):
    created = api.new_simulation()
    api.start(created.id)
    completed = api.complete(created.id)
    analysis = struct_pb2.Struct()
    analysis.update({"summary": "fine"})
    request = simulation_service_pb2.AttachAnalysisRequest(
        simulation_id=created.id, analysis=analysis, etag=completed.etag, request_id="analysis-1"
    )
    first = api.call(api.simulations, "AttachAnalysis", request).simulation
    # The etag sent is stale now: only the request id makes the retry succeed.
    again = api.call(api.simulations, "AttachAnalysis", request).simulation

    assert again.etag == first.etag
    attached = [
        e
        for e in api.events(created.id)
        if e.kind == simulation_pb2.SimulationEvent.ANALYSIS_ATTACHED
    ]
    assert len(attached) == 1
    request.analysis.update({"summary": "other"})
    assert_reused(api.refused(api.simulations, "AttachAnalysis", request))


# -- ConfigService -----------------------------------------------------------------------------


def test_a_retried_run_architect_returns_the_simulation_and_queues_one_job(api):
    created = api.call(
        api.simulations,
        "CreateSimulation",
        simulation_service_pb2.CreateSimulationRequest(
            simulation=simulation_pb2.Simulation(name="prompted", prompt="a small market"),
            parameters=config_pb2.ArchitectParameters(num_agents=2, max_turns=5),
            wait=True,
        ),
    ).simulation
    assert created.status == simulation_pb2.Simulation.COMPLETED_CONFIG
    queued_before = sum(e.kind == QUEUED for e in api.events(created.id))
    request = config_service_pb2.RunArchitectRequest(
        simulation_id=created.id,
        parameters=config_pb2.ArchitectParameters(num_agents=3, max_turns=5),
        request_id="rerun-1",
    )
    first = api.call(api.configs, "RunArchitect", request).simulation
    # While the job is queued or running a second run would be FAILED_PRECONDITION.
    again = api.call(api.configs, "RunArchitect", request).simulation

    assert again.id == first.id
    assert sum(e.kind == QUEUED for e in api.events(created.id)) == queued_before + 1
    request.parameters.num_agents = 4
    assert_reused(api.refused(api.configs, "RunArchitect", request))


def test_a_request_id_that_is_not_printable_ascii_is_invalid_argument(api):
    created = api.new_simulation()
    error = api.refused(
        api.simulations,
        "StartRun",
        simulation_service_pb2.StartRunRequest(simulation_id=created.id, request_id="has space"),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


# -- TemplateService ---------------------------------------------------------------------------


def test_a_retried_template_update_returns_the_first_revision_and_writes_no_other(api):
    created = api.new_template("before")
    edited = valid_config()
    edited.title = "edited once"
    request = template_service_pb2.UpdateTemplateRequest(
        template=template_pb2.Template(id=created.id, config=edited, etag=created.etag),
        request_id="template-update-1",
    )
    first = api.call(api.templates, "UpdateTemplate", request).template
    # The etag sent is stale now: only the request id makes the retry succeed.
    again = api.call(api.templates, "UpdateTemplate", request).template

    assert first.revision == again.revision == 2
    assert again.etag == first.etag
    request.template.config.title = "edited twice"
    assert_reused(api.refused(api.templates, "UpdateTemplate", request))


def test_a_retried_template_delete_returns_the_deleted_template_not_not_found(api):
    created = api.new_template("doomed")
    request = template_service_pb2.DeleteTemplateRequest(
        template_id=created.id, request_id="template-delete-1"
    )
    first = api.call(api.templates, "DeleteTemplate", request).template
    again = api.call(api.templates, "DeleteTemplate", request).template

    assert again.HasField("delete_time")
    assert again.etag == first.etag
    request.etag = "some other etag"
    assert_reused(api.refused(api.templates, "DeleteTemplate", request))


def test_a_retried_template_undelete_returns_the_template_not_failed_precondition(api):
    created = api.new_template("revived")
    api.call(
        api.templates,
        "DeleteTemplate",
        template_service_pb2.DeleteTemplateRequest(template_id=created.id),
    )
    request = template_service_pb2.UndeleteTemplateRequest(
        template_id=created.id, request_id="template-undelete-1"
    )
    first = api.call(api.templates, "UndeleteTemplate", request).template
    again = api.call(api.templates, "UndeleteTemplate", request).template

    assert not again.HasField("delete_time")
    assert again.etag == first.etag
    request.etag = "some other etag"
    assert_reused(api.refused(api.templates, "UndeleteTemplate", request))


def test_a_retried_save_as_template_returns_the_first_template_and_creates_one(api):
    simulation = api.new_simulation()
    request = template_service_pb2.SaveAsTemplateRequest(
        simulation_id=simulation.id,
        template=template_pb2.Template(display_name="saved"),
        request_id="save-as-1",
    )
    first = api.call(api.templates, "SaveAsTemplate", request).template
    again = api.call(api.templates, "SaveAsTemplate", request).template

    assert again.id == first.id
    assert api.template_names().count("saved") == 1
    request.template.display_name = "saved again"
    assert_reused(api.refused(api.templates, "SaveAsTemplate", request))
