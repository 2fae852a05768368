"""TLS and mutual TLS on the gRPC port of a real ``simconfig serve``, called with grpcurl."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from simulation.v1 import scenario_service_pb2 as pb
from simulation.v1 import scenario_service_pb2_grpc

from service.settings import Settings, SettingsError
from tests.certificates import make_certificates
from tests.processes import GRPCURL, ServerProcess, add_tenant_key, environment, free_port

REPO = Path(__file__).resolve().parents[2]
LIST = "simulation.v1.ScenarioService/ListScenarios"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


def serve(tmp_path, **tls) -> ServerProcess:
    env = environment(tmp_path, free_port(), SIMCONFIG_DEMO_TENANT="false", **tls)
    return ServerProcess(env).wait_ready()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, certificates):
    server = serve(
        tmp_path_factory.mktemp("tls"),
        SIMCONFIG_TLS_CERT=certificates.server_cert,
        SIMCONFIG_TLS_KEY=certificates.server_key,
    )
    _, key = add_tenant_key(server.env, "acme")
    yield server, key
    server.stop()


@pytest.fixture(scope="module")
def mtls_server(tmp_path_factory, certificates):
    server = serve(
        tmp_path_factory.mktemp("mtls"),
        SIMCONFIG_TLS_CERT=certificates.server_cert,
        SIMCONFIG_TLS_KEY=certificates.server_key,
        SIMCONFIG_TLS_CLIENT_CA=certificates.ca,
    )
    _, key = add_tenant_key(server.env, "acme")
    yield server, key
    server.stop()


def grpcurl(server: ServerProcess, key: str, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [GRPCURL, *options, "-H", f"x-api-key: {key}", "-d", "{}", server.address, LIST],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_grpcurl_with_the_ca_certificate_is_served(tls_server, certificates):
    server, key = tls_server

    result = grpcurl(server, key, "-cacert", str(certificates.ca))

    assert result.returncode == 0, result.stderr
    assert "listening on" in server.output and ", TLS)" in server.output


# A refused handshake can leave grpcurl retrying the dial until its connect timeout (10 s by
# default) instead of failing at once; a served one connects in well under a second on loopback.
REFUSED_DIAL = ("-connect-timeout", "3")


def test_a_plaintext_client_is_refused(tls_server):
    server, key = tls_server

    refused = grpcurl(server, key, *REFUSED_DIAL, "-plaintext")
    assert refused.returncode != 0
    assert "Failed to dial target host" in refused.stderr, refused.stderr
    with grpc.insecure_channel(server.address) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            scenario_service_pb2_grpc.ScenarioServiceStub(channel).ListScenarios(
                pb.ListScenariosRequest(), metadata=(("x-api-key", key),), timeout=5
            )
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_client_that_does_not_trust_the_ca_is_refused(tls_server):
    server, key = tls_server

    result = grpcurl(server, key)  # the system's CAs only

    assert result.returncode != 0
    assert "certificate" in result.stderr.lower()


def test_with_a_client_ca_a_client_without_a_certificate_is_refused(mtls_server, certificates):
    server, key = mtls_server

    result = grpcurl(server, key, *REFUSED_DIAL, "-cacert", str(certificates.ca))

    assert result.returncode != 0
    assert "Failed to dial target host" in result.stderr, result.stderr


def test_with_a_client_ca_a_certificate_from_another_ca_is_refused(mtls_server, certificates):
    server, key = mtls_server

    result = grpcurl(
        server,
        key,
        *REFUSED_DIAL,
        "-cacert",
        str(certificates.ca),
        "-cert",
        str(certificates.stranger_cert),
        "-key",
        str(certificates.stranger_key),
    )

    assert result.returncode != 0
    assert "Failed to dial target host" in result.stderr, result.stderr


def test_with_a_client_ca_a_client_with_a_signed_certificate_is_served(mtls_server, certificates):
    server, key = mtls_server

    result = grpcurl(
        server,
        key,
        "-cacert",
        str(certificates.ca),
        "-cert",
        str(certificates.client_cert),
        "-key",
        str(certificates.client_key),
    )

    assert result.returncode == 0, result.stderr
    assert ", mutual TLS)" in server.output
    # A Python client with its certificate gets the same answer.
    credentials = grpc.ssl_channel_credentials(
        root_certificates=certificates.ca.read_bytes(),
        private_key=certificates.client_key.read_bytes(),
        certificate_chain=certificates.client_cert.read_bytes(),
    )
    with grpc.secure_channel(server.address, credentials) as channel:
        scenario_service_pb2_grpc.ScenarioServiceStub(channel).ListScenarios(
            pb.ListScenariosRequest(), metadata=(("x-api-key", key),), timeout=10
        )


def test_the_image_healthcheck_speaks_tls_to_a_tls_server(tls_server, certificates, tmp_path):
    server, _ = tls_server
    full_chain = tmp_path / "fullchain.pem"
    full_chain.write_bytes(certificates.server_cert.read_bytes() + certificates.ca.read_bytes())
    env = {
        **server.env,
        "SIMCONFIG_TLS_CERT": str(full_chain),
        "SIMCONFIG_TLS_KEY": str(certificates.server_key),
    }

    result = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "healthcheck.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "healthy" in result.stdout and "SERVING" in result.stdout


def test_a_key_that_does_not_match_the_certificate_stops_start_up(certificates):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {
                "SIMCONFIG_TLS_CERT": str(certificates.server_cert),
                "SIMCONFIG_TLS_KEY": str(certificates.client_key),
            }
        )
    assert "SIMCONFIG_TLS_CERT and SIMCONFIG_TLS_KEY" in str(caught.value)


@pytest.mark.parametrize(
    "variables, named",
    [
        ({"SIMCONFIG_TLS_CERT": "server"}, "must be set together"),
        ({"SIMCONFIG_TLS_CLIENT_CA": "ca"}, "SIMCONFIG_TLS_CLIENT_CA needs"),
        ({"SIMCONFIG_TLS_CERT": "/no/such.pem", "SIMCONFIG_TLS_KEY": "key"}, "SIMCONFIG_TLS_CERT"),
    ],
)
def test_incomplete_or_missing_tls_files_are_named(certificates, variables, named):
    files = {
        "server": certificates.server_cert,
        "key": certificates.server_key,
        "ca": certificates.ca,
    }
    environ = {name: str(files.get(value, value)) for name, value in variables.items()}

    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)

    assert named in str(caught.value)
