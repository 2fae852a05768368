"""SimulationService: proto requests in, use cases called, proto responses out."""

from __future__ import annotations

from typing import Protocol

from simulation.v1 import simulation_service_pb2 as pb
from simulation.v1 import simulation_service_pb2_grpc

import storage
from service.api.access import response_headers
from service.api.interceptors import current_principal
from service.api.mappers.simulations import (
    event_kinds,
    event_to_proto,
    optional_struct,
    simulation_input,
    simulation_to_proto,
)
from service.api.response_budget import fit_to_budget
from service.app.authentication import Principal
from service.app.event_watch import EventWatch, WatchFilter
from service.app.page_tokens import RESPONSE_BUDGET_BYTES
from service.app.simulation_writes import SimulationInput
from service.app.simulations import SimulationOperations
from service.architect.jobs import ArchitectRerun, PromptedSimulation
from service.domain import errors


class Architect(Protocol):
    """What the servicers need from the architect: the CreateSimulation and RunArchitect use
    cases (:class:`service.architect.jobs.ArchitectOperations`, which queue durable jobs)."""

    def create_simulation(
        self,
        principal: Principal,
        request: PromptedSimulation,
        *,
        wait_timeout: float | None = None,
    ) -> storage.Simulation:
        """Stores a simulation and queues its architect job; returns the simulation."""

    def run_architect(
        self, principal: Principal, request: ArchitectRerun, *, wait_timeout: float | None = None
    ) -> storage.Simulation:
        """Queues a re-run of the architect; returns the simulation."""


