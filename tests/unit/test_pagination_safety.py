"""Page tokens a client edited, and list pages too large for one gRPC message."""

from __future__ import annotations

import base64
import json

import grpc
import pytest
from simulation.v1 import config_pb2, scenario_pb2
from simulation.v1 import config_service_pb2 as cpb
from simulation.v1 import scenario_service_pb2 as scpb
from simulation.v1 import simulation_service_pb2 as spb

from service.app import page_tokens
from tests.unit.simulation_api import create_with_config, make_harness, run_to, valid_config

GRPC_DEFAULT_MESSAGE_LIMIT = 4 * 1024 * 1024

# Cursor values ("c") a client may put in an edited token, as raw JSON text.
TAMPERED_CURSORS = [
    "[123,null]",
    '"str"',
    "[]",
    "[1,2,3,4]",
    '[{"zz":1},"x"]',
    '[1e400,"x"]',
    "[99999999999999999999999]",
    "[-99999999999999999999999]",
    "null",
    "{}",
    "[true]",
    "[true,false]",
    "[1.5]",
    "[NaN]",
    '[NaN,"x"]',
    "[-1]",
    "[9223372036854775808]",
    '["1"]',
    '[{"dt":"2026-01-02T03:04:05"},"x"]',
    '[{"dt":"0001-01-01T00:00:00+05:00"},"x"]',
    '[{"dt":"9999-12-31T23:59:59-05:00"},"x"]',
    '[{"dt":"not a time"},"x"]',
    '[{"dt":12},"x"]',
    '[{"dt":"2026-01-02T03:04:05+00:00","zz":1},"x"]',
    '["x",{"dt":"2026-01-02T03:04:05+00:00"}]',
    '["a\\u0000b","x"]',
    '["\\ud800","x"]',
    json.dumps(["y" * 1001, "x"]),
    json.dumps(["x", "y" * 1001]),
    "[[[[[[[[1]]]]]]]]",
]
# Out of range for revisions only: events count from 0 and reach 2**63 - 1.
TAMPERED_REVISION_CURSORS = ["[0]", "[2147483648]"]


def token_payload(token: str) -> dict:
    body = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def with_cursor(token: str, raw_cursor: str) -> str:
    """``token`` with its cursor replaced by the JSON text ``raw_cursor``."""
    payload = token_payload(token)
    payload["c"] = "__CURSOR__"
    text = json.dumps(payload, separators=(",", ":")).replace('"__CURSOR__"', raw_cursor)
    raw = text.encode("utf-8")
    # Signed with the service's key, as if it leaked: the cursor checks are the line behind.
    return page_tokens._b64(raw) + "." + page_tokens._b64(page_tokens._mac(raw))


@pytest.fixture
def api(database, principals):
    return make_harness(database)


@pytest.fixture
def listed(api, principals):
    """Two scenarios; two simulations, the first with two config revisions and events."""
    alice = principals["alice"]
    for name in ("First", "Second"):
        made = api.call(
            "CreateScenario",
            scpb.CreateScenarioRequest(scenario=scenario_pb2.Scenario(display_name=name)),
            alice,
        )
        assert made.ok, made.details
    first = create_with_config(api, alice, "First")
    create_with_config(api, alice, "Second")
    updated = api.call(
        "UpdateConfig",
        cpb.UpdateConfigRequest(simulation_id=first.id, config=valid_config("Market night")),
        alice,
    )
    assert updated.ok, updated.details
    return first.id


LISTS = {
    "scenarios by create_time": (
        "ListScenarios",
        lambda sid, **kw: scpb.ListScenariosRequest(**kw),
    ),
    "scenarios by display_name": (
        "ListScenarios",
        lambda sid, **kw: scpb.ListScenariosRequest(order_by="display_name desc", **kw),
    ),
    "simulations by create_time": (
        "ListSimulations",
        lambda sid, **kw: spb.ListSimulationsRequest(**kw),
    ),
    "simulations by name": (
        "ListSimulations",
        lambda sid, **kw: spb.ListSimulationsRequest(order_by="name", **kw),
    ),
    "config revisions": (
        "ListConfigRevisions",
        lambda sid, **kw: cpb.ListConfigRevisionsRequest(simulation_id=sid, **kw),
    ),
    "simulation events": (
        "ListSimulationEvents",
        lambda sid, **kw: spb.ListSimulationEventsRequest(simulation_id=sid, **kw),
    ),
}


