"""REST clients reach the service through Envoy's gRPC-JSON transcoder.

One real server (embedded SQLite) and one real Envoy run for this module; every
REST binding of the three services is driven with httpx, and so are the error
paths REST clients depend on: the HTTP status mapped from the gRPC code and the
``google.rpc.Status`` body with its details.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import jsonpatch
import pytest

from tests.e2e import gateway_stack

# CI sets SIMCONFIG_REQUIRE_ENVOY=1: the REST contract must be proven there, never skipped.
ENVOY, pytestmark = gateway_stack.envoy_or_skip()


def expect(response: httpx.Response, status: int) -> dict:
    """Assert the HTTP status and return the JSON body, showing the body when it differs."""
    request = f"{response.request.method} {response.request.url.path}"
    assert response.status_code == status, (
        f"{request}: expected {status}, got {response.status_code}: {response.text}"
    )
    return response.json() if "json" in response.headers.get("content-type", "") else {}


def details(body: dict, type_name: str) -> list[dict]:
    """The error details of one google.rpc type in a google.rpc.Status body."""
    return [d for d in body.get("details", []) if d["@type"].endswith(f"/google.rpc.{type_name}")]


VALID_CONFIG = {
    "title": "Town hall meeting",
    "objective": "See how residents react to a new bus line",
    "max_turns": 10,
    "model": "sim-small-1",
    "temperature": 0.7,
    "seed": "42",
    "agents": [
        {
            "id": "mayor",
            "name": "The Mayor",
            "role": "host",
            "persona": "Careful, wants re-election.",
            "attributes": {"age": "54"},
            "goals": ["keep the meeting calm"],
        },
        {"id": "resident-1", "name": "Ada", "role": "resident", "goals": ["a quiet street"]},
    ],
    "environment": {
        "description": "A crowded town hall",
        "rules": ["one speaker at a time"],
        "parameters": {"city": "Springfield"},
    },
    "events": [{"turn": 3, "description": "The power goes out", "agent_ids": ["mayor"]}],
    "metrics": [{"name": "satisfaction", "description": "Mood at the end", "kind": "SCORE"}],
}


def invalid_config() -> dict:
    """A config with several violations, each at a known path."""
    config = copy.deepcopy(VALID_CONFIG)
    config["max_turns"] = 5
    config["agents"][1]["id"] = "Not A Valid Id!"
    config["events"][0]["turn"] = 99
    config["events"][0]["agent_ids"] = ["mayor", "nobody"]
    return config


@dataclass
class Gateway:
    """The running stack: the gateway's base URL and a key per tenant."""

    base_url: str
    key_a: str
    key_b: str
    read_key_a: str
    # Envoy's standard output (and error), where its access log goes by default.
    output: Path


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[Gateway]:
    """Server + Envoy for the module, two tenants with keys; both processes killed after."""
    workdir = tmp_path_factory.mktemp("rest-gateway")
    env = gateway_stack.server_env(workdir / "data", gateway_stack.free_port())
    server = gateway_stack.start_server(env, workdir)
    envoy = None
    try:
        tenant_a = gateway_stack.cli(env, "tenants", "create", "tenant-a")
        tenant_b = gateway_stack.cli(env, "tenants", "create", "tenant-b")
        keys = [
            gateway_stack.cli(env, "keys", "create", "--tenant", tenant, "--scope", scope)
            for tenant, scope in ((tenant_a, "write"), (tenant_b, "write"), (tenant_a, "read"))
        ]
        gateway_port = gateway_stack.free_port()
        envoy = gateway_stack.start_gateway(
            int(env["SIMCONFIG_PORT"]), gateway_port, ENVOY, workdir
        )
        stack = Gateway(f"http://127.0.0.1:{gateway_port}", *keys, envoy.log)
        _check_keys_work(stack.base_url, keys)
        yield stack
    finally:
        if envoy is not None:
            envoy.stop()
        server.stop()


def _check_keys_work(base_url: str, keys: list[str]) -> None:
    """Fail once, clearly, if freshly issued keys are refused, not in every test."""
    refused = []
    for key in keys:
        response = httpx.get(f"{base_url}/v1/scenarios", headers={"x-api-key": key}, timeout=30)
        if response.status_code != 200:
            refused.append(f"{key!r} -> {response.status_code} {response.text}")
    if refused:
        pytest.fail("keys issued by `simconfig keys create` are refused:\n" + "\n".join(refused))


