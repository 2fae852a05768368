"""The telemetry cost runs of `make bench`: their order, their figures and how they are reported."""

from __future__ import annotations

import os

import pytest

from bench import report, telemetry_cost
from bench.measurement import Measurement

TARGET = "telemetry on costs ≤ 10% of GetScenario throughput with 2 processes"


def cost_of(off: list[tuple[int, float]], on: list[tuple[int, float]]) -> report.TelemetryCost:
    """Rounds of one second: (calls answered, server CPU seconds) each."""

    def rounds(figures):
        return [
            report.CostRound(Measurement(ok=calls, errors=0, seconds=1.0), cpu)
            for calls, cpu in figures
        ]

    return report.TelemetryCost(
        processes=2, sample=0.01, seconds=1.0, off=rounds(off), on=rounds(on)
    )


def verdicts(results: report.Results) -> dict[str, report.Target]:
    return {target.what: target for target in report.targets(results)}


def test_rounds_alternate_in_abba_order_so_a_drift_weighs_on_both():
    assert telemetry_cost.abba(3) == [False, True, True, False, False, True]


def test_the_figures_are_the_median_rounds_and_cpu_is_per_answered_call():
    cost = cost_of(off=[(1000, 1.0), (1200, 1.2), (900, 0.9)], on=[(950, 1.045), (800, 0.96)])

    assert cost.rate(False) == 1000
    assert cost.rate(True) == 875
    assert cost.cpu_us_per_call(False) == pytest.approx(1000)
    assert cost.cpu_us_per_call(True) == pytest.approx(1150)
    assert cost.throughput_cost == pytest.approx(0.125)
    assert cost.cpu_cost == pytest.approx(0.15)
    assert cost.pair_ratios == pytest.approx([0.95, 800 / 1200])


def test_a_cost_within_the_budget_passes_and_names_the_sample():
    results = report.Results(machine={}, settings={})
    results.telemetry_cost = cost_of(off=[(1000, 1.0)] * 2, on=[(940, 1.0)] * 2)

    target = verdicts(results)[TARGET]

    assert target.met is True
    assert target.measured.startswith("6.0% (1% sampled; CPU per call +6.4%")


def test_a_cost_over_the_budget_or_with_errors_fails():
    over = report.Results(machine={}, settings={})
    over.telemetry_cost = cost_of(off=[(1000, 1.0)], on=[(890, 1.0)])
    failing = report.Results(machine={}, settings={})
    failing.telemetry_cost = report.TelemetryCost(
        processes=2,
        sample=0.01,
        seconds=1.0,
        off=[report.CostRound(Measurement(ok=1000, errors=0, seconds=1.0), 1.0)],
        on=[report.CostRound(Measurement(ok=1000, errors=3, seconds=1.0), 1.0)],
    )

    assert verdicts(over)[TARGET].met is False
    assert verdicts(failing)[TARGET].met is False
    assert verdicts(failing)[TARGET].measured.endswith(", 3 errors")


def test_without_the_cost_runs_the_target_is_not_measured():
    target = verdicts(report.Results(machine={}, settings={}))[TARGET]

    assert (target.met, target.measured) == (None, "not measured")


def test_the_cost_table_is_printed_and_written_to_the_docs():
    results = report.Results(machine={}, settings={"database": "PostgreSQL", "load": "16×8"})
    results.telemetry_cost = cost_of(off=[(1000, 1.0)] * 2, on=[(950, 1.0)] * 2)

    printed = report.terminal(results)
    written = report.markdown(results, "make bench", None)

    assert "metrics and tracing on, 1% sampled" in printed
    assert "## Telemetry cost" in written
    assert "| off | 2 | 1,000 | 1,000 | 0 |" in written
    assert "| metrics and tracing on, 1% sampled | 2 | 950 | 1,053 | 0 |" in written
    assert "| on / off |  | 0.950× | 1.053× |  |" in written
    assert f"- **PASS** {TARGET}: 5.0%" in written
    assert written.index("## Telemetry cost") < written.index("## Targets")


def test_a_sample_below_one_percent_is_written_as_it_is():
    cost = report.TelemetryCost(processes=2, sample=0.005, seconds=1.0, off=[], on=[])

    assert cost.label == "metrics and tracing on, 0.5% sampled"


def test_the_cpu_of_a_process_tree_is_read_from_proc():
    spent = telemetry_cost.cpu_seconds(os.getpid())
    sum(range(3_000_000))  # burns a few tens of milliseconds

    assert telemetry_cost.cpu_seconds(os.getpid()) > spent
