"""The REST gateway over TLS: HTTPS on its listener, mutual TLS to a TLS-only server."""

from __future__ import annotations

import ssl

import httpx
import pytest
import yaml

from tests.certificates import make_certificates
from tests.e2e import gateway_stack
from tests.processes import free_port

ENVOY, pytestmark = gateway_stack.envoy_or_skip()
gateway = gateway_stack.gateway_module()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


def tls_settings(certificates) -> dict[str, str]:
    return {
        "SIMCONFIG_GATEWAY_TLS_CERT": str(certificates.server_cert),
        "SIMCONFIG_GATEWAY_TLS_KEY": str(certificates.server_key),
        "SIMCONFIG_GATEWAY_UPSTREAM_CA": str(certificates.ca),
        "SIMCONFIG_GATEWAY_UPSTREAM_CERT": str(certificates.client_cert),
        "SIMCONFIG_GATEWAY_UPSTREAM_KEY": str(certificates.client_key),
    }


def test_the_rendered_config_puts_tls_on_the_listener_and_the_upstream(certificates):
    settings = gateway.GatewaySettings.from_env(tls_settings(certificates))
    config = yaml.safe_load(gateway.render_config(settings, gateway.DESCRIPTOR))

    listener = config["static_resources"]["listeners"][0]["filter_chains"][0]
    cluster = config["static_resources"]["clusters"][0]
    downstream = listener["transport_socket"]["typed_config"]["common_tls_context"]
    upstream = cluster["transport_socket"]["typed_config"]["common_tls_context"]
    assert downstream["tls_certificates"][0]["private_key"]["filename"] == str(
        certificates.server_key
    )
    assert upstream["validation_context"]["trusted_ca"]["filename"] == str(certificates.ca)
    assert upstream["validation_context"]["match_typed_subject_alt_names"] == [
        {"san_type": "IP_ADDRESS", "matcher": {"exact": "127.0.0.1"}}
    ]
    assert upstream["tls_certificates"][0]["certificate_chain"]["filename"] == str(
        certificates.client_cert
    )
    assert upstream["alpn_protocols"] == ["h2"]


def test_without_tls_settings_nothing_is_encrypted():
    config = yaml.safe_load(
        gateway.render_config(gateway.GatewaySettings.from_env({}), gateway.DESCRIPTOR)
    )

    assert "transport_socket" not in config["static_resources"]["listeners"][0]["filter_chains"][0]
    assert "transport_socket" not in config["static_resources"]["clusters"][0]


@pytest.mark.parametrize(
    "variables",
    [
        {"SIMCONFIG_GATEWAY_TLS_CERT": "cert.pem"},
        {"SIMCONFIG_GATEWAY_UPSTREAM_CERT": "c.pem", "SIMCONFIG_GATEWAY_UPSTREAM_KEY": "c.key"},
    ],
)
def test_incomplete_tls_settings_are_refused_by_name(variables):
    with pytest.raises(SystemExit) as caught:
        gateway.GatewaySettings.from_env(variables)

    assert "SIMCONFIG_GATEWAY_" in str(caught.value)


def test_https_to_the_gateway_and_mutual_tls_to_the_server(tmp_path, certificates):
    server_port, gateway_port = free_port(), free_port()
    env = gateway_stack.server_env(tmp_path / "data", server_port)
    env.update(
        SIMCONFIG_TLS_CERT=str(certificates.server_cert),
        SIMCONFIG_TLS_KEY=str(certificates.server_key),
        SIMCONFIG_TLS_CLIENT_CA=str(certificates.ca),
        SIMCONFIG_METRICS_PORT="0",
    )
    server = gateway_stack.start_server(env, tmp_path)
    try:
        gateway_stack.cli(env, "migrate")
        tenant = gateway_stack.cli(env, "tenants", "create", "acme")
        key = gateway_stack.cli(env, "keys", "create", "--tenant", tenant)
        envoy = gateway_stack.start_gateway(
            server_port, gateway_port, ENVOY, tmp_path, settings=tls_settings(certificates)
        )
        try:
            url = f"https://127.0.0.1:{gateway_port}/v1/scenarios"
            with httpx.Client(
                verify=ssl.create_default_context(cafile=certificates.ca), timeout=10
            ) as client:
                created = client.post(
                    url, json={"display_name": "Over TLS"}, headers={"x-api-key": key}
                )
                listed = client.get(url, headers={"x-api-key": key})
            assert created.status_code == 200, created.text
            assert [s["display_name"] for s in listed.json()["scenarios"]] == ["Over TLS"]
            with pytest.raises(httpx.HTTPError):
                httpx.get(url.replace("https", "http"), timeout=5)
        finally:
            envoy.stop()
    finally:
        server.stop()