@pytest.mark.parametrize("list_name", LISTS)
def test_an_edited_cursor_is_an_invalid_page_token_never_internal(
    api, principals, listed, list_name
):
    method, request_of = LISTS[list_name]
    alice = principals["alice"]
    first = api.call(method, request_of(listed, page_size=1), alice)
    assert first.ok and first.response.next_page_token, first.details
    token = first.response.next_page_token
    assert api.call(method, request_of(listed, page_size=1, page_token=token), alice).ok

    extra = TAMPERED_REVISION_CURSORS if method == "ListConfigRevisions" else []
    for raw in TAMPERED_CURSORS + extra:
        outcome = api.call(
            method, request_of(listed, page_size=1, page_token=with_cursor(token, raw)), alice
        )
        assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, (raw, outcome.details)
        assert outcome.violations == ["page_token"], raw
        assert outcome.reason == "PAGE_TOKEN_INVALID", raw


@pytest.mark.parametrize("list_name", LISTS)
def test_a_page_token_hides_the_tenant_and_still_rejects_another_tenant(
    api, principals, listed, list_name
):
    method, request_of = LISTS[list_name]
    alice, bob = principals["alice"], principals["bob"]
    token = api.call(method, request_of(listed, page_size=1), alice).response.next_page_token

    payload = token_payload(token)
    assert alice.tenant_id not in json.dumps(payload)
    assert alice.tenant_id.replace("-", "") not in json.dumps(payload)

    if method in ("ListScenarios", "ListSimulations"):  # the others 404 for bob first
        stolen = api.call(method, request_of(listed, page_size=1, page_token=token), bob)
        assert stolen.code == grpc.StatusCode.INVALID_ARGUMENT
        assert stolen.violations == ["page_token"]
        assert stolen.reason == "PAGE_TOKEN_INVALID"


def read_all(api, who, method, request_of, field):
    """Every item of a list, page by page; checks each response fits one gRPC message."""
    items, token, pages = [], "", 0
    while True:
        outcome = api.call(method, request_of(page_size=50, page_token=token), who)
        assert outcome.ok, outcome.details
        size = outcome.response.ByteSize()
        assert size <= GRPC_DEFAULT_MESSAGE_LIMIT, f"a {size}-byte response cannot be sent"
        batch = list(getattr(outcome.response, field))
        assert batch, "a page with a next token was empty"
        items.extend(batch)
        pages += 1
        token = outcome.response.next_page_token
        if not token:
            return items, pages


def test_large_simulations_are_listed_in_pages_under_the_message_limit(api, principals):
    alice = principals["alice"]
    megabyte_text = "r" * (1024 * 1024 - 64)
    made = []
    for index in range(5):
        simulation = create_with_config(api, alice, f"Sim {index}")
        made.append(simulation.id)
        if index == 2:
            continue  # one small simulation among the large ones
        run_to(api, alice, simulation.id, "RUNNING")
        completed = api.call(
            "CompleteRun",
            spb.CompleteRunRequest(simulation_id=simulation.id, results={"text": megabyte_text}),
            alice,
        )
        assert completed.ok, completed.details
        attached = api.call(
            "AttachAnalysis",
            spb.AttachAnalysisRequest(simulation_id=simulation.id, analysis={"t": megabyte_text}),
            alice,
        )
        assert attached.ok, attached.details

    for order_by in ("", "name desc"):
        listed, pages = read_all(
            api,
            alice,
            "ListSimulations",
            lambda order_by=order_by, **kw: spb.ListSimulationsRequest(order_by=order_by, **kw),
            "simulations",
        )
        ids = [s.id for s in listed]
        assert sorted(ids) == sorted(made) and len(set(ids)) == len(ids)
        assert pages > 1


def large_config(title: str) -> config_pb2.SimulationConfig:
    """A config just under the validator's 1,000,000-byte limit: many long personas."""
    config = valid_config(title)
    del config.agents[:]
    config.events[0].agent_ids[:] = ["agent-0"]
    for index in range(240):
        config.agents.add(id=f"agent-{index}", name=f"Agent {index}", persona="p" * 4000)
    return config


def test_large_config_revisions_are_listed_in_pages_under_the_message_limit(api, principals):
    alice = principals["alice"]
    assert 900_000 < large_config("x").ByteSize() < 1_000_000
    simulation = create_with_config(api, alice, "Big", config=large_config("Revision 1"))
    for number in range(2, 7):
        updated = api.call(
            "UpdateConfig",
            cpb.UpdateConfigRequest(
                simulation_id=simulation.id, config=large_config(f"Revision {number}")
            ),
            alice,
        )
        assert updated.ok, (updated.details, updated.violations)

    revisions, pages = read_all(
        api,
        alice,
        "ListConfigRevisions",
        lambda **kw: cpb.ListConfigRevisionsRequest(simulation_id=simulation.id, **kw),
        "revisions",
    )
    assert [r.revision for r in revisions] == [6, 5, 4, 3, 2, 1]
    assert pages > 1