def _client(base_url: str, key: str | None) -> httpx.Client:
    headers = {"x-api-key": key} if key else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=60)


@pytest.fixture
def api(gateway) -> Iterator[httpx.Client]:
    """A client of tenant A with a write key."""
    with _client(gateway.base_url, gateway.key_a) as client:
        yield client


@pytest.fixture
def other_tenant(gateway) -> Iterator[httpx.Client]:
    """A client of tenant B."""
    with _client(gateway.base_url, gateway.key_b) as client:
        yield client


@pytest.fixture
def anonymous(gateway) -> Iterator[httpx.Client]:
    """A client without an API key."""
    with _client(gateway.base_url, None) as client:
        yield client


def new_scenario(api: httpx.Client, **fields) -> dict:
    body = {"display_name": f"scenario {uuid.uuid4().hex[:8]}", **fields}
    return expect(api.post("/v1/scenarios", json=body), 200)["scenario"]


def new_simulation(api: httpx.Client, **fields) -> dict:
    body = {
        "simulation": {"name": f"simulation {uuid.uuid4().hex[:8]}", **fields},
        "config": VALID_CONFIG,
    }
    return expect(api.post("/v1/simulations/with-config", json=body), 200)["simulation"]


# --- ScenarioService -----------------------------------------------------------


def test_creates_gets_and_lists_scenarios_with_proto_field_names(api):
    created = new_scenario(api, description="first", labels={"team": "red"})
    # Proto field names, and zero values printed rather than omitted.
    assert created["display_name"].startswith("scenario ")
    assert created["simulation_count"] == 0
    assert created["labels"] == {"team": "red"}
    assert created["id"] and created["etag"]

    fetched = expect(api.get(f"/v1/scenarios/{created['id']}"), 200)["scenario"]
    assert fetched == created

    listed = expect(
        api.get("/v1/scenarios", params={"filter": 'labels.team = "red"', "page_size": 10}), 200
    )
    assert created["id"] in [s["id"] for s in listed["scenarios"]]
    assert "next_page_token" in listed


def test_create_scenario_honours_request_id_from_the_query_string(api):
    request_id = uuid.uuid4().hex
    body = {"display_name": f"idempotent {request_id[:8]}"}
    first = expect(api.post("/v1/scenarios", params={"request_id": request_id}, json=body), 200)
    again = expect(api.post("/v1/scenarios", params={"request_id": request_id}, json=body), 200)
    assert again["scenario"]["id"] == first["scenario"]["id"]


def test_updates_a_scenario_with_put_and_with_patch(api):
    scenario = new_scenario(api)
    put = expect(
        api.put(
            f"/v1/scenarios/{scenario['id']}",
            json={"display_name": f"renamed {uuid.uuid4().hex[:8]}", "etag": scenario["etag"]},
        ),
        200,
    )["scenario"]
    assert put["display_name"].startswith("renamed ")
    assert put["etag"] != scenario["etag"]

    patched = expect(
        api.patch(
            f"/v1/scenarios/{scenario['id']}",
            params={"update_mask": "description"},
            json={"description": "only this changes", "display_name": "ignored by the mask"},
        ),
        200,
    )["scenario"]
    assert patched["description"] == "only this changes"
    assert patched["display_name"] == put["display_name"]


def test_deletes_and_undeletes_a_scenario(api):
    scenario = new_scenario(api)
    deleted = expect(
        api.delete(f"/v1/scenarios/{scenario['id']}", params={"etag": scenario["etag"]}), 200
    )["scenario"]
    assert deleted["delete_time"] and deleted["purge_time"]

    live = expect(api.get("/v1/scenarios", params={"page_size": 1000}), 200)["scenarios"]
    assert scenario["id"] not in [s["id"] for s in live]
    everything = expect(
        api.get("/v1/scenarios", params={"show_deleted": "true", "page_size": 1000}), 200
    )["scenarios"]
    assert scenario["id"] in [s["id"] for s in everything]

    restored = expect(api.post(f"/v1/scenarios/{scenario['id']}:undelete", json={}), 200)
    assert "delete_time" not in restored["scenario"]


# --- ConfigService -------------------------------------------------------------


