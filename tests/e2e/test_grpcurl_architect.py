"""End to end: prompt -> config through ``simconfig serve`` and the real grpcurl binary."""

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

SIMULATIONS = "simulation.v1.SimulationService"
CONFIGS = "simulation.v1.ConfigService"
PROMPT = "Three coffee chains compete for students on a university campus"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("e2e-architect")
    env = environment(data_dir, free_port(), SIMCONFIG_DEMO_TENANT="false")
    process = ServerProcess(env)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def key(server):
    return create_tenant_key(server.env, "architect-corp")[1]


def call(server, method, body, key):
    return grpcurl(server.address, method, body, key)


def test_prompt_to_config_and_a_rerun_with_a_new_seed(server, key):
    code, created, output = call(
        server,
        f"{SIMULATIONS}/CreateSimulation",
        {
            "simulation": {"name": "Coffee wars", "prompt": PROMPT},
            "parameters": {"max_turns": 15, "num_agents": 5, "seed": "1"},
            "wait": True,
        },
        key,
    )
    assert code == 0, output
    simulation = created["simulation"]
    assert simulation["status"] == "COMPLETED_CONFIG", simulation
    assert simulation["config_revision"] == 1

    code, view, output = call(
        server, f"{CONFIGS}/GetConfig", {"simulation_id": simulation["id"]}, key
    )
    assert code == 0, output
    assert view["revision"] == 1 and view["origin"] == "ARCHITECT"
    assert view["config"]["max_turns"] == 15
    assert len(view["config"]["agents"]) == 5
    assert view["sources"], "the personas used are the sources"
    first_config = view["config"]

    code, rerun, output = call(
        server,
        f"{CONFIGS}/RunArchitect",
        {
            "simulation_id": simulation["id"],
            "parameters": {"max_turns": 15, "num_agents": 5, "seed": "2"},
            "wait": True,
        },
        key,
    )
    assert code == 0, output
    assert rerun["simulation"]["status"] == "COMPLETED_CONFIG"
    assert rerun["simulation"]["config_revision"] == 2

    code, view, output = call(
        server, f"{CONFIGS}/GetConfig", {"simulation_id": simulation["id"]}, key
    )
    assert code == 0, output
    assert view["revision"] == 2 and view["config"] != first_config

    code, listed, output = call(
        server, f"{CONFIGS}/ListConfigRevisions", {"simulation_id": simulation["id"]}, key
    )
    assert code == 0, output
    assert [r["revision"] for r in listed["revisions"]] == [2, 1]


def test_create_returns_at_once_without_wait(server, key):
    code, created, output = call(
        server,
        f"{SIMULATIONS}/CreateSimulation",
        {"simulation": {"name": "Queued", "prompt": PROMPT}},
        key,
    )
    assert code == 0, output
    assert created["simulation"]["status"] in {"PENDING", "GENERATING_CONFIG", "COMPLETED_CONFIG"}


def test_bad_parameters_are_invalid_argument_naming_the_field(server, key):
    code, _, output = call(
        server,
        f"{SIMULATIONS}/CreateSimulation",
        {
            "simulation": {"name": "Too long", "prompt": PROMPT},
            "parameters": {"max_turns": 5000},
        },
        key,
    )
    assert status_name(code) == "INVALID_ARGUMENT", output
    assert "parameters.max_turns" in output

    code, _, output = call(
        server,
        f"{SIMULATIONS}/CreateSimulation",
        {"simulation": {"name": "No prompt", "prompt": ""}},
        key,
    )
    assert status_name(code) == "INVALID_ARGUMENT", output
    assert "simulation.prompt" in output
