"""The tenant interceptor on a real in-process server bound to port 0."""

from __future__ import annotations

import contextvars
import time
from concurrent import futures
from datetime import UTC, datetime

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from simulation.v1 import scenario_pb2, scenario_service_pb2_grpc
from simulation.v1 import scenario_service_pb2 as pb

import storage
from service.api import interceptors
from service.api.fair_executor import KEY_LOOKUP_LANE, FairExecutor
from service.api.tenant_limits import TenantLimits
from service.app import authentication as auth
from service.app import tenants
from service.domain import errors
from service.server import API_KEY_CACHE_SECONDS, create_server
from service.settings import Settings
from storage import deadlines
from tests.harness import detail, rich_status


@pytest.fixture
def running(tmp_path, migrated_sqlite_url):
    database = storage.Database(migrated_sqlite_url)
    server, port = create_server(Settings(port=0, data_dir=tmp_path), database=database)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield database, channel
    channel.close()
    server.stop(0)


def keys_for(database, name="acme"):
    tenant = tenants.new_tenant(database, name)
    return (
        tenants.issue_key(database, tenant.id, "write"),
        tenants.issue_key(database, tenant.id, "read"),
    )


def list_scenarios(channel, key=None):
    stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
    metadata = (("x-api-key", key),) if key is not None else ()
    return stub.ListScenarios(pb.ListScenariosRequest(), metadata=metadata, timeout=10)


def create_scenario(channel, key, name="x"):
    stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
    return stub.CreateScenario(
        pb.CreateScenarioRequest(scenario=scenario_pb2.Scenario(display_name=name)),
        metadata=(("x-api-key", key),),
        timeout=10,
    )


def test_missing_key_is_unauthenticated(running):
    _, channel = running
    with pytest.raises(grpc.RpcError) as caught:
        list_scenarios(channel)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == "missing x-api-key metadata"


@pytest.mark.parametrize("key", ["", "garbage", "sck_abc_def", "sck_000000000000_" + "x" * 43])
def test_unknown_or_malformed_key_is_unauthenticated(running, key):
    database, channel = running
    keys_for(database)
    with pytest.raises(grpc.RpcError) as caught:
        list_scenarios(channel, key)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_wrong_secret_for_a_real_key_id_is_unauthenticated(running):
    database, channel = running
    write, _ = keys_for(database)
    forged = write.secret[:-4] + "AAAA"
    with pytest.raises(grpc.RpcError) as caught:
        list_scenarios(channel, forged)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_revoked_key_is_unauthenticated_once_the_cached_row_expires(running):
    database, channel = running
    write, _ = keys_for(database)
    assert list_scenarios(channel, write.secret) is not None
    database.run(lambda uow: uow.api_keys.revoke(write.record.id, datetime.now(UTC)))
    # SQLite has no change feed: the key row is trusted from memory for this long at most.
    time.sleep(API_KEY_CACHE_SECONDS + 0.2)
    with pytest.raises(grpc.RpcError) as caught:
        list_scenarios(channel, write.secret)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_read_key_can_read_but_not_mutate(running):
    database, channel = running
    _, read = keys_for(database)
    assert list(list_scenarios(channel, read.secret).scenarios) == []
    with pytest.raises(grpc.RpcError) as caught:
        create_scenario(channel, read.secret)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details() == (
        "a read-only API key cannot call /simulation.v1.ScenarioService/CreateScenario"
    )
    status = rich_status(caught.value.trailing_metadata())
    assert status is not None and status.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert (
        database.run(
            lambda uow: uow.scenarios.list(read.record.tenant_id, storage.ScenarioQuery(limit=10))
        )
        == []
    )


def test_write_key_can_mutate(running):
    database, channel = running
    write, _ = keys_for(database)
    assert create_scenario(channel, write.secret).scenario.id


def test_health_needs_no_key(running):
    _, channel = running
    stub = health_pb2_grpc.HealthStub(channel)
    response = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert response.status in (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.UNKNOWN,
    )


def test_reflection_needs_no_key(running):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    _, channel = running
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
    )
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert "simulation.v1.ScenarioService" in names