def test_creates_a_simulation_with_config_and_reads_the_config(api):
    scenario = new_scenario(api)
    simulation = new_simulation(api, scenario_id=scenario["id"], labels={"kind": "import"})
    assert simulation["status"] == "COMPLETED_CONFIG"
    assert simulation["config_revision"] == 1
    assert simulation["scenario_id"] == scenario["id"]

    view = expect(api.get(f"/v1/simulations/{simulation['id']}/config"), 200)
    assert view["simulation_id"] == simulation["id"]
    assert view["revision"] == 1
    assert view["origin"] == "IMPORT"
    assert view["config"]["title"] == VALID_CONFIG["title"]
    assert [a["id"] for a in view["config"]["agents"]] == ["mayor", "resident-1"]
    assert view["config"]["metrics"][0]["kind"] == "SCORE"
    assert view["etag"]


def test_edits_lists_revisions_and_rolls_back_a_config(api):
    simulation = new_simulation(api)
    path = f"/v1/simulations/{simulation['id']}/config"
    current = expect(api.get(path), 200)
    edited_config = {**VALID_CONFIG, "title": "Edited title"}
    edited = expect(
        api.put(path, json={"config": edited_config, "etag": current["etag"], "description": "x"}),
        200,
    )
    assert (edited["revision"], edited["origin"]) == (2, "EDIT")
    assert edited["config"]["title"] == "Edited title"

    revisions = expect(api.get(f"{path}/revisions", params={"page_size": 10}), 200)
    assert [r["revision"] for r in revisions["revisions"]] == [2, 1]

    rolled = expect(api.post(f"{path}:rollback", json={"revision": 1, "etag": edited["etag"]}), 200)
    assert (rolled["revision"], rolled["origin"]) == (3, "ROLLBACK")
    assert rolled["config"]["title"] == VALID_CONFIG["title"]

    old = expect(api.get(path, params={"revision": 2}), 200)
    assert old["config"]["title"] == "Edited title"


def test_diffs_two_revisions_as_a_json_patch_a_client_can_apply(api, gateway, other_tenant):
    simulation = new_simulation(api)
    path = f"/v1/simulations/{simulation['id']}/config"
    first = expect(api.get(path), 200)
    edited = {**VALID_CONFIG, "title": "Edited", "seed": "9007199254740993"}
    expect(api.put(path, json={"config": edited}), 200)
    second = expect(api.get(path), 200)

    diff = expect(api.get(f"{path}:diff", params={"from_revision": 1, "to_revision": 2}), 200)

    assert (diff["from_revision"], diff["to_revision"]) == (1, 2)
    assert sorted(diff["changed_paths"]) == ["seed", "title"]
    # The patch applies to the config exactly as REST returns it.
    assert jsonpatch.apply_patch(first["config"], diff["patch"]) == second["config"]
    revisions = expect(api.get(f"{path}/revisions"), 200)["revisions"]
    assert sorted(revisions[0]["changed_paths"]) == ["seed", "title"]
    with _client(gateway.base_url, gateway.read_key_a) as reader:
        assert expect(reader.get(f"{path}:diff"), 200)["changed_paths"]
    expect(other_tenant.get(f"{path}:diff"), 404)
    expect(api.get(f"{path}:diff", params={"to_revision": 7}), 404)


def test_filters_simulations_by_config_fields_and_scenarios_with_or(api, other_tenant):
    marker = uuid.uuid4().hex[:8]
    model = f"sim-rest-{marker}"
    wanted = new_simulation(api, labels={"batch": marker})
    path = f"/v1/simulations/{wanted['id']}/config"
    expect(api.put(path, json={"config": {**VALID_CONFIG, "model": model, "max_turns": 40}}), 200)
    new_simulation(api, labels={"batch": marker})
    text = f'config.model = "{model}" AND config.max_turns > 30 AND config.agents.role = "host"'

    found = expect(api.get("/v1/simulations", params={"filter": text}), 200)["simulations"]

    assert [s["id"] for s in found] == [wanted["id"]]
    assert expect(other_tenant.get("/v1/simulations", params={"filter": text}), 200) == {
        "simulations": [],
        "next_page_token": "",
    }
    first, second = new_scenario(api), new_scenario(api)
    either = (
        f'display_name = "{first["display_name"]}" OR display_name = "{second["display_name"]}"'
    )
    scenarios = expect(api.get("/v1/scenarios", params={"filter": either}), 200)["scenarios"]
    assert sorted(s["id"] for s in scenarios) == sorted([first["id"], second["id"]])
    bad = expect(api.get("/v1/simulations", params={"filter": "config.colour = 1"}), 400)
    assert "unknown field 'config.colour' at column 1" in bad["message"]


