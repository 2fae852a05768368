"""End to end: prompt -> config through ``simconfig serve`` and the real grpcurl binary."""

from __future__ import annotations

import time

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


def status_when_settled(server, key, simulation_id, timeout=60.0) -> dict:
    """The simulation once its architect job is done (no longer PENDING/GENERATING_CONFIG)."""
    deadline = time.monotonic() + timeout
    while True:
        code, got, output = call(
            server, f"{SIMULATIONS}/GetSimulation", {"simulation_id": simulation_id}, key
        )
        assert code == 0, output
        simulation = got["simulation"]
        if simulation["status"] not in {"PENDING", "GENERATING_CONFIG"}:
            return simulation
        assert time.monotonic() < deadline, f"the architect job never finished: {simulation}"
        time.sleep(0.2)  # polling the outcome, not ordering threads


def test_create_and_rerun_without_wait_answer_with_the_queued_simulation(server, key):
    # The built-in engine finishes in well under the 30 s a waiting call would block for, so a
    # server that waited anyway would answer COMPLETED_CONFIG here, never PENDING.
    code, created, output = call(
        server,
        f"{SIMULATIONS}/CreateSimulation",
        {"simulation": {"name": "Queued", "prompt": PROMPT}},
        key,
    )
    assert code == 0, output
    simulation = created["simulation"]
    assert simulation["status"] == "PENDING", simulation
    assert "config_revision" not in simulation  # zero: nothing generated yet

    settled = status_when_settled(server, key, simulation["id"])
    assert settled["status"] == "COMPLETED_CONFIG" and settled["config_revision"] == 1

    code, rerun, output = call(
        server, f"{CONFIGS}/RunArchitect", {"simulation_id": simulation["id"]}, key
    )
    assert code == 0, output
    assert rerun["simulation"]["status"] == "PENDING", rerun
    assert rerun["simulation"]["config_revision"] == 1

    settled = status_when_settled(server, key, simulation["id"])
    assert settled["status"] == "COMPLETED_CONFIG" and settled["config_revision"] == 2


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
