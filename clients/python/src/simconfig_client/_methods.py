"""One typed method per RPC. Made by tools/generate_client.py from the protos: do not
edit; run `make generate`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from simconfig_client.v1 import (
    config_pb2,
    config_service_pb2,
    scenario_pb2,
    scenario_service_pb2,
    simulation_pb2,
    simulation_service_pb2,
    template_pb2,
    template_service_pb2,
    webhook_service_pb2,
)

# The public services, whose every method the client's retry policy covers.
SERVICES = (
    "simulation.v1.ConfigService",
    "simulation.v1.ScenarioService",
    "simulation.v1.SimulationService",
    "simulation.v1.TemplateService",
    "simulation.v1.WebhookService",
)


class GeneratedMethods:
    """The RPCs of every public service; ``Client`` supplies ``_unary`` and ``_stream``."""

    def _request(self, request, fields, request_type):
        raise NotImplementedError

    def _unary(self, path, request, fields, timeout, request_type, response_type):
        raise NotImplementedError

    def _stream(self, path, request, fields, timeout, request_type, response_type):
        raise NotImplementedError

    def get_config(
        self,
        request: config_service_pb2.GetConfigRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> config_service_pb2.GetConfigResponse:
        """ConfigService.GetConfig: Gets the current config, or revision `revision`.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.ConfigService/GetConfig",
            request,
            fields,
            timeout,
            config_service_pb2.GetConfigRequest,
            config_service_pb2.GetConfigResponse,
        )

    def update_config(
        self,
        request: config_service_pb2.UpdateConfigRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> config_service_pb2.UpdateConfigResponse:
        """ConfigService.UpdateConfig: Replaces the config (or the fields in `update_mask`),
        writing a new revision with origin EDIT.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.ConfigService/UpdateConfig",
            request,
            fields,
            timeout,
            config_service_pb2.UpdateConfigRequest,
            config_service_pb2.UpdateConfigResponse,
        )

    def validate_config(
        self,
        request: config_service_pb2.ValidateConfigRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> config_service_pb2.ValidateConfigResponse:
        """ConfigService.ValidateConfig: Checks a config with the same validator as every write,
        storing nothing.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.ConfigService/ValidateConfig",
            request,
            fields,
            timeout,
            config_service_pb2.ValidateConfigRequest,
            config_service_pb2.ValidateConfigResponse,
        )

    def run_architect(
        self,
        request: config_service_pb2.RunArchitectRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> config_service_pb2.RunArchitectResponse:
        """ConfigService.RunArchitect: Re-runs the architect on the simulation's prompt.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.ConfigService/RunArchitect",
            request,
            fields,
            timeout,
            config_service_pb2.RunArchitectRequest,
            config_service_pb2.RunArchitectResponse,
        )

    def create_simulation_with_config(
        self,
        request: config_service_pb2.CreateSimulationWithConfigRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> config_service_pb2.CreateSimulationWithConfigResponse:
        """ConfigService.CreateSimulationWithConfig: Creates a simulation from a caller-supplied
        config, bypassing the architect.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.ConfigService/CreateSimulationWithConfig",
            request,
            fields,
            timeout,
            config_service_pb2.CreateSimulationWithConfigRequest,
            config_service_pb2.CreateSimulationWithConfigResponse,
        )

    def list_config_revisions(
        self,
        request: config_service_pb2.ListConfigRevisionsRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> config_service_pb2.ListConfigRevisionsResponse:
        """ConfigService.ListConfigRevisions: Lists a simulation's config revisions, newest first.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.ConfigService/ListConfigRevisions",
            request,
            fields,
            timeout,
            config_service_pb2.ListConfigRevisionsRequest,
            config_service_pb2.ListConfigRevisionsResponse,
        )

    def iter_config_revisions(
        self,
        request: config_service_pb2.ListConfigRevisionsRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> Iterator[config_pb2.ConfigRevision]:
        """Every item of every page of ListConfigRevisions, fetched page by page."""
        page = self._request(request, fields, config_service_pb2.ListConfigRevisionsRequest)
        while True:
            response = self.list_config_revisions(page, timeout=timeout)
            yield from response.revisions
            if not response.next_page_token:
                return
            page.page_token = response.next_page_token

    def rollback_config(
        self,
        request: config_service_pb2.RollbackConfigRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> config_service_pb2.RollbackConfigResponse:
        """ConfigService.RollbackConfig: Makes a new revision (origin ROLLBACK) that copies
        revision `revision`; the status and results change as for UpdateConfig.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.ConfigService/RollbackConfig",
            request,
            fields,
            timeout,
            config_service_pb2.RollbackConfigRequest,
            config_service_pb2.RollbackConfigResponse,
        )

    def diff_config_revisions(
        self,
        request: config_service_pb2.DiffConfigRevisionsRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> config_service_pb2.DiffConfigRevisionsResponse:
        """ConfigService.DiffConfigRevisions: Compares two revisions of a simulation's config: an
        RFC 6902 JSON Patch that turns the `from_revision` config into the `to_revision` one,
        and the field paths it changes in the syntax of validation errors (`agents[2].persona`,
        `environment.parameters["wind"]`).

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.ConfigService/DiffConfigRevisions",
            request,
            fields,
            timeout,
            config_service_pb2.DiffConfigRevisionsRequest,
            config_service_pb2.DiffConfigRevisionsResponse,
        )

    def create_scenario(
        self,
        request: scenario_service_pb2.CreateScenarioRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> scenario_service_pb2.CreateScenarioResponse:
        """ScenarioService.CreateScenario: Creates a scenario.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.ScenarioService/CreateScenario",
            request,
            fields,
            timeout,
            scenario_service_pb2.CreateScenarioRequest,
            scenario_service_pb2.CreateScenarioResponse,
        )

    def get_scenario(
        self,
        request: scenario_service_pb2.GetScenarioRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> scenario_service_pb2.GetScenarioResponse:
        """ScenarioService.GetScenario: Gets a scenario, including a soft-deleted one.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.ScenarioService/GetScenario",
            request,
            fields,
            timeout,
            scenario_service_pb2.GetScenarioRequest,
            scenario_service_pb2.GetScenarioResponse,
        )

    def list_scenarios(
        self,
        request: scenario_service_pb2.ListScenariosRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> scenario_service_pb2.ListScenariosResponse:
        """ScenarioService.ListScenarios: Lists scenarios with keyset pagination.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.ScenarioService/ListScenarios",
            request,
            fields,
            timeout,
            scenario_service_pb2.ListScenariosRequest,
            scenario_service_pb2.ListScenariosResponse,
        )

    def iter_scenarios(
        self,
        request: scenario_service_pb2.ListScenariosRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> Iterator[scenario_pb2.Scenario]:
        """Every item of every page of ListScenarios, fetched page by page."""
        page = self._request(request, fields, scenario_service_pb2.ListScenariosRequest)
        while True:
            response = self.list_scenarios(page, timeout=timeout)
            yield from response.scenarios
            if not response.next_page_token:
                return
            page.page_token = response.next_page_token

    def update_scenario(
        self,
        request: scenario_service_pb2.UpdateScenarioRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> scenario_service_pb2.UpdateScenarioResponse:
        """ScenarioService.UpdateScenario: Updates a scenario's display name, description or
        labels. Retrying with the same `request_id` returns the first call's answer; the same
        `request_id` with other arguments is `INVALID_ARGUMENT` (reason REQUEST_ID_REUSED).

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.ScenarioService/UpdateScenario",
            request,
            fields,
            timeout,
            scenario_service_pb2.UpdateScenarioRequest,
            scenario_service_pb2.UpdateScenarioResponse,
        )

    def delete_scenario(
        self,
        request: scenario_service_pb2.DeleteScenarioRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> scenario_service_pb2.DeleteScenarioResponse:
        """ScenarioService.DeleteScenario: Soft-deletes a scenario.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.ScenarioService/DeleteScenario",
            request,
            fields,
            timeout,
            scenario_service_pb2.DeleteScenarioRequest,
            scenario_service_pb2.DeleteScenarioResponse,
        )

    def undelete_scenario(
        self,
        request: scenario_service_pb2.UndeleteScenarioRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> scenario_service_pb2.UndeleteScenarioResponse:
        """ScenarioService.UndeleteScenario: Restores a soft-deleted scenario (and the simulations
        deleted with it) before its purge time. Retrying with the same `request_id` returns the
        first call's answer; the same `request_id` with other arguments is `INVALID_ARGUMENT`
        (reason REQUEST_ID_REUSED).

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.ScenarioService/UndeleteScenario",
            request,
            fields,
            timeout,
            scenario_service_pb2.UndeleteScenarioRequest,
            scenario_service_pb2.UndeleteScenarioResponse,
        )

    def batch_create_scenarios(
        self,
        request: scenario_service_pb2.BatchCreateScenariosRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> scenario_service_pb2.BatchCreateScenariosResponse:
        """ScenarioService.BatchCreateScenarios: Creates up to 1,000 scenarios in one transaction
        (AIP-233): all of them or none.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.ScenarioService/BatchCreateScenarios",
            request,
            fields,
            timeout,
            scenario_service_pb2.BatchCreateScenariosRequest,
            scenario_service_pb2.BatchCreateScenariosResponse,
        )

    def batch_delete_scenarios(
        self,
        request: scenario_service_pb2.BatchDeleteScenariosRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> scenario_service_pb2.BatchDeleteScenariosResponse:
        """ScenarioService.BatchDeleteScenarios: Soft-deletes up to 1,000 scenarios in one
        transaction (AIP-235): all of them or none, each as DeleteScenario would (its `etag` and
        `force`). Retrying with the same `request_id` returns the scenarios the first call
        deleted, as they are now.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.ScenarioService/BatchDeleteScenarios",
            request,
            fields,
            timeout,
            scenario_service_pb2.BatchDeleteScenariosRequest,
            scenario_service_pb2.BatchDeleteScenariosResponse,
        )

    def create_simulation(
        self,
        request: simulation_service_pb2.CreateSimulationRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> simulation_service_pb2.CreateSimulationResponse:
        """SimulationService.CreateSimulation: Creates a simulation from a prompt and queues the
        architect to write its config.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.SimulationService/CreateSimulation",
            request,
            fields,
            timeout,
            simulation_service_pb2.CreateSimulationRequest,
            simulation_service_pb2.CreateSimulationResponse,
        )

    def get_simulation(
        self,
        request: simulation_service_pb2.GetSimulationRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> simulation_service_pb2.GetSimulationResponse:
        """SimulationService.GetSimulation: Gets a simulation.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.SimulationService/GetSimulation",
            request,
            fields,
            timeout,
            simulation_service_pb2.GetSimulationRequest,
            simulation_service_pb2.GetSimulationResponse,
        )

    def list_simulations(
        self,
        request: simulation_service_pb2.ListSimulationsRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> simulation_service_pb2.ListSimulationsResponse:
        """SimulationService.ListSimulations: Lists simulations with keyset pagination.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.SimulationService/ListSimulations",
            request,
            fields,
            timeout,
            simulation_service_pb2.ListSimulationsRequest,
            simulation_service_pb2.ListSimulationsResponse,
        )

    def iter_simulations(
        self,
        request: simulation_service_pb2.ListSimulationsRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> Iterator[simulation_pb2.Simulation]:
        """Every item of every page of ListSimulations, fetched page by page."""
        page = self._request(request, fields, simulation_service_pb2.ListSimulationsRequest)
        while True:
            response = self.list_simulations(page, timeout=timeout)
            yield from response.simulations
            if not response.next_page_token:
                return
            page.page_token = response.next_page_token

    def update_simulation(
        self,
        request: simulation_service_pb2.UpdateSimulationRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> simulation_service_pb2.UpdateSimulationResponse:
        """SimulationService.UpdateSimulation: Renames a simulation, changes its labels, or moves
        it to another scenario of the same tenant. Retrying with the same `request_id` returns
        the first call's answer; the same `request_id` with other arguments is
        `INVALID_ARGUMENT` (reason REQUEST_ID_REUSED).

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.SimulationService/UpdateSimulation",
            request,
            fields,
            timeout,
            simulation_service_pb2.UpdateSimulationRequest,
            simulation_service_pb2.UpdateSimulationResponse,
        )

    def delete_simulation(
        self,
        request: simulation_service_pb2.DeleteSimulationRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> simulation_service_pb2.DeleteSimulationResponse:
        """SimulationService.DeleteSimulation: Deletes a simulation with its revisions and audit
        trail. Retrying with the same `request_id` returns the first call's answer; the same
        `request_id` with other arguments is `INVALID_ARGUMENT` (reason REQUEST_ID_REUSED).

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.SimulationService/DeleteSimulation",
            request,
            fields,
            timeout,
            simulation_service_pb2.DeleteSimulationRequest,
            simulation_service_pb2.DeleteSimulationResponse,
        )

    def start_run(
        self,
        request: simulation_service_pb2.StartRunRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> simulation_service_pb2.StartRunResponse:
        """SimulationService.StartRun: Marks the start of a run: COMPLETED_CONFIG -> RUNNING.
        Retrying with the same `request_id` returns the first call's answer; the same
        `request_id` with other arguments is `INVALID_ARGUMENT` (reason REQUEST_ID_REUSED).

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.SimulationService/StartRun",
            request,
            fields,
            timeout,
            simulation_service_pb2.StartRunRequest,
            simulation_service_pb2.StartRunResponse,
        )

    def complete_run(
        self,
        request: simulation_service_pb2.CompleteRunRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> simulation_service_pb2.CompleteRunResponse:
        """SimulationService.CompleteRun: Stores the run's results: RUNNING -> COMPLETED. Retrying
        with the same `request_id` returns the first call's answer; the same `request_id` with
        other arguments is `INVALID_ARGUMENT` (reason REQUEST_ID_REUSED).

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.SimulationService/CompleteRun",
            request,
            fields,
            timeout,
            simulation_service_pb2.CompleteRunRequest,
            simulation_service_pb2.CompleteRunResponse,
        )

    def fail_run(
        self,
        request: simulation_service_pb2.FailRunRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> simulation_service_pb2.FailRunResponse:
        """SimulationService.FailRun: Records a failed run: RUNNING (or any non-final status) ->
        FAILED. Retrying with the same `request_id` returns the first call's answer; the same
        `request_id` with other arguments is `INVALID_ARGUMENT` (reason REQUEST_ID_REUSED).

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.SimulationService/FailRun",
            request,
            fields,
            timeout,
            simulation_service_pb2.FailRunRequest,
            simulation_service_pb2.FailRunResponse,
        )

    def attach_analysis(
        self,
        request: simulation_service_pb2.AttachAnalysisRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> simulation_service_pb2.AttachAnalysisResponse:
        """SimulationService.AttachAnalysis: Attaches an analysis to a completed run. Retrying with
        the same `request_id` returns the first call's answer; the same `request_id` with other
        arguments is `INVALID_ARGUMENT` (reason REQUEST_ID_REUSED).

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.SimulationService/AttachAnalysis",
            request,
            fields,
            timeout,
            simulation_service_pb2.AttachAnalysisRequest,
            simulation_service_pb2.AttachAnalysisResponse,
        )

    def list_simulation_events(
        self,
        request: simulation_service_pb2.ListSimulationEventsRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> simulation_service_pb2.ListSimulationEventsResponse:
        """SimulationService.ListSimulationEvents: Lists a simulation's audit trail, oldest first:
        every status transition and config change.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.SimulationService/ListSimulationEvents",
            request,
            fields,
            timeout,
            simulation_service_pb2.ListSimulationEventsRequest,
            simulation_service_pb2.ListSimulationEventsResponse,
        )

    def iter_simulation_events(
        self,
        request: simulation_service_pb2.ListSimulationEventsRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> Iterator[simulation_pb2.SimulationEvent]:
        """Every item of every page of ListSimulationEvents, fetched page by page."""
        page = self._request(request, fields, simulation_service_pb2.ListSimulationEventsRequest)
        while True:
            response = self.list_simulation_events(page, timeout=timeout)
            yield from response.events
            if not response.next_page_token:
                return
            page.page_token = response.next_page_token

    def batch_get_simulations(
        self,
        request: simulation_service_pb2.BatchGetSimulationsRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> simulation_service_pb2.BatchGetSimulationsResponse:
        """SimulationService.BatchGetSimulations: Gets up to 1,000 simulations by id in one call
        (AIP-231), in the order asked (an id asked twice is returned twice).

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.SimulationService/BatchGetSimulations",
            request,
            fields,
            timeout,
            simulation_service_pb2.BatchGetSimulationsRequest,
            simulation_service_pb2.BatchGetSimulationsResponse,
        )

    def batch_move_simulations(
        self,
        request: simulation_service_pb2.BatchMoveSimulationsRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> simulation_service_pb2.BatchMoveSimulationsResponse:
        """SimulationService.BatchMoveSimulations: Moves up to 1,000 simulations into one scenario,
        or out of any scenario when `scenario_id` is empty, in one transaction: all of them or
        none. Each moved simulation gets a METADATA_CHANGED event, as UpdateSimulation gives;
        one already there is left unchanged.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.SimulationService/BatchMoveSimulations",
            request,
            fields,
            timeout,
            simulation_service_pb2.BatchMoveSimulationsRequest,
            simulation_service_pb2.BatchMoveSimulationsResponse,
        )

    def watch_events(
        self,
        request: simulation_service_pb2.WatchEventsRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> Iterator[simulation_service_pb2.WatchEventsResponse]:
        """SimulationService.WatchEvents: Streams the tenant's events as they are committed, oldest
        first: every status transition, config change and architect result of the tenant's
        simulations, optionally narrowed to one simulation, one scenario or some kinds.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._stream(
            "/simulation.v1.SimulationService/WatchEvents",
            request,
            fields,
            timeout,
            simulation_service_pb2.WatchEventsRequest,
            simulation_service_pb2.WatchEventsResponse,
        )

    def create_template(
        self,
        request: template_service_pb2.CreateTemplateRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> template_service_pb2.CreateTemplateResponse:
        """TemplateService.CreateTemplate: Creates a template at revision 1.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.TemplateService/CreateTemplate",
            request,
            fields,
            timeout,
            template_service_pb2.CreateTemplateRequest,
            template_service_pb2.CreateTemplateResponse,
        )

    def get_template(
        self,
        request: template_service_pb2.GetTemplateRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> template_service_pb2.GetTemplateResponse:
        """TemplateService.GetTemplate: Gets a template (a soft-deleted one too) or a built-in
        preset, at its current revision or the `revision` asked for.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.TemplateService/GetTemplate",
            request,
            fields,
            timeout,
            template_service_pb2.GetTemplateRequest,
            template_service_pb2.GetTemplateResponse,
        )

    def list_templates(
        self,
        request: template_service_pb2.ListTemplatesRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> template_service_pb2.ListTemplatesResponse:
        """TemplateService.ListTemplates: Lists the tenant's templates with keyset pagination; with
        the filter `builtin = true`, the built-in presets instead.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.TemplateService/ListTemplates",
            request,
            fields,
            timeout,
            template_service_pb2.ListTemplatesRequest,
            template_service_pb2.ListTemplatesResponse,
        )

    def iter_templates(
        self,
        request: template_service_pb2.ListTemplatesRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> Iterator[template_pb2.Template]:
        """Every item of every page of ListTemplates, fetched page by page."""
        page = self._request(request, fields, template_service_pb2.ListTemplatesRequest)
        while True:
            response = self.list_templates(page, timeout=timeout)
            yield from response.templates
            if not response.next_page_token:
                return
            page.page_token = response.next_page_token

    def update_template(
        self,
        request: template_service_pb2.UpdateTemplateRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> template_service_pb2.UpdateTemplateResponse:
        """TemplateService.UpdateTemplate: Updates a template's display name, description, labels,
        config or parameters.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.TemplateService/UpdateTemplate",
            request,
            fields,
            timeout,
            template_service_pb2.UpdateTemplateRequest,
            template_service_pb2.UpdateTemplateResponse,
        )

    def delete_template(
        self,
        request: template_service_pb2.DeleteTemplateRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> template_service_pb2.DeleteTemplateResponse:
        """TemplateService.DeleteTemplate: Soft-deletes a template.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.TemplateService/DeleteTemplate",
            request,
            fields,
            timeout,
            template_service_pb2.DeleteTemplateRequest,
            template_service_pb2.DeleteTemplateResponse,
        )

    def undelete_template(
        self,
        request: template_service_pb2.UndeleteTemplateRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> template_service_pb2.UndeleteTemplateResponse:
        """TemplateService.UndeleteTemplate: Restores a soft-deleted template. Retrying with the
        same `request_id` returns the first call's answer; the same `request_id` with other
        arguments is `INVALID_ARGUMENT` (reason REQUEST_ID_REUSED).

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.TemplateService/UndeleteTemplate",
            request,
            fields,
            timeout,
            template_service_pb2.UndeleteTemplateRequest,
            template_service_pb2.UndeleteTemplateResponse,
        )

    def create_simulation_from_template(
        self,
        request: template_service_pb2.CreateSimulationFromTemplateRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> template_service_pb2.CreateSimulationFromTemplateResponse:
        """TemplateService.CreateSimulationFromTemplate: Creates a simulation in COMPLETED_CONFIG
        from a template's config (its current revision, or `template_revision`), with the fields
        named in `update_mask` taken from `config` instead.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.TemplateService/CreateSimulationFromTemplate",
            request,
            fields,
            timeout,
            template_service_pb2.CreateSimulationFromTemplateRequest,
            template_service_pb2.CreateSimulationFromTemplateResponse,
        )

    def save_as_template(
        self,
        request: template_service_pb2.SaveAsTemplateRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> template_service_pb2.SaveAsTemplateResponse:
        """TemplateService.SaveAsTemplate: Saves a simulation's current config (or its revision
        `revision`), with its last architect parameters, as a new template of the tenant.
        Retrying with the same `request_id` returns the first call's answer; the same
        `request_id` with other arguments is `INVALID_ARGUMENT` (reason REQUEST_ID_REUSED).

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.TemplateService/SaveAsTemplate",
            request,
            fields,
            timeout,
            template_service_pb2.SaveAsTemplateRequest,
            template_service_pb2.SaveAsTemplateResponse,
        )

    def create_webhook(
        self,
        request: webhook_service_pb2.CreateWebhookRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> webhook_service_pb2.CreateWebhookResponse:
        """WebhookService.CreateWebhook: Creates an endpoint.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.WebhookService/CreateWebhook",
            request,
            fields,
            timeout,
            webhook_service_pb2.CreateWebhookRequest,
            webhook_service_pb2.CreateWebhookResponse,
        )

    def get_webhook(
        self,
        request: webhook_service_pb2.GetWebhookRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> webhook_service_pb2.GetWebhookResponse:
        """WebhookService.GetWebhook: Gets an endpoint (without its secret).

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.WebhookService/GetWebhook",
            request,
            fields,
            timeout,
            webhook_service_pb2.GetWebhookRequest,
            webhook_service_pb2.GetWebhookResponse,
        )

    def list_webhooks(
        self,
        request: webhook_service_pb2.ListWebhooksRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> webhook_service_pb2.ListWebhooksResponse:
        """WebhookService.ListWebhooks: Lists the tenant's endpoints in pages.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.WebhookService/ListWebhooks",
            request,
            fields,
            timeout,
            webhook_service_pb2.ListWebhooksRequest,
            webhook_service_pb2.ListWebhooksResponse,
        )

    def iter_webhooks(
        self,
        request: webhook_service_pb2.ListWebhooksRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> Iterator[webhook_service_pb2.Webhook]:
        """Every item of every page of ListWebhooks, fetched page by page."""
        page = self._request(request, fields, webhook_service_pb2.ListWebhooksRequest)
        while True:
            response = self.list_webhooks(page, timeout=timeout)
            yield from response.webhooks
            if not response.next_page_token:
                return
            page.page_token = response.next_page_token

    def update_webhook(
        self,
        request: webhook_service_pb2.UpdateWebhookRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> webhook_service_pb2.UpdateWebhookResponse:
        """WebhookService.UpdateWebhook: Changes an endpoint's URL, filters, description or enabled
        flag. Re-enabling a FAILING endpoint makes it ACTIVE again. Retrying with the same
        `request_id` returns the first call's answer; the same `request_id` with other arguments
        is `INVALID_ARGUMENT` (reason REQUEST_ID_REUSED).

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.WebhookService/UpdateWebhook",
            request,
            fields,
            timeout,
            webhook_service_pb2.UpdateWebhookRequest,
            webhook_service_pb2.UpdateWebhookResponse,
        )

    def delete_webhook(
        self,
        request: webhook_service_pb2.DeleteWebhookRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> webhook_service_pb2.DeleteWebhookResponse:
        """WebhookService.DeleteWebhook: Deletes an endpoint; nothing more is delivered to it.
        Retrying with the same `request_id` returns the first call's answer; the same
        `request_id` with other arguments is `INVALID_ARGUMENT` (reason REQUEST_ID_REUSED).

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.WebhookService/DeleteWebhook",
            request,
            fields,
            timeout,
            webhook_service_pb2.DeleteWebhookRequest,
            webhook_service_pb2.DeleteWebhookResponse,
        )

    def rotate_webhook_secret(
        self,
        request: webhook_service_pb2.RotateWebhookSecretRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> webhook_service_pb2.RotateWebhookSecretResponse:
        """WebhookService.RotateWebhookSecret: Replaces an endpoint's signing secret; the response
        carries the new one, which is never shown again. Retrying with the same `request_id`
        returns the first call's answer; the same `request_id` with other arguments is
        `INVALID_ARGUMENT` (reason REQUEST_ID_REUSED).

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.WebhookService/RotateWebhookSecret",
            request,
            fields,
            timeout,
            webhook_service_pb2.RotateWebhookSecretRequest,
            webhook_service_pb2.RotateWebhookSecretResponse,
        )

    def list_webhook_deliveries(
        self,
        request: webhook_service_pb2.ListWebhookDeliveriesRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> webhook_service_pb2.ListWebhookDeliveriesResponse:
        """WebhookService.ListWebhookDeliveries: Lists an endpoint's deliveries, newest first:
        state, attempts, the last response code and latency.

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.WebhookService/ListWebhookDeliveries",
            request,
            fields,
            timeout,
            webhook_service_pb2.ListWebhookDeliveriesRequest,
            webhook_service_pb2.ListWebhookDeliveriesResponse,
        )

    def iter_webhook_deliveries(
        self,
        request: webhook_service_pb2.ListWebhookDeliveriesRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> Iterator[webhook_service_pb2.WebhookDelivery]:
        """Every item of every page of ListWebhookDeliveries, fetched page by page."""
        page = self._request(request, fields, webhook_service_pb2.ListWebhookDeliveriesRequest)
        while True:
            response = self.list_webhook_deliveries(page, timeout=timeout)
            yield from response.deliveries
            if not response.next_page_token:
                return
            page.page_token = response.next_page_token

    def redeliver_webhook(
        self,
        request: webhook_service_pb2.RedeliverWebhookRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> webhook_service_pb2.RedeliverWebhookResponse:
        """WebhookService.RedeliverWebhook: Delivers an event again: the delivery becomes due at
        once, with fresh attempts (and the same `webhook-id`, so receivers can tell it is one).
        Retrying with the same `request_id` returns the first call's answer; the same
        `request_id` with other arguments is `INVALID_ARGUMENT` (reason REQUEST_ID_REUSED).

        Pass a request message, or its fields as keyword arguments.
        """
        return self._unary(
            "/simulation.v1.WebhookService/RedeliverWebhook",
            request,
            fields,
            timeout,
            webhook_service_pb2.RedeliverWebhookRequest,
            webhook_service_pb2.RedeliverWebhookResponse,
        )
