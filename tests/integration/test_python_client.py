"""The Python client (clients/python) against a real in-process server.

What the client promises: a typed method for every RPC, the key on every call, errors as
exceptions carrying the server's field violations and reason, page iterators that walk every
page, a request id filled in on creates, and retries only for calls that are safe to repeat.
"""

from __future__ import annotations

import json

import grpc
import pytest
from google.protobuf import descriptor_pool
from simconfig_client import Client, RetryPolicy, errors, is_retry_safe
from simconfig_client._methods import SERVICES
from simconfig_client.client import API_KEY_HEADER
from simconfig_client.v1 import (
    scenario_pb2,
    scenario_service_pb2,
    simulation_pb2,
    simulation_service_pb2,
)

import storage
from service.app import tenants
from service.server import create_server
from service.settings import Settings
from tests.unit.simulation_api import valid_config
from tools.generate_client import snake


@pytest.fixture
def served(tmp_path, migrated_sqlite_url):
    """(address, write key, read-only key) of a real server on its own database."""
    database = storage.Database(migrated_sqlite_url)
    tenant = tenants.new_tenant(database, "acme")
    key = tenants.issue_key(database, tenant.id).secret
    read_key = tenants.issue_key(database, tenant.id, scope="read").secret
    server, port = create_server(Settings(port=0, data_dir=tmp_path), database=database)
    server.start()
    try:
        yield f"127.0.0.1:{port}", key, read_key
    finally:
        server.stop(0)
        database.dispose()


@pytest.fixture
def client(served):
    address, key, _ = served
    with Client(address, key, timeout=20) as client:
        yield client


def test_every_rpc_of_every_public_service_has_a_method():
    pool = descriptor_pool.Default()
    for name in SERVICES:
        for method in pool.FindServiceByName(name).methods:
            assert callable(getattr(Client, snake(method.name), None)), method.full_name


def test_the_client_and_the_server_share_one_set_of_message_classes():
    from simulation.v1 import scenario_service_pb2 as server_side

    assert scenario_service_pb2.CreateScenarioRequest is server_side.CreateScenarioRequest


def test_a_created_scenario_reads_back_through_the_typed_methods(client):
    created = client.create_scenario(
        scenario=scenario_pb2.Scenario(display_name="Pricing war", labels={"team": "risk"})
    ).scenario

    fetched = client.get_scenario(scenario_id=created.id).scenario

    assert fetched.display_name == "Pricing war"
    assert dict(fetched.labels) == {"team": "risk"}
    assert fetched.etag == created.etag


def test_a_request_message_and_keyword_fields_are_the_same_call(client):
    created = client.create_scenario(scenario={"display_name": "Q3"}).scenario

    by_message = client.get_scenario(
        scenario_service_pb2.GetScenarioRequest(scenario_id=created.id)
    )

    assert by_message.scenario.id == created.id
    with pytest.raises(TypeError):
        client.get_scenario(
            scenario_service_pb2.GetScenarioRequest(scenario_id=created.id), scenario_id="x"
        )


def test_bad_input_raises_invalid_argument_with_every_violation_and_the_reason(client):
    with pytest.raises(errors.InvalidArgument) as caught:
        client.create_scenario(scenario={"display_name": "", "description": "x" * 5000})

    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "scenario.display_name" in caught.value.fields
    assert "scenario.description" in caught.value.fields
    assert caught.value.reason
    assert caught.value.domain == "simconfig.simulation.v1"


def test_a_missing_resource_raises_not_found(client):
    with pytest.raises(errors.NotFound) as caught:
        client.get_scenario(scenario_id="no-such-scenario")

    assert caught.value.reason


def test_a_stale_etag_raises_aborted_with_the_precondition(client):
    created = client.create_scenario(scenario={"display_name": "Etags"}).scenario
    client.update_scenario(scenario={"id": created.id, "description": "one", "etag": created.etag})

    with pytest.raises(errors.Aborted) as caught:
        client.update_scenario(
            scenario={"id": created.id, "description": "two", "etag": created.etag}
        )

    assert [v.type for v in caught.value.precondition_violations] == ["ETAG"]


