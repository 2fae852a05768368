"""TemplateService's REST bindings through Envoy's gRPC-JSON transcoder.

Uses the stack of :mod:`tests.e2e.test_rest_gateway` (a real server and a real Envoy).
"""

from __future__ import annotations

import uuid

from tests.e2e import test_rest_gateway as rest
from tests.e2e.test_rest_gateway import VALID_CONFIG, _client, details, expect, new_simulation

# The REST suite's stack and clients, as fixtures of this module too (its own stack).
pytestmark = rest.pytestmark
gateway = rest.gateway
api = rest.api
other_tenant = rest.other_tenant


def new_template(api, **fields) -> dict:
    body = {"display_name": f"template {uuid.uuid4().hex[:8]}", "config": VALID_CONFIG, **fields}
    return expect(api.post("/v1/templates", json=body), 200)["template"]


def test_creates_gets_lists_updates_and_deletes_a_template(api):
    template = new_template(api, labels={"team": "red"})
    assert template["revision"] == 1 and template["builtin"] is False

    fetched = expect(api.get(f"/v1/templates/{template['id']}"), 200)["template"]
    assert fetched == template
    listed = expect(api.get("/v1/templates", params={"filter": 'labels.team = "red"'}), 200)
    assert template["id"] in [t["id"] for t in listed["templates"]]

    changed = expect(
        api.patch(
            f"/v1/templates/{template['id']}",
            params={"update_mask": "config"},
            json={"config": {**VALID_CONFIG, "max_turns": 12}, "etag": template["etag"]},
        ),
        200,
    )["template"]
    assert (changed["revision"], changed["config"]["max_turns"]) == (2, 12)
    first = expect(api.get(f"/v1/templates/{template['id']}", params={"revision": 1}), 200)
    assert first["template"]["config"]["max_turns"] == 10

    deleted = expect(api.delete(f"/v1/templates/{template['id']}"), 200)["template"]
    assert deleted["delete_time"]
    expect(api.post(f"/v1/templates/{template['id']}:undelete", json={}), 200)


def test_an_invalid_template_config_is_400_with_every_violation(api):
    body = {"display_name": "broken", "config": {**VALID_CONFIG, "max_turns": 0}}

    error = expect(api.post("/v1/templates", json=body), 400)

    (bad_request,) = details(error, "BadRequest")
    assert "template.config.max_turns" in [v["field"] for v in bad_request["field_violations"]]


def test_creates_a_simulation_from_a_template_and_saves_one_back(api):
    template = new_template(api)

    simulation = expect(
        api.post(
            f"/v1/templates/{template['id']}:createSimulation",
            json={
                "simulation": {"name": "from rest"},
                "config": {"max_turns": 15},
                "update_mask": "max_turns",
            },
        ),
        200,
    )["simulation"]
    config = expect(api.get(f"/v1/simulations/{simulation['id']}/config"), 200)
    assert config["config"]["max_turns"] == 15
    assert config["sources"][0]["uri"] == f"templates/{template['id']}/revisions/1"

    saved = expect(
        api.post(
            f"/v1/simulations/{simulation['id']}:saveAsTemplate",
            json={"template": {"display_name": f"saved {uuid.uuid4().hex[:8]}"}},
        ),
        200,
    )["template"]
    assert saved["config"]["max_turns"] == 15


def test_presets_are_readable_and_read_only(api):
    listed = expect(api.get("/v1/templates", params={"filter": "builtin = true"}), 200)
    assert all(t["builtin"] for t in listed["templates"])
    expect(api.get("/v1/templates/preset-negotiation"), 200)
    expect(api.delete("/v1/templates/preset-negotiation"), 400)


def test_template_writes_need_a_write_key(gateway, api):
    template = new_template(api)
    simulation = new_simulation(api)
    with _client(gateway.base_url, gateway.read_key_a) as reader:
        expect(reader.get(f"/v1/templates/{template['id']}"), 200)
        expect(reader.get("/v1/templates"), 200)
        for response in (
            reader.post("/v1/templates", json={"display_name": "no", "config": VALID_CONFIG}),
            reader.patch(f"/v1/templates/{template['id']}", json={"description": "no"}),
            reader.delete(f"/v1/templates/{template['id']}"),
            reader.post(f"/v1/templates/{template['id']}:undelete", json={}),
            reader.post(
                f"/v1/templates/{template['id']}:createSimulation",
                json={"simulation": {"name": "no"}},
            ),
            reader.post(
                f"/v1/simulations/{simulation['id']}:saveAsTemplate",
                json={"template": {"display_name": "no"}},
            ),
        ):
            assert expect(response, 403)["code"] == 7


def test_another_tenants_template_is_404(api, other_tenant):
    template = new_template(api)

    expect(other_tenant.get(f"/v1/templates/{template['id']}"), 404)
    expect(other_tenant.delete(f"/v1/templates/{template['id']}"), 404)
    expect(
        other_tenant.post(
            f"/v1/templates/{template['id']}:createSimulation", json={"simulation": {"name": "x"}}
        ),
        404,
    )
