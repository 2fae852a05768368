"""ConfigService: proto requests in, use cases called, proto responses out."""

from __future__ import annotations

from simulation.v1 import config_pb2, config_service_pb2_grpc
from simulation.v1 import config_service_pb2 as pb

import storage
from service import errors
from service.architect.jobs import ArchitectRerun
from service.config_codec import config_from_document, sources_from_documents
from service.configs import ConfigOperations, ConfigView
from service.converters import timestamp
from service.interceptors import PrincipalResolver, current_principal
from service.pagination import RESPONSE_BUDGET_BYTES
from service.servicers.paging import fit_to_budget
from service.servicers.simulations import Architect, simulation_to_proto
from service.simulation_steps import SimulationInput
from service.status import handles_errors

_Origin = config_pb2.ConfigRevision.Origin


def revision_to_proto(record: storage.ConfigRevision) -> config_pb2.ConfigRevision:
    """The API form of a stored config revision."""
    return config_pb2.ConfigRevision(
        simulation_id=record.simulation_id,
        revision=record.revision,
        config=config_from_document(record.config),
        sources=sources_from_documents(record.sources),
        create_time=timestamp(record.create_time),
        actor=record.actor,
        origin=_Origin.Value(record.origin),
        description=record.description,
    )


def _view_fields(view: ConfigView) -> dict:
    revision = view.revision
    return {
        "simulation_id": view.simulation_id,
        "revision": revision.revision,
        "config": config_from_document(revision.config),
        "sources": sources_from_documents(revision.sources),
        "etag": view.etag,
        "update_time": timestamp(revision.create_time),
        "origin": _Origin.Value(revision.origin),
    }


class ConfigServicer(config_service_pb2_grpc.ConfigServiceServicer):
    """Implements ``simulation.v1.ConfigService``.

    ``architect`` handles RunArchitect; without one the RPC is ``UNIMPLEMENTED``.
    """

    def __init__(
        self,
        operations: ConfigOperations,
        principal_of: PrincipalResolver = current_principal,
        *,
        architect: Architect | None = None,
        response_budget: int = RESPONSE_BUDGET_BYTES,
    ):
        # Largest list response, in bytes; lists are cut shorter to stay under it.
        self._response_budget = response_budget
        self._ops = operations
        self._principal_of = principal_of
        self._architect = architect

    @handles_errors
    def GetConfig(self, request, context):
        view = self._ops.get_config(
            self._principal_of(context), request.simulation_id, request.revision
        )
        return pb.GetConfigResponse(**_view_fields(view))

    @handles_errors
    def UpdateConfig(self, request, context):
        view = self._ops.update_config(
            self._principal_of(context),
            request.simulation_id,
            request.config,
            sources=list(request.sources),
            mask=list(request.update_mask.paths),
            etag=request.etag,
            description=request.description,
            validate_only=request.validate_only,
        )
        return pb.UpdateConfigResponse(**_view_fields(view))

    @handles_errors
    def ValidateConfig(self, request, context):
        self._principal_of(context)
        self._ops.validate_config(request.config)
        return pb.ValidateConfigResponse(valid=True)

    @handles_errors
    def RunArchitect(self, request, context):
        if self._architect is None:
            raise errors.NotImplementedYet("no architect engine is configured on this server")
        principal = self._principal_of(context)
        simulation = self._architect.run_architect(
            principal,
            ArchitectRerun(
                simulation_id=request.simulation_id,
                parameters=request.parameters if request.HasField("parameters") else None,
                etag=request.etag,
                wait=request.wait,
            ),
        )
        sources = None
        if request.wait:
            # The job may have written a revision: answer as GetSimulation would.
            simulation, sources = self._ops.simulation_with_sources(principal, simulation.id)
        return pb.RunArchitectResponse(simulation=simulation_to_proto(simulation, sources))

    @handles_errors
    def CreateSimulationWithConfig(self, request, context):
        given = request.simulation
        simulation = self._ops.create_with_config(
            self._principal_of(context),
            SimulationInput(
                name=given.name,
                labels=dict(given.labels),
                scenario_id=given.scenario_id,
                prompt=given.prompt,
            ),
            request.config,
            sources=list(request.sources),
            request_id=request.request_id,
            validate_only=request.validate_only,
        )
        return pb.CreateSimulationWithConfigResponse(simulation=simulation_to_proto(simulation))

    @handles_errors
    def ListConfigRevisions(self, request, context):
        page = self._ops.list_revisions(
            self._principal_of(context),
            request.simulation_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        revisions, next_page_token = fit_to_budget(
            page, map(revision_to_proto, page.items), self._response_budget
        )
        return pb.ListConfigRevisionsResponse(revisions=revisions, next_page_token=next_page_token)

    @handles_errors
    def RollbackConfig(self, request, context):
        view = self._ops.rollback(
            self._principal_of(context),
            request.simulation_id,
            request.revision,
            etag=request.etag,
            description=request.description,
        )
        return pb.RollbackConfigResponse(**_view_fields(view))
