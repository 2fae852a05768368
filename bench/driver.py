"""The load driver for writes that need a different request on every call.

h2load sends one fixed body, which cannot drive two of the benchmarked RPCs:
``CreateScenario`` (display names are unique per tenant, so the same body succeeds once) and
``UpdateConfig`` with an etag (each write changes the etag the next one must send). This
driver sends them from a Python process of its own, never the server's:

- ``grpc.aio`` on one event loop: ``connections`` channels (each its own HTTP/2 connection,
  as h2load's clients are; a local subchannel pool keeps grpcio from sharing one), and
  ``streams`` calls in flight on each, as h2load's ``-m``. Each in-flight slot is a
  coroutine that sends its next call when the previous one answers.
- ``create-scenario``: every call creates a scenario with a new display name.
- ``update-config``: slot *i* owns simulation *i*, so writers never collide on an etag: it
  reads the current etag once, then sends each update with the etag the previous reply
  returned, alternating ``max_turns`` so every write is a real change. After an error it
  reads the etag again. The request's fixed part is serialized once (see UpdateConfigs).

Why Python and one process: against the bare reference server, one asyncio process of
grpcio clients completes about as many calls per second as h2load does (~4,800 vs ~5,100 on
the 2-core machine this was written on), while leaving the other core to the server; two
driver processes were slower, fighting the server for the cores. The bare server is
measured with this same driver in the same run, so its ratio compares like with like.

Calls are counted as h2load counts them: those that complete inside the timed window, after
a warm-up; calls still in flight when it closes are not counted. The result is one JSON
object on standard output::

    python -m bench.driver --target 127.0.0.1:PORT --key KEY --workload create-scenario
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections import Counter

import grpc
from simulation.v1 import (
    config_service_pb2,
    config_service_pb2_grpc,
    scenario_pb2,
    scenario_service_pb2,
)

from bench import payloads

CALL_TIMEOUT_SECONDS = 30.0
WORKLOADS = ("create-scenario", "update-config")
CREATE_SCENARIO = "/simulation.v1.ScenarioService/CreateScenario"
UPDATE_CONFIG = "/simulation.v1.ConfigService/UpdateConfig"


class CreateScenarios:
    """One in-flight slot creating scenarios, each with a display name no one used.

    The request is the serialized scenario without a name plus, per call, a message holding
    only the name: the parser merges them (see UpdateConfigs).
    """

    def __init__(self, channel: grpc.aio.Channel, metadata, slot: int, run: str):
        self._create = channel.unary_unary(
            CREATE_SCENARIO, request_serializer=None, response_deserializer=None
        )
        self._metadata = metadata
        self._fixed = scenario_service_pb2.CreateScenarioRequest(
            scenario=payloads.scenario("")
        ).SerializeToString()
        self._prefix = f"load {run} {slot}"
        self._count = 0

    async def prepare(self) -> None:
        pass

    async def call(self) -> None:
        self._count += 1
        name = scenario_service_pb2.CreateScenarioRequest(
            scenario=scenario_pb2.Scenario(display_name=f"{self._prefix} {self._count}")
        ).SerializeToString()
        await self._create(
            self._fixed + name, metadata=self._metadata, timeout=CALL_TIMEOUT_SECONDS
        )

    async def recover(self) -> None:
        pass


class UpdateConfigs:
    """One in-flight slot updating one simulation's config, each time with the current etag.

    Serialized protobuf messages concatenate: the server parses ``A + B`` as ``A`` merged
    with ``B``. So the part that never changes (the id and a 20-agent config, in two
    variants) is serialized once, and each call appends only its etag; building the config
    anew every call would make the driver, not the server, the limit.
    """

    def __init__(self, channel: grpc.aio.Channel, metadata, simulation_id: str):
        self._update = channel.unary_unary(
            UPDATE_CONFIG,
            request_serializer=None,
            response_deserializer=config_service_pb2.UpdateConfigResponse.FromString,
        )
        self._stub = config_service_pb2_grpc.ConfigServiceStub(channel)
        self._metadata = metadata
        self._simulation_id = simulation_id
        self._bodies = [
            config_service_pb2.UpdateConfigRequest(
                simulation_id=simulation_id, config=payloads.config(max_turns=turns)
            ).SerializeToString()
            for turns in (20, 21)
        ]
        self._etag = ""
        self._count = 0

    async def prepare(self) -> None:
        reply = await self._stub.GetConfig(
            config_service_pb2.GetConfigRequest(simulation_id=self._simulation_id),
            metadata=self._metadata,
            timeout=CALL_TIMEOUT_SECONDS,
        )
        self._etag = reply.etag

    async def call(self) -> None:
        self._count += 1
        etag = config_service_pb2.UpdateConfigRequest(etag=self._etag).SerializeToString()
        reply = await self._update(
            self._bodies[self._count % 2] + etag,
            metadata=self._metadata,
            timeout=CALL_TIMEOUT_SECONDS,
        )
        self._etag = reply.etag

    async def recover(self) -> None:
        await self.prepare()


async def drive(
    *,
    target: str,
    key: str,
    workload: str,
    connections: int,
    streams: int,
    warm_up: float,
    seconds: float,
    simulation_ids: list[str] = (),
) -> dict:
    """Runs the load; returns counts and the latencies (ms) of the successful calls."""
    metadata = (("x-api-key", key),)
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(connections)
    ]
    run = uuid.uuid4().hex[:8]
    slots = []
    for index in range(connections * streams):
        channel = channels[index % connections]
        if workload == "create-scenario":
            slots.append(CreateScenarios(channel, metadata, index, run))
        else:
            slots.append(UpdateConfigs(channel, metadata, simulation_ids[index]))
    await asyncio.gather(*(slot.prepare() for slot in slots))

    start = time.monotonic() + warm_up
    end = start + seconds
    codes: Counter[str] = Counter()
    latencies: list[float] = []

    async def keep_sending(slot) -> None:
        while time.monotonic() < end:
            sent = time.monotonic()
            try:
                await slot.call()
                code = "OK"
            except grpc.aio.AioRpcError as exc:
                code = exc.code().name
                await slot.recover()
            done = time.monotonic()
            if start <= done < end:
                codes[code] += 1
                if code == "OK":
                    latencies.append((done - sent) * 1000)

    await asyncio.gather(*(keep_sending(slot) for slot in slots))
    for channel in channels:
        await channel.close()
    ok = codes.pop("OK", 0)
    return {
        "ok": ok,
        "errors": sum(codes.values()),
        "error_codes": dict(codes),
        "seconds": seconds,
        "latencies_ms": latencies,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port of the server")
    parser.add_argument("--key", required=True, help="API key sent as x-api-key")
    parser.add_argument("--workload", choices=WORKLOADS, required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--streams", type=int, default=8, help="calls in flight per connection")
    parser.add_argument("--warm-up", type=float, default=1.0, help="seconds not counted")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds counted")
    parser.add_argument(
        "--simulations",
        default="",
        help="update-config: comma-separated simulation ids, one per in-flight call",
    )
    args = parser.parse_args(argv)
    simulation_ids = [s for s in args.simulations.split(",") if s]
    if args.workload == "update-config" and len(simulation_ids) < args.connections * args.streams:
        parser.error("update-config needs one simulation id per in-flight call")
    result = asyncio.run(
        drive(
            target=args.target,
            key=args.key,
            workload=args.workload,
            connections=args.connections,
            streams=args.streams,
            warm_up=args.warm_up,
            seconds=args.seconds,
            simulation_ids=simulation_ids,
        )
    )
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
