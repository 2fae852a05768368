"""Change notifications through Envoy: the watch stream and webhook endpoint management.

GET /v1/events:watch is one JSON array that grows as events commit: Envoy's transcoder turns
the server stream into a chunked response, ``[`` and the first message, then ``,`` and each
next one. The test reads the array element by element while it is still open.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.test_rest_gateway import (
    _client,
    expect,
    gateway,  # noqa: F401 - the stack, a fixture
    new_simulation,
    pytestmark,
)

__all__ = ["pytestmark"]


@pytest.fixture
def rest(gateway) -> Iterator[httpx.Client]:  # noqa: F811 - the imported fixture
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