def test_errors_carry_error_info_and_no_internals(running):
    database, channel = running
    write, _ = keys_for(database)
    stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetScenario(
            pb.GetScenarioRequest(scenario_id="missing"),
            metadata=(("x-api-key", write.secret),),
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    from google.rpc import error_details_pb2

    info = detail(rich_status(caught.value.trailing_metadata()), error_details_pb2.ErrorInfo)
    assert info.reason == "RESOURCE_NOT_FOUND"
    assert "Traceback" not in caught.value.details() and "SELECT" not in caught.value.details()


def test_health_reports_not_serving_when_database_is_unreachable(tmp_path):
    # Background workers retry a refused connection for connection_seconds, and stopping the
    # server waits for them: keep it short.
    database = storage.Database(
        "postgresql+psycopg://postgres@127.0.0.1:1/nothing",
        retry=storage.RetryPolicy(connection_seconds=1),
    )
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, health_check_interval=0.2), database=database
    )
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            import time

            deadline = time.monotonic() + 15
            status = None
            while time.monotonic() < deadline:
                status = stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status
                if status == health_pb2.HealthCheckResponse.NOT_SERVING:
                    break
                time.sleep(0.2)
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        server.stop(0)


def test_database_down_is_unavailable_without_internals(tmp_path):
    database = storage.Database(
        "postgresql+psycopg://postgres@127.0.0.1:1/nothing",
        # A refused connection is retried for connection_seconds (5 s by default): keep it short.
        retry=storage.RetryPolicy(max_attempts=2, max_seconds=2, connection_seconds=1),
    )
    server, port = create_server(Settings(port=0, data_dir=tmp_path), database=database)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.RpcError) as caught:
                list_scenarios(channel, "sck_0000000000000000_whatever")
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "psycopg" not in caught.value.details()
    finally:
        server.stop(0)


def test_taken_port_fails_loudly(tmp_path):
    import socket

    database = storage.Database(storage.sqlite_url_for(tmp_path))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(OSError, match="cannot listen"):
            create_server(Settings(port=port, data_dir=tmp_path), database=database)
    database.dispose()


