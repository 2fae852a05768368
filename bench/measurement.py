"""What one load run measured, whichever tool drove it, and the percentiles of its latencies."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.5 for p50) of ``values``; nan when empty.

    Nearest rank always returns a latency that was observed, which is what a reader of
    "p99 = 41 ms" takes it to mean.
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Measurement:
    """One timed run against one server.

    ``ok`` counts calls that completed with grpc-status 0 inside the timed window,
    ``errors`` every other call that completed in it (whatever the reason: a gRPC error
    status, an HTTP or transport failure). ``latencies_ms`` are those of the ok calls.
    """

    ok: int
    errors: int
    seconds: float
    latencies_ms: Sequence[float] = field(default=(), repr=False)
    notes: tuple[str, ...] = ()

    @property
    def rate(self) -> float:
        """Successful calls per second."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 0.50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 0.99)