def test_validates_a_config_without_storing_it(api):
    assert expect(api.post("/v1/configs:validate", json={"config": VALID_CONFIG}), 200) == {
        "valid": True
    }


def test_creates_a_simulation_from_a_prompt_and_reruns_the_architect(api):
    created = expect(
        api.post(
            "/v1/simulations",
            json={
                "simulation": {"name": "from a prompt", "prompt": "A negotiation between 3 firms"},
                "parameters": {"num_agents": 3, "max_turns": 8, "seed": "7"},
                "wait": True,
            },
        ),
        200,
    )["simulation"]
    assert created["status"] == "COMPLETED_CONFIG"
    config = expect(api.get(f"/v1/simulations/{created['id']}/config"), 200)
    assert len(config["config"]["agents"]) == 3

    rerun = expect(
        api.post(
            f"/v1/simulations/{created['id']}/architect",
            json={"parameters": {"num_agents": 4, "max_turns": 6}, "wait": True},
        ),
        200,
    )["simulation"]
    assert rerun["status"] == "COMPLETED_CONFIG"
    assert rerun["config_revision"] == 2


# --- SimulationService ---------------------------------------------------------


def test_gets_lists_renames_and_deletes_a_simulation(api):
    simulation = new_simulation(api, labels={"batch": "b1"})
    path = f"/v1/simulations/{simulation['id']}"
    assert expect(api.get(path), 200)["simulation"]["id"] == simulation["id"]

    listed = expect(
        api.get("/v1/simulations", params={"filter": 'labels.batch = "b1"', "page_size": 10}), 200
    )
    assert simulation["id"] in [s["id"] for s in listed["simulations"]]

    renamed = expect(
        api.patch(
            path,
            params={"update_mask": "name"},
            json={"name": "renamed simulation", "etag": simulation["etag"]},
        ),
        200,
    )["simulation"]
    assert renamed["name"] == "renamed simulation"

    assert expect(api.delete(path, params={"etag": renamed["etag"]}), 200) == {}
    expect(api.get(path), 404)


def test_runs_a_simulation_through_its_lifecycle_and_audit_trail(api):
    simulation = new_simulation(api)
    path = f"/v1/simulations/{simulation['id']}"
    running = expect(api.post(f"{path}:start", json={}), 200)["simulation"]
    assert running["status"] == "RUNNING"

    results = {"satisfaction": 0.8, "summary": "calm meeting"}
    completed = expect(api.post(f"{path}:complete", json={"results": results}), 200)
    assert completed["simulation"]["status"] == "COMPLETED"
    assert completed["simulation"]["results"] == results

    analysis = {"verdict": "the bus line is popular"}
    analysed = expect(api.post(f"{path}:analysis", json={"analysis": analysis}), 200)
    assert analysed["simulation"]["analysis"] == analysis

    events = expect(api.get(f"{path}/events", params={"page_size": 100}), 200)["events"]
    transitions = [
        (e["from_status"], e["to_status"]) for e in events if e["kind"] == "STATUS_CHANGED"
    ]
    assert ("COMPLETED_CONFIG", "RUNNING") in transitions
    assert ("RUNNING", "COMPLETED") in transitions


def test_an_event_shows_status_and_revision_fields_only_where_its_kind_has_them(api):
    simulation = new_simulation(api)
    path = f"/v1/simulations/{simulation['id']}"
    renamed = api.patch(path, params={"update_mask": "name"}, json={"name": "shapes"})
    expect(renamed, 200)
    expect(api.post(f"{path}:start", json={}), 200)
    events = expect(api.get(f"{path}/events", params={"page_size": 100}), 200)["events"]
    # The transcoder prints every primitive field, so these are present only when set.
    spellings = {
        "from_status": ("from_status", "fromStatus"),
        "to_status": ("to_status", "toStatus"),
        "revision": ("revision",),
    }
    shown = [
        (e["kind"], sorted(n for n, keys in spellings.items() if any(k in e for k in keys)))
        for e in events
    ]
    assert shown == [
        ("CREATED", ["revision", "to_status"]),
        ("CONFIG_CHANGED", ["revision"]),
        ("METADATA_CHANGED", []),
        ("STATUS_CHANGED", ["from_status", "to_status"]),
    ]
    started = events[-1]
    assert (started["from_status"], started["to_status"]) == ("COMPLETED_CONFIG", "RUNNING")
    assert (events[0]["to_status"], events[0]["revision"]) == ("COMPLETED_CONFIG", 1)
    # The fields every event has are printed as before.
    assert all("reason" in e and "actor" in e for e in events)


