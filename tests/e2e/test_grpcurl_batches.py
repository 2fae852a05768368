"""End to end: the batch RPCs of ``simconfig serve``, driven by the real grpcurl binary."""

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
SIMULATIONS = "simulation.v1.SimulationService"
CONFIGS = "simulation.v1.ConfigService"
CONFIG = {
    "title": "Market",
    "max_turns": 10,
    "model": "sim-small-1",
    "agents": [{"id": "a", "name": "A"}],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("e2e-batches")
    env = environment(data_dir, free_port(), SIMCONFIG_DEMO_TENANT="false")
    process = ServerProcess(env)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def keys(server):
    tenant, alice = create_tenant_key(server.env, "alice-corp")
    _, bob = create_tenant_key(server.env, "bob-corp")
    return {"alice": alice, "bob": bob}


def ok(server, method, body, key):
    code, response, output = grpcurl(server.address, method, body, key)
    assert code == 0, output
    return response


def test_batch_create_move_get_and_delete_through_grpcurl(server, keys):
    created = ok(
        server,
        f"{SCENARIOS}/BatchCreateScenarios",
        {
            "requests": [
                {"scenario": {"display_name": "Q1"}},
                {"scenario": {"display_name": "Q2", "labels": {"team": "risk"}}},
            ],
            "request_id": "grpcurl-batch-1",
        },
        keys["alice"],
    )["scenarios"]
    assert [s["display_name"] for s in created] == ["Q1", "Q2"]
    q1, q2 = (s["id"] for s in created)
    sims = [
        ok(
            server,
            f"{CONFIGS}/CreateSimulationWithConfig",
            {"simulation": {"name": name, "scenario_id": q1}, "config": CONFIG},
            keys["alice"],
        )["simulation"]["id"]
        for name in ("one", "two")
    ]

    moved = ok(
        server,
        f"{SIMULATIONS}/BatchMoveSimulations",
        {"simulation_ids": sims, "scenario_id": q2},
        keys["alice"],
    )["simulations"]
    assert [s["scenario_id"] for s in moved] == [q2, q2]

    got = ok(
        server,
        f"{SIMULATIONS}/BatchGetSimulations",
        {"simulation_ids": list(reversed(sims))},
        keys["alice"],
    )["simulations"]
    assert [s["name"] for s in got] == ["two", "one"]

    deleted = ok(
        server,
        f"{SCENARIOS}/BatchDeleteScenarios",
        {"requests": [{"scenario_id": q1}, {"scenario_id": q2, "force": True}]},
        keys["alice"],
    )["scenarios"]
    assert all("delete_time" in s for s in deleted)


def test_an_invalid_batch_names_each_bad_item_by_index(server, keys):
    code, _, output = grpcurl(
        server.address,
        f"{SCENARIOS}/BatchCreateScenarios",
        {"requests": [{"scenario": {"display_name": "fine"}}, {"scenario": {}}]},
        keys["alice"],
    )
    assert status_name(code) == "INVALID_ARGUMENT"
    assert "requests[1].scenario.display_name" in output
    assert "google.rpc.BadRequest" in output


def test_another_tenants_ids_fail_the_whole_batch_as_not_found(server, keys):
    (scenario,) = ok(
        server,
        f"{SCENARIOS}/BatchCreateScenarios",
        {"requests": [{"scenario": {"display_name": "Private"}}]},
        keys["alice"],
    )["scenarios"]
    sim = ok(
        server,
        f"{CONFIGS}/CreateSimulationWithConfig",
        {"simulation": {"name": "private"}, "config": CONFIG},
        keys["alice"],
    )["simulation"]["id"]

    for method, body in (
        (f"{SCENARIOS}/BatchDeleteScenarios", {"requests": [{"scenario_id": scenario["id"]}]}),
        (f"{SIMULATIONS}/BatchGetSimulations", {"simulation_ids": [sim]}),
        (f"{SIMULATIONS}/BatchMoveSimulations", {"simulation_ids": [sim]}),
    ):
        code, _, output = grpcurl(server.address, method, body, keys["bob"])
        assert status_name(code) == "NOT_FOUND", (method, output)