def test_the_key_goes_with_every_call(served):
    address, _, read_key = served
    with Client(address, "not-a-key") as stranger:
        with pytest.raises(errors.Unauthenticated):
            stranger.list_scenarios()
    with Client(address, read_key) as reader:
        assert list(reader.list_scenarios().scenarios) == []
        with pytest.raises(errors.PermissionDenied):
            reader.create_scenario(scenario={"display_name": "nope"})


def test_a_client_needs_a_key_and_a_positive_timeout():
    with pytest.raises(ValueError):
        Client("127.0.0.1:1", "")
    with pytest.raises(ValueError):
        Client("127.0.0.1:1", "key", timeout=0)


def test_the_page_iterator_walks_every_page(client):
    names = {f"scenario {index}" for index in range(7)}
    for name in names:
        client.create_scenario(scenario={"display_name": name})

    seen = [s.display_name for s in client.iter_scenarios(page_size=2)]

    assert sorted(seen) == sorted(names)
    assert len(client.list_scenarios(page_size=2).scenarios) == 2


def test_a_request_id_set_by_the_caller_makes_a_repeated_create_return_the_first(client):
    request = scenario_service_pb2.CreateScenarioRequest(
        scenario={"display_name": "Twice"}, request_id="fixed-id"
    )

    assert (
        client.create_scenario(request).scenario.id == client.create_scenario(request).scenario.id
    )


def _next_event(stream, kind: int):
    """The next message of ``stream`` carrying an event of ``kind`` (keepalives and others skipped).

    The client's deadline bounds the wait: a missing event fails as DEADLINE_EXCEEDED.
    """
    for message in stream:
        if message.HasField("event") and message.event.kind == kind:
            return message
    raise AssertionError("the stream ended before the event came")


def test_watch_events_streams_the_writes_and_resumes_after_the_last_token(client):
    Kind, Status = simulation_pb2.SimulationEvent.Kind, simulation_pb2.Simulation.Status
    created = client.create_simulation_with_config(
        simulation={"name": "Watched"}, config=valid_config()
    ).simulation
    # From the first event kept: whenever the stream subscribes, nothing written is missed.
    stream = client.watch_events(simulation_id=created.id, after_event_id=0, timeout=20)
    assert _next_event(stream, Kind.CREATED).event.simulation_id == created.id

    client.start_run(simulation_id=created.id)
    started = _next_event(stream, Kind.STATUS_CHANGED)
    assert started.event.to_status == Status.RUNNING and started.resume_token
    stream.close()  # the call is cancelled

    # Written while nobody watches; the token picks the stream up right after `started`.
    client.complete_run(simulation_id=created.id, results={"score": 1})
    client.attach_analysis(simulation_id=created.id, analysis={"verdict": "calm"})
    resumed = client.watch_events(
        simulation_id=created.id, resume_token=started.resume_token, timeout=20
    )
    completed = _next_event(resumed, Kind.STATUS_CHANGED)
    analysed = _next_event(resumed, Kind.ANALYSIS_ATTACHED)
    resumed.close()

    assert completed.event.to_status == Status.COMPLETED
    assert started.event.id < completed.event.id < analysed.event.id


class FlakyScenarioService:
    """A ScenarioService that answers UNAVAILABLE to the first ``failures`` attempts of each
    call and records every attempt it sees (request and metadata)."""

    def __init__(self, failures: int):
        self.failures = failures
        self.attempts: list[tuple[object, dict]] = []
        self._failed = 0

    def _answer(self, request, context, response):
        self.attempts.append((request, dict(context.invocation_metadata())))
        if self._failed < self.failures:
            self._failed += 1
            context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
        return response

    def handler(self):
        def create(request, context):
            return self._answer(
                request,
                context,
                scenario_service_pb2.CreateScenarioResponse(scenario=request.scenario),
            )

        def update(request, context):
            return self._answer(
                request,
                context,
                scenario_service_pb2.UpdateScenarioResponse(scenario=request.scenario),
            )

        def method(function, request_type):
            return grpc.unary_unary_rpc_method_handler(
                function,
                request_deserializer=request_type.FromString,
                response_serializer=lambda response: response.SerializeToString(),
            )

        return grpc.method_handlers_generic_handler(
            "simulation.v1.ScenarioService",
            {
                "CreateScenario": method(create, scenario_service_pb2.CreateScenarioRequest),
                "UpdateScenario": method(update, scenario_service_pb2.UpdateScenarioRequest),
            },
        )


