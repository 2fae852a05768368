"""ScenarioService: proto requests in, use cases called, proto responses out."""

from __future__ import annotations

from simulation.v1 import scenario_pb2, scenario_service_pb2, scenario_service_pb2_grpc

import storage
from service.converters import timestamp
from service.interceptors import PrincipalResolver, current_principal
from service.pagination import RESPONSE_BUDGET_BYTES
from service.scenarios import ScenarioInput, ScenarioOperations
from service.servicers.paging import fit_to_budget
from service.status import handles_errors


def scenario_to_proto(record: storage.Scenario) -> scenario_pb2.Scenario:
    """The API form of a stored scenario."""
    return scenario_pb2.Scenario(
        id=record.id,
        display_name=record.display_name,
        description=record.description,
        labels=record.labels,
        simulation_count=record.simulation_count,
        create_time=timestamp(record.create_time),
        update_time=timestamp(record.update_time),
        delete_time=timestamp(record.delete_time),
        purge_time=timestamp(record.purge_time),
        etag=record.etag,
    )


def _input(message: scenario_pb2.Scenario) -> ScenarioInput:
    return ScenarioInput(
        display_name=message.display_name,
        description=message.description,
        labels=dict(message.labels),
    )


class ScenarioServicer(scenario_service_pb2_grpc.ScenarioServiceServicer):
    """Implements ``simulation.v1.ScenarioService``."""

    def __init__(
        self,
        operations: ScenarioOperations,
        principal_of: PrincipalResolver = current_principal,
        *,
        response_budget: int = RESPONSE_BUDGET_BYTES,
    ):
        # Largest list response, in bytes; lists are cut shorter to stay under it.
        self._response_budget = response_budget
        self._ops = operations
        self._principal_of = principal_of

    @handles_errors
    def CreateScenario(self, request, context):
        scenario = self._ops.create(
            self._principal_of(context),
            _input(request.scenario),
            request_id=request.request_id,
            validate_only=request.validate_only,
        )
        return scenario_service_pb2.CreateScenarioResponse(scenario=scenario_to_proto(scenario))

    @handles_errors
    def GetScenario(self, request, context):
        scenario = self._ops.get(self._principal_of(context), request.scenario_id)
        return scenario_service_pb2.GetScenarioResponse(scenario=scenario_to_proto(scenario))

    @handles_errors
    def ListScenarios(self, request, context):
        page = self._ops.list(
            self._principal_of(context),
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

    @handles_errors
    def UpdateScenario(self, request, context):
        scenario = self._ops.update(
            self._principal_of(context),
            request.scenario.id,
            _input(request.scenario),
            mask=list(request.update_mask.paths),
            etag=request.scenario.etag,
            validate_only=request.validate_only,
        )
        return scenario_service_pb2.UpdateScenarioResponse(scenario=scenario_to_proto(scenario))

    @handles_errors
    def DeleteScenario(self, request, context):
        scenario = self._ops.delete(
            self._principal_of(context),
            request.scenario_id,
            etag=request.etag,
            force=request.force,
        )
        return scenario_service_pb2.DeleteScenarioResponse(scenario=scenario_to_proto(scenario))

    @handles_errors
    def UndeleteScenario(self, request, context):
        scenario = self._ops.undelete(
            self._principal_of(context), request.scenario_id, etag=request.etag
        )
        return scenario_service_pb2.UndeleteScenarioResponse(scenario=scenario_to_proto(scenario))
