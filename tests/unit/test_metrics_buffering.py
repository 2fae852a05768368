"""Multiprocess metrics buffer a process's increments and write them to its files in batches.

Run in a fresh interpreter: the multiprocess directory switches prometheus-client's value class
for the whole process, which the other tests must not inherit.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import os, time
    import grpc
    from prometheus_client import generate_latest
    from service.telemetry import metrics

    shared = metrics.SharedMetricsDirectory()
    method = "/simulation.v1.ScenarioService/GetScenario"

    def served() -> dict:
        figures = {}
        for line in generate_latest(shared.registry()).decode().splitlines():
            for name in ("grpc_server_started_total", "grpc_server_handling_seconds_count"):
                if line.startswith(name + "{"):
                    figures[name] = float(line.rsplit(" ", 1)[1])
        return dict(sorted(figures.items()))

    pid = os.fork()
    if pid == 0:
        server = metrics.ServerMetrics()
        for _ in range(5):
            server.started(method)
            server.handled(method, grpc.StatusCode.OK, 0.01)
        time.sleep(metrics.FLUSH_SECONDS * 3)
        os.write(1, f"after the flusher: {served()}\\n".encode())
        for _ in range(2):
            server.started(method)
        metrics.flush_pending()  # what a server process does before it exits
        os._exit(0)
    os.waitpid(pid, 0)
    print(f"after exit: {served()}")
    shared.remove()
    """
)


def test_increments_reach_the_shared_files_by_the_flusher_and_before_exit():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "after the flusher: "
        "{'grpc_server_handling_seconds_count': 5.0, 'grpc_server_started_total': 5.0}",
        "after exit: {'grpc_server_handling_seconds_count': 5.0, 'grpc_server_started_total': 7.0}",
    ]
