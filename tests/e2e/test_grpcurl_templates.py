"""End to end: TemplateService of ``simconfig serve``, driven by the real grpcurl binary."""

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

TEMPLATES = "simulation.v1.TemplateService"
CONFIGS = "simulation.v1.ConfigService"
CONFIG = {
    "title": "Market",
    "max_turns": 10,
    "model": "sim-small-1",
    "agents": [{"id": "a", "name": "A"}],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("e2e-templates")
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


def ok(server, method, body, key):
    code, response, output = grpcurl(server.address, method, body, key)
    assert code == 0, output
    return response


def test_template_lifecycle_through_grpcurl(server, keys):
    template = ok(
        server,
        f"{TEMPLATES}/CreateTemplate",
        {"template": {"display_name": "Market", "config": CONFIG}},
        keys["alice"],
    )["template"]
    assert template["revision"] == 1

    changed = ok(
        server,
        f"{TEMPLATES}/UpdateTemplate",
        {
            "template": {"id": template["id"], "config": {**CONFIG, "max_turns": 20}},
            "update_mask": {"paths": ["config"]},
        },
        keys["alice"],
    )["template"]
    assert changed["revision"] == 2

    simulation = ok(
        server,
        f"{TEMPLATES}/CreateSimulationFromTemplate",
        {
            "template_id": template["id"],
            "template_revision": 1,
            "simulation": {"name": "From revision 1"},
        },
        keys["alice"],
    )["simulation"]
    config = ok(server, f"{CONFIGS}/GetConfig", {"simulation_id": simulation["id"]}, keys["alice"])
    assert config["config"]["max_turns"] == 10
    assert config["sources"][0]["uri"] == f"templates/{template['id']}/revisions/1"

    saved = ok(
        server,
        f"{TEMPLATES}/SaveAsTemplate",
        {"simulation_id": simulation["id"], "template": {"display_name": "Saved"}},
        keys["alice"],
    )["template"]
    assert saved["config"]["max_turns"] == 10

    deleted = ok(
        server, f"{TEMPLATES}/DeleteTemplate", {"template_id": template["id"]}, keys["alice"]
    )["template"]
    assert "delete_time" in deleted
    ok(server, f"{TEMPLATES}/UndeleteTemplate", {"template_id": template["id"]}, keys["alice"])


def test_presets_are_listed_for_every_tenant_and_read_only(server, keys):
    for key in keys.values():
        listed = ok(server, f"{TEMPLATES}/ListTemplates", {"filter": "builtin = true"}, key)
        assert "preset-market-day" in [t["id"] for t in listed["templates"]]
    code, _, output = grpcurl(
        server.address,
        f"{TEMPLATES}/DeleteTemplate",
        {"template_id": "preset-market-day"},
        keys["bob"],
    )
    assert status_name(code) == "FAILED_PRECONDITION", output


def test_another_tenants_template_is_not_found(server, keys):
    template = ok(
        server,
        f"{TEMPLATES}/CreateTemplate",
        {"template": {"display_name": "Private", "config": CONFIG}},
        keys["alice"],
    )["template"]

    for method, body in (
        ("GetTemplate", {"template_id": template["id"]}),
        (
            "CreateSimulationFromTemplate",
            {"template_id": template["id"], "simulation": {"name": "x"}},
        ),
        ("DeleteTemplate", {"template_id": template["id"]}),
    ):
        code, _, output = grpcurl(server.address, f"{TEMPLATES}/{method}", body, keys["bob"])
        assert status_name(code) == "NOT_FOUND", (method, output)