def test_two_api_keys_are_refused_whatever_their_order(running):
    database, channel = running
    write, _ = keys_for(database)
    stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
    for metadata in (
        (("x-api-key", "garbage"), ("x-api-key", write.secret)),
        (("x-api-key", write.secret), ("x-api-key", "garbage")),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            stub.ListScenarios(pb.ListScenariosRequest(), metadata=metadata, timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert caught.value.details() == "send exactly one x-api-key metadata entry"


def _raw_call(channel, method, payload, key=None):
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    metadata = (("x-api-key", key),) if key else ()
    return call(payload, metadata=metadata, timeout=10)


def test_undecodable_requests_are_invalid_argument_after_authentication(running):
    database, channel = running
    write, _ = keys_for(database)
    # Field 1 (scenario_id, a string) carrying bytes that are not UTF-8.
    bad_utf8 = b"\x0a\x02\xff\xfe"
    with pytest.raises(grpc.RpcError) as caught:
        _raw_call(channel, "/simulation.v1.ScenarioService/GetScenario", bad_utf8, write.secret)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rich_status(caught.value.trailing_metadata())
    assert detail(status, error_details_pb2.ErrorInfo).reason == "REQUEST_UNDECODABLE"
    [violation] = detail(status, error_details_pb2.BadRequest).field_violations
    assert (violation.field, violation.description) == (
        "request",
        "is not a valid message: strings must be UTF-8 and Structs at most about 30 levels deep",
    )
    with pytest.raises(grpc.RpcError) as caught:
        _raw_call(channel, "/simulation.v1.ScenarioService/GetScenario", bad_utf8)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def test_a_struct_nested_too_deeply_is_invalid_argument(running):
    database, channel = running
    write, _ = keys_for(database)
    # Hand-encoded, since the protobuf runtime itself refuses to build such a message:
    # Value{struct_value: Struct{fields: {"a": Value{...}}}} nested 120 times.
    value = _field(3, b"leaf")
    for _ in range(120):
        entry = _field(1, b"a") + _field(2, value)
        value = _field(5, _field(1, entry))
    struct = _field(1, _field(1, b"a") + _field(2, value))
    request = _field(1, b"x") + _field(2, struct)
    with pytest.raises(grpc.RpcError) as caught:
        _raw_call(channel, "/simulation.v1.SimulationService/CompleteRun", request, write.secret)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_call_that_bypassed_the_interceptor_has_no_principal():
    with pytest.raises(errors.Unauthenticated) as raised:
        interceptors.current_principal()

    assert raised.value.message == "no authenticated principal for this call"


STREAMING = "/simulation.v1.StreamingProbe/"


def _streaming_server(database, authenticator=None, ran=None, limits=None, executor=None):
    """A server with both interceptors, as ``create_server`` orders them, and probe methods.

    The API has only unary methods today; streaming ones (WatchEvents) must be guarded too.
    Each probe is sent text and answers text (its serializers decode and encode it), naming
    the tenant it ran as, what it was sent and whether its database work is bounded by the
    call's deadline. The streaming answers are generators that read all that while gRPC
    iterates them, after the handler returned. ``Echo`` parses its request as the service's
    methods do and notes in ``ran`` that it ran; ``Abort``, ``AbortStream`` and
    ``FailStream`` end their calls as a handler can. With a :class:`FairExecutor` as
    ``executor``, ``Lanes`` answers how many calls the executor counts, while it runs, in its
    tenant's lane and in the key-lookup lane.
    """

    def answer(context, sent):
        bounded = "bounded" if deadlines.time_left() is not None else "unbounded"
        assert context.time_remaining() is not None
        return f"{interceptors.current_principal().tenant_id}:{sent}:{bounded}"

    def unary_stream(request, context):
        yield answer(context, request)

    def stream_stream(requests, context):
        for request in requests:
            yield answer(context, request)

    def echo(request, context):
        if ran is not None:
            ran.append(request.scenario_id)
        return answer(context, request.scenario_id)

    def abort(request, context):
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "aborted by the handler")

    def abort_stream(request, context):
        yield answer(context, "")
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "aborted by the handler")

    def fail_stream(request, context):
        yield answer(context, "")
        raise errors.NotFound("probe", "p1")

    def lanes(request, context):
        tenant_id = interceptors.current_principal().tenant_id
        return f"{executor.in_flight(tenant_id)}:{executor.in_flight(KEY_LOOKUP_LANE)}"

    text = str.encode
    handlers = {
        "Lanes": grpc.unary_unary_rpc_method_handler(lanes, response_serializer=text),
        "UnaryStream": grpc.unary_stream_rpc_method_handler(
            unary_stream, request_deserializer=bytes.decode, response_serializer=text
        ),
        "StreamUnary": grpc.stream_unary_rpc_method_handler(
            lambda requests, context: answer(context, "".join(requests)),
            request_deserializer=bytes.decode,
            response_serializer=text,
        ),
        "StreamStream": grpc.stream_stream_rpc_method_handler(
            stream_stream, request_deserializer=bytes.decode, response_serializer=text
        ),
        "Echo": grpc.unary_unary_rpc_method_handler(
            echo, request_deserializer=pb.GetScenarioRequest.FromString, response_serializer=text
        ),
        "Abort": grpc.unary_unary_rpc_method_handler(abort),
        "AbortStream": grpc.unary_stream_rpc_method_handler(abort_stream, response_serializer=text),
        "FailStream": grpc.unary_stream_rpc_method_handler(fail_stream, response_serializer=text),
    }
    server = grpc.server(
        executor or futures.ThreadPoolExecutor(4),
        interceptors=[
            interceptors.TenantInterceptor(
                authenticator or auth.Authenticator(database), frozenset(), limits
            ),
            interceptors.ErrorInterceptor(),
        ],
    )
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("simulation.v1.StreamingProbe", handlers)]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def _calls_of_every_kind(channel):
    return {
        "UnaryStream": lambda md: list(
            channel.unary_stream(STREAMING + "UnaryStream")(b"!", metadata=md, timeout=10)
        ),
        "StreamUnary": lambda md: channel.stream_unary(STREAMING + "StreamUnary")(
            iter([b"!"]), metadata=md, timeout=10
        ),
        "StreamStream": lambda md: list(
            channel.stream_stream(STREAMING + "StreamStream")(iter([b"!"]), metadata=md, timeout=10)
        ),
        "Echo": lambda md: channel.unary_unary(STREAMING + "Echo")(
            pb.GetScenarioRequest(scenario_id="s").SerializeToString(), metadata=md, timeout=10
        ),
    }


def _answers_of_every_kind(tenant_id):
    said = f"{tenant_id}:!:bounded".encode()
    return {
        "UnaryStream": [said],
        "StreamUnary": said,
        "StreamStream": [said],
        "Echo": f"{tenant_id}:s:bounded".encode(),
    }


def test_streaming_methods_need_a_key_and_run_as_its_tenant(tmp_path, migrated_sqlite_url):
    database = storage.Database(migrated_sqlite_url)
    write, _ = keys_for(database)
    server, port = _streaming_server(database)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            calls = _calls_of_every_kind(channel)
            answers = {name: call((("x-api-key", write.secret),)) for name, call in calls.items()}
            for name, call in calls.items():
                with pytest.raises(grpc.RpcError) as caught:
                    call(())
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, name
    finally:
        server.stop(0)
        database.dispose()

    assert answers == _answers_of_every_kind(write.record.tenant_id)


