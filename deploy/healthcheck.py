"""The image's HEALTHCHECK: exit 0 when the server in this container answers SERVING.

It asks the standard gRPC health service (``grpc.health.v1.Health/Check``, the
overall status) at 127.0.0.1:$SIMCONFIG_PORT, or at $SIMCONFIG_HOST when the
server listens on one address rather than on all of them. Anything else exits 1:
NOT_SERVING (the server cannot reach its database, or is shutting down), no
answer within the deadline, nothing listening. Plaintext, like the server.

    python deploy/healthcheck.py
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Below the Dockerfile's HEALTHCHECK --timeout, so a slow answer is reported, not killed.
DEADLINE_SECONDS = 3.0
EVERY_ADDRESS = {"", "0.0.0.0", "::", "[::]"}  # noqa: S104 - compared with, never bound


def target(env: Mapping[str, str]) -> str:
    """The address to ask, from the same SIMCONFIG_HOST / SIMCONFIG_PORT the server reads."""
    host = env.get("SIMCONFIG_HOST", "127.0.0.1").strip()
    port = env.get("SIMCONFIG_PORT", "50051").strip()
    if host in EVERY_ADDRESS:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"{host}:{port}"


def main() -> int:
    address = target(os.environ)
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=DEADLINE_SECONDS
            )
    except grpc.RpcError as exc:
        print(f"unhealthy: {address}: {exc.code().name}: {exc.details()}")
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{'healthy' if status == 'SERVING' else 'unhealthy'}: {address}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