def test_fails_a_run(api):
    simulation = new_simulation(api)
    path = f"/v1/simulations/{simulation['id']}"
    expect(api.post(f"{path}:start", json={}), 200)
    failed = expect(api.post(f"{path}:fail", json={"error": "simulator crashed"}), 200)
    assert failed["simulation"]["status"] == "FAILED"
    assert failed["simulation"]["last_error"]["message"]


# --- Errors as REST clients see them -------------------------------------------


def test_a_validation_error_is_400_with_field_violations(api):
    body = expect(api.post("/v1/scenarios", json={"display_name": ""}), 400)
    assert body["code"] == 3  # INVALID_ARGUMENT
    (bad_request,) = details(body, "BadRequest")
    assert "scenario.display_name" in [v["field"] for v in bad_request["field_violations"]]
    assert details(body, "ErrorInfo")


def test_an_invalid_config_lists_every_violation_with_its_path(api):
    body = expect(api.post("/v1/configs:validate", json={"config": invalid_config()}), 400)
    (bad_request,) = details(body, "BadRequest")
    fields = [v["field"] for v in bad_request["field_violations"]]
    for suffix in ("agents[1].id", "events[0].turn", "events[0].agent_ids[1]"):
        assert any(f.endswith(suffix) for f in fields), (suffix, fields)


def test_a_missing_or_unknown_key_is_401(anonymous):
    body = expect(anonymous.get("/v1/scenarios"), 401)
    assert body["code"] == 16  # UNAUTHENTICATED
    expect(anonymous.get("/v1/scenarios", headers={"x-api-key": "sck_nope_nope"}), 401)


def test_a_read_only_key_cannot_write(gateway):
    with _client(gateway.base_url, gateway.read_key_a) as client:
        expect(client.get("/v1/scenarios"), 200)
        body = expect(client.post("/v1/scenarios", json={"display_name": "no"}), 403)
        assert body["code"] == 7  # PERMISSION_DENIED


def test_another_tenants_scenario_is_404(api, other_tenant):
    scenario = new_scenario(api)
    body = expect(other_tenant.get(f"/v1/scenarios/{scenario['id']}"), 404)
    assert body["code"] == 5  # NOT_FOUND
    expect(other_tenant.delete(f"/v1/scenarios/{scenario['id']}"), 404)


def test_another_tenants_simulation_is_404(api, other_tenant):
    simulation = new_simulation(api)
    expect(other_tenant.get(f"/v1/simulations/{simulation['id']}/config"), 404)
    expect(other_tenant.get(f"/v1/simulations/{simulation['id']}"), 404)


def test_a_stale_scenario_etag_is_409(api):
    scenario = new_scenario(api)
    path = f"/v1/scenarios/{scenario['id']}"
    expect(api.patch(path, params={"update_mask": "description"}, json={"description": "v2"}), 200)
    body = expect(api.put(path, json={"display_name": "too late", "etag": scenario["etag"]}), 409)
    assert body["code"] == 10  # ABORTED


def test_a_stale_config_etag_is_409(api):
    simulation = new_simulation(api)
    path = f"/v1/simulations/{simulation['id']}/config"
    etag = expect(api.get(path), 200)["etag"]
    expect(api.put(path, json={"config": VALID_CONFIG, "etag": etag}), 200)
    body = expect(api.put(path, json={"config": VALID_CONFIG, "etag": etag}), 409)
    assert body["code"] == 10


# --- Errors Envoy answers itself ---------------------------------------------
#
# Requests the transcoder rejects, or that cannot reach a server, never get a
# gRPC status from the server; Envoy's local_reply_config gives them the same
# google.rpc.Status JSON shape, with the gRPC code matching the HTTP status.


def expect_envoy_error(response: httpx.Response, status: int, code: int) -> str:
    """Assert a google.rpc.Status JSON body made by Envoy; return its message."""
    body = expect(response, status)
    assert response.headers["content-type"] == "application/json", response.headers
    assert body == {"code": code, "message": body.get("message"), "details": []}, body
    assert body["message"], body
    return body["message"]