def test_a_request_holding_a_nul_is_refused_naming_the_field_before_it_runs(running):
    database, channel = running
    write, _ = keys_for(database)
    stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)

    with pytest.raises(grpc.RpcError) as caught:
        stub.GetScenario(
            pb.GetScenarioRequest(scenario_id="bad\x00id"),
            metadata=(("x-api-key", write.secret),),
            timeout=10,
        )

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rich_status(caught.value.trailing_metadata())
    assert detail(status, error_details_pb2.ErrorInfo).reason == "VALUE_NOT_STORABLE"
    violations = detail(status, error_details_pb2.BadRequest).field_violations
    assert [violation.field for violation in violations] == ["scenario_id"]


def _remembering_server(database):
    """The probe server with a key cache that trusts what it holds for a minute.

    Returns the server, its port and the list the authenticator appends to: False for a key
    read from the database, True for one answered from memory.
    """
    lookups: list[bool] = []
    ran: list[str] = []
    authenticator = auth.Authenticator(
        database, auth.ApiKeyCache(ttl=60.0, fallback_ttl=60.0), on_lookup=lookups.append
    )
    server, port = _streaming_server(database, authenticator, ran)
    return server, port, lookups, ran


def test_a_key_answered_from_memory_runs_every_kind_of_method_as_its_tenant(
    tmp_path, migrated_sqlite_url
):
    database = storage.Database(migrated_sqlite_url)
    write, _ = keys_for(database)
    server, port, lookups, _ = _remembering_server(database)
    key = (("x-api-key", write.secret),)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            calls = _calls_of_every_kind(channel)
            first = calls["Echo"](key)
            answers = {name: call(key) for name, call in calls.items()}
    finally:
        server.stop(0)
        database.dispose()

    # The first call read the key's row; every later one was admitted from memory.
    assert lookups == [False, True, True, True, True]
    assert first == f"{write.record.tenant_id}:s:bounded".encode()
    assert answers == _answers_of_every_kind(write.record.tenant_id)


def test_a_key_answered_from_memory_still_has_its_bad_requests_refused(
    tmp_path, migrated_sqlite_url
):
    database = storage.Database(migrated_sqlite_url)
    write, _ = keys_for(database)
    server, port, lookups, ran = _remembering_server(database)
    refused = {}
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            _calls_of_every_kind(channel)["Echo"]((("x-api-key", write.secret),))
            for name, payload in {
                # Field 1 (scenario_id, a string) carrying bytes that are not UTF-8.
                "undecodable": b"\x0a\x02\xff\xfe",
                "nul": pb.GetScenarioRequest(scenario_id="bad\x00id").SerializeToString(),
            }.items():
                with pytest.raises(grpc.RpcError) as caught:
                    _raw_call(channel, STREAMING + "Echo", payload, write.secret)
                refused[name] = caught.value
    finally:
        server.stop(0)
        database.dispose()

    assert lookups == [False, True, True]
    # Only the first, good request reached the handler.
    assert ran == ["s"]
    for error in refused.values():
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    undecodable = rich_status(refused["undecodable"].trailing_metadata())
    assert detail(undecodable, error_details_pb2.ErrorInfo).reason == "REQUEST_UNDECODABLE"
    nul = rich_status(refused["nul"].trailing_metadata())
    assert detail(nul, error_details_pb2.ErrorInfo).reason == "VALUE_NOT_STORABLE"
    violations = detail(nul, error_details_pb2.BadRequest).field_violations
    assert [violation.field for violation in violations] == ["scenario_id"]


class _AbortingContext:
    """Just enough of a servicer context for a handler that aborts: abort raises."""

    def abort_with_status(self, status):
        self.status = status
        raise grpc.RpcError(status.details)

    def time_remaining(self):
        return None


def test_a_remembered_handler_reached_without_admission_refuses_to_run():
    ran = []
    # What the interceptor hands gRPC for a key it admitted from memory.
    guarded = interceptors._bound(
        grpc.unary_unary_rpc_method_handler(lambda request, context: ran.append(request))
    )
    context = _AbortingContext()

    # A fresh context: nothing put an admitted principal in it, as the interceptor would.
    with pytest.raises(grpc.RpcError):
        contextvars.Context().run(guarded.unary_unary, b"", context)

    assert ran == []
    assert context.status.code == grpc.StatusCode.UNAUTHENTICATED
    assert context.status.details == "no authenticated principal for this call"


