"""The image's HEALTHCHECK: exit 0 when the server in this container answers SERVING.

It asks the standard gRPC health service (``grpc.health.v1.Health/Check``, the
overall status) at 127.0.0.1:$SIMCONFIG_PORT, or at $SIMCONFIG_HOST when the
server listens on one address rather than on all of them. Anything else exits 1:
NOT_SERVING (the server cannot reach its database, or is shutting down), no
answer within the deadline, nothing listening. Plaintext, like the server, unless
SIMCONFIG_TLS_CERT is set: then over TLS, trusting that certificate file (so it
must hold the chain up to the issuing CA, as a full-chain PEM does) and, when
SIMCONFIG_TLS_CLIENT_CA asks callers for a certificate, presenting the server's
own certificate and key (so that certificate must also allow client auth).

    python deploy/healthcheck.py
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

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


def channel_for(address: str, env: Mapping[str, str]) -> grpc.Channel:
    """A channel that speaks to the server as the server's own TLS settings require."""
    cert = env.get("SIMCONFIG_TLS_CERT", "").strip()
    if not cert:
        return grpc.insecure_channel(address)
    chain = Path(cert).read_bytes()
    client = {}
    if env.get("SIMCONFIG_TLS_CLIENT_CA", "").strip():
        key = Path(env["SIMCONFIG_TLS_KEY"].strip()).read_bytes()
        client = {"private_key": key, "certificate_chain": chain}
    credentials = grpc.ssl_channel_credentials(root_certificates=chain, **client)
    return grpc.secure_channel(address, credentials)


def main() -> int:
    address = target(os.environ)
    try:
        with channel_for(address, os.environ) as channel:
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