def test_malformed_json_is_400_with_a_status_body(api):
    for broken in (b'{"display_name": ', b'{"display_name" "x"}'):
        response = api.post(
            "/v1/scenarios", content=broken, headers={"content-type": "application/json"}
        )
        assert "Expected" in expect_envoy_error(response, 400, 3)  # INVALID_ARGUMENT


def test_a_query_parameter_of_the_wrong_type_is_400_with_a_status_body(api):
    message = expect_envoy_error(api.get("/v1/scenarios", params={"page_size": "abc"}), 400, 3)
    assert "page_size" in message


def test_an_unknown_query_parameter_is_400_with_a_status_body(api):
    message = expect_envoy_error(api.get("/v1/scenarios", params={"page_sise": 10}), 400, 3)
    assert "page_sise" in message


def test_an_unknown_path_is_404_with_a_status_body(api):
    assert "/v1/nothing-here" in expect_envoy_error(api.get("/v1/nothing-here"), 404, 5)
    expect_envoy_error(api.post("/v1/scenarios/abc:explode", json={}), 404, 5)  # NOT_FOUND
    # Without a content-type, too: Envoy rejects it before rewriting it to gRPC.
    expect_envoy_error(api.delete("/v1/nothing-here"), 404, 5)


def test_a_path_id_conflicting_with_the_body_is_400_with_a_status_body(api):
    scenario = new_scenario(api)
    response = api.put(
        f"/v1/scenarios/{scenario['id']}", json={"id": "another-id", "display_name": "x"}
    )
    assert "conflicting" in expect_envoy_error(response, 400, 3)


def test_a_query_parameter_naming_a_path_field_is_400_and_touches_nothing(api):
    """The query string must not redirect a call to another resource than the path names."""
    target, other = new_scenario(api), new_scenario(api)
    simulation, other_simulation = new_simulation(api), new_simulation(api)
    calls = [
        api.delete(f"/v1/scenarios/{target['id']}", params={"scenario_id": other["id"]}),
        api.delete(f"/v1/scenarios/{target['id']}", params={"scenarioId": other["id"]}),
        api.put(
            f"/v1/scenarios/{target['id']}",
            params={"scenario.id": other["id"]},
            json={"description": "moved?"},
        ),
        api.patch(
            f"/v1/scenarios/{target['id']}?validate_only=false&scenario.id={other['id']}",
            json={"description": "moved?"},
        ),
        api.get(
            f"/v1/simulations/{simulation['id']}/config",
            params={"simulation_id": other_simulation["id"]},
        ),
        api.post(
            f"/v1/simulations/{simulation['id']}:start",
            params={"simulation_id": other_simulation["id"]},
        ),
    ]

    for response in calls:
        assert "bound by the URL path" in expect_envoy_error(response, 400, 3)
    for scenario in (target, other):
        unchanged = expect(api.get(f"/v1/scenarios/{scenario['id']}"), 200)["scenario"]
        assert unchanged["etag"] == scenario["etag"] and not unchanged.get("delete_time")
    for each in (simulation, other_simulation):
        assert (
            expect(api.get(f"/v1/simulations/{each['id']}"), 200)["simulation"]["etag"]
            == (each["etag"])
        )


def test_query_parameters_that_are_not_path_fields_still_work_on_a_bound_route(api):
    scenario = new_scenario(api)
    response = api.delete(f"/v1/scenarios/{scenario['id']}", params={"etag": scenario["etag"]})
    expect(response, 200)


def test_an_invalid_int64_in_the_body_is_400_with_a_status_body(api):
    response = api.post(
        "/v1/simulations",
        json={
            "simulation": {"name": "bad seed", "prompt": "A negotiation"},
            "parameters": {"num_agents": 3, "max_turns": 8, "seed": "not-a-number"},
        },
    )
    assert "seed" in expect_envoy_error(response, 400, 3)


def test_server_errors_keep_their_own_status_body_and_details(api):
    """Only Envoy's replies are rewritten: the server's NOT_FOUND keeps its ErrorInfo."""
    response = api.get("/v1/scenarios/no-such-scenario")
    body = expect(response, 404)
    assert response.headers["content-type"] == "application/json"
    assert body["code"] == 5
    assert "no-such-scenario" in body["message"]
    (info,) = details(body, "ErrorInfo")
    assert info["reason"] == "RESOURCE_NOT_FOUND"


