"""bench/tenant_wall.py, the README's measure of what the tenant wall costs, in a few calls."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("same tenant", "two tenants", "list", "create")


def test_every_kind_of_call_is_measured_with_the_wall_on_and_off(postgres_url):
    done = subprocess.run(
        [sys.executable, "-m", "bench.tenant_wall", "--url", postgres_url]
        + ["--calls", "5", "--rounds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    rows = {
        kind: line[len(kind) :].split()
        for line in done.stdout.splitlines()
        for kind in KINDS
        if line.startswith(kind)
    }
    assert set(rows) == set(KINDS)
    # Latency off, on, change; CPU off, on, change.
    assert all(len(figures) == 6 for figures in rows.values())
    assert all(float(figures[0].replace(",", "")) > 0 for figures in rows.values())
