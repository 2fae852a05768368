"""ScenarioService: proto requests in, use cases called, proto responses out."""

from __future__ import annotations

from simulation.v1 import scenario_service_pb2, scenario_service_pb2_grpc

from service.api.interceptors import current_principal
from service.api.mappers.scenarios import scenario_input, scenario_to_proto
from service.api.response_budget import fit_to_budget
from service.app.page_tokens import RESPONSE_BUDGET_BYTES
from service.app.scenarios import CreateScenarioItem, DeleteScenarioItem, ScenarioOperations


class ScenarioServicer(scenario_service_pb2_grpc.ScenarioServiceServicer):
    """Implements ``simulation.v1.ScenarioService``; errors are mapped by the ErrorInterceptor."""

    def __init__(
        self, operations: ScenarioOperations, *, response_budget: int = RESPONSE_BUDGET_BYTES
    ):
        self._ops = operations
        # Largest list response, in bytes; lists are cut shorter to stay under it.
        self._response_budget = response_budget

    def CreateScenario(self, request, context):
        scenario = self._ops.create(
            current_principal(),
            scenario_input(request.scenario),
            request_id=request.request_id,
            validate_only=request.validate_only,
        )
        return scenario_service_pb2.CreateScenarioResponse(scenario=scenario_to_proto(scenario))

    def GetScenario(self, request, context):
        scenario = self._ops.get(current_principal(), request.scenario_id)
        return scenario_service_pb2.GetScenarioResponse(scenario=scenario_to_proto(scenario))

    def ListScenarios(self, request, context):
        page = self._ops.list(
            current_principal(),
            page_size=request.page_size,
            page_token=request.page_token,
            filter_text=request.filter,
            order_by=request.order_by,
            show_deleted=request.show_deleted,
        )
        scenarios, next_page_token = fit_to_budget(
            page, map(scenario_to_proto, page.items), self._response_budget
        )
        return scenario_service_pb2.ListScenariosResponse(
            scenarios=scenarios, next_page_token=next_page_token
        )

    def UpdateScenario(self, request, context):
        scenario = self._ops.update(
            current_principal(),
            request.scenario.id,
            scenario_input(request.scenario),
            mask=list(request.update_mask.paths),
            etag=request.scenario.etag,
            validate_only=request.validate_only,
            request_id=request.request_id,
        )
        return scenario_service_pb2.UpdateScenarioResponse(scenario=scenario_to_proto(scenario))

    def DeleteScenario(self, request, context):
        scenario = self._ops.delete(
            current_principal(),
            request.scenario_id,
            etag=request.etag,
            force=request.force,
            request_id=request.request_id,
        )
        return scenario_service_pb2.DeleteScenarioResponse(scenario=scenario_to_proto(scenario))

    def UndeleteScenario(self, request, context):
        scenario = self._ops.undelete(
            current_principal(),
            request.scenario_id,
            etag=request.etag,
            request_id=request.request_id,
        )
        return scenario_service_pb2.UndeleteScenarioResponse(scenario=scenario_to_proto(scenario))

    def BatchCreateScenarios(self, request, context):
        scenarios = self._ops.batch_create(
            current_principal(),
            [
                CreateScenarioItem(
                    scenario_input(item.scenario),
                    request_id=item.request_id,
                    validate_only=item.validate_only,
                )
                for item in request.requests
            ],
            request_id=request.request_id,
        )
        return scenario_service_pb2.BatchCreateScenariosResponse(
            scenarios=[scenario_to_proto(scenario) for scenario in scenarios]
        )

    def BatchDeleteScenarios(self, request, context):
        scenarios = self._ops.batch_delete(
            current_principal(),
            [
                DeleteScenarioItem(item.scenario_id, etag=item.etag, force=item.force)
                for item in request.requests
            ],
            request_id=request.request_id,
        )
        return scenario_service_pb2.BatchDeleteScenariosResponse(
            scenarios=[scenario_to_proto(scenario) for scenario in scenarios]
        )