def test_an_update_whose_body_sets_no_updatable_field_is_400_not_a_silent_success(api):
    """A body of known fields that change nothing must not pass as an update either."""
    scenario = new_scenario(api, description="kept")
    simulation = new_simulation(api)

    for response in (
        api.put(f"/v1/scenarios/{scenario['id']}", json={}),
        api.patch(f"/v1/scenarios/{scenario['id']}", json={"id": scenario["id"]}),
        api.patch(f"/v1/simulations/{simulation['id']}", json={}),
    ):
        body = expect(response, 400)
        assert body["code"] == 3
        (info,) = details(body, "ErrorInfo")
        assert info["reason"] == "UPDATE_MASK_EMPTY"
        assert [v["field"] for v in details(body, "BadRequest")[0]["field_violations"]] == [
            "update_mask"
        ]
    stored = expect(api.get(f"/v1/scenarios/{scenario['id']}"), 200)["scenario"]
    assert stored["etag"] == scenario["etag"] and stored["description"] == "kept"


def test_an_unknown_field_in_a_json_body_is_400_naming_it_and_changes_nothing(api):
    """The transcoder would drop it and run the call without it; the gateway refuses it first.

    At the top level and inside messages, repeated ones included, for every kind of binding:
    a body that is the whole request (``*``) and a body that is one field (``scenario``).
    """
    scenario = new_scenario(api, description="kept")
    simulation = new_simulation(api)
    path = f"/v1/simulations/{simulation['id']}"
    config = expect(api.get(f"{path}/config"), 200)
    name = f"never created {uuid.uuid4().hex[:8]}"
    misspelt_agent = {**VALID_CONFIG["agents"][0], "nmae": "x"}
    calls = {
        "name": api.put(f"/v1/scenarios/{scenario['id']}", json={"name": "x"}),
        "displayname": api.patch(f"/v1/scenarios/{scenario['id']}", json={"displayname": "x"}),
        # The parameters at the top level instead of inside `parameters`.
        "max_turns": api.post(f"{path}/architect", json={"max_turns": 3, "model": "m"}),
        "parameters.modle": api.post(
            f"{path}/architect", json={"parameters": {"max_turns": 3, "modle": "m"}}
        ),
        "config.agents[1].nmae": api.put(
            f"{path}/config",
            json={
                "config": {**VALID_CONFIG, "agents": [VALID_CONFIG["agents"][0], misspelt_agent]}
            },
        ),
        "nmae": api.patch(path, json={"nmae": "x"}),
        "unknown_field": api.post(
            "/v1/scenarios", json={"display_name": name, "unknown_field": {"x": [1, 2]}}
        ),
    }

    for field, response in calls.items():
        message = expect_envoy_error(response, 400, 3)
        assert f'unknown field "{field}" in the JSON body' in message, message
    stored = expect(api.get(f"/v1/scenarios/{scenario['id']}"), 200)["scenario"]
    assert stored["etag"] == scenario["etag"] and stored["description"] == "kept"
    unchanged = expect(api.get(path), 200)["simulation"]
    assert (unchanged["etag"], unchanged["status"]) == (simulation["etag"], "COMPLETED_CONFIG")
    assert expect(api.get(f"{path}/config"), 200)["etag"] == config["etag"]
    created = expect(api.get("/v1/scenarios", params={"filter": f'display_name = "{name}"'}), 200)
    assert created["scenarios"] == []


def test_json_bodies_take_proto_and_lower_camel_names_at_every_level(api):
    """Both spellings the transcoder accepts pass the body check; Struct values are free-form."""
    camel = {
        **VALID_CONFIG,
        "maxTurns": 12,
        "events": [{"turn": 3, "description": "The power goes out", "agentIds": ["mayor"]}],
    }
    del camel["max_turns"]
    created = expect(
        api.post(
            "/v1/simulations/with-config",
            json={"simulation": {"name": "camel", "labels": {"nmae": "v"}}, "config": camel},
        ),
        200,
    )["simulation"]
    view = expect(api.get(f"/v1/simulations/{created['id']}/config"), 200)
    assert view["config"]["max_turns"] == 12
    assert view["config"]["events"][0]["agent_ids"] == ["mayor"]
    assert created["labels"] == {"nmae": "v"}  # map keys are not fields

    # A key is read as JSON, escapes decoded: `display\u005fname` is `display_name`.
    escaped = expect(
        api.post(
            "/v1/scenarios",
            content=b'{"display\\u005fname": "escaped \\"key\\"", "labels": {}}',
            headers={"content-type": "application/json"},
        ),
        200,
    )["scenario"]
    assert escaped["display_name"] == 'escaped "key"'

    path = f"/v1/simulations/{created['id']}"
    expect(api.post(f"{path}:start", json={}), 200)
    results = {"anything": {"nested": [1, {"deep": True}]}, "name": "free-form"}
    completed = expect(api.post(f"{path}:complete", json={"results": results}), 200)
    assert completed["simulation"]["results"] == results


