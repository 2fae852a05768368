"""deploy/gateway.py's settings and what they put in the Envoy config."""

from __future__ import annotations

import pytest
import yaml

from tests.e2e import gateway_stack

gateway = gateway_stack.gateway_module()


def rendered(env: dict[str, str]) -> dict:
    settings = gateway.GatewaySettings.from_env(env)
    return yaml.safe_load(gateway.render_config(settings, gateway.DESCRIPTOR))


def connection_manager(config: dict) -> dict:
    return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"
    ]


def transcoder(config: dict) -> dict:
    (found,) = [
        f["typed_config"]
        for f in connection_manager(config)["http_filters"]
        if f["name"] == "envoy.filters.http.grpc_json_transcoder"
    ]
    return found


def test_the_defaults_are_a_local_gateway_logging_to_standard_output():
    settings = gateway.GatewaySettings.from_env({})
    assert (settings.listen_host, settings.listen_port) == ("127.0.0.1", 8080)
    assert (settings.admin_port, settings.access_log) == (9901, "/dev/stdout")
    assert (settings.upstream_host, settings.upstream_port) == ("127.0.0.1", 50051)
    config = rendered({})
    assert connection_manager(config)["access_log"][0]["typed_config"]["path"] == "/dev/stdout"
    assert transcoder(config)["proto_descriptor"] == str(gateway.DESCRIPTOR)


@pytest.mark.parametrize("listen_host", ["127.0.0.1", "0.0.0.0", "10.0.0.7"])
def test_the_admin_interface_is_on_the_loopback_address_wherever_envoy_listens(listen_host):
    config = rendered(
        {"SIMCONFIG_GATEWAY_HOST": listen_host, "SIMCONFIG_GATEWAY_ADMIN_PORT": "9911"}
    )
    assert config["admin"]["address"]["socket_address"] == {
        "address": "127.0.0.1",
        "port_value": 9911,
    }
    listener = config["static_resources"]["listeners"][0]["address"]["socket_address"]
    assert listener["address"] == listen_host


def test_the_admin_interface_never_shares_the_public_port():
    with pytest.raises(SystemExit, match="SIMCONFIG_GATEWAY_ADMIN_PORT"):
        gateway.GatewaySettings.from_env(
            {"SIMCONFIG_GATEWAY_PORT": "8080", "SIMCONFIG_GATEWAY_ADMIN_PORT": "8080"}
        )


@pytest.mark.parametrize("value", ["0", "70000", "http"])
def test_a_bad_admin_port_names_the_variable(value):
    with pytest.raises(SystemExit, match="SIMCONFIG_GATEWAY_ADMIN_PORT"):
        gateway.GatewaySettings.from_env({"SIMCONFIG_GATEWAY_ADMIN_PORT": value})


def test_a_descriptor_path_is_written_into_the_config_as_given():
    config = rendered({"SIMCONFIG_GATEWAY_DESCRIPTOR": "/etc/envoy/simconfig.binpb"})
    assert transcoder(config)["proto_descriptor"] == "/etc/envoy/simconfig.binpb"


def test_every_route_with_path_fields_has_a_guard_before_the_service_routes():
    import re

    import simulation.v1.config_service_pb2
    import simulation.v1.scenario_service_pb2
    import simulation.v1.simulation_service_pb2
    import simulation.v1.template_service_pb2
    import simulation.v1.webhook_service_pb2  # noqa: F401 - these register the services
    from google.api import annotations_pb2
    from google.protobuf import descriptor_pool

    routes = connection_manager(rendered({}))["route_config"]["virtual_hosts"][0]["routes"]
    guards = {r["match"]["path"]: r for r in routes if "direct_response" in r}
    expected = set()
    # Every service the gateway transcodes.
    services = transcoder(rendered({}))["services"]
    assert "simulation.v1.ScenarioService" in services
    for service in services:
        for method in descriptor_pool.Default().FindServiceByName(service).methods:
            rule = method.GetOptions().Extensions[annotations_pb2.http]
            if "{" in str(rule):
                expected.add(f"/{service}/{method.name}")

    assert set(guards) == expected
    assert all(r["direct_response"]["status"] == 400 for r in guards.values())
    # Every guard comes before every route to a server (Envoy takes the first route that matches).
    is_guard = ["direct_response" in r for r in routes]
    assert not any(is_guard[is_guard.index(False) :])
    delete = guards["/simulation.v1.ScenarioService/DeleteScenario"]
    (header,) = delete["match"]["headers"]
    regex = re.compile(header["string_match"]["safe_regex"]["regex"])
    assert regex.fullmatch("/v1/scenarios/a?scenario_id=b")
    assert regex.fullmatch("/v1/scenarios/a?etag=x&scenarioId=b")
    assert not regex.fullmatch("/v1/scenarios/a?etag=x")
    assert not regex.fullmatch("/v1/scenarios/scenario_id=b")
    assert not regex.fullmatch("/v1/scenarios/a?scenario_idx=b")


