"""TemplateService: proto requests in, use cases called, proto responses out."""

from __future__ import annotations

from simulation.v1 import template_service_pb2 as pb
from simulation.v1 import template_service_pb2_grpc

from service.api.interceptors import current_principal
from service.api.mappers.simulations import simulation_input, simulation_to_proto
from service.api.mappers.templates import template_input, template_to_proto
from service.api.response_budget import fit_to_budget
from service.app.page_tokens import RESPONSE_BUDGET_BYTES
from service.app.simulations import SimulationOperations
from service.app.templates import TemplateOperations


class TemplateServicer(template_service_pb2_grpc.TemplateServiceServicer):
    """Implements ``simulation.v1.TemplateService``; errors are mapped by the ErrorInterceptor."""

    def __init__(
        self,
        operations: TemplateOperations,
        simulations: SimulationOperations,
        *,
        response_budget: int = RESPONSE_BUDGET_BYTES,
    ):
        self._ops = operations
        # CreateSimulationFromTemplate answers as GetSimulation would, sources included.
        self._simulations = simulations
        # Largest list response, in bytes; lists are cut shorter to stay under it.
        self._response_budget = response_budget

    def CreateTemplate(self, request, context):
        view = self._ops.create(
            current_principal(),
            template_input(request.template),
            request_id=request.request_id,
            validate_only=request.validate_only,
        )
        return pb.CreateTemplateResponse(template=template_to_proto(view))

    def GetTemplate(self, request, context):
        view = self._ops.get(current_principal(), request.template_id, request.revision)
        return pb.GetTemplateResponse(template=template_to_proto(view))

    def ListTemplates(self, request, context):
        page = self._ops.list(
            current_principal(),
            page_size=request.page_size,
            page_token=request.page_token,
            filter_text=request.filter,
            order_by=request.order_by,
            show_deleted=request.show_deleted,
        )
        templates, next_page_token = fit_to_budget(
            page, map(template_to_proto, page.items), self._response_budget
        )
        return pb.ListTemplatesResponse(templates=templates, next_page_token=next_page_token)

    def UpdateTemplate(self, request, context):
        view = self._ops.update(
            current_principal(),
            request.template.id,
            template_input(request.template),
            mask=list(request.update_mask.paths),
            etag=request.template.etag,
            request_id=request.request_id,
        )
        return pb.UpdateTemplateResponse(template=template_to_proto(view))

    def DeleteTemplate(self, request, context):
        view = self._ops.delete(
            current_principal(),
            request.template_id,
            etag=request.etag,
            request_id=request.request_id,
        )
        return pb.DeleteTemplateResponse(template=template_to_proto(view))

    def UndeleteTemplate(self, request, context):
        view = self._ops.undelete(
            current_principal(),
            request.template_id,
            etag=request.etag,
            request_id=request.request_id,
        )
        return pb.UndeleteTemplateResponse(template=template_to_proto(view))

    def CreateSimulationFromTemplate(self, request, context):
        simulation = self._ops.create_simulation(
            current_principal(),
            request.template_id,
            simulation_input(request.simulation),
            template_revision=request.template_revision,
            overrides=request.config,
            mask=list(request.update_mask.paths),
            request_id=request.request_id,
            validate_only=request.validate_only,
        )
        simulation, sources = self._simulations.with_sources(current_principal(), simulation)
        return pb.CreateSimulationFromTemplateResponse(
            simulation=simulation_to_proto(simulation, sources)
        )

    def SaveAsTemplate(self, request, context):
        view = self._ops.save_as_template(
            current_principal(),
            request.simulation_id,
            template_input(request.template),
            revision=request.revision,
            request_id=request.request_id,
        )
        return pb.SaveAsTemplateResponse(template=template_to_proto(view))
