"""End to end: ``simconfig serve`` as a subprocess, driven by the real grpcurl binary."""

from __future__ import annotations

import pytest

from tests.processes import (
    ServerProcess,
    create_tenant_key,
    environment,
    free_port,
    grpcurl,
    status_name,
)

SCENARIOS = "simulation.v1.ScenarioService"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("e2e-scenarios")
    env = environment(data_dir, free_port(), SIMCONFIG_DEMO_TENANT="false")
    process = ServerProcess(env)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def keys(server):
    _, alice = create_tenant_key(server.env, "alice-corp")
    _, bob = create_tenant_key(server.env, "bob-corp")
    return {"alice": alice, "bob": bob}


def call(server, method, body=None, key=None):
    return grpcurl(server.address, f"{SCENARIOS}/{method}", body, key)


def test_reflection_lists_every_service(server):
    import subprocess

    from tests.processes import GRPCURL

    listed = subprocess.run(
        [GRPCURL, "-plaintext", server.address, "list"], capture_output=True, text=True, timeout=30
    )
    assert listed.returncode == 0, listed.stderr
    for name in (
        "simulation.v1.ScenarioService",
        "simulation.v1.ConfigService",
        "simulation.v1.SimulationService",
        "grpc.health.v1.Health",
    ):
        assert name in listed.stdout


def test_health_needs_no_key_and_reports_serving(server):
    code, body, output = grpcurl(server.address, "grpc.health.v1.Health/Check")
    assert code == 0, output
    assert body == {"status": "SERVING"}


def test_scenario_lifecycle_through_grpcurl(server, keys):
    code, created, output = call(
        server,
        "CreateScenario",
        {"scenario": {"display_name": "Pricing war", "labels": {"team": "risk"}}},
        keys["alice"],
    )
    assert code == 0, output
    scenario = created["scenario"]
    assert scenario["display_name"] == "Pricing war" and scenario["etag"]

    code, fetched, output = call(
        server, "GetScenario", {"scenario_id": scenario["id"]}, keys["alice"]
    )
    assert code == 0 and fetched["scenario"]["id"] == scenario["id"], output

    code, listed, output = call(
        server, "ListScenarios", {"filter": 'labels.team = "risk"'}, keys["alice"]
    )
    assert code == 0, output
    assert [s["id"] for s in listed["scenarios"]] == [scenario["id"]]

    code, updated, output = call(
        server,
        "UpdateScenario",
        {
            "scenario": {"id": scenario["id"], "description": "Q3", "etag": scenario["etag"]},
            "update_mask": {"paths": ["description"]},
        },
        keys["alice"],
    )
    assert code == 0, output
    assert updated["scenario"]["description"] == "Q3"

    code, error, output = call(
        server,
        "UpdateScenario",
        {
            "scenario": {"id": scenario["id"], "description": "late", "etag": scenario["etag"]},
            "update_mask": {"paths": ["description"]},
        },
        keys["alice"],
    )
    assert status_name(code) == "ABORTED"

    code, deleted, output = call(
        server, "DeleteScenario", {"scenario_id": scenario["id"]}, keys["alice"]
    )
    assert code == 0 and "delete_time" in deleted["scenario"], output
    code, _, output = call(
        server, "UndeleteScenario", {"scenario_id": scenario["id"]}, keys["alice"]
    )
    assert code == 0, output


def test_missing_and_bad_keys_are_unauthenticated(server):
    code, _, output = call(server, "ListScenarios", {})
    assert status_name(code) == "UNAUTHENTICATED"
    code, _, output = call(server, "ListScenarios", {}, "sck_000000000000_wrong")
    assert status_name(code) == "UNAUTHENTICATED"


def test_invalid_input_reports_field_violations(server, keys):
    code, _, output = call(
        server, "CreateScenario", {"scenario": {"display_name": ""}}, keys["alice"]
    )
    assert status_name(code) == "INVALID_ARGUMENT"
    assert "scenario.display_name" in output and "google.rpc.BadRequest" in output


def test_second_tenant_cannot_see_change_or_delete_first_tenants_scenarios(server, keys):
    code, created, output = call(
        server, "CreateScenario", {"scenario": {"display_name": "Private"}}, keys["alice"]
    )
    assert code == 0, output
    scenario_id = created["scenario"]["id"]

    code, listed, output = call(server, "ListScenarios", {}, keys["bob"])
    assert code == 0, output
    assert scenario_id not in {s["id"] for s in listed.get("scenarios", [])}
    for method, body in (
        ("GetScenario", {"scenario_id": scenario_id}),
        ("UpdateScenario", {"scenario": {"id": scenario_id, "display_name": "Stolen"}}),
        ("DeleteScenario", {"scenario_id": scenario_id}),
        ("UndeleteScenario", {"scenario_id": scenario_id}),
    ):
        code, _, output = call(server, method, body, keys["bob"])
        assert status_name(code) == "NOT_FOUND", (method, output)

    code, fetched, output = call(server, "GetScenario", {"scenario_id": scenario_id}, keys["alice"])
    assert code == 0 and fetched["scenario"]["display_name"] == "Private"
    assert "delete_time" not in fetched["scenario"]