def lua_tables(config: dict) -> tuple[list[dict], dict[str, str]]:
    """The ROUTES rows and MESSAGES lines of the rendered Lua body check."""
    import re

    (lua,) = [
        f["typed_config"]["default_source_code"]["inline_string"]
        for f in connection_manager(config)["http_filters"]
        if f["name"] == "envoy.filters.http.lua"
    ]
    routes = [
        dict(re.findall(r'(\w+) = "((?:[^"\\]|\\.)*)"', line))
        for line in lua.split("ROUTES = {", 1)[1].split("\n}", 1)[0].splitlines()
        if line.strip()
    ]
    messages = dict(re.findall(r'^  \["([\w.]+)"\] = \{(.*)\},$', lua, flags=re.MULTILINE))
    return routes, messages


def test_a_lua_check_of_json_body_fields_covers_every_route_with_a_body_before_transcoding():
    import simulation.v1.config_service_pb2
    import simulation.v1.scenario_service_pb2
    import simulation.v1.simulation_service_pb2
    import simulation.v1.template_service_pb2
    import simulation.v1.webhook_service_pb2  # noqa: F401 - these register the services
    from google.api import annotations_pb2
    from google.protobuf import descriptor_pool

    config = rendered({})
    filters = [f["name"] for f in connection_manager(config)["http_filters"]]
    # Buffered (up to the transcoder's limit) and checked before the transcoder drops fields.
    assert (
        filters.index("envoy.filters.http.buffer")
        < filters.index("envoy.filters.http.lua")
        < filters.index("envoy.filters.http.grpc_json_transcoder")
    )
    (buffer,) = [
        f["typed_config"]
        for f in connection_manager(config)["http_filters"]
        if f["name"] == "envoy.filters.http.buffer"
    ]
    assert buffer["max_request_bytes"] == transcoder(config)["max_request_body_size"]
    routes, messages = lua_tables(config)

    expected = set()
    for service in transcoder(config)["services"]:
        for method in descriptor_pool.Default().FindServiceByName(service).methods:
            rule = method.GetOptions().Extensions[annotations_pb2.http]
            for binding in (rule, *rule.additional_bindings):
                if binding.body:
                    verb = binding.WhichOneof("pattern")
                    expected.add((verb.upper(), getattr(binding, verb)))
    assert {(r["method"], r["template"]) for r in routes} == expected
    by_template = {(r["method"], r["template"]): r for r in routes}
    assert by_template[("PUT", "/v1/scenarios/{scenario.id}")]["body"] == "simulation.v1.Scenario"
    architect = by_template[("POST", "/v1/simulations/{simulation_id}/architect")]
    assert architect["body"] == "simulation.v1.RunArchitectRequest"
    # Both spellings of a field, and nested messages by type name.
    assert '["parameters"] = "simulation.v1.ArchitectParameters"' in messages[architect["body"]]
    assert '["max_turns"] = false' in messages["simulation.v1.ArchitectParameters"]
    assert '["maxTurns"] = false' in messages["simulation.v1.ArchitectParameters"]
    assert '["agents"] = "simulation.v1.Agent"' in messages["simulation.v1.SimulationConfig"]
    # google.* types (Struct, Timestamp, FieldMask) are the transcoder's to check.
    assert not [name for name in messages if name.startswith("google.")]
