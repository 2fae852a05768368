"""SimulationService: proto requests in, use cases called, proto responses out."""

from __future__ import annotations

from typing import Any, Protocol

from simulation.v1 import simulation_pb2, simulation_service_pb2_grpc
from simulation.v1 import simulation_service_pb2 as pb

import storage
from service import errors
from service.architect.jobs import ArchitectRerun, PromptedSimulation
from service.auth import Principal
from service.config_codec import parameters_from_document, sources_from_documents
from service.converters import struct, struct_to_dict, timestamp
from service.interceptors import PrincipalResolver, current_principal
from service.pagination import RESPONSE_BUDGET_BYTES
from service.servicers.paging import fit_to_budget
from service.simulation_steps import SimulationInput
from service.simulations import SimulationOperations
from service.status import handles_errors

_Status = simulation_pb2.Simulation.Status
_Kind = simulation_pb2.SimulationEvent.Kind


class Architect(Protocol):
    """What the servicers need from the architect: the CreateSimulation and RunArchitect use
    cases (:class:`service.architect.jobs.ArchitectOperations`, which queue durable jobs)."""

    def create_simulation(
        self, principal: Principal, request: PromptedSimulation
    ) -> storage.Simulation:
        """Stores a simulation and queues its architect job; returns the simulation."""

    def run_architect(self, principal: Principal, request: ArchitectRerun) -> storage.Simulation:
        """Queues a re-run of the architect; returns the simulation."""


def status_value(name: str | None) -> int:
    """The ``Simulation.Status`` number of a stored status name (unset for None)."""
    return _Status.Value(name) if name else _Status.STATUS_UNSPECIFIED


def simulation_to_proto(
    record: storage.Simulation, sources: list[dict[str, Any]] | None = None
) -> simulation_pb2.Simulation:
    """The API form of a stored simulation; ``sources`` are its current revision's, if known."""
    message = simulation_pb2.Simulation(
        id=record.id,
        scenario_id=record.scenario_id or "",
        name=record.name,
        prompt=record.prompt,
        labels=record.labels,
        status=status_value(record.status),
        config_revision=record.current_revision,
        results=struct(record.results),
        analysis=struct(record.analysis),
        create_time=timestamp(record.create_time),
        update_time=timestamp(record.update_time),
        etag=record.etag,
        sources=sources_from_documents(sources),
    )
    if record.architect_parameters is not None:
        message.architect_parameters.CopyFrom(parameters_from_document(record.architect_parameters))
    if record.last_error:
        error = record.last_error
        message.last_error.reason = error.get("reason", "")
        message.last_error.message = error.get("message", "")
        for violation in error.get("violations") or ():
            message.last_error.violations.add(
                field=violation.get("field", ""), description=violation.get("description", "")
            )
    return message


def event_to_proto(event: storage.SimulationEvent) -> simulation_pb2.SimulationEvent:
    """The API form of an audit-trail event."""
    return simulation_pb2.SimulationEvent(
        id=event.id,
        simulation_id=event.simulation_id,
        kind=_Kind.Value(event.kind),
        from_status=status_value(event.from_status),
        to_status=status_value(event.to_status),
        revision=event.revision or 0,
        actor=event.actor,
        reason=event.reason,
        details=struct(event.details),
        create_time=timestamp(event.create_time),
    )


def optional_struct(request, name: str) -> dict[str, Any] | None:
    """The JSON object in a request's Struct field, None when the field is unset."""
    return struct_to_dict(getattr(request, name)) if request.HasField(name) else None


class SimulationServicer(simulation_service_pb2_grpc.SimulationServiceServicer):
    """Implements ``simulation.v1.SimulationService``.

    ``architect`` handles CreateSimulation; without one the RPC is ``UNIMPLEMENTED``.
    """

    def __init__(
        self,
        operations: SimulationOperations,
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
    def CreateSimulation(self, request, context):
        if self._architect is None:
            raise errors.NotImplementedYet("no architect engine is configured on this server")
        principal = self._principal_of(context)
        given = request.simulation
        simulation = self._architect.create_simulation(
            principal,
            PromptedSimulation(
                simulation=SimulationInput(
                    name=given.name,
                    labels=dict(given.labels),
                    scenario_id=given.scenario_id,
                    prompt=given.prompt,
                ),
                parameters=request.parameters,
                request_id=request.request_id,
                validate_only=request.validate_only,
                wait=request.wait,
            ),
        )
        sources = None
        if request.wait and not request.validate_only:
            # The job may have written a revision: answer as GetSimulation would.
            simulation, sources = self._ops.get_with_sources(principal, simulation.id)
        return pb.CreateSimulationResponse(simulation=simulation_to_proto(simulation, sources))

    @handles_errors
    def GetSimulation(self, request, context):
        simulation, sources = self._ops.get_with_sources(
            self._principal_of(context), request.simulation_id
        )
        return pb.GetSimulationResponse(simulation=simulation_to_proto(simulation, sources))

    @handles_errors
    def ListSimulations(self, request, context):
        page = self._ops.list(
            self._principal_of(context),
            page_size=request.page_size,
            page_token=request.page_token,
            filter_text=request.filter,
            order_by=request.order_by,
        )
        simulations, next_page_token = fit_to_budget(
            page, map(simulation_to_proto, page.items), self._response_budget
        )
        return pb.ListSimulationsResponse(simulations=simulations, next_page_token=next_page_token)

    @handles_errors
    def UpdateSimulation(self, request, context):
        given = request.simulation
        simulation = self._ops.update(
            self._principal_of(context),
            given.id,
            SimulationInput(
                name=given.name, labels=dict(given.labels), scenario_id=given.scenario_id
            ),
            mask=list(request.update_mask.paths),
            etag=given.etag,
        )
        return pb.UpdateSimulationResponse(simulation=simulation_to_proto(simulation))

    @handles_errors
    def DeleteSimulation(self, request, context):
        self._ops.delete(self._principal_of(context), request.simulation_id, etag=request.etag)
        return pb.DeleteSimulationResponse()

    @handles_errors
    def StartRun(self, request, context):
        simulation = self._ops.start_run(
            self._principal_of(context), request.simulation_id, etag=request.etag
        )
        return pb.StartRunResponse(simulation=simulation_to_proto(simulation))

    @handles_errors
    def CompleteRun(self, request, context):
        simulation = self._ops.complete_run(
            self._principal_of(context),
            request.simulation_id,
            results=optional_struct(request, "results"),
            etag=request.etag,
        )
        return pb.CompleteRunResponse(simulation=simulation_to_proto(simulation))

    @handles_errors
    def FailRun(self, request, context):
        simulation = self._ops.fail_run(
            self._principal_of(context),
            request.simulation_id,
            error=request.error,
            etag=request.etag,
        )
        return pb.FailRunResponse(simulation=simulation_to_proto(simulation))

    @handles_errors
    def AttachAnalysis(self, request, context):
        simulation = self._ops.attach_analysis(
            self._principal_of(context),
            request.simulation_id,
            analysis=optional_struct(request, "analysis"),
            etag=request.etag,
        )
        return pb.AttachAnalysisResponse(simulation=simulation_to_proto(simulation))

    @handles_errors
    def ListSimulationEvents(self, request, context):
        page = self._ops.list_events(
            self._principal_of(context),
            request.simulation_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        events, next_page_token = fit_to_budget(
            page, map(event_to_proto, page.items), self._response_budget
        )
        return pb.ListSimulationEventsResponse(events=events, next_page_token=next_page_token)
