"""End to end: the config and run lifecycle through ``simconfig serve`` and the real grpcurl."""

from __future__ import annotations

import pytest

from tests.processes import (
    ServerProcess,
    create_tenant_key,
    environment,
    free_port,
    grpcurl,
    simconfig,
    status_name,
)

CONFIGS = "simulation.v1.ConfigService"
SIMULATIONS = "simulation.v1.SimulationService"

CONFIG = {
    "title": "Market day",
    "objective": "See who sells first",
    "max_turns": 10,
    "model": "sim-small-1",
    "agents": [
        {"id": "alice", "name": "Alice", "role": "seller"},
        {"id": "bob", "name": "Bob", "role": "buyer"},
    ],
    "events": [{"turn": 3, "description": "rain", "agent_ids": ["alice"]}],
    "metrics": [{"name": "sales", "kind": "COUNTER"}],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = environment(
        tmp_path_factory.mktemp("e2e-configs"), free_port(), SIMCONFIG_DEMO_TENANT="false"
    )
    process = ServerProcess(env)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def keys(server):
    alice_tenant, alice = create_tenant_key(server.env, "alice-configs")
    _, bob = create_tenant_key(server.env, "bob-configs")
    reader = simconfig(server.env, "keys", "create", "--tenant", alice_tenant, "--scope", "read")
    return {"alice": alice, "bob": bob, "alice_read": reader.stdout.strip().splitlines()[-1]}


def ok(server, service, method, body, key):
    code, response, output = grpcurl(server.address, f"{service}/{method}", body, key)
    assert code == 0, f"{method}: {output}"
    return response


def create(server, key, name="Market"):
    created = ok(
        server,
        CONFIGS,
        "CreateSimulationWithConfig",
        {
            "simulation": {"name": name, "labels": {"team": "risk"}},
            "config": CONFIG,
            "sources": [{"uri": "https://example.com/market", "title": "Markets"}],
            "request_id": f"create-{name}",
        },
        key,
    )
    return created["simulation"]


def create_from_prompt(server, key, name):
    """A simulation the built-in architect generated, in COMPLETED_CONFIG: one it could re-run."""
    created = ok(
        server,
        SIMULATIONS,
        "CreateSimulation",
        {
            "simulation": {"name": name, "prompt": "Two ferry lines compete for island commuters"},
            "parameters": {"max_turns": 6, "num_agents": 3, "seed": "3"},
            "wait": True,
        },
        key,
    )["simulation"]
    assert created["status"] == "COMPLETED_CONFIG", created
    return created


def test_config_lifecycle_through_grpcurl(server, keys):
    key = keys["alice"]
    sim = create(server, key)
    assert sim["status"] == "COMPLETED_CONFIG" and sim["config_revision"] == 1

    view = ok(server, CONFIGS, "GetConfig", {"simulation_id": sim["id"]}, key)
    assert view["revision"] == 1 and view["origin"] == "IMPORT"
    assert view["config"]["title"] == "Market day"

    edited = ok(
        server,
        CONFIGS,
        "UpdateConfig",
        {
            "simulation_id": sim["id"],
            "config": {"title": "Rainy market day"},
            "update_mask": {"paths": ["title"]},
            "etag": view["etag"],
            "description": "retitle",
        },
        key,
    )
    assert edited["revision"] == 2 and edited["config"]["title"] == "Rainy market day"
    assert len(edited["config"]["agents"]) == 2 and edited["origin"] == "EDIT"
    code, _, output = grpcurl(
        server.address,
        f"{CONFIGS}/UpdateConfig",
        {"simulation_id": sim["id"], "config": CONFIG, "etag": view["etag"]},
        key,
    )
    assert status_name(code) == "ABORTED", output

    revisions = ok(server, CONFIGS, "ListConfigRevisions", {"simulation_id": sim["id"]}, key)
    assert [(r["revision"], r["origin"]) for r in revisions["revisions"]] == [
        (2, "EDIT"),
        (1, "IMPORT"),
    ]
    assert revisions["revisions"][0]["description"] == "retitle"
    assert all(r["actor"] and r["create_time"] for r in revisions["revisions"])

    rolled = ok(
        server,
        CONFIGS,
        "RollbackConfig",
        {"simulation_id": sim["id"], "revision": 1, "etag": edited["etag"]},
        key,
    )
    assert rolled["revision"] == 3 and rolled["origin"] == "ROLLBACK"
    assert rolled["config"]["title"] == "Market day"

    started = ok(server, SIMULATIONS, "StartRun", {"simulation_id": sim["id"]}, key)
    assert started["simulation"]["status"] == "RUNNING"
    code, _, output = grpcurl(
        server.address,
        f"{CONFIGS}/UpdateConfig",
        {"simulation_id": sim["id"], "config": CONFIG},
        key,
    )
    assert status_name(code) == "FAILED_PRECONDITION" and "RUNNING" in output

    done = ok(
        server,
        SIMULATIONS,
        "CompleteRun",
        {"simulation_id": sim["id"], "results": {"winner": "alice", "sales": 12}},
        key,
    )["simulation"]
    assert done["status"] == "COMPLETED" and done["results"]["winner"] == "alice"

    ok(server, CONFIGS, "UpdateConfig", {"simulation_id": sim["id"], "config": CONFIG}, key)
    after = ok(server, SIMULATIONS, "GetSimulation", {"simulation_id": sim["id"]}, key)
    after = after["simulation"]
    assert after["status"] == "COMPLETED_CONFIG" and after["config_revision"] == 4
    assert "results" not in after
    assert after["sources"][0]["uri"] == "https://example.com/market"

    events = ok(server, SIMULATIONS, "ListSimulationEvents", {"simulation_id": sim["id"]}, key)[
        "events"
    ]
    trail = [
        (e["kind"], e.get("from_status", ""), e.get("to_status", ""), e.get("revision", 0))
        for e in events
    ]
    assert trail == [
        ("CREATED", "", "COMPLETED_CONFIG", 1),
        ("CONFIG_CHANGED", "", "", 1),
        ("CONFIG_CHANGED", "", "", 2),
        ("CONFIG_CHANGED", "", "", 3),
        ("STATUS_CHANGED", "COMPLETED_CONFIG", "RUNNING", 0),
        ("STATUS_CHANGED", "RUNNING", "COMPLETED", 0),
        ("CONFIG_CHANGED", "", "", 4),
        ("STATUS_CHANGED", "COMPLETED", "COMPLETED_CONFIG", 4),
    ]
    assert all(e["actor"] and e["create_time"] for e in events)


def test_validate_config_reports_every_violation(server, keys):
    bad = dict(CONFIG, max_turns=0, agents=[{"id": "Bad Id", "name": "x"}])
    code, _, output = grpcurl(
        server.address, f"{CONFIGS}/ValidateConfig", {"config": bad}, keys["alice"]
    )
    assert status_name(code) == "INVALID_ARGUMENT"
    for path in ("config.max_turns", "config.agents[0].id", "config.events[0].agent_ids[0]"):
        assert path in output, output
    assert ok(server, CONFIGS, "ValidateConfig", {"config": CONFIG}, keys["alice"])["valid"]


def test_diff_config_revisions_over_grpcurl_with_a_read_only_key(server, keys):
    sim = create(server, keys["alice"], "diffed")
    edited = dict(CONFIG, model="sim-large-1")
    ok(
        server,
        CONFIGS,
        "UpdateConfig",
        {"simulation_id": sim["id"], "config": edited},
        keys["alice"],
    )
    reader = keys["alice_read"]

    diff = ok(server, CONFIGS, "DiffConfigRevisions", {"simulation_id": sim["id"]}, reader)

    assert diff["from_revision"] == 1 and diff["to_revision"] == 2
    assert diff["changed_paths"] == ["model"]
    assert diff["patch"] == [{"op": "replace", "path": "/model", "value": "sim-large-1"}]


@pytest.mark.parametrize(
    ("service", "method", "body"),
    [
        (CONFIGS, "GetConfig", {}),
        (CONFIGS, "DiffConfigRevisions", {}),
        (CONFIGS, "UpdateConfig", {"config": CONFIG}),
        (CONFIGS, "ListConfigRevisions", {}),
        (CONFIGS, "RollbackConfig", {"revision": 1}),
        (SIMULATIONS, "GetSimulation", {}),
        (SIMULATIONS, "StartRun", {}),
        (SIMULATIONS, "DeleteSimulation", {}),
        (SIMULATIONS, "ListSimulationEvents", {}),
        (CONFIGS, "RunArchitect", {"wait": True}),
    ],
)
def test_another_tenants_simulation_is_not_found(server, keys, service, method, body):
    make = create_from_prompt if method == "RunArchitect" else create
    sim = make(server, keys["alice"], f"private-{method}")
    code, _, output = grpcurl(
        server.address, f"{service}/{method}", {"simulation_id": sim["id"], **body}, keys["bob"]
    )
    assert status_name(code) == "NOT_FOUND", output
    still = ok(server, SIMULATIONS, "GetSimulation", {"simulation_id": sim["id"]}, keys["alice"])
    assert still["simulation"]["etag"] == sim["etag"]
