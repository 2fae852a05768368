"""The data the load runs read and write, made through the public API like a client would.

It also records, for every benchmarked RPC, the request the load sends and the reply the
real server gave to it: h2load checks the reply size, and the bare reference server sends
those same bytes back.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from simulation.v1 import (
    config_service_pb2,
    scenario_service_pb2,
    simulation_pb2,
)

from bench import payloads

SCENARIOS = 60  # more than a page of 50, so the listed page is full and has a next token
LIST_PAGE_SIZE = 50


@dataclass(frozen=True)
class Rpc:
    """One benchmarked RPC: what the load sends and what the real server answered.

    ``workload`` names the driver workload for RPCs h2load cannot drive (a request that
    must differ per call); None means h2load sends ``request`` on every call.
    """

    name: str
    path: str
    request: bytes
    reply: bytes
    workload: str | None = None


@dataclass(frozen=True)
class LoadData:
    rpcs: list[Rpc]
    # One simulation per in-flight UpdateConfig call, so no two writers share an etag.
    update_simulation_ids: list[str]


def _path(service: str, method: str) -> str:
    return f"/simulation.v1.{service}/{method}"


class RawClient:
    """Calls methods with serialized bytes, so the benchmark sees exactly what the wire carries."""

    def __init__(self, address: str, key: str):
        self._channel = grpc.insecure_channel(address)
        self._metadata = (("x-api-key", key),)

    def call(self, path: str, request: bytes, timeout: float = 30.0) -> bytes:
        method = self._channel.unary_unary(path)  # no serializers: bytes in, bytes out
        return method(request, metadata=self._metadata, timeout=timeout)

    def close(self) -> None:
        self._channel.close()


def seed(client: RawClient, in_flight: int) -> LoadData:
    """Creates the scenarios and simulations the load uses; returns the RPCs to measure."""
    create_path = _path("ScenarioService", "CreateScenario")
    scenario_ids = []
    create_reply = b""
    for index in range(SCENARIOS):
        # Named like the driver's scenarios ("load <run> <slot> <n>"), so the reply recorded
        # for the reference server is the size of the replies the driver gets.
        request = scenario_service_pb2.CreateScenarioRequest(
            scenario=payloads.scenario(f"load seed0000 0 {index}")
        ).SerializeToString()
        create_reply = client.call(create_path, request)
        reply = scenario_service_pb2.CreateScenarioResponse.FromString(create_reply)
        scenario_ids.append(reply.scenario.id)

    with_config_path = _path("ConfigService", "CreateSimulationWithConfig")

    def new_simulation(name: str) -> str:
        request = config_service_pb2.CreateSimulationWithConfigRequest(
            simulation=simulation_pb2.Simulation(name=name, scenario_id=scenario_ids[0]),
            config=payloads.config(),
        ).SerializeToString()
        reply = config_service_pb2.CreateSimulationWithConfigResponse.FromString(
            client.call(with_config_path, request)
        )
        return reply.simulation.id

    read_simulation = new_simulation("read me")
    update_simulations = [new_simulation(f"update me {i}") for i in range(in_flight)]

    get_config_path = _path("ConfigService", "GetConfig")
    update_path = _path("ConfigService", "UpdateConfig")
    # The reply of a real update, for the reference server; the driver reads each
    # simulation's current etag before it starts, so this write does not disturb it.
    update_reply = client.call(
        update_path,
        config_service_pb2.UpdateConfigRequest(
            simulation_id=update_simulations[0], config=payloads.config(max_turns=21)
        ).SerializeToString(),
    )
    fixed = [
        (
            "GetScenario",
            _path("ScenarioService", "GetScenario"),
            scenario_service_pb2.GetScenarioRequest(scenario_id=scenario_ids[0]),
        ),
        (
            f"ListScenarios ({LIST_PAGE_SIZE})",
            _path("ScenarioService", "ListScenarios"),
            scenario_service_pb2.ListScenariosRequest(page_size=LIST_PAGE_SIZE),
        ),
        (
            f"GetConfig ({payloads.AGENTS} agents)",
            get_config_path,
            config_service_pb2.GetConfigRequest(simulation_id=read_simulation),
        ),
    ]
    rpcs = []
    for name, path, message in fixed:
        request = message.SerializeToString()
        rpcs.append(Rpc(name, path, request, client.call(path, request)))
    rpcs += [
        Rpc(
            f"UpdateConfig ({payloads.AGENTS} agents, etag)",
            update_path,
            b"",
            update_reply,
            workload="update-config",
        ),
        Rpc("CreateScenario", create_path, b"", create_reply, workload="create-scenario"),
    ]
    return LoadData(rpcs=rpcs, update_simulation_ids=update_simulations)
