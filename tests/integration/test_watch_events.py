"""WatchEvents through a real in-process server, on SQLite and on PostgreSQL.

A watcher sees every event committed after it connected, in order; one that reconnects with
the resume token of the last message it got sees the rest exactly once; filters narrow the
stream; idle streams get keepalives; a server holds only so many streams; and a stopping
server ends its streams with UNAVAILABLE, which the client resumes from.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from simulation.v1 import config_service_pb2 as cpb
from simulation.v1 import (
    config_service_pb2_grpc,
    simulation_pb2,
    simulation_service_pb2_grpc,
)
from simulation.v1 import simulation_service_pb2 as spb

import storage
from service.app import tenants
from service.server import create_server
from service.settings import Settings
from tests.harness import detail, rich_status
from tests.unit.simulation_api import valid_config

Kind = simulation_pb2.SimulationEvent.Kind
WAIT = 10.0  # seconds an expected message may take at most (generous, for loaded machines)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> Iterator[storage.Database]:
    if request.param == "sqlite":
        url = request.getfixturevalue("migrated_sqlite_url")
    else:
        url = request.getfixturevalue("postgres_url")
    db = storage.Database(url)
    db.migrate()
    yield db
    db.dispose()


class Server:
    """An in-process server on ``database`` with a tenant and its key."""

    def __init__(self, database: storage.Database, tmp_path, **settings):
        values = {"port": 0, "data_dir": tmp_path, "worker_threads": 8, "architect_workers": 0}
        self.settings = Settings(**(values | settings))
        self.server, port = create_server(self.settings, database=database)
        self.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.simulations = simulation_service_pb2_grpc.SimulationServiceStub(self.channel)
        self.configs = config_service_pb2_grpc.ConfigServiceStub(self.channel)

    def key_for(self, database: storage.Database, name: str) -> tuple[str, str]:
        tenant = tenants.new_tenant(database, f"{name}-{uuid.uuid4().hex[:8]}")
        return tenant.id, tenants.issue_key(database, tenant.id).secret

    def stop(self, grace: float = 0) -> None:
        self.channel.close()
        self.server.stop(grace)


@pytest.fixture
def server(database, tmp_path) -> Iterator[Server]:
    running = Server(database, tmp_path, watch_keepalive_seconds=60)
    yield running
    running.stop()


class Watcher:
    """A WatchEvents stream read on a thread into a queue, so the test can wait with a bound."""

    def __init__(self, stub, key: str, **request):
        self.call = stub.WatchEvents(
            spb.WatchEventsRequest(**request), metadata=[("x-api-key", key)]
        )
        self.messages: queue.Queue = queue.Queue()
        self.error: grpc.RpcError | None = None
        self.done = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for message in self.call:
                self.messages.put(message)
        except grpc.RpcError as exc:
            self.error = exc
        finally:
            self.done.set()

    def next(self) -> spb.WatchEventsResponse:
        return self.messages.get(timeout=WAIT)

    def events(self, count: int) -> list[spb.WatchEventsResponse]:
        """The next ``count`` messages that carry an event (keepalives skipped)."""
        got = []
        while len(got) < count:
            message = self.next()
            if message.HasField("event"):
                got.append(message)
        return got

    def cancel(self) -> None:
        self.call.cancel()
        self.done.wait(WAIT)


def create(server: Server, key: str, name: str, scenario_id: str = "") -> str:
    response = server.configs.CreateSimulationWithConfig(
        cpb.CreateSimulationWithConfigRequest(
            simulation=simulation_pb2.Simulation(name=name, scenario_id=scenario_id),
            config=valid_config(),
        ),
        metadata=[("x-api-key", key)],
    )
    return response.simulation.id


def trail(server: Server, key: str, simulation_id: str) -> list[simulation_pb2.SimulationEvent]:
    return list(
        server.simulations.ListSimulationEvents(
            spb.ListSimulationEventsRequest(simulation_id=simulation_id, page_size=1000),
            metadata=[("x-api-key", key)],
        ).events
    )


def start_run(server: Server, key: str, simulation_id: str) -> None:
    server.simulations.StartRun(
        spb.StartRunRequest(simulation_id=simulation_id), metadata=[("x-api-key", key)]
    )


def test_a_watcher_receives_every_event_committed_after_it_connected_in_order(server, database):
    _, key = server.key_for(database, "watch-order")
    before = create(server, key, "before")
    watcher = Watcher(server.simulations, key)
    # The stream is open once the server answered its headers.
    watcher.call.initial_metadata()
    first, second = create(server, key, "first"), create(server, key, "second")
    start_run(server, key, first)
    expected = trail(server, key, first) + trail(server, key, second)
    expected.sort(key=lambda event: event.id)
    got = watcher.events(len(expected))
    assert [m.event for m in got] == expected
    assert before not in {m.event.simulation_id for m in got}
    # Each event has the status and revision fields of its kind only (CREATED, CONFIG_CHANGED,
    # STATUS_CHANGED): a config change has no from_status, a run start no revision.
    fields = ("from_status", "to_status", "revision")
    assert [
        [name for name in fields if m.event.HasField(name)]
        for m in got
        if m.event.simulation_id == first
    ] == [["to_status", "revision"], ["revision"], ["from_status", "to_status"]]
    assert all(m.resume_token for m in got)
    watcher.cancel()


def test_reconnecting_with_the_resume_token_delivers_the_rest_exactly_once(server, database):
    _, key = server.key_for(database, "watch-resume")
    watcher = Watcher(server.simulations, key, after_event_id=0)
    ids = [create(server, key, f"sim-{n}") for n in range(3)]
    everything = sorted((e for i in ids for e in trail(server, key, i)), key=lambda e: e.id)
    received = watcher.events(2)
    watcher.cancel()
    # Written while nobody watched.
    start_run(server, key, ids[0])
    everything += trail(server, key, ids[0])[-1:]
    resumed = Watcher(server.simulations, key, resume_token=received[-1].resume_token)
    rest = resumed.events(len(everything) - 2)
    assert [m.event for m in received + rest] == everything
    # And nothing more: the next message, if any, is a keepalive (none within the wait).
    with pytest.raises(queue.Empty):
        resumed.messages.get(timeout=0.5)
    resumed.cancel()


def test_after_event_id_zero_replays_the_history_and_unset_starts_at_the_newest(server, database):
    _, key = server.key_for(database, "watch-history")
    old = create(server, key, "old")
    history = trail(server, key, old)
    replay = Watcher(server.simulations, key, after_event_id=0)
    assert [m.event for m in replay.events(len(history))] == history
    live = Watcher(server.simulations, key)
    live.call.initial_metadata()
    start_run(server, key, old)
    newest = trail(server, key, old)[-1]
    assert live.events(1)[0].event == newest
    assert replay.events(1)[0].event == newest
    replay.cancel()
    live.cancel()


def test_filters_narrow_the_stream_to_a_simulation_a_scenario_or_kinds(server, database):
    _, key = server.key_for(database, "watch-filters")
    from simulation.v1 import scenario_pb2, scenario_service_pb2, scenario_service_pb2_grpc

    scenarios = scenario_service_pb2_grpc.ScenarioServiceStub(server.channel)
    scenario = scenarios.CreateScenario(
        scenario_service_pb2.CreateScenarioRequest(
            scenario=scenario_pb2.Scenario(display_name="filtered")
        ),
        metadata=[("x-api-key", key)],
    ).scenario
    inside = create(server, key, "inside", scenario_id=scenario.id)
    outside = create(server, key, "outside")
    by_simulation = Watcher(server.simulations, key, after_event_id=0, simulation_id=outside)
    by_scenario = Watcher(server.simulations, key, after_event_id=0, scenario_id=scenario.id)
    by_kind = Watcher(server.simulations, key, after_event_id=0, kinds=[Kind.STATUS_CHANGED])
    start_run(server, key, inside)
    start_run(server, key, outside)
    outside_trail, inside_trail = trail(server, key, outside), trail(server, key, inside)
    assert [m.event for m in by_simulation.events(len(outside_trail))] == outside_trail
    assert [m.event for m in by_scenario.events(len(inside_trail))] == inside_trail
    status_changes = sorted(
        (e for e in inside_trail + outside_trail if e.kind == Kind.STATUS_CHANGED),
        key=lambda e: e.id,
    )
    assert [m.event for m in by_kind.events(len(status_changes))] == status_changes
    for watcher in (by_simulation, by_scenario, by_kind):
        with pytest.raises(queue.Empty):
            watcher.messages.get(timeout=0.3)
        watcher.cancel()


def test_a_tenant_never_sees_another_tenants_events(server, database):
    _, key = server.key_for(database, "watch-mine")
    _, other_key = server.key_for(database, "watch-theirs")
    mine = Watcher(server.simulations, key, after_event_id=0)
    theirs = create(server, other_key, "theirs")
    ours = create(server, key, "ours")
    got = mine.events(len(trail(server, key, ours)))
    assert {m.event.simulation_id for m in got} == {ours}
    mine.cancel()
    # Naming the other tenant's simulation is NOT_FOUND, as if it did not exist.
    refused = Watcher(server.simulations, key, simulation_id=theirs)
    assert refused.done.wait(WAIT)
    assert refused.error.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"resume_token": "not-a-token"}, "resume_token"),
        ({"after_event_id": -1}, "after_event_id"),
        ({"kinds": [Kind.KIND_UNSPECIFIED]}, "kinds[0]"),
        ({"kinds": [Kind.CREATED, 99]}, "kinds[1]"),
    ],
)
def test_bad_cursors_and_kinds_are_invalid_argument(server, database, request_fields, field):
    _, key = server.key_for(database, "watch-bad")
    watcher = Watcher(server.simulations, key, **request_fields)
    assert watcher.done.wait(WAIT)
    assert watcher.error.code() == grpc.StatusCode.INVALID_ARGUMENT
    from google.rpc import error_details_pb2

    status = rich_status(watcher.error.trailing_metadata())
    violations = detail(status, error_details_pb2.BadRequest).field_violations
    assert [v.field for v in violations] == [field]


def test_a_resume_token_is_bound_to_its_filter(server, database):
    _, key = server.key_for(database, "watch-bound")
    sim = create(server, key, "bound")
    watcher = Watcher(server.simulations, key, after_event_id=0)
    token = watcher.events(1)[0].resume_token
    watcher.cancel()
    other = Watcher(server.simulations, key, resume_token=token, simulation_id=sim)
    assert other.done.wait(WAIT)
    assert other.error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_an_idle_stream_gets_keepalives_that_carry_the_cursor(database, tmp_path):
    running = Server(database, tmp_path, watch_keepalive_seconds=0.2)
    try:
        _, key = running.key_for(database, "watch-idle")
        sim = create(running, key, "idle")
        events = trail(running, key, sim)
        watcher = Watcher(running.simulations, key, after_event_id=0)
        watcher.events(len(events))
        keepalive = watcher.next()
        assert not keepalive.HasField("event")
        # Resuming from a keepalive's token continues after the last event.
        resumed = Watcher(running.simulations, key, resume_token=keepalive.resume_token)
        start_run(running, key, sim)
        assert resumed.events(1)[0].event == trail(running, key, sim)[-1]
        watcher.cancel()
        resumed.cancel()
    finally:
        running.stop()


def test_streams_beyond_the_limit_are_refused_and_a_cancelled_one_frees_its_slot(
    database, tmp_path
):
    running = Server(database, tmp_path, worker_threads=4, watch_max_streams=2)
    try:
        _, key = running.key_for(database, "watch-limit")
        held = [Watcher(running.simulations, key) for _ in range(2)]
        for watcher in held:
            watcher.call.initial_metadata()
        refused = Watcher(running.simulations, key)
        assert refused.done.wait(WAIT)
        assert refused.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Other calls still have threads.
        create(running, key, "still served")
        held[0].cancel()
        # The slot comes back once the server noticed the cancellation.
        for _attempt in range(100):
            again = Watcher(running.simulations, key)
            again.call.initial_metadata()
            if not again.done.wait(0.1):
                break
            assert again.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        else:
            pytest.fail("a cancelled stream never gave its slot back")
        again.cancel()
        held[1].cancel()
    finally:
        running.stop()


def test_a_stopping_server_ends_streams_with_unavailable_and_the_client_resumes(database, tmp_path):
    first = Server(database, tmp_path)
    _, key = first.key_for(database, "watch-shutdown")
    sim = create(first, key, "survivor")
    events = trail(first, key, sim)
    watcher = Watcher(first.simulations, key, after_event_id=0)
    got = watcher.events(len(events))
    first.server.stop(5)
    assert watcher.done.wait(WAIT)
    assert watcher.error.code() == grpc.StatusCode.UNAVAILABLE
    first.channel.close()
    second = Server(database, tmp_path)
    try:
        resumed = Watcher(second.simulations, key, resume_token=got[-1].resume_token)
        start_run(second, key, sim)
        assert resumed.events(1)[0].event == trail(second, key, sim)[-1]
        resumed.cancel()
    finally:
        second.stop()


def test_a_deleted_simulation_reaches_watchers_once_as_a_deleted_event_that_outlives_it(
    server, database
):
    _, key = server.key_for(database, "watch-delete")
    from simulation.v1 import scenario_pb2, scenario_service_pb2, scenario_service_pb2_grpc

    scenarios = scenario_service_pb2_grpc.ScenarioServiceStub(server.channel)
    scenario = scenarios.CreateScenario(
        scenario_service_pb2.CreateScenarioRequest(
            scenario=scenario_pb2.Scenario(display_name="doomed")
        ),
        metadata=[("x-api-key", key)],
    ).scenario
    doomed = create(server, key, "doomed", scenario_id=scenario.id)
    live = Watcher(server.simulations, key)
    by_scenario = Watcher(server.simulations, key, scenario_id=scenario.id)
    by_kind = Watcher(server.simulations, key, kinds=[Kind.DELETED])
    for watcher in (live, by_scenario, by_kind):
        watcher.call.initial_metadata()

    server.simulations.DeleteSimulation(
        spb.DeleteSimulationRequest(simulation_id=doomed), metadata=[("x-api-key", key)]
    )

    (deleted,) = live.events(1)
    assert deleted.event.kind == Kind.DELETED
    assert deleted.event.simulation_id == doomed
    assert deleted.event.details["scenario_id"] == scenario.id
    assert deleted.event.details["name"] == "doomed"
    for watcher in (by_scenario, by_kind):
        assert watcher.events(1)[0].event == deleted.event
    # Once: nothing follows it.
    for watcher in (live, by_scenario, by_kind):
        with pytest.raises(queue.Empty):
            watcher.messages.get(timeout=0.3)
        watcher.cancel()
    # The simulation's earlier events went with it; the deletion stays, for a replay too.
    replay = Watcher(server.simulations, key, after_event_id=0)
    assert [m.event for m in replay.events(1)] == [deleted.event]
    with pytest.raises(queue.Empty):
        replay.messages.get(timeout=0.3)
    replay.cancel()
    # Resuming after it finds nothing more, and a new event gets a later id.
    resumed = Watcher(server.simulations, key, resume_token=deleted.resume_token)
    after = create(server, key, "after")
    assert resumed.events(1)[0].event.id > deleted.event.id
    assert resumed.events(1)[0].event.simulation_id == after
    resumed.cancel()


def test_purging_a_deleted_scenario_sends_a_deleted_event_per_simulation(server, database):
    _, key = server.key_for(database, "watch-purge")
    from simulation.v1 import scenario_pb2, scenario_service_pb2, scenario_service_pb2_grpc

    scenarios = scenario_service_pb2_grpc.ScenarioServiceStub(server.channel)
    scenario = scenarios.CreateScenario(
        scenario_service_pb2.CreateScenarioRequest(
            scenario=scenario_pb2.Scenario(display_name="purged")
        ),
        metadata=[("x-api-key", key)],
    ).scenario
    members = {create(server, key, f"member-{n}", scenario_id=scenario.id) for n in range(2)}
    scenarios.DeleteScenario(
        scenario_service_pb2.DeleteScenarioRequest(scenario_id=scenario.id, force=True),
        metadata=[("x-api-key", key)],
    )
    watcher = Watcher(server.simulations, key, scenario_id=scenario.id)
    watcher.call.initial_metadata()

    database.run(lambda uow: uow.scenarios.purge_expired(datetime.now(UTC) + timedelta(days=400)))

    got = watcher.events(2)
    assert {m.event.simulation_id for m in got} == members
    assert {(m.event.kind, m.event.actor) for m in got} == {(Kind.DELETED, "purge")}
    assert got[0].event.id < got[1].event.id
    with pytest.raises(queue.Empty):
        watcher.messages.get(timeout=0.3)
    watcher.cancel()


def test_a_watcher_of_one_simulation_resuming_after_its_deletion_gets_the_deleted_event(
    server, database
):
    _, key = server.key_for(database, "watch-gone")
    doomed = create(server, key, "doomed")
    history = trail(server, key, doomed)
    watcher = Watcher(server.simulations, key, simulation_id=doomed, after_event_id=0)
    received = watcher.events(len(history))
    watcher.cancel()
    server.simulations.DeleteSimulation(
        spb.DeleteSimulationRequest(simulation_id=doomed), metadata=[("x-api-key", key)]
    )

    resumed = Watcher(
        server.simulations, key, simulation_id=doomed, resume_token=received[-1].resume_token
    )
    (deleted,) = resumed.events(1)
    assert (deleted.event.kind, deleted.event.simulation_id) == (Kind.DELETED, doomed)
    resumed.cancel()
    # A new watch of the deleted simulation replays its deletion; an unknown one is NOT_FOUND.
    replay = Watcher(server.simulations, key, simulation_id=doomed, after_event_id=0)
    assert replay.events(1)[0].event == deleted.event
    replay.cancel()
    unknown = Watcher(server.simulations, key, simulation_id=str(uuid.uuid4()), after_event_id=0)
    unknown.done.wait(WAIT)
    assert unknown.error is not None and unknown.error.code() == grpc.StatusCode.NOT_FOUND
