"""Latency as the data grows: does a call cost the same on a big tenant as on a small one?

Two questions, each answered with sequential calls from this process (one call at a time,
so the figure is the latency of one call, not of a queue):

- **Scenarios in a tenant**: ListScenarios' first page, a deep page, and GetScenario, on a
  tenant with 1,000 scenarios and on one with 1,000,000. The deep page comes from a real
  page token: each tenant first gets 1,000 scenarios and the token after the 950th is got by
  paging; the big tenant's other 999,000 are then loaded *older* than those, so the same
  token now points 999,950 rows deep in the default (create_time) order. Both deep pages
  hold 50 scenarios of the same shape.
- **Simulations in a scenario**: GetScenario on an empty scenario and on one that holds
  100,000 simulations (its simulation count must be exact either way).

The sizes compared are measured side by side, in alternating batches of calls, after all
the data is loaded: on a machine others share, load that comes and goes then weighs on both
sides of a ratio alike, instead of on whichever was measured during it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from simulation.v1 import scenario_service_pb2, simulation_service_pb2
from sqlalchemy import Engine

from bench import bulk, payloads
from bench.measurement import percentile
from bench.seed import RawClient

CALLS = 200  # per call and size
BATCH = 10
WARM_UP_CALLS = 20
SMALL = 1_000
LARGE = 1_000_000
SIMULATIONS = 100_000
PAGE = 50
DEEP_AFTER = 950

SCENARIOS_IN_TENANT = "scenarios in the tenant"
SIMULATIONS_IN_SCENARIO = "simulations in the scenario"
FIRST_PAGE = "ListScenarios, first page"
DEEP_PAGE = "ListScenarios, deep page"
GET = "GetScenario"
SIMULATIONS_IN_TENANT = "simulations in the tenant"
CONFIG_FILTER = f'ListSimulations, config.model = "{bulk.RARE_MODEL}"'

_GET = "/simulation.v1.ScenarioService/GetScenario"
_LIST = "/simulation.v1.ScenarioService/ListScenarios"
_CREATE = "/simulation.v1.ScenarioService/CreateScenario"
_LIST_SIMULATIONS = "/simulation.v1.SimulationService/ListSimulations"


@dataclass(frozen=True)
class Latency:
    """The p50 of one call at one size."""

    question: str  # what grows: SCENARIOS_IN_TENANT or SIMULATIONS_IN_SCENARIO
    size: int
    call: str
    p50_ms: float


def p50s(calls: dict[Hashable, Callable[[], object]]) -> dict[Hashable, float]:
    """The median latency (ms) of ``CALLS`` sequential calls of each of ``calls``.

    Each is warmed up first; then they take turns, ``BATCH`` calls at a time.
    """
    for call in calls.values():
        for _ in range(WARM_UP_CALLS):
            call()
    durations: dict[Hashable, list[float]] = {name: [] for name in calls}
    for _ in range(CALLS // BATCH):
        for name, call in calls.items():
            for _ in range(BATCH):
                started = time.perf_counter()
                call()
                durations[name].append((time.perf_counter() - started) * 1000)
    return {name: percentile(values, 0.5) for name, values in durations.items()}


def _list(client: RawClient, token: str = "") -> scenario_service_pb2.ListScenariosResponse:
    request = scenario_service_pb2.ListScenariosRequest(page_size=PAGE, page_token=token)
    return scenario_service_pb2.ListScenariosResponse.FromString(
        client.call(_LIST, request.SerializeToString())
    )


def _tenant_of_size(
    client: RawClient, engine: Engine, tenant_id: str, size: int, log: Callable
) -> dict[str, Callable[[], object]]:
    """Loads ``size`` scenarios into the tenant; returns the calls to measure on it."""
    newest = datetime.now(UTC) - timedelta(hours=1)
    bulk.add_scenarios(engine, tenant_id, SMALL, newest, "recent")
    token = ""
    for _ in range(DEEP_AFTER // PAGE):
        token = _list(client, token).next_page_token
    deep_ids = [s.id for s in _list(client, token).scenarios]
    if len(deep_ids) != SMALL - DEEP_AFTER:
        raise RuntimeError(f"the deep page holds {len(deep_ids)} scenarios, not 50")
    if size > SMALL:
        log(f"loading {size - SMALL:,} more scenarios")
        started = time.monotonic()
        older = newest - timedelta(milliseconds=size - SMALL, seconds=1)
        bulk.add_scenarios(engine, tenant_id, size - SMALL, older, "older")
        log(f"loaded in {time.monotonic() - started:.0f} s")
        if [s.id for s in _list(client, token).scenarios] != deep_ids:
            raise RuntimeError("the deep page token no longer returns the same scenarios")
    get = scenario_service_pb2.GetScenarioRequest(scenario_id=deep_ids[0]).SerializeToString()
    return {
        FIRST_PAGE: lambda: _list(client),
        DEEP_PAGE: lambda: _list(client, token),
        GET: lambda: client.call(_GET, get),
    }


def scenarios_in_tenant(
    engine: Engine, tenants: dict[int, tuple[str, RawClient]], *, log: Callable
) -> list[Latency]:
    """Loads each tenant (id, client) to its size (1,000 or 1,000,000), then measures them."""
    calls = {}
    for size, (tenant_id, client) in tenants.items():
        for name, call in _tenant_of_size(client, engine, tenant_id, size, log).items():
            calls[(size, name)] = call
    measured = p50s(calls)
    return [Latency(SCENARIOS_IN_TENANT, size, name, measured[size, name]) for size, name in calls]


def simulations_in_scenario(
    client: RawClient, engine: Engine, tenant_id: str, *, log: Callable
) -> list[Latency]:
    """GetScenario on an empty scenario, and on one holding 100,000 simulations."""

    def create(name: str) -> str:
        request = scenario_service_pb2.CreateScenarioRequest(scenario=payloads.scenario(name))
        reply = client.call(_CREATE, request.SerializeToString())
        return scenario_service_pb2.CreateScenarioResponse.FromString(reply).scenario.id

    empty, full = create("empty"), create("full")
    log(f"loading {SIMULATIONS:,} simulations into one scenario")
    bulk.add_simulations(engine, tenant_id, full, SIMULATIONS)

    def get(scenario_id: str, expected_count: int) -> Callable[[], object]:
        serialized = scenario_service_pb2.GetScenarioRequest(
            scenario_id=scenario_id
        ).SerializeToString()
        reply = scenario_service_pb2.GetScenarioResponse.FromString(client.call(_GET, serialized))
        if reply.scenario.simulation_count != expected_count:
            raise RuntimeError(
                f"scenario {scenario_id} counts {reply.scenario.simulation_count} "
                f"simulations, not {expected_count}"
            )
        return lambda: client.call(_GET, serialized)

    measured = p50s({0: get(empty, 0), SIMULATIONS: get(full, SIMULATIONS)})
    return [Latency(SIMULATIONS_IN_SCENARIO, size, GET, p50) for size, p50 in measured.items()]


def config_filter(
    client: RawClient, engine: Engine, tenant_id: str, *, log: Callable, count: int = SIMULATIONS
) -> list[Latency]:
    """ListSimulations with a selective config filter (one simulation in 1,000 matches) on a
    tenant of ``count`` simulations, each with a config."""
    log(f"loading {count:,} simulations with configs")
    bulk.add_configured_simulations(engine, tenant_id, count)
    request = simulation_service_pb2.ListSimulationsRequest(
        filter=f'config.model = "{bulk.RARE_MODEL}"', page_size=PAGE
    ).SerializeToString()
    reply = simulation_service_pb2.ListSimulationsResponse.FromString(
        client.call(_LIST_SIMULATIONS, request)
    )
    if len(reply.simulations) != min(PAGE, count // 1000):
        raise RuntimeError(f"the config filter found {len(reply.simulations)} simulations")
    measured = p50s({count: lambda: client.call(_LIST_SIMULATIONS, request)})
    return [Latency(SIMULATIONS_IN_TENANT, count, CONFIG_FILTER, measured[count])]
