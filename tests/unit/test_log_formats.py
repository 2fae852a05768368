"""The two log formats, and the request id every line of a call carries."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from service.telemetry.logs import (
    CallContextFilter,
    JsonFormatter,
    TextFormatter,
    current_request_id,
)


def record(message: str = "hello %s", *args, **extra) -> logging.LogRecord:
    made = logging.LogRecord("simconfig.test", logging.WARNING, __file__, 1, message, args, None)
    for name, value in extra.items():
        setattr(made, name, value)
    return made


def test_a_json_line_holds_the_message_and_the_fields_passed_with_it():
    line = JsonFormatter().format(record("hello %s", "world", grpc_code="OK", duration_ms=1.5))

    entry = json.loads(line)
    assert entry["message"] == "hello world" and entry["level"] == "WARNING"
    assert entry["logger"] == "simconfig.test" and entry["time"].endswith("+00:00")
    assert (entry["grpc_code"], entry["duration_ms"]) == ("OK", 1.5)
    assert "\n" not in line


@pytest.mark.parametrize(
    "created",
    [0.0, 1795102221.2239997, 1795102221.9999996, 1795102222.0004999, 1795102222.9995],
)
def test_a_json_line_is_timed_in_utc_to_the_millisecond_as_datetime_renders_it(created):
    formatter = JsonFormatter()
    for _ in range(2):  # the second time from the second's text rendered the first time
        made = record()
        made.created = created
        entry = json.loads(formatter.format(made))

        assert entry["time"] == datetime.fromtimestamp(created, UTC).isoformat(
            timespec="milliseconds"
        )


def test_a_json_line_keeps_a_traceback_inside_the_object():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        failed = record("failed")
        failed.exc_info = sys.exc_info()

    entry = json.loads(JsonFormatter().format(failed))
    assert "ValueError: boom" in entry["exception"]


def test_a_text_line_puts_the_fields_after_the_message():
    line = TextFormatter().format(record("hello %s", "world", grpc_code="OK"))

    assert line.endswith("WARNING simconfig.test: hello world grpc_code=OK")


def test_lines_written_during_a_call_carry_its_request_id():
    token = current_request_id.set("req-42")
    try:
        during = record()
        CallContextFilter().filter(during)
    finally:
        current_request_id.reset(token)
    after = record()
    CallContextFilter().filter(after)

    assert during.request_id == "req-42"
    assert not hasattr(after, "request_id")
