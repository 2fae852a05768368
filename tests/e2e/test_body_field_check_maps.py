"""deploy/body_fields.lua in a real Envoy, descending into map values that are messages.

The service's protos have no such map, so the scanner runs here with the tables gateway.py
renders from tests/deploy/synthetic_protos.py, in front of a route that answers 200 itself:
a 400 can only come from the check.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.deploy import synthetic_protos
from tests.e2e import gateway_stack

ENVOY, pytestmark = gateway_stack.envoy_or_skip()


def envoy_config(lua: str, port: int) -> dict:
    """A listener whose only filters are the Lua check and a router that answers 200."""
    return {
        "static_resources": {
            "listeners": [
                {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters."
                                        "network.http_connection_manager.v3.HttpConnectionManager",
                                        "stat_prefix": "check",
                                        "route_config": {
                                            "virtual_hosts": [
                                                {
                                                    "name": "all",
                                                    "domains": ["*"],
                                                    "routes": [
                                                        {
                                                            "match": {"prefix": "/"},
                                                            "direct_response": {"status": 200},
                                                        }
                                                    ],
                                                }
                                            ]
                                        },
                                        "http_filters": [
                                            {
                                                "name": "envoy.filters.http.lua",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy."
                                                    "extensions.filters.http.lua.v3.Lua",
                                                    "default_source_code": {"inline_string": lua},
                                                },
                                            },
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy."
                                                    "extensions.filters.http.router.v3.Router"
                                                },
                                            },
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    }


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> Iterator[httpx.Client]:
    workdir = tmp_path_factory.mktemp("body-check")
    descriptor = synthetic_protos.write_descriptor_set(workdir / "synthetic.binpb")
    lua = gateway_stack.gateway_module().body_field_check(descriptor)
    port = gateway_stack.free_port()
    config = yaml.safe_dump(envoy_config(lua, port))
    envoy = gateway_stack.start_envoy(config, port, ENVOY, workdir)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield http
    finally:
        envoy.stop()


def put(client: httpx.Client, body: dict) -> httpx.Response:
    return client.put(
        "/v1/things/t1", content=json.dumps(body), headers={"content-type": "application/json"}
    )


def test_known_fields_inside_map_values_pass(client):
    body = {
        "parts": {
            "wheel": {"part_name": "wheel", "detail": {"size": 3}, "more": {"x": {"size": 1}}},
            "door": {"partName": "door"},
        },
        "labels": {"any key": "v"},
        "extras": {"k": {"free": {"form": [1, 2]}}},
    }
    response = put(client, body)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"parts": {"wheel": {"colour": "red"}}}, "parts.wheel.colour", "synthetic.v1.Part"),
        (
            {"parts": {"a": {"part_name": "a"}, "b": {"detail": {"weight": 1}}}},
            "parts.b.detail.weight",
            "synthetic.v1.Detail",
        ),
        (
            {"parts": {"a": {"more": {"k": {"size": 1, "sizes": 2}}}}},
            "parts.a.more.k.sizes",
            "synthetic.v1.Detail",
        ),
    ],
)
def test_an_unknown_field_inside_a_map_value_is_a_400_naming_its_path(client, body, field, message):
    response = put(client, body)
    assert response.status_code == 400, response.text
    name = field.rsplit(".", 1)[1]
    assert response.text == (
        f'unknown field "{field}" in the JSON body of PUT /v1/things/{{id}}: '
        f'{message} has no field "{name}"'
    )
