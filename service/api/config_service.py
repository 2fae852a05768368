"""ConfigService: proto requests in, use cases called, proto responses out."""

from __future__ import annotations

from simulation.v1 import config_service_pb2 as pb
from simulation.v1 import config_service_pb2_grpc

from service.api.interceptors import current_principal
from service.api.mappers.configs import config_view_fields, diff_to_proto, revision_to_proto
from service.api.mappers.simulations import simulation_input, simulation_to_proto
from service.api.response_budget import fit_to_budget
from service.api.simulation_service import Architect
from service.app.configs import ConfigOperations
from service.app.page_tokens import RESPONSE_BUDGET_BYTES
from service.app.simulations import SimulationOperations
from service.architect.jobs import ArchitectRerun
from service.domain import errors


class ConfigServicer(config_service_pb2_grpc.ConfigServiceServicer):
    """Implements ``simulation.v1.ConfigService``; errors are mapped by the ErrorInterceptor.

    ``architect`` handles RunArchitect; without one the RPC is ``UNIMPLEMENTED``.
    """

    def __init__(
        self,
        operations: ConfigOperations,
        simulations: SimulationOperations,
        *,
        architect: Architect | None = None,
        response_budget: int = RESPONSE_BUDGET_BYTES,
    ):
        self._ops = operations
        # RunArchitect with `wait` answers as GetSimulation would.
        self._simulations = simulations
        self._architect = architect
        # Largest list response, in bytes; lists are cut shorter to stay under it.
        self._response_budget = response_budget

    def GetConfig(self, request, context):
        view = self._ops.get_config(current_principal(), request.simulation_id, request.revision)
        return pb.GetConfigResponse(**config_view_fields(view))

    def UpdateConfig(self, request, context):
        view = self._ops.update_config(
            current_principal(),
            request.simulation_id,
            request.config,
            sources=list(request.sources),
            mask=list(request.update_mask.paths),
            etag=request.etag,
            description=request.description,
            validate_only=request.validate_only,
            request_id=request.request_id,
        )
        return pb.UpdateConfigResponse(**config_view_fields(view))

    def ValidateConfig(self, request, context):
        current_principal()
        self._ops.validate_config(request.config)
        return pb.ValidateConfigResponse(valid=True)

    def RunArchitect(self, request, context):
        if self._architect is None:
            raise errors.NotImplementedYet("no architect engine is configured on this server")
        principal = current_principal()
        simulation = self._architect.run_architect(
            principal,
            ArchitectRerun(
                simulation_id=request.simulation_id,
                parameters=request.parameters if request.HasField("parameters") else None,
                etag=request.etag,
                wait=request.wait,
                request_id=request.request_id,
            ),
            # `wait` answers before the call's deadline passes.
            wait_timeout=context.time_remaining(),
        )
        if request.wait:
            # The job may have written a revision: answer as GetSimulation would.
            simulation, sources = self._simulations.get_with_sources(principal, simulation.id)
        else:
            # Queued: the current revision, and its sources, stay until the job writes one.
            simulation, sources = self._simulations.with_sources(principal, simulation)
        return pb.RunArchitectResponse(simulation=simulation_to_proto(simulation, sources))

    def CreateSimulationWithConfig(self, request, context):
        simulation = self._ops.create_with_config(
            current_principal(),
            simulation_input(request.simulation),
            request.config,
            sources=list(request.sources),
            request_id=request.request_id,
            validate_only=request.validate_only,
        )
        message = simulation_to_proto(simulation)
        # Revision 1 stores the request's sources: answer with them, as GetSimulation would.
        message.sources.extend(request.sources)
        return pb.CreateSimulationWithConfigResponse(simulation=message)

    def ListConfigRevisions(self, request, context):
        page = self._ops.list_revisions(
            current_principal(),
            request.simulation_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        revisions, next_page_token = fit_to_budget(
            page,
            (
                revision_to_proto(
                    item.record,
                    self._ops.config_of(item.record),
                    self._ops.changes_of(item).changed_paths,
                )
                for item in page.items
            ),
            self._response_budget,
        )
        return pb.ListConfigRevisionsResponse(revisions=revisions, next_page_token=next_page_token)

    def RollbackConfig(self, request, context):
        view = self._ops.rollback(
            current_principal(),
            request.simulation_id,
            request.revision,
            etag=request.etag,
            description=request.description,
            request_id=request.request_id,
        )
        return pb.RollbackConfigResponse(**config_view_fields(view))

    def DiffConfigRevisions(self, request, context):
        diff = self._ops.diff_revisions(
            current_principal(),
            request.simulation_id,
            from_revision=request.from_revision,
            to_revision=request.to_revision,
        )
        return diff_to_proto(diff)
