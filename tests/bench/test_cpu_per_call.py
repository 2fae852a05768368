"""bench/cpu_per_call.py, the README's measure of what telemetry costs, in a few calls."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_mode_is_measured_against_the_one_with_telemetry_off():
    done = subprocess.run(
        [sys.executable, "-m", "bench.cpu_per_call", "--calls", "5", "--rounds", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    rows = {
        line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()[2:] if line.strip()
    }
    assert set(rows) == {"off", "metrics", "unsampled", "sampled", "metrics+unsampled"}
    assert rows["off"][1] == "+0.0%"
    assert all(float(figures[0].replace(",", "")) > 0 for figures in rows.values())
