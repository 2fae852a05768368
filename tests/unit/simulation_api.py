"""Shared helpers for the Config and Simulation servicer tests: one harness, valid configs."""

from __future__ import annotations

from simulation.v1 import (
    config_pb2,
    simulation_pb2,
)
from simulation.v1 import (
    config_service_pb2 as cpb,
)
from simulation.v1 import scenario_service_pb2 as scpb
from simulation.v1 import (
    simulation_service_pb2 as spb,
)

from service.api.config_service import ConfigServicer
from service.api.scenario_service import ScenarioServicer
from service.api.simulation_service import SimulationServicer
from service.app.configs import ConfigOperations
from service.app.scenarios import ScenarioOperations
from service.app.simulations import SimulationOperations
from service.domain.validation import ConfigValidator
from tests.harness import ServicerHarness

CONFIG_SERVICE = cpb.DESCRIPTOR.services_by_name["ConfigService"]
SIMULATION_SERVICE = spb.DESCRIPTOR.services_by_name["SimulationService"]
SCENARIO_SERVICE = scpb.DESCRIPTOR.services_by_name["ScenarioService"]
Status = simulation_pb2.Simulation.Status


def make_harness(database, architect=None) -> ServicerHarness:
    """All three services over one database."""
    validator = ConfigValidator()
    simulations = SimulationOperations(database)
    return ServicerHarness(
        {
            CONFIG_SERVICE: ConfigServicer(
                ConfigOperations(database, validator), simulations, architect=architect
            ),
            SIMULATION_SERVICE: SimulationServicer(simulations, architect=architect),
            SCENARIO_SERVICE: ScenarioServicer(ScenarioOperations(database)),
        }
    )


def valid_config(title: str = "Market day", **overrides) -> config_pb2.SimulationConfig:
    """A small config the validator accepts."""
    config = config_pb2.SimulationConfig(
        title=title,
        objective="See who sells first",
        max_turns=10,
        model="sim-small-1",
        agents=[
            config_pb2.Agent(id="alice", name="Alice", role="seller"),
            config_pb2.Agent(id="bob", name="Bob", role="buyer"),
        ],
        events=[config_pb2.ScheduledEvent(turn=3, description="rain", agent_ids=["alice"])],
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def create_with_config(api, who, name="Sim", config=None, **fields):
    """Creates a simulation through CreateSimulationWithConfig; returns the Simulation."""
    request_fields = {k: fields.pop(k) for k in ("request_id", "sources") if k in fields}
    outcome = api.call(
        "CreateSimulationWithConfig",
        cpb.CreateSimulationWithConfigRequest(
            simulation=simulation_pb2.Simulation(name=name, **fields),
            config=config or valid_config(),
            **request_fields,
        ),
        who,
    )
    assert outcome.ok, (outcome.details, outcome.violations)
    return outcome.response.simulation


def get_simulation(api, who, simulation_id):
    outcome = api.call("GetSimulation", spb.GetSimulationRequest(simulation_id=simulation_id), who)
    assert outcome.ok, outcome.details
    return outcome.response.simulation


def get_config(api, who, simulation_id, revision=0):
    outcome = api.call(
        "GetConfig", cpb.GetConfigRequest(simulation_id=simulation_id, revision=revision), who
    )
    assert outcome.ok, outcome.details
    return outcome.response


def events_of(api, who, simulation_id):
    outcome = api.call(
        "ListSimulationEvents",
        spb.ListSimulationEventsRequest(simulation_id=simulation_id, page_size=1000),
        who,
    )
    assert outcome.ok, outcome.details
    return list(outcome.response.events)


def kinds(events) -> list[str]:
    return [simulation_pb2.SimulationEvent.Kind.Name(e.kind) for e in events]


def run_to(api, who, simulation_id, status: str):
    """Drives a COMPLETED_CONFIG simulation to RUNNING, COMPLETED or FAILED."""
    started = api.call("StartRun", spb.StartRunRequest(simulation_id=simulation_id), who)
    assert started.ok, started.details
    if status == "COMPLETED":
        outcome = api.call(
            "CompleteRun",
            spb.CompleteRunRequest(simulation_id=simulation_id, results={"score": 3}),
            who,
        )
    elif status == "FAILED":
        outcome = api.call(
            "FailRun", spb.FailRunRequest(simulation_id=simulation_id, error="boom"), who
        )
    else:
        return started.response.simulation
    assert outcome.ok, outcome.details
    return outcome.response.simulation