@pytest.fixture(scope="module")
def gateway_without_server(tmp_path_factory) -> Iterator[str]:
    """A second gateway whose upstream port has nothing listening; yields its base URL."""
    workdir = tmp_path_factory.mktemp("rest-gateway-down")
    closed_port = gateway_stack.free_port()
    gateway_port = gateway_stack.free_port()
    envoy = gateway_stack.start_gateway(closed_port, gateway_port, ENVOY, workdir)
    try:
        yield f"http://127.0.0.1:{gateway_port}"
    finally:
        envoy.stop()


def test_a_server_that_is_down_is_503_unavailable_with_a_status_body(gateway_without_server):
    with _client(gateway_without_server, "sck_any_key") as client:
        message = expect_envoy_error(client.get("/v1/scenarios"), 503, 14)  # UNAVAILABLE
        # Its health checks fail, so Envoy does not even try it (no panic routing).
        assert message == "no healthy upstream"
        expect_envoy_error(client.post("/v1/scenarios", json={"display_name": "x"}), 503, 14)
        # Envoy's own errors do not depend on the server being up.
        expect_envoy_error(client.get("/v1/nothing-here"), 404, 5)


def test_native_grpc_calls_keep_envoys_plain_grpc_status(gateway_without_server):
    """The JSON body is for REST clients: a gRPC client still gets a text grpc-message."""
    target = gateway_without_server.removeprefix("http://")
    with grpc.insecure_channel(target) as channel:
        list_scenarios = channel.unary_unary("/simulation.v1.ScenarioService/ListScenarios")
        with pytest.raises(grpc.RpcError) as failure:
            list_scenarios(b"", metadata=[("x-api-key", "sck_any_key")], timeout=30)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    assert failure.value.details() == "no healthy upstream", failure.value.details()


def test_each_call_is_logged_as_json_on_envoys_standard_output_by_default(api, gateway):
    request_id = f"stdout-{uuid.uuid4().hex}"
    expect(api.get("/v1/scenarios", headers={"x-request-id": request_id}), 200)
    deadline = time.monotonic() + 30  # Envoy flushes its access log every second
    while True:
        lines = [
            json.loads(line)
            for line in gateway.output.read_text().splitlines()
            if request_id in line
        ]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [(e["method"], e["path"], e["response_code"]) for e in lines] == [
        ("GET", "/v1/scenarios", 200)
    ]


def test_the_readme_curl_walkthrough_works_when_pasted(gateway):
    """The README's V1 REST block, run with bash against this server and gateway."""
    readme = (gateway_stack.REPO / "README.md").read_text()
    section = readme.split("### The V1 REST paths, unchanged", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL).group(1)
    script = block.replace("http://127.0.0.1:8080", gateway.base_url)
    env = dict(os.environ, SIMCONFIG_API_KEY=gateway.key_a)
    result = subprocess.run(
        ["bash", "-c", "set -o pipefail\n" + script],
        cwd=gateway_stack.REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "command not found" not in output, output
    # Every response is a success: no google.rpc.Status body among them.
    assert '"code":' not in output, output
    assert '"display_name":"Pricing study 2"' in output, output
    assert '"origin":"EDIT"' in output, output
    # The prompt-made simulation: revision 1 from CreateSimulation, 2 from the re-run.
    assert '"name":"Budget vote"' in output, output
    assert '"status":"COMPLETED_CONFIG","config_revision":2' in output, output
    # The diff of the Town hall config, and the search that finds it.
    # (The PUT replaced the whole config, so the metric it did not send is removed.)
    assert '"changed_paths":["title","max_turns","metrics[0]"]' in output, output
    assert '"name":"Town hall"' in output, output
