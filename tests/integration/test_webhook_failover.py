"""A server SIGKILLed in the middle of a delivery loses nothing: another replica delivers it.

Two ``simconfig serve`` processes share one PostgreSQL database. The receiver holds the first
delivery unanswered; the server sending it is killed; once its lease expires the other
server claims the delivery and sends it, then the rest, in order per simulation.
"""

from __future__ import annotations

import grpc
from simulation.v1 import config_service_pb2 as cpb
from simulation.v1 import (
    config_service_pb2_grpc,
    simulation_pb2,
    simulation_service_pb2_grpc,
    webhook_service_pb2_grpc,
)
from simulation.v1 import simulation_service_pb2 as spb
from simulation.v1 import webhook_service_pb2 as wpb

from tests.processes import ServerProcess, create_tenant_key, environment, free_port, simconfig
from tests.unit.simulation_api import valid_config
from tests.webhook_receiver import Receiver


def test_a_delivery_cut_short_by_a_killed_server_is_delivered_by_another(
    empty_postgres_url, tmp_path
):
    receiver = Receiver(hold_first=True)
    env = environment(
        tmp_path,
        database_url=empty_postgres_url,
        SIMCONFIG_PROCESSES=1,
        SIMCONFIG_WEBHOOK_ALLOW_PRIVATE="true",
        SIMCONFIG_WEBHOOK_LEASE_SECONDS=1,
        SIMCONFIG_WEBHOOK_POLL_SECONDS=0.1,
        SIMCONFIG_WEBHOOK_RETRY_BASE_SECONDS=0.1,
    )
    simconfig(env, "migrate")
    _, key = create_tenant_key(env, "failover")
    metadata = [("x-api-key", key)]
    first = ServerProcess(env | {"SIMCONFIG_PORT": str(free_port())}).wait_ready()
    second = None
    try:
        with grpc.insecure_channel(first.address) as channel:
            webhook_service_pb2_grpc.WebhookServiceStub(channel).CreateWebhook(
                wpb.CreateWebhookRequest(webhook=wpb.Webhook(url=receiver.url)),
                metadata=metadata,
            )
            sim = (
                config_service_pb2_grpc.ConfigServiceStub(channel)
                .CreateSimulationWithConfig(
                    cpb.CreateSimulationWithConfigRequest(
                        simulation=simulation_pb2.Simulation(name="failover"),
                        config=valid_config(),
                    ),
                    metadata=metadata,
                )
                .simulation.id
            )
            events = (
                simulation_service_pb2_grpc.SimulationServiceStub(channel)
                .ListSimulationEvents(
                    spb.ListSimulationEventsRequest(simulation_id=sim), metadata=metadata
                )
                .events
            )
        assert receiver.held.wait(20), "the first server never sent the delivery"
        first.kill()
        second = ServerProcess(env | {"SIMCONFIG_PORT": str(free_port())}).wait_ready()
        got = [r.event["id"] for r in receiver.take(len(events), timeout=30)]
        assert got == [event.id for event in events]
    finally:
        receiver.close()
        first.kill()
        if second is not None:
            second.stop()
