"""The pieces of `make bench` that can be checked in a moment, without timing anything.

The benchmark itself runs for minutes and is not part of the suite; what its figures rest on
is: the frames h2load sends are valid gRPC, the reference server answers with exactly the
bytes it is given, h2load's summary is read right and a call without a reply frame counts
as an error, the readiness check counts listening sockets, and bulk-loaded rows are rows the
server can read.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
import uuid
from datetime import UTC, datetime

import grpc
import pytest
from simulation.v1 import scenario_service_pb2

import storage
from bench import bulk, driver, h2load, reference_server, report, servers
from bench.measurement import Measurement, percentile
from service.app import tenants

GET_SCENARIO = "/simulation.v1.ScenarioService/GetScenario"
CREATE_SCENARIO = "/simulation.v1.ScenarioService/CreateScenario"

# h2load 1.52's summary of a 3-second run against the reference server.
H2LOAD_SUMMARY = """\
starting benchmark...
spawning thread #0: 16 total client(s). Timing-based test with 0s of warm-up time and 3s of main duration for measurements.
Application protocol: h2c
Main benchmark duration is started for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 3.00s, 5098.00 req/s, 1.29MB/s
requests: 15294 total, 15422 started, 15294 done, 15294 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 15294 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 3.88MB (4068170) total, 45.98KB (47082) headers (space savings 96.20%), 3.03MB (3181152) data
                     min         max         mean         sd        +/- sd
