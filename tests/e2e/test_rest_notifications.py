"""Change notifications through Envoy: the watch stream and webhook endpoint management.

GET /v1/events:watch is one JSON array that grows as events commit: Envoy's transcoder turns
the server stream into a chunked response, ``[`` and the first message, then ``,`` and each
next one. The test reads the array element by element while it is still open.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e import gateway_stack
from tests.e2e.test_rest_gateway import (
    ENVOY,
    Gateway,
    _check_keys_work,
    _client,
    expect,
    new_simulation,
    pytestmark,
)
from tests.webhook_receiver import Receiver

__all__ = ["pytestmark"]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[Gateway]:
    """Server + Envoy for the module, like test_rest_gateway's, that may call a local receiver.

    Webhooks may target 127.0.0.1 here, and idle webhook workers look every 0.1 s (SQLite has
    no notifications to wake them).
    """
    workdir = tmp_path_factory.mktemp("rest-notifications")
    env = gateway_stack.server_env(workdir / "data", gateway_stack.free_port())
    env.update(SIMCONFIG_WEBHOOK_ALLOW_PRIVATE="true", SIMCONFIG_WEBHOOK_POLL_SECONDS="0.1")
    server = gateway_stack.start_server(env, workdir)
    envoy = None
    try:
        tenants = [gateway_stack.cli(env, "tenants", "create", f"tenant-{n}") for n in "ab"]
        keys = [
            gateway_stack.cli(env, "keys", "create", "--tenant", tenant, "--scope", scope)
            for tenant, scope in (
                (tenants[0], "write"),
                (tenants[1], "write"),
                (tenants[0], "read"),
            )
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


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


@pytest.fixture
def rest(gateway) -> Iterator[httpx.Client]:
    """A client of one tenant with a write key."""
    with _client(gateway.base_url, gateway.key_a) as client:
        yield client


def array_elements(response: httpx.Response) -> Iterator[dict]:
    """Each element of a streamed JSON array, as soon as its last byte arrived."""
    decoder = json.JSONDecoder()
    buffer = ""
    for chunk in response.iter_text():
        buffer += chunk
        while True:
            buffer = buffer.lstrip()
            if buffer[:1] in ("[", ","):
                buffer = buffer[1:].lstrip()
            if not buffer or buffer[:1] == "]":
                break
            try:
                element, end = decoder.raw_decode(buffer)
            except json.JSONDecodeError:
                break  # incomplete: wait for more bytes
            buffer = buffer[end:]
            yield element


def test_watching_over_rest_streams_a_json_array_of_events(rest: httpx.Client):
    simulation = new_simulation(rest)
    trail = expect(rest.get(f"/v1/simulations/{simulation['id']}/events"), 200)["events"]
    with rest.stream(
        "GET",
        "/v1/events:watch",
        params={"simulation_id": simulation["id"], "after_event_id": 0},
        timeout=30,
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("application/json")
        elements = array_elements(response)
        history = [next(elements) for _ in trail]
        assert [element["event"] for element in history] == trail
        assert all(element["resume_token"] for element in history)
        expect(rest.post(f"/v1/simulations/{simulation['id']}:start", json={}), 200)
        started = next(elements)
    assert started["event"]["kind"] == "STATUS_CHANGED"
    assert started["event"]["to_status"] == "RUNNING"


def test_a_bad_resume_token_over_rest_is_400(rest: httpx.Client):
    response = rest.get("/v1/events:watch", params={"resume_token": "nope"}, timeout=30)
    assert response.status_code == 400, response.text


def test_webhooks_are_managed_over_rest(rest: httpx.Client):
    created = expect(
        rest.post(
            "/v1/webhooks",
            json={"url": "https://hooks.example.com/in", "kinds": ["STATUS_CHANGED"]},
        ),
        200,
    )
    assert created["secret"].startswith("whsec_")
    webhook = created["webhook"]
    assert webhook["kinds"] == ["STATUS_CHANGED"] and webhook["state"] == "ACTIVE"
    assert expect(rest.get(f"/v1/webhooks/{webhook['id']}"), 200)["webhook"] == webhook
    rotated = expect(rest.post(f"/v1/webhooks/{webhook['id']}:rotateSecret", json={}), 200)
    assert rotated["secret"] != created["secret"]
    expect(rest.delete(f"/v1/webhooks/{webhook['id']}"), 200)
    assert rest.get(f"/v1/webhooks/{webhook['id']}").status_code == 404


def settled(rest: httpx.Client, webhook_id: str, count: int, **params) -> dict:
    """The delivery log once it holds ``count`` deliveries, none PENDING (polled, bounded)."""
    deadline = time.monotonic() + 20
    while True:
        body = expect(rest.get(f"/v1/webhooks/{webhook_id}/deliveries", params=params), 200)
        deliveries = body.get("deliveries", [])
        done = len(deliveries) == count and all(d["state"] != "PENDING" for d in deliveries)
        if done or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_webhook_deliveries_are_listed_and_redelivered_over_rest(
    rest: httpx.Client, receiver: Receiver
):
    webhook = expect(
        rest.post("/v1/webhooks", json={"url": receiver.url, "kinds": ["CREATED"]}), 200
    )["webhook"]
    first, second = new_simulation(rest), new_simulation(rest)
    got = receiver.take(2)
    assert [r.event["simulation_id"] for r in got] == [first["id"], second["id"]]

    log = settled(rest, webhook["id"], 2)["deliveries"]
    # Newest first, with what each attempt got; int64 ids are JSON strings.
    assert [d["event"]["simulation_id"] for d in log] == [second["id"], first["id"]]
    assert int(log[0]["id"]) > int(log[1]["id"])
    for delivery in log:
        assert delivery["webhook_id"] == webhook["id"]
        assert delivery["event"]["kind"] == "CREATED"
        assert (delivery["state"], delivery["attempts"], delivery["response_code"]) == (
            "DELIVERED",
            1,
            204,
        )
        assert delivery["latency_ms"] >= 0 and delivery["update_time"]
    # Paged one at a time: the token leads to the older one.
    page = expect(
        rest.get(f"/v1/webhooks/{webhook['id']}/deliveries", params={"page_size": 1}), 200
    )
    assert [d["id"] for d in page["deliveries"]] == [log[0]["id"]]
    rest_page = expect(
        rest.get(
            f"/v1/webhooks/{webhook['id']}/deliveries",
            params={"page_size": 1, "page_token": page["next_page_token"]},
        ),
        200,
    )
    assert [d["id"] for d in rest_page["deliveries"]] == [log[1]["id"]]

    older = log[1]
    redelivered = expect(
        rest.post(f"/v1/webhooks/{webhook['id']}/deliveries/{older['id']}:redeliver", json={}),
        200,
    )["delivery"]
    assert (redelivered["id"], redelivered["state"], redelivered["attempts"]) == (
        older["id"],
        "PENDING",
        0,
    )
    (again,) = receiver.take(1)
    # The same message again: same body, same webhook-id, so the receiver can tell.
    assert again.body == got[0].body
    assert again.headers["webhook-id"] == got[0].headers["webhook-id"]
    after = settled(rest, webhook["id"], 2)["deliveries"]
    assert [(d["id"], d["state"], d["attempts"]) for d in after] == [
        (log[0]["id"], "DELIVERED", 1),
        (older["id"], "DELIVERED", 1),
    ]


def test_delivery_log_and_redelivery_errors_over_rest(gateway, rest: httpx.Client):
    webhook = expect(rest.post("/v1/webhooks", json={"url": "https://hooks.example.com/"}), 200)[
        "webhook"
    ]
    path = f"/v1/webhooks/{webhook['id']}/deliveries"
    assert expect(rest.get(path), 200).get("deliveries", []) == []
    assert rest.get(path, params={"page_token": "nope"}).status_code == 400
    assert rest.post(f"{path}/999999999:redeliver", json={}).status_code == 404
    assert rest.get("/v1/webhooks/no-such-webhook/deliveries").status_code == 404
    # Another tenant's endpoint is not there; a read key may list but not redeliver.
    with _client(gateway.base_url, gateway.key_b) as other:
        assert other.get(path).status_code == 404
        assert other.post(f"{path}/1:redeliver", json={}).status_code == 404
    with _client(gateway.base_url, gateway.read_key_a) as reader:
        assert reader.get(path).status_code == 200
        assert reader.post(f"{path}/1:redeliver", json={}).status_code == 403
