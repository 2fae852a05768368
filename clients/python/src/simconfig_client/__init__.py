"""Python client of the Simulation Config Service.

``Client`` has one typed method per RPC; :mod:`simconfig_client.errors` has the exceptions a
failed call raises; :mod:`simconfig_client.v1` has the message classes (the server's own
stubs, generated from the same protos).
"""

from simconfig_client import errors
from simconfig_client.client import Client, RetryPolicy, is_retry_safe
from simconfig_client.v1 import (
    config_pb2,
    config_service_pb2,
    scenario_pb2,
    scenario_service_pb2,
    simulation_pb2,
    simulation_service_pb2,
)

__all__ = [
    "Client",
    "RetryPolicy",
    "config_pb2",
    "config_service_pb2",
    "errors",
    "is_retry_safe",
    "scenario_pb2",
    "scenario_service_pb2",
    "simulation_pb2",
    "simulation_service_pb2",
]