time for request:      793us     46.63ms     24.96ms      3.95ms    80.03%
time for connect:       52us       252us       157us        63us    62.50%
time to 1st byte:     3.59ms     15.52ms      9.55ms      3.90ms    62.50%
req/s           :     317.30      320.66      318.60        1.19    43.75%
"""


@pytest.fixture
def reference():
    """A bare reference server answering GetScenario with 1,234 bytes and CreateScenario."""
    replies = {GET_SCENARIO: bytes(range(256)) * 4 + b"x" * 210, CREATE_SCENARIO: b""}
    server, port = reference_server.create_server(replies)
    yield f"127.0.0.1:{port}", replies
    server.stop(None)


def test_a_grpc_frame_is_the_uncompressed_flag_the_length_and_the_message():
    message = scenario_service_pb2.GetScenarioRequest(scenario_id="s-1").SerializeToString()

    frame = h2load.grpc_frame(message)

    assert frame[0] == 0
    assert struct.unpack(">I", frame[1:5])[0] == len(message) == len(frame) - 5
    assert scenario_service_pb2.GetScenarioRequest.FromString(frame[5:]).scenario_id == "s-1"


def test_the_reference_server_replies_with_exactly_the_bytes_it_was_given(reference):
    address, replies = reference
    with grpc.insecure_channel(address) as channel:
        reply = channel.unary_unary(GET_SCENARIO)(b"any request", timeout=5)
        with pytest.raises(grpc.RpcError) as unknown:
            channel.unary_unary("/simulation.v1.ScenarioService/ListScenarios")(b"", timeout=5)

    assert len(reply) == 1234
    assert reply == replies[GET_SCENARIO]
    assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_the_h2load_summary_is_read():
    parsed = h2load.parse_report(H2LOAD_SUMMARY)

    assert parsed == h2load.Report(
        seconds=3.0, done=15294, succeeded=15294, failed=0, data_bytes=3181152
    )


def test_text_that_is_not_an_h2load_summary_is_refused():
    with pytest.raises(ValueError, match="not an h2load summary"):
        h2load.parse_report("h2load: connection refused\n")


def test_calls_that_got_no_reply_frame_count_as_errors():
    # 3181152 bytes = 15294 frames of 5 + 203 bytes; with 10 more HTTP 200s than frames,
    # 10 calls were gRPC errors (trailers only).
    summary = h2load.Report(seconds=3.0, done=15304, succeeded=15304, failed=0, data_bytes=3181152)

    measured = h2load.measurement(summary, [(200, 1.5)] * 15304, reply_size=203)

    assert (measured.ok, measured.errors) == (15294, 10)
    assert measured.notes == ()


def test_a_body_that_is_not_whole_reply_frames_is_reported():
    summary = h2load.Report(seconds=1.0, done=3, succeeded=3, failed=0, data_bytes=100)

    measured = h2load.measurement(summary, [], reply_size=40)

    assert measured.ok == 2
    assert "not a multiple" in measured.notes[0]


def test_the_h2load_request_log_is_read(tmp_path):
    log = tmp_path / "requests.tsv"
    log.write_text("1795976698771658\t200\t25494\n1795976698772078\t-1\t1200\n")

    assert h2load.read_log(log) == [(200, 25.494), (-1, 1.2)]


def test_percentiles_are_observed_values_by_nearest_rank():
    values = list(range(1, 101))

    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile([7.0], 0.99) == 7.0
    assert Measurement(ok=10, errors=0, seconds=2.0).rate == 5.0


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (nghttp2-client) is missing")
def test_h2load_counts_replies_and_unimplemented_calls_apart(reference, tmp_path):
    address, replies = reference
    run = dict(
        reply_size=len(replies[GET_SCENARIO]),
        headers={"x-api-key": "unused"},
        connections=2,
        streams=2,
        seconds=0.3,
        workdir=tmp_path,
    )

    served = h2load.run(f"http://{address}{GET_SCENARIO}", b"", **run)
    refused = h2load.run(f"http://{address}/simulation.v1.ScenarioService/Nope", b"", **run)

    assert served.ok > 0 and served.errors == 0
    assert len(served.latencies_ms) >= served.ok
    assert refused.ok == 0 and refused.errors > 0


def test_the_driver_counts_calls_by_status(reference):
    address, _ = reference

    counts = asyncio.run(
        driver.drive(
            target=address,
            key="unused",
            workload="create-scenario",
            connections=2,
            streams=2,
            warm_up=0.1,
            seconds=0.3,
        )
    )

    assert counts["ok"] > 0 and counts["errors"] == 0
    assert len(counts["latencies_ms"]) == counts["ok"]


def test_only_listening_sockets_count_as_serving_processes():
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        assert servers.listening_sockets(port) == 0
        bound.listen()
        assert servers.listening_sockets(port) == 1


def test_targets_not_measured_are_neither_met_nor_failed():
    results = report.Results(machine={}, settings={})
    results.rows.append(
        report.Row(
            rpc="GetScenario",
            processes=1,
            concurrency="16×8",
            server=Measurement(ok=400, errors=0, seconds=1.0),
            bare=Measurement(ok=1000, errors=0, seconds=1.0),
            errors=0,
            bare_errors=0,
        )
    )

    verdicts = {target.what: target.met for target in report.targets(results)}

    assert verdicts["GetScenario ≥ 0.30× bare with 1 process"] is True
    assert verdicts["GetScenario ≥ 0.50× bare with 2 processes"] is None


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        url = storage.sqlite_url_for(tmp_path)
    else:
        url = request.getfixturevalue("postgres_url")
    db = storage.Database(url)
    db.migrate()
    yield db
    db.dispose()


def test_bulk_loaded_rows_are_rows_the_server_reads(database):
    tenant = tenants.new_tenant(database, f"bulk-{uuid.uuid4().hex}")
    engine = bulk.engine_for(database.engine.url.render_as_string(hide_password=False))
    first = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    try:
        bulk.add_scenarios(engine, tenant.id, 3, first, "bulk")
        listed = database.run(
            lambda uow: uow.scenarios.list(tenant.id, storage.ScenarioQuery(limit=10))
        )
        bulk.add_simulations(engine, tenant.id, listed[0].id, 4)
        counted = database.run(lambda uow: uow.scenarios.get(tenant.id, listed[0].id))
    finally:
        engine.dispose()

    assert [s.display_name for s in listed] == ["bulk 0000000", "bulk 0000001", "bulk 0000002"]
    assert listed[0].create_time == first
    assert listed[0].labels == {} and listed[0].etag
    assert counted.simulation_count == 4


def test_bulk_loaded_configs_are_found_by_the_config_filter(database):
    from service.app.list_filters import parse_filter
    from service.app.simulations import FILTER_FIELDS

    tenant = tenants.new_tenant(database, f"configs-{uuid.uuid4().hex}")
    engine = bulk.engine_for(database.engine.url.render_as_string(hide_password=False))
    try:
        bulk.add_configured_simulations(engine, tenant.id, 30, rare_every=10)
    finally:
        engine.dispose()
    query = storage.SimulationQuery(
        limit=100, filter=parse_filter(f'config.model = "{bulk.RARE_MODEL}"', FILTER_FIELDS)
    )

    found = database.run(lambda uow: uow.simulations.list(tenant.id, query))

    assert [s.name for s in found] == [
        "configured 0000009",
        "configured 0000019",
        "configured 0000029",
    ]
    assert all(s.current_revision == 1 for s in found)


def test_the_printed_report_carries_the_notes_of_the_run():
    results = report.Results(machine={}, settings={"database": "SQLite", "load": "2×2"})
    results.notes.append("SIMCONFIG_PROCESSES=2: 1 process(es) served the port")

    assert "note: SIMCONFIG_PROCESSES=2: 1 process(es) served the port" in report.terminal(results)
