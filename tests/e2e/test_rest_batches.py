"""The batch RPCs' REST bindings through Envoy's gRPC-JSON transcoder.

Uses the stack of :mod:`tests.e2e.test_rest_gateway` (a real server and a real Envoy).
"""

from __future__ import annotations

import uuid

from tests.e2e import test_rest_gateway as rest
from tests.e2e.test_rest_gateway import _client, details, expect, new_scenario, new_simulation

# The REST suite's stack and clients, as fixtures of this module too (its own stack).
pytestmark = rest.pytestmark
gateway = rest.gateway
api = rest.api
other_tenant = rest.other_tenant


def _names(prefix: str, count: int) -> list[str]:
    return [f"{prefix} {uuid.uuid4().hex[:8]}" for _ in range(count)]


def test_batch_creates_and_deletes_scenarios(api):
    names = _names("batch", 3)
    body = {"requests": [{"scenario": {"display_name": n}} for n in names]}

    created = expect(api.post("/v1/scenarios:batchCreate", json=body), 200)["scenarios"]

    assert [s["display_name"] for s in created] == names
    deleted = expect(
        api.post(
            "/v1/scenarios:batchDelete",
            json={"requests": [{"scenario_id": s["id"]} for s in created]},
        ),
        200,
    )["scenarios"]
    assert [s["id"] for s in deleted] == [s["id"] for s in created]
    assert all(s["delete_time"] for s in deleted)


def test_a_batch_create_retried_with_its_request_id_returns_the_same_scenarios(api):
    body = {
        "requests": [{"scenario": {"display_name": n}} for n in _names("retry", 2)],
        "request_id": uuid.uuid4().hex,
    }

    first = expect(api.post("/v1/scenarios:batchCreate", json=body), 200)
    again = expect(api.post("/v1/scenarios:batchCreate", json=body), 200)

    assert again == first


def test_an_invalid_batch_is_400_naming_each_bad_item(api):
    body = {"requests": [{"scenario": {"display_name": "fine " + uuid.uuid4().hex}}, {}]}

    error = expect(api.post("/v1/scenarios:batchCreate", json=body), 400)

    (bad_request,) = details(error, "BadRequest")
    assert [v["field"] for v in bad_request["field_violations"]] == [
        "requests[1].scenario.display_name"
    ]


def test_batch_gets_and_moves_simulations(api):
    target = new_scenario(api)
    one, two = new_simulation(api), new_simulation(api)

    got = expect(
        api.get("/v1/simulations:batchGet", params={"simulation_ids": [two["id"], one["id"]]}),
        200,
    )["simulations"]
    assert [s["id"] for s in got] == [two["id"], one["id"]]

    moved = expect(
        api.post(
            "/v1/simulations:batchMove",
            json={"simulation_ids": [one["id"], two["id"]], "scenario_id": target["id"]},
        ),
        200,
    )["simulations"]
    assert [s["scenario_id"] for s in moved] == [target["id"]] * 2


def test_batch_writes_need_a_write_key_and_batch_get_does_not(gateway, api):
    simulation = new_simulation(api)
    with _client(gateway.base_url, gateway.read_key_a) as reader:
        expect(
            reader.get("/v1/simulations:batchGet", params={"simulation_ids": [simulation["id"]]}),
            200,
        )
        for path, body in (
            ("/v1/scenarios:batchCreate", {"requests": [{"scenario": {"display_name": "no"}}]}),
            ("/v1/scenarios:batchDelete", {"requests": [{"scenario_id": "x"}]}),
            ("/v1/simulations:batchMove", {"simulation_ids": [simulation["id"]]}),
        ):
            assert expect(reader.post(path, json=body), 403)["code"] == 7, path


def test_another_tenants_ids_are_404_for_the_whole_batch(api, other_tenant):
    scenario = new_scenario(api)
    simulation = new_simulation(api)

    expect(
        other_tenant.post(
            "/v1/scenarios:batchDelete", json={"requests": [{"scenario_id": scenario["id"]}]}
        ),
        404,
    )
    expect(
        other_tenant.get("/v1/simulations:batchGet", params={"simulation_ids": [simulation["id"]]}),
        404,
    )
    expect(
        other_tenant.post("/v1/simulations:batchMove", json={"simulation_ids": [simulation["id"]]}),
        404,
    )
    assert (
        expect(api.get(f"/v1/scenarios/{scenario['id']}"), 200)["scenario"].get("delete_time")
        is None
    )