def test_a_unary_method_sent_no_request_is_invalid_argument(running):
    database, channel = running
    write, _ = keys_for(database)
    # A client can half-close a unary call without sending its one message.
    call = channel.stream_unary("/simulation.v1.ScenarioService/ListScenarios")
    with pytest.raises(grpc.RpcError) as caught:
        call(iter([]), metadata=(("x-api-key", write.secret),), timeout=10)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rich_status(caught.value.trailing_metadata())
    assert detail(status, error_details_pb2.ErrorInfo).reason == "REQUEST_MISSING"
    [violation] = detail(status, error_details_pb2.BadRequest).field_violations
    assert (violation.field, violation.description) == ("request", "is missing")


def test_an_abort_in_a_handler_reaches_the_client_as_the_handler_gave_it(
    tmp_path, migrated_sqlite_url
):
    database = storage.Database(migrated_sqlite_url)
    write, _ = keys_for(database)
    server, port = _streaming_server(database)
    key = (("x-api-key", write.secret),)
    caught = {}
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            calls = {
                "Abort": lambda: channel.unary_unary(STREAMING + "Abort")(
                    b"", metadata=key, timeout=10
                ),
                "AbortStream": lambda: list(
                    channel.unary_stream(STREAMING + "AbortStream")(b"", metadata=key, timeout=10)
                ),
                "FailStream": lambda: list(
                    channel.unary_stream(STREAMING + "FailStream")(b"", metadata=key, timeout=10)
                ),
            }
            for name, call in calls.items():
                with pytest.raises(grpc.RpcError) as raised:
                    call()
                caught[name] = raised.value
    finally:
        server.stop(0)
        database.dispose()

    for name in ("Abort", "AbortStream"):
        assert caught[name].code() == grpc.StatusCode.FAILED_PRECONDITION, name
        assert caught[name].details() == "aborted by the handler", name
    # What a streaming handler raises is mapped as a unary one's is.
    assert caught["FailStream"].code() == grpc.StatusCode.NOT_FOUND
    status = rich_status(caught["FailStream"].trailing_metadata())
    assert detail(status, error_details_pb2.ErrorInfo).reason == "RESOURCE_NOT_FOUND"


def test_only_a_thread_serving_an_authenticated_call_is_in_a_call():
    principal = auth.Principal(tenant_id="t1", key_id="k1", scope="read")
    assert not interceptors.in_a_call()
    with interceptors.calling_as(principal):
        assert interceptors.in_a_call()
        assert interceptors.current_principal() == principal
    assert not interceptors.in_a_call()


def test_a_tenant_at_its_limit_is_refused_and_another_tenant_is_not(tmp_path, migrated_sqlite_url):
    database = storage.Database(migrated_sqlite_url)
    busy, _ = keys_for(database)
    idle, _ = keys_for(database, "idle")
    # The busy tenant already has its one call in flight.
    limits = TenantLimits(
        lambda tenant_id: int(tenant_id == busy.record.tenant_id), max_calls=1, rate=0, burst=1
    )
    authenticator = auth.Authenticator(database, auth.ApiKeyCache(ttl=60.0, fallback_ttl=60.0))
    server, port = _streaming_server(database, authenticator, limits=limits)
    codes = []
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            echo = _calls_of_every_kind(channel)["Echo"]
            # Each key twice: read from the database, then admitted from memory.
            for _ in range(2):
                assert echo((("x-api-key", idle.secret),))
                with pytest.raises(grpc.RpcError) as caught:
                    echo((("x-api-key", busy.secret),))
                codes.append(caught.value.code())
    finally:
        server.stop(0)
        database.dispose()

    assert codes == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2


def test_a_call_is_queued_in_the_key_lookup_lane_then_in_its_tenants_lane(
    tmp_path, migrated_sqlite_url
):
    # The fair executor shares threads by lane: a call left untagged would jump every queue.
    database = storage.Database(migrated_sqlite_url)
    write, _ = keys_for(database)
    authenticator = auth.Authenticator(database, auth.ApiKeyCache(ttl=60.0, fallback_ttl=60.0))
    executor = FairExecutor(4)
    server, port = _streaming_server(database, authenticator, executor=executor)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            lanes = channel.unary_unary(STREAMING + "Lanes")
            key = (("x-api-key", write.secret),)
            # The first call's key is looked up on its worker thread; the second is in memory.
            answers = [lanes(b"", metadata=key, timeout=10) for _ in range(2)]
    finally:
        server.stop(0)
        executor.shutdown()
        database.dispose()

    # "<calls in the tenant's lane>:<calls in the key-lookup lane>", each counting itself. The
    # first call may not be counted out yet when the second runs, so only its own lane is read.
    (first_tenant, first_lookup), (second_tenant, _) = (a.split(b":") for a in answers)
    assert (first_tenant, first_lookup) == (b"0", b"1")
    assert second_tenant == b"1"