class SimulationServicer(simulation_service_pb2_grpc.SimulationServiceServicer):
    """Implements ``simulation.v1.SimulationService``; errors are mapped by the ErrorInterceptor.

    ``architect`` handles CreateSimulation and ``watch`` WatchEvents; without them those RPCs
    are ``UNIMPLEMENTED``.
    """

    def __init__(
        self,
        operations: SimulationOperations,
        *,
        architect: Architect | None = None,
        response_budget: int = RESPONSE_BUDGET_BYTES,
        watch: EventWatch | None = None,
    ):
        self._ops = operations
        self._architect = architect
        self._watch = watch
        # Largest list response, in bytes; lists are cut shorter to stay under it.
        self._response_budget = response_budget

    def CreateSimulation(self, request, context):
        if self._architect is None:
            raise errors.NotImplementedYet("no architect engine is configured on this server")
        principal = current_principal()
        simulation = self._architect.create_simulation(
            principal,
            PromptedSimulation(
                simulation=simulation_input(request.simulation),
                parameters=request.parameters,
                request_id=request.request_id,
                validate_only=request.validate_only,
                wait=request.wait,
            ),
            # `wait` answers before the call's deadline passes.
            wait_timeout=context.time_remaining(),
        )
        if request.wait and not request.validate_only:
            # The job may have written a revision: answer as GetSimulation would.
            simulation, sources = self._ops.get_with_sources(principal, simulation.id)
        else:
            simulation, sources = self._ops.with_sources(principal, simulation)
        return pb.CreateSimulationResponse(simulation=simulation_to_proto(simulation, sources))

    def GetSimulation(self, request, context):
        simulation, sources = self._ops.get_with_sources(current_principal(), request.simulation_id)
        return pb.GetSimulationResponse(simulation=simulation_to_proto(simulation, sources))

    def BatchGetSimulations(self, request, context):
        found = self._ops.batch_get(current_principal(), list(request.simulation_ids))
        simulations = [simulation_to_proto(simulation, sources) for simulation, sources in found]
        if sum(message.ByteSize() for message in simulations) > self._response_budget:
            # A list would cut the page short; a batch is all or nothing, so it is refused.
            raise errors.InvalidArgument.field(
                "simulation_ids",
                "these simulations are too large for one response; ask for fewer at a time",
                reason="RESPONSE_TOO_LARGE",
            )
        return pb.BatchGetSimulationsResponse(simulations=simulations)

    def BatchMoveSimulations(self, request, context):
        simulations = self._ops.batch_move(
            current_principal(),
            list(request.simulation_ids),
            request.scenario_id,
            request_id=request.request_id,
        )
        return pb.BatchMoveSimulationsResponse(
            simulations=[simulation_to_proto(record, sources) for record, sources in simulations]
        )

    def ListSimulations(self, request, context):
        page = self._ops.list(
            current_principal(),
            page_size=request.page_size,
            page_token=request.page_token,
            filter_text=request.filter,
            order_by=request.order_by,
        )
        simulations, next_page_token = fit_to_budget(
            page,
            (simulation_to_proto(record, sources) for record, sources in page.items),
            self._response_budget,
        )
        return pb.ListSimulationsResponse(simulations=simulations, next_page_token=next_page_token)

    def UpdateSimulation(self, request, context):
        given = request.simulation
        simulation = self._ops.update(
            current_principal(),
            given.id,
            SimulationInput(
                name=given.name, labels=dict(given.labels), scenario_id=given.scenario_id
            ),
            mask=list(request.update_mask.paths),
            etag=given.etag,
            request_id=request.request_id,
        )
        return pb.UpdateSimulationResponse(simulation=self._answer(simulation))

    def DeleteSimulation(self, request, context):
        self._ops.delete(
            current_principal(),
            request.simulation_id,
            etag=request.etag,
            request_id=request.request_id,
        )
        return pb.DeleteSimulationResponse()

    def StartRun(self, request, context):
        simulation = self._ops.start_run(
            current_principal(),
            request.simulation_id,
            etag=request.etag,
            request_id=request.request_id,
        )
        return pb.StartRunResponse(simulation=self._answer(simulation))

    def CompleteRun(self, request, context):
        simulation = self._ops.complete_run(
            current_principal(),
            request.simulation_id,
            results=optional_struct(request, "results"),
            etag=request.etag,
            request_id=request.request_id,
        )
        return pb.CompleteRunResponse(simulation=self._answer(simulation))

    def FailRun(self, request, context):
        simulation = self._ops.fail_run(
            current_principal(),
            request.simulation_id,
            error=request.error,
            etag=request.etag,
            request_id=request.request_id,
        )
        return pb.FailRunResponse(simulation=self._answer(simulation))

    def AttachAnalysis(self, request, context):
        simulation = self._ops.attach_analysis(
            current_principal(),
            request.simulation_id,
            analysis=optional_struct(request, "analysis"),
            etag=request.etag,
            request_id=request.request_id,
        )
        return pb.AttachAnalysisResponse(simulation=self._answer(simulation))

    def _answer(self, simulation):
        """A written simulation as GetSimulation returns it: with its current sources."""
        return simulation_to_proto(*self._ops.with_sources(current_principal(), simulation))

    def ListSimulationEvents(self, request, context):
        page = self._ops.list_events(
            current_principal(),
            request.simulation_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        events, next_page_token = fit_to_budget(
            page, map(event_to_proto, page.items), self._response_budget
        )
        return pb.ListSimulationEventsResponse(events=events, next_page_token=next_page_token)

    def WatchEvents(self, request, context):
        if self._watch is None:
            raise errors.NotImplementedYet("event watching is not enabled on this server")
        stream = self._watch.open(
            current_principal(),
            WatchFilter(
                simulation_id=request.simulation_id,
                scenario_id=request.scenario_id,
                kinds=event_kinds(request.kinds),
            ),
            after_event_id=(request.after_event_id if request.HasField("after_event_id") else None),
            resume_token=request.resume_token,
        )
        with stream:  # the watcher slot is given back however the stream ends
            # A client that goes away wakes the stream, which then ends.
            context.add_callback(stream.cancel)
            # Headers now, not with the first event: the client learns that the stream is
            # open (and, without a cursor, where it starts) even while nothing happens.
            context.send_initial_metadata(response_headers())
            for item in stream:
                yield pb.WatchEventsResponse(
                    event=event_to_proto(item.event) if item.event is not None else None,
                    resume_token=item.resume_token,
                )
