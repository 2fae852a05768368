"""Log set-up: one line per record on stderr, as JSON objects or as plain text.

JSON is what log pipelines read (the container image sets ``SIMCONFIG_LOG_FORMAT=json``);
text is for a person at a terminal (``make run``). Every line written while a call runs carries
that call's request id, and its trace id when tracing is on, so the lines of one call can be
found together.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# The request id of the call this thread is serving (set by the access interceptor).
current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "simconfig_request_id", default=None
)

# Attributes every LogRecord has; anything else was passed in ``extra=`` and is a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


class CallContextFilter(logging.Filter):
    """Stamps each record with the running call's request id and, if traced, its trace ids."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Adds ``request_id``, ``trace_id`` and ``span_id`` when they are known."""
        if getattr(record, "request_id", None) is None:
            request_id = current_request_id.get()
            if request_id is not None:
                record.request_id = request_id
        if getattr(record, "trace_id", None) is None:
            trace_id, span_id = _current_trace()
            if trace_id:
                record.trace_id = trace_id
                record.span_id = span_id
        return True


def _current_trace() -> tuple[str | None, str | None]:
    """The ids of the active span, if OpenTelemetry is loaded and a span is recording."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:  # tracing is off: do not import it just to find nothing
        return None, None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then the record's fields.

    Written once per call (the access line), so it does no work twice: one encoder for every
    record, and the date and time to the second rendered once per second.
    """

    def __init__(self) -> None:
        super().__init__()
        self._encoder = json.JSONEncoder(default=str, separators=(",", ":"))
        self._second: tuple[float, str] = (-1.0, "")

    def format(self, record: logging.LogRecord) -> str:
        """Renders ``record`` as one line of JSON."""
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self._encoder.encode(entry)

    def _time(self, created: float) -> str:
        """``created`` in ISO 8601, UTC, to the millisecond (``2026-01-02T03:04:05.678+00:00``)."""
        second, fraction = divmod(created, 1.0)
        # Rounded to the microsecond first, as datetime does, then cut to the millisecond.
        microseconds = round(fraction * 1_000_000)
        if microseconds >= 1_000_000:
            second, microseconds = second + 1, 0
        rendered, text = self._second
        if second != rendered:
            # One tuple, replaced whole: a thread never reads one second's text for another.
            text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (second, text)
        return f"{text}.{microseconds // 1000:03d}+00:00"


class TextFormatter(logging.Formatter):
    """``time level logger: message`` followed by the record's fields as ``name=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Renders ``record`` as text; extra fields follow the message."""
        line = super().format(record)
        fields = [
            f"{name}={value}"
            for name, value in vars(record).items()
            if name not in _STANDARD and not name.startswith("_")
        ]
        if not fields:
            return line
        head, newline, rest = line.partition("\n")  # keep a traceback below the fields
        return f"{head} {' '.join(fields)}{newline}{rest}"


def configure_logging(level: str, log_format: str = "text") -> None:
    """Sets up logging on stderr in ``log_format`` (``json`` or ``text``) at ``level``."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(CallContextFilter())
    logging.basicConfig(level=getattr(logging, level), handlers=[handler], force=True)
    if level != "DEBUG":
        # Alembic narrates every connection at INFO ("Context impl ..."), which would clutter
        # every CLI command; its warnings and errors still show.
        logging.getLogger("alembic").setLevel(logging.WARNING)
