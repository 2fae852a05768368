"""Driving a gRPC server with h2load (nghttp2's HTTP/2 load generator), and reading its results.

h2load knows HTTP/2, not gRPC: it sends one fixed body to one path and calls any HTTP 200 a
success. A gRPC call is a POST whose body is a length-prefixed message frame; its status is
in the trailers, which h2load does not read. So a call that failed with, say,
``UNAUTHENTICATED`` still counts as "succeeded" there. What tells them apart is the body:

- An error from grpcio is *trailers-only*: HEADERS with grpc-status and no DATA frame.
- A success carries exactly one message frame: 5 bytes of prefix plus the reply, whose size
  is constant for the reads benchmarked this way (the same row, read again and again).

h2load does count the response body bytes it received ("traffic: ... (N) data"), so
``N // (5 + reply size)`` is the number of calls that got a reply, and every other call
that completed is an error. The latencies come from ``--log-file`` (one line per request:
start, HTTP status, duration), from which the caller takes p50 and p99. A short warm-up is a
separate h2load run: with ``--warm-up-time`` h2load 1.52 counts the warm-up's body bytes in
"data" but not its requests in "succeeded", which would break the byte check.

What this cannot see, the caller checks: that the reply is the expected size before and
after each run (a Python client call), and the remainder of N by the frame size.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.measurement import Measurement

GRPC_HEADERS = {"content-type": "application/grpc", "te": "trailers"}
_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


def grpc_frame(message: bytes) -> bytes:
    """``message`` as one gRPC length-prefixed frame: uncompressed flag, 4-byte length, bytes."""
    return b"\x00" + struct.pack(">I", len(message)) + message


def binary() -> str:
    """The h2load executable; a clear error when it is not installed."""
    found = shutil.which("h2load")
    if found is None:
        raise RuntimeError(
            "h2load is not installed: run .ci/install-system-packages as root "
            "(Debian package nghttp2-client)"
        )
    return found


@dataclass(frozen=True)
class Report:
    """The figures of h2load's summary that the benchmark uses."""

    seconds: float
    done: int
    succeeded: int
    failed: int
    data_bytes: int


def parse_report(text: str) -> Report:
    """Reads h2load's summary (its standard output); ValueError when a line is missing."""
    finished = re.search(r"^finished in ([\d.]+)(s|ms|us),", text, re.MULTILINE)
    requests = re.search(
        r"^requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed",
        text,
        re.MULTILINE,
    )
    traffic = re.search(r"^traffic: .*\((\d+)\) data", text, re.MULTILINE)
    if not (finished and requests and traffic):
        raise ValueError(f"not an h2load summary:\n{text}")
    return Report(
        seconds=float(finished.group(1)) * _UNITS[finished.group(2)],
        done=int(requests.group(1)),
        succeeded=int(requests.group(2)),
        failed=int(requests.group(3)),
        data_bytes=int(traffic.group(1)),
    )


def read_log(path: Path) -> list[tuple[int, float]]:
    """The (HTTP status, duration in ms) of each request in an h2load ``--log-file``."""
    rows = []
    for line in path.read_text().splitlines():
        columns = line.split("\t")
        if len(columns) >= 3:
            rows.append((int(columns[1]), int(columns[2]) / 1000.0))
    return rows


def measurement(report: Report, log: list[tuple[int, float]], reply_size: int) -> Measurement:
    """What a run measured, counting as ok only the calls whose reply frame arrived."""
    frame = 5 + reply_size
    with_reply = report.data_bytes // frame
    ok = min(report.succeeded, with_reply)
    notes = []
    if report.data_bytes % frame:
        notes.append(
            f"{report.data_bytes} body bytes is not a multiple of the {frame}-byte reply "
            "frame: replies changed size, the error count is approximate"
        )
    if with_reply > report.succeeded:
        notes.append(f"{with_reply - report.succeeded} replies arrived for unfinished calls")
    # The log does not say which HTTP 200s were gRPC errors, so with errors the percentiles
    # include them; such a row is marked by its error count rather than trusted.
    latencies = [ms for status, ms in log if status == 200]
    return Measurement(
        ok=ok,
        errors=report.done - ok,
        seconds=report.seconds,
        latencies_ms=latencies,
        notes=tuple(notes),
    )


def run(
    url: str,
    body: bytes,
    *,
    reply_size: int,
    headers: dict[str, str],
    connections: int,
    streams: int,
    seconds: float,
    workdir: Path,
) -> Measurement:
    """Runs h2load against ``url`` (``http://host:port/package.Service/Method``) for ``seconds``.

    ``connections`` HTTP/2 connections each keep ``streams`` calls in flight. ``reply_size``
    is the size of the serialized reply message every successful call gets.
    """
    body_file = workdir / "h2load-body.bin"
    body_file.write_bytes(grpc_frame(body))
    log_file = workdir / "h2load-requests.tsv"
    log_file.unlink(missing_ok=True)  # h2load appends to an existing log
    command = [
        binary(),
        f"--clients={connections}",
        f"--max-concurrent-streams={streams}",
        f"--duration={round(seconds * 1000)}ms",  # h2load takes no fractional seconds
        f"--data={body_file}",
        f"--log-file={log_file}",
    ]
    for name, value in {**GRPC_HEADERS, **headers}.items():
        command += ["--header", f"{name}: {value}"]
    command.append(url)
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"h2load failed ({result.returncode}):\n{result.stderr}{result.stdout}")
    log = read_log(log_file) if log_file.exists() else []
    return measurement(parse_report(result.stdout), log, reply_size)