@pytest.fixture
def flaky():
    """(the flaky service, a client of it with fast retries)."""
    from concurrent import futures

    service = FlakyScenarioService(failures=2)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((service.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    fast = RetryPolicy(initial_backoff=0.01, max_backoff=0.05)
    try:
        with Client(f"127.0.0.1:{port}", "the-key", retry=fast, timeout=10) as client:
            yield service, client
    finally:
        server.stop(0)


def test_a_create_is_retried_with_one_generated_request_id_and_the_key_each_time(flaky):
    service, client = flaky

    created = client.create_scenario(scenario={"display_name": "Retried"})

    assert created.scenario.display_name == "Retried"
    assert len(service.attempts) == 3
    request_ids = {request.request_id for request, _ in service.attempts}
    assert len(request_ids) == 1 and request_ids != {""}
    assert all(metadata[API_KEY_HEADER] == "the-key" for _, metadata in service.attempts)


def test_an_update_without_etag_is_retried_with_one_generated_request_id(flaky):
    service, client = flaky

    updated = client.update_scenario(scenario={"id": "a", "description": "x"})

    assert updated.scenario.description == "x"
    assert len(service.attempts) == 3
    request_ids = {request.request_id for request, _ in service.attempts}
    assert len(request_ids) == 1 and request_ids != {""}


def test_a_write_with_an_etag_is_retried(flaky):
    service, client = flaky

    updated = client.update_scenario(scenario={"id": "a", "description": "x", "etag": "e1"})

    assert updated.scenario.description == "x"
    assert len(service.attempts) == 3


def test_without_a_retry_policy_nothing_is_retried(flaky):
    service, client = flaky
    with Client(client.address, "the-key", retry=None) as once:
        with pytest.raises(errors.Unavailable):
            once.create_scenario(scenario={"display_name": "Once"})

    assert len(service.attempts) == 1


def test_a_deadline_that_passes_raises_deadline_exceeded(client):
    with pytest.raises(errors.DeadlineExceeded):
        client.list_scenarios(timeout=0.000001)


def test_reads_and_writes_with_a_request_id_or_etag_are_retried_other_writes_are_not():
    scenario_service = "/simulation.v1.ScenarioService"
    update = scenario_service_pb2.UpdateScenarioRequest

    assert is_retry_safe(
        f"{scenario_service}/GetScenario", scenario_service_pb2.GetScenarioRequest()
    )
    assert is_retry_safe(
        f"{scenario_service}/CreateScenario",
        scenario_service_pb2.CreateScenarioRequest(request_id="r1"),
    )
    assert is_retry_safe(
        f"{scenario_service}/DeleteScenario",
        scenario_service_pb2.DeleteScenarioRequest(scenario_id="a", etag="e"),
    )
    assert is_retry_safe(
        f"{scenario_service}/UpdateScenario", update(scenario={"id": "a", "etag": "e"})
    )
    assert not is_retry_safe(f"{scenario_service}/UpdateScenario", update(scenario={"id": "a"}))
    assert not is_retry_safe(
        f"{scenario_service}/DeleteScenario",
        scenario_service_pb2.DeleteScenarioRequest(scenario_id="a"),
    )
    assert not is_retry_safe(
        "/simulation.v1.SimulationService/StartRun",
        simulation_service_pb2.StartRunRequest(simulation_id="a"),
    )
    assert is_retry_safe(
        "/simulation.v1.SimulationService/StartRun",
        simulation_service_pb2.StartRunRequest(simulation_id="a", request_id="r2"),
    )


def test_the_service_config_retries_unavailable_on_every_public_service():
    config = json.loads(RetryPolicy().service_config())

    (method_config,) = config["methodConfig"]
    assert {name["service"] for name in method_config["name"]} == set(SERVICES)
    assert method_config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert 1 < method_config["retryPolicy"]["maxAttempts"] <= 5


def test_the_key_header_is_the_one_the_server_reads():
    from service.api import interceptors

    assert API_KEY_HEADER in open(interceptors.__file__).read()
